from flask import Blueprint, abort, current_app, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.auth.decorators import permission_required
from portal.auth.permissions import CHANGE_WORKSPACE
from portal.extensions import csrf, limiter
from portal.onboarding.services import dismiss_checklist, note_snippet_seen, progress, restore_checklist

bp = Blueprint("onboarding", __name__)

PUBLIC_ID_LENGTH = 36


@bp.app_context_processor
def _onboarding_progress() -> dict:
    """`onboarding()` in templates: the current workspace's setup progress, read once per request when asked."""
    cache = {}

    def onboarding():
        if not current_user.is_authenticated:
            return None
        if "progress" not in cache:
            cache["progress"] = progress(current_user.workspace)
        return cache["progress"]

    return {"onboarding": onboarding}


@bp.post("/onboarding/dismiss")
@permission_required(CHANGE_WORKSPACE)
def dismiss():
    if FlaskForm().validate_on_submit():
        dismiss_checklist(current_user.workspace)
        flash(_("The setup checklist is hidden. Settings → Workspace shows it again."), "info")
    return redirect(url_for("dashboard.index"))


@bp.post("/onboarding/restore")
@permission_required(CHANGE_WORKSPACE)
def restore():
    if FlaskForm().validate_on_submit():
        restore_checklist(current_user.workspace)
    return redirect(url_for("dashboard.index"))


@bp.post("/api/snippet/seen/<public_id>")
@csrf.exempt  # the snippet's beacon from a customer's site: no session; it only sets one timestamp, once
@limiter.limit(lambda: current_app.config["LEAD_RATE_LIMIT_IP"])
def snippet_seen(public_id: str):
    if len(public_id) != PUBLIC_ID_LENGTH:
        abort(404, "No such workspace.")
    note_snippet_seen(public_id)
    return "", 204
