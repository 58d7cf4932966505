"""The settings area: one /settings prefix and one navigation. The workspace and team tabs are its own; the other
tabs belong to their features, whose blueprints are mounted here."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user, login_required

from portal.adplatforms.routes import settings_bp as ad_accounts_tab
from portal.amocrm.routes import settings_bp as amocrm_tab
from portal.auth.decorators import permission_required
from portal.auth.forms import ChangePasswordForm, EndOtherSessionsForm
from portal.auth.permissions import ACCOUNT, CHANGE_WORKSPACE, MANAGE_TEAM
from portal.auth.services import AccountError, change_password, create_invite
from portal.auth.sessions import end_other_sessions, live_sessions
from portal.intake.routes import bp as lead_form_tab
from portal.models import Invite, User
from portal.reports.routes import tokens_bp as api_tokens_tab
from portal.settings.forms import InviteForm, LanguageForm, WorkspaceForm
from portal.settings.services import (
    SettingsError,
    remove_member,
    revoke_invite,
    set_language,
    team,
    update_workspace,
)
from portal.tenancy import get_owned_or_404

bp = Blueprint("settings", __name__, url_prefix="/settings")
for tab in (amocrm_tab, ad_accounts_tab, lead_form_tab, api_tokens_tab):
    bp.register_blueprint(tab)

# The navigation of every settings page, in order.
TABS = [("settings.index", _l("Workspace")), ("settings.amocrm.index", "amoCRM"),
        ("settings.ad_accounts.index", _l("Ad accounts")),
        ("settings.lead_form.index", _l("Lead form")), ("settings.team_page", _l("Team")),
        ("settings.api_tokens.index", _l("API tokens")), ("settings.account", _l("Your account")),
        ("settings.language", _l("Language"))]


@bp.context_processor
def _tabs() -> dict:
    return {"settings_tabs": TABS}


@bp.get("/")
@login_required
def index():
    form = WorkspaceForm(obj=current_user.workspace)
    return render_template("settings/workspace.html", form=form)


@bp.post("/")
@permission_required(CHANGE_WORKSPACE)
def update():
    # A form from before the retention field (an open tab, a script) keeps the workspace's retention.
    form = WorkspaceForm(data={"visit_retention_days": current_user.workspace.visit_retention_days})
    if form.validate_on_submit():
        update_workspace(current_user.workspace, form.name.data, form.currency.data, form.timezone.data,
                         form.country.data, form.visit_retention_days.data)
        flash(_("Settings saved."), "success")
        return redirect(url_for("settings.index"))
    return render_template("settings/workspace.html", form=form), 400


@bp.get("/team")
@login_required
def team_page():
    users, invites = team(current_user.workspace_id)
    return render_template("settings/team.html", users=users, invites=invites, invite_form=InviteForm(),
                           new_invite_url=None)


@bp.post("/team/invites")
@permission_required(MANAGE_TEAM)
def invite():
    form = InviteForm()
    new_invite_url = None
    if form.validate_on_submit():
        try:
            token = create_invite(current_user, form.email.data)
        except AccountError as error:
            form.email.errors.append(str(error))
        else:
            new_invite_url = url_for("auth.accept", token=token, _external=True)
            flash(_("Invite sent to %(email)s. You can also give them the link below; it works once.",
                    email=form.email.data.strip().lower()), "success")
    users, invites = team(current_user.workspace_id)
    return render_template("settings/team.html", users=users, invites=invites, invite_form=form,
                           new_invite_url=new_invite_url), 200 if new_invite_url else 400


@bp.post("/team/invites/<int:invite_id>/resend")
@permission_required(MANAGE_TEAM)
def resend(invite_id: int):
    """A new link for an open invite, mailed again (the old link stops working)."""
    invite = get_owned_or_404(Invite, invite_id)
    if invite.used_at is not None or invite.revoked_at is not None:
        abort(409, _("This invite was used or revoked in the meantime. Invite the address again."))
    try:
        create_invite(current_user, invite.email)
    except AccountError as error:
        flash(str(error), "error")
    else:
        flash(_("Invite sent to %(email)s again; the earlier link no longer works.", email=invite.email), "success")
    return redirect(url_for("settings.team_page"))


@bp.post("/team/invites/<int:invite_id>/revoke")
@permission_required(MANAGE_TEAM)
def revoke(invite_id: int):
    revoke_invite(get_owned_or_404(Invite, invite_id))
    flash(_("Invite revoked."), "info")
    return redirect(url_for("settings.team_page"))


@bp.post("/team/members/<int:user_id>/remove")
@permission_required(MANAGE_TEAM)
def remove(user_id: int):
    member = get_owned_or_404(User, user_id)
    if member.id == current_user.id:
        flash(_("You cannot remove yourself."), "error")
    else:
        try:
            remove_member(member)
            flash(_("Teammate removed."), "info")
        except SettingsError as error:
            flash(str(error), "error")
    return redirect(url_for("settings.team_page"))


def _account_page(password_form: ChangePasswordForm, status: int = 200):
    return render_template("settings/account.html", password_form=password_form,
                           end_sessions_form=EndOtherSessionsForm(), sessions=live_sessions(current_user)), status


@bp.get("/account")
@login_required
def account():
    return _account_page(ChangePasswordForm(account_email=current_user.email))


@bp.post("/account/password", endpoint="change_password")
@permission_required(ACCOUNT)
def change_password_view():
    form = ChangePasswordForm(account_email=current_user.email)
    if form.validate_on_submit():
        try:
            change_password(current_user, form.current_password.data, form.password.data)
        except AccountError as error:
            form.current_password.errors.append(str(error))
        else:
            flash(_("Password changed. Every other browser where you were logged in has been logged out."), "success")
            return redirect(url_for("settings.account"))
    return _account_page(form, 400)


@bp.post("/account/sessions/end-others", endpoint="end_other_sessions")
@permission_required(ACCOUNT)
def end_other_sessions_view():
    end_other_sessions(current_user)  # the form is only its CSRF token, checked before the view
    flash(_("Every other browser where you were logged in has been logged out."), "success")
    return redirect(url_for("settings.account"))


@bp.route("/language", methods=["GET", "POST"])
@permission_required(ACCOUNT)
def language():
    """Each user's own choice, so any member may change it."""
    form = LanguageForm(locale=current_user.locale or "")
    if form.validate_on_submit():
        set_language(current_user, form.locale.data)
        refresh()  # this response already speaks the new language
        flash(_("Language saved."), "success")
        return redirect(url_for("settings.language"))
    return render_template("settings/language.html", form=form), 400 if form.errors else 200
