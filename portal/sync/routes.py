from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.auth.decorators import owner_required
from portal.i18n import number
from portal.models import Lead
from portal.security import is_safe_next
from portal.sync import bp
from portal.sync.services import SyncError, resume_sync, retry_failed, retry_lead
from portal.tenancy import get_owned_or_404


def _back(default: str):
    target = request.form.get("next") or request.args.get("next")
    return redirect(target if is_safe_next(target) else default)


@bp.post("/leads/<int:lead_id>/retry")
@login_required
def retry(lead_id: int):
    lead = get_owned_or_404(Lead, lead_id)
    try:
        retry_lead(lead)
        flash(_("The lead will be sent to amoCRM again in a moment."), "success")
    except SyncError as error:
        flash(str(error), "error")
    return _back(url_for("dashboard.index"))


@bp.post("/leads/retry-failed")
@login_required
def retry_all():
    count = retry_failed(current_user.workspace_id)
    flash(_("Failed leads to be sent to amoCRM again: %(count)s.", count=number(count)) if count else
          _("No failed leads to retry."), "info")
    return _back(url_for("dashboard.index"))


@bp.post("/resume")
@owner_required
def resume():
    try:
        resume_sync(current_user.workspace_id)
        flash(_("Sync resumed."), "success")
    except SyncError as error:
        flash(str(error), "error")
    return _back(url_for("dashboard.index"))
