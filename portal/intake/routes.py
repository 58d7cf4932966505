"""Settings → Lead form (mounted under /settings by the settings area). The intake itself, POST /api/leads, answers
beneath Flask: portal.intake.endpoint."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.auth.decorators import permission_required
from portal.auth.permissions import MANAGE_LEAD_FORM
from portal.intake.endpoint import PATH
from portal.intake.forms import LeadFormSettingsForm
from portal.intake.services import SettingsInvalid, update_lead_form_settings
from portal.intake.submission import HONEYPOT_FIELD

bp = Blueprint("lead_form", __name__, url_prefix="/lead-form")

# The code Settings → Lead form gives to paste, in one piece: the form shows where it is pasted (the <div>), with
# the default look (data-style); the README shows the same shape.
SNIPPET_CODE = ('<div data-leadpath-form data-style></div>\n'
                '<script src="{script_url}" data-workspace="{workspace}" async></script>')


def snippet_code(script_url: str, public_id: str) -> str:
    return SNIPPET_CODE.format(script_url=script_url, workspace=public_id)


@bp.get("")
@login_required
def index():
    return _render_settings(LeadFormSettingsForm(obj=current_user.workspace))


@bp.post("")
@permission_required(MANAGE_LEAD_FORM)
def update():
    form = LeadFormSettingsForm()
    if form.validate_on_submit():
        try:
            update_lead_form_settings(current_user.workspace, form.allowed_origins.data or "",
                                      form.duplicate_window_hours.data)
        except SettingsInvalid as error:
            form.allowed_origins.errors = [*form.allowed_origins.errors, str(error)]
        else:
            flash(_("Lead form settings saved."), "success")
            return redirect(url_for("settings.lead_form.index"))
    return _render_settings(form), 400


def _render_settings(form):
    workspace = current_user.workspace
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url.rstrip("/")
    script_path = url_for("static", filename="js/leadpath.js")
    return render_template("intake/settings.html", form=form, workspace=workspace,
                           snippet_code=snippet_code(base + script_path, workspace.public_id),
                           script_path=script_path, api_url=base + request.script_root + PATH,
                           honeypot_field=HONEYPOT_FIELD)
