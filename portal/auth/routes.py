"""Accounts: sign-up, log-in and log-out, accepting an invitation, password reset, e-mail confirmation."""
import time

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.decorators import permission_required
from portal.auth.forms import (
    AcceptInviteForm,
    ForgotPasswordForm,
    LoginForm,
    ResendVerificationForm,
    ResetPasswordForm,
    SignupForm,
)
from portal.auth.password_reset import find_password_reset, request_password_reset, reset_password
from portal.auth.permissions import ACCOUNT
from portal.auth.services import AccountError, accept_invite, authenticate, find_open_invite, sign_up
from portal.auth.sessions import log_in, log_out, restore_remembered_session
from portal.auth.throttle import LoginAttempt, device_cookie_value
from portal.auth.verification import send_verification, verify_email
from portal.extensions import db, limiter
from portal.models import User
from portal.security import is_safe_next

bp = Blueprint("auth", __name__)
bp.before_app_request(restore_remembered_session)


def _after_login_target() -> str:
    target = request.args.get("next")
    return target if is_safe_next(target) else url_for("dashboard.index")


# The account pages' 429s say what was limited and how long to wait, in the reader's language.
LIMITED_PAGES = {"auth.signup": "signup", "auth.forgot_password": "reset", "auth.resend_verification": "verify"}


@bp.errorhandler(429)
def _rate_limited(error):
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current is not None else 60
    response = make_response(render_template("auth/rate_limited.html", what=LIMITED_PAGES.get(request.endpoint),
                                             minutes=max(1, (wait + 59) // 60)), 429)
    response.headers["Retry-After"] = str(wait)
    return response


def _succeeded(response) -> bool:
    """Only what succeeded (a redirect onwards) counts toward a form's rate limit: a typo, a weak password or a
    taken address must not use up the allowance of a person (or an office behind one address)."""
    return response.status_code in (302, 303)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_RATE_LIMIT"], methods=["POST"], deduct_when=_succeeded)
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = sign_up(form.workspace_name.data, form.name.data, form.email.data, form.password.data)
        except AccountError as error:
            form.email.errors.append(str(error))
        else:
            send_verification(user)
            log_in(user)  # commits the verification mail with the session
            flash(_("Welcome to Leadpath! Connect your amoCRM account to start."), "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Failed attempts are throttled per (account, client) by portal.auth.throttle; a browser that logged in to
    the account before (its device cookie) is throttled on its own, so strangers cannot lock the owner out."""
    if current_user.is_authenticated:
        return redirect(_after_login_target())
    form = LoginForm()
    if form.validate_on_submit():
        attempt = LoginAttempt(form.email.data)
        wait = attempt.wait_seconds()
        if wait:
            return _throttled(wait, attempt.trusted_device)
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            attempt.succeeded()
            log_in(user, remember=form.remember.data)
            response = make_response(redirect(_after_login_target()))
            _set_device_cookie(response, form.email.data)
            return response
        attempt.failed()
        form.password.errors.append(_("Wrong e-mail or password."))
    return render_template("auth/login.html", form=form)


def _throttled(wait: int, trusted_device: bool):
    minutes = max(1, (wait + 59) // 60)
    response = make_response(render_template("auth/throttled.html", minutes=minutes, trusted_device=trusted_device),
                             429)
    response.headers["Retry-After"] = str(wait)
    return response


def _set_device_cookie(response, email: str) -> None:
    config = current_app.config
    response.set_cookie(config["LOGIN_DEVICE_COOKIE_NAME"], device_cookie_value(email),
                        max_age=config["LOGIN_DEVICE_COOKIE_DAYS"] * 24 * 3600, path="/",
                        secure=config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Lax")


@bp.post("/logout")
@permission_required(ACCOUNT)
def logout():
    log_out(current_user)
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def accept(token: str):
    try:
        invite = find_open_invite(token)
    except AccountError as error:
        return render_template("auth/invite_invalid.html", message=str(error)), 404
    form = AcceptInviteForm(account_email=invite.email)
    if form.validate_on_submit():
        try:
            user = accept_invite(token, form.name.data, form.password.data)
        except AccountError as error:
            return render_template("auth/invite_invalid.html", message=str(error)), 409
        if current_user.is_authenticated:
            log_out(current_user)
        log_in(user)
        flash(_("Welcome to %(workspace)s!", workspace=user.workspace.name), "success")
        return redirect(url_for("dashboard.index"))
    return render_template("auth/accept_invite.html", form=form, invite=invite)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT"], methods=["POST"])
def forgot_password():
    """The same answer whether or not the address has an account (portal.auth.password_reset)."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_password_reset(form.email.data)
        return render_template("auth/forgot_password_sent.html", email=form.email.data,
                               minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"])
    return render_template("auth/forgot_password.html", form=form), 400 if form.errors else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def reset_password_page(token: str):
    try:
        reset = find_password_reset(token)
    except AccountError as error:
        return _link_refused(error, 404)
    form = ResetPasswordForm(account_email=db.session.get(User, reset.user_id).email)
    if form.validate_on_submit():
        try:
            user = reset_password(token, form.password.data)
        except AccountError as error:
            return _link_refused(error, 409)
        if current_user.is_authenticated:
            log_out(current_user)
        log_in(user)
        flash(_("Your password has been changed, and every other device has been logged out."), "success")
        return redirect(url_for("dashboard.index"))
    return render_template("auth/reset_password.html", form=form), 400 if form.errors else 200


def _link_refused(error: AccountError, status: int):
    response = make_response(render_template("auth/link_invalid.html", message=str(error)), status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.after_request
def _keep_tokens_out_of_referers(response):
    """Pages whose address holds a one-time token must not hand it to another site as a Referer."""
    if request.endpoint in ("auth.reset_password_page", "auth.accept", "auth.verify_email_page"):
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/email/confirm/<token>")
def verify_email_page(token: str):
    """Opening the link is the confirmation (idempotent: a mail client prefetching it confirms the same)."""
    try:
        user = verify_email(token)
    except AccountError as error:
        return _link_refused(error, 404)
    flash(_("Your e-mail address %(email)s is confirmed. Thank you!", email=user.email), "success")
    return redirect(url_for("dashboard.index" if current_user.is_authenticated else "auth.login"))


@bp.post("/email/confirm/resend")
@permission_required(ACCOUNT)
@limiter.limit(lambda: current_app.config["PASSWORD_RESET_RATE_LIMIT"])
def resend_verification():
    if ResendVerificationForm().validate_on_submit() and current_user.email_verified_at is None:
        send_verification(current_user)
        db.session.commit()
        flash(_("We sent a new confirmation link to %(email)s.", email=current_user.email), "info")
    return redirect(url_for("dashboard.index"))
