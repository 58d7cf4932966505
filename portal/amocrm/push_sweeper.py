"""The safety net for lead pushes: schedule a push for every workspace whose pending leads have waited too long.

The intake schedules a push after each commit, but that can fail (Redis down) or be skipped (a marker left by
a push that has already read its batch). Every `SWEEP_EVERY_SECONDS` this job finds workspaces with pending
leads older than `MIN_AGE_SECONDS` that are due (`next_attempt_at` empty or past), or with a deal's note owed and
due, and schedules their push.
Also run by hand: `flask --app wsgi leads sweep`.
"""
import logging
from datetime import timedelta

from sqlalchemy import exists, or_, select

from portal.amocrm.push import owed_notes
from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.models import Lead, Workspace
from portal.models.lead import PENDING
from portal.models.types import utcnow

MIN_AGE_SECONDS = 30
SWEEP_EVERY_SECONDS = 30

log = logging.getLogger(__name__)


def workspaces_with_overdue_leads(min_age_seconds: int = MIN_AGE_SECONDS) -> list[int]:
    """Ids of workspaces with a pending lead older than `min_age_seconds` whose next attempt is due."""
    now = utcnow()
    # One indexed probe per workspace (ix_leads_workspace_sync), not a scan of all leads.
    overdue = exists().where(
        Lead.workspace_id == Workspace.id,
        Lead.sync_status == PENDING,
        or_(Lead.next_attempt_at.is_(None), Lead.next_attempt_at <= now),
        Lead.created_at < now - timedelta(seconds=min_age_seconds),
    )
    # A deal's note of extra fields owed by a synced lead (`push.owed_notes`) and due.
    note_due = exists().where(Lead.workspace_id == Workspace.id, owed_notes(), Lead.next_attempt_at <= now)
    ids = list(db.session.scalars(select(Workspace.id).where(or_(overdue, note_due)).order_by(Workspace.id)))
    db.session.rollback()  # read-only: end the transaction rather than hold it
    return ids


def sweep_pending_leads(min_age_seconds: int = MIN_AGE_SECONDS) -> list[int]:
    """Schedule a push for each workspace with overdue pending leads. Returns the workspaces scheduled."""
    scheduled = [workspace_id for workspace_id in workspaces_with_overdue_leads(min_age_seconds)
                 if schedule_push(workspace_id, force=True)]
    if scheduled:
        log.info("sweeper scheduled a lead push for %d workspace(s)", len(scheduled))
    return scheduled
