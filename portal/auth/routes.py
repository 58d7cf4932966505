import hmac

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal.auth import bp
from portal.auth.forms import AcceptInviteForm, LoginForm, SignupForm
from portal.auth.services import AccountError, accept_invite, authenticate, find_open_invite, sign_up
from portal.extensions import limiter
from portal.security import is_safe_next


def _login_email_key() -> str:
    """The address a login names, as a keyed hash: limit keys appear in Redis and in the limiter's log lines."""
    email = request.form.get("email", "").strip().lower()[:254]
    return "login-email:" + hmac.new(current_app.secret_key.encode(), email.encode(), "sha256").hexdigest()[:32]


def _failed_login(response) -> bool:
    """Only failed attempts count against the limits: a success redirects."""
    return response.status_code != 302


def _after_login_target() -> str:
    target = request.args.get("next")
    return target if is_safe_next(target) else url_for("dashboard.index")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_RATE_LIMIT"], methods=["POST"])
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
            login_user(user)
            flash(_("Welcome to Leadpath! Connect your amoCRM account to start."), "success")
            return redirect(url_for("dashboard.index"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_IP"], methods=["POST"], deduct_when=_failed_login)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_EMAIL"], key_func=_login_email_key, methods=["POST"],
               deduct_when=_failed_login)
def login():
    if current_user.is_authenticated:
        return redirect(_after_login_target())
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(_after_login_target())
        form.password.errors.append(_("Wrong e-mail or password."))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def accept(token: str):
    try:
        invite = find_open_invite(token)
    except AccountError as error:
        return render_template("auth/invite_invalid.html", message=str(error)), 404
    form = AcceptInviteForm()
    if form.validate_on_submit():
        try:
            user = accept_invite(token, form.name.data, form.password.data)
        except AccountError as error:
            return render_template("auth/invite_invalid.html", message=str(error)), 409
        logout_user()
        login_user(user)
        flash(_("Welcome to %(workspace)s!", workspace=user.workspace.name), "success")
        return redirect(url_for("dashboard.index"))
    return render_template("auth/accept_invite.html", form=form, invite=invite)
