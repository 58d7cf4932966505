"""Thin views: retrying failed leads and resuming a paused sync (/sync/…)."""
from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.amocrm.sync_admin import SyncError, resume_sync, retry_failed, retry_lead
from portal.auth.decorators import permission_required
from portal.auth.permissions import CHANGE_LEADS, MANAGE_AMOCRM
from portal.i18n import number
from portal.models import Lead
from portal.security import is_safe_next
from portal.tenancy import get_owned_or_404

bp = Blueprint("sync", __name__, url_prefix="/sync")


def _back(default: str):
    target = request.form.get("next") or request.args.get("next")
    return redirect(target if is_safe_next(target) else default)


@bp.post("/leads/<int:lead_id>/retry")
@permission_required(CHANGE_LEADS)
def retry(lead_id: int):
    lead = get_owned_or_404(Lead, lead_id)
    try:
        retry_lead(lead)
        flash(_("The lead will be sent to amoCRM again in a moment."), "success")
    except SyncError as error:
        flash(str(error), "error")
    return _back(url_for("dashboard.index"))


@bp.post("/leads/retry-failed")
@permission_required(CHANGE_LEADS)
def retry_all():
    count = retry_failed(current_user.workspace_id)
    flash(_("Failed leads to be sent to amoCRM again: %(count)s.", count=number(count)) if count else
          _("No failed leads to retry."), "info")
    return _back(url_for("dashboard.index"))


@bp.post("/resume")
@permission_required(MANAGE_AMOCRM)
def resume():
    try:
        resume_sync(current_user.workspace_id)
        flash(_("Sync resumed."), "success")
    except SyncError as error:
        flash(str(error), "error")
    return _back(url_for("dashboard.index"))
