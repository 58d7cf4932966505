"""Retrying failed leads, resuming a paused sync, the sync health figures and the upkeep of the sync log and
the stored webhook bodies."""
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from portal.amocrm.push import clear_failed
from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, SyncLogEntry, WebhookEvent, WebhookReceipt
from portal.models.activity import IGNORED, PROCESSED
from portal.models.amocrm import BLOCKED, CONNECTED
from portal.models.lead import FAILED, PENDING, SYNCED
from portal.models.types import utcnow


class SyncError(Exception):
    pass


def retry_lead(lead: Lead) -> None:
    if lead.sync_status != FAILED:
        raise SyncError(_("Only a lead whose sync failed can be retried."))
    clear_failed([Lead.workspace_id == lead.workspace_id, Lead.id == lead.id])
    schedule_push(lead.workspace_id)


def retry_failed(workspace_id: int) -> int:
    count = clear_failed([Lead.workspace_id == workspace_id, Lead.sync_status == FAILED])
    if count:
        schedule_push(workspace_id)
    return count


def resume_sync(workspace_id: int) -> None:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None or connection.status != BLOCKED:
        raise SyncError(_("Sync is not paused."))
    connection.status = CONNECTED
    connection.last_error = None
    db.session.commit()
    schedule_push(workspace_id)


def sync_health(workspace_id: int) -> dict:
    """Pending count, oldest pending age, pushed today, failed, last success and last error."""
    now = utcnow()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    scoped = (Lead.workspace_id == workspace_id, Lead.is_spam.is_(False), Lead.duplicate_of_id.is_(None))
    pending, oldest = db.session.execute(select(func.count(Lead.id), func.min(Lead.created_at)).where(
        *scoped, Lead.sync_status == PENDING)).one()
    failed = db.session.scalar(select(func.count(Lead.id)).where(*scoped, Lead.sync_status == FAILED))
    pushed_today, last_success = db.session.execute(
        select(func.count(Lead.id).filter(Lead.synced_at >= start_of_day), func.max(Lead.synced_at)).where(
            *scoped, Lead.sync_status == SYNCED)).one()
    last_error = db.session.execute(select(SyncLogEntry.created_at, SyncLogEntry.error, SyncLogEntry.http_status)
                                    .where(SyncLogEntry.workspace_id == workspace_id, SyncLogEntry.outcome != "ok")
                                    .order_by(SyncLogEntry.created_at.desc()).limit(1)).first()
    return {"pending": pending, "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else None,
            "pushed_today": pushed_today, "failed": failed, "last_success_at": last_success,
            "last_error": {"at": last_error.created_at, "message": last_error.error or f"HTTP {last_error.http_status}"}
            if last_error else None}


def prune_sync_log(days: int) -> tuple[int, int]:
    """Delete sync log rows older than `days`, and the raw webhook bodies (names, phones, e-mails as amoCRM sent
    them) of events processed or ignored that long ago; events still waiting or failed are kept; and the webhook
    dedupe receipts older than a day (a body seen again after that is a new event anyway). Returns (log rows,
    events) removed."""
    cutoff = utcnow() - timedelta(days=days)
    log_rows = db.session.execute(delete(SyncLogEntry).where(SyncLogEntry.created_at < cutoff)).rowcount
    events = db.session.execute(delete(WebhookEvent).where(WebhookEvent.status.in_((PROCESSED, IGNORED)),
                                                           WebhookEvent.received_at < cutoff)).rowcount
    db.session.execute(delete(WebhookReceipt).where(WebhookReceipt.received_at < utcnow() - timedelta(days=1)))
    db.session.commit()
    return log_rows, events
