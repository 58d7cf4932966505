from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user, login_required

from portal.auth.decorators import owner_required
from portal.auth.services import AccountError, create_invite
from portal.models import Invite, User
from portal.settings import bp
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


@bp.get("/")
@login_required
def index():
    form = WorkspaceForm(obj=current_user.workspace)
    return render_template("settings/workspace.html", form=form)


@bp.post("/")
@owner_required
def update():
    form = WorkspaceForm()
    if form.validate_on_submit():
        update_workspace(current_user.workspace, form.name.data, form.currency.data, form.timezone.data,
                         form.country.data)
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
@owner_required
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
            flash(_("Invite created. Send the link below to your teammate; it works once."), "success")
    users, invites = team(current_user.workspace_id)
    return render_template("settings/team.html", users=users, invites=invites, invite_form=form,
                           new_invite_url=new_invite_url), 200 if new_invite_url else 400


@bp.post("/team/invites/<int:invite_id>/revoke")
@owner_required
def revoke(invite_id: int):
    revoke_invite(get_owned_or_404(Invite, invite_id))
    flash(_("Invite revoked."), "info")
    return redirect(url_for("settings.team_page"))


@bp.post("/team/members/<int:user_id>/remove")
@owner_required
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


@bp.route("/language", methods=["GET", "POST"])
@login_required
def language():
    """Each user's own choice, so any member may change it."""
    form = LanguageForm(locale=current_user.locale or "")
    if form.validate_on_submit():
        set_language(current_user, form.locale.data)
        refresh()  # this response already speaks the new language
        flash(_("Language saved."), "success")
        return redirect(url_for("settings.language"))
    return render_template("settings/language.html", form=form), 400 if form.errors else 200
