"""The ad spend jobs RQ runs (queue "adspend"): one import run by its id, and the periodic job that queues each
workspace's daily import at its hour and picks up runs that wait or were lost."""
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from portal.adplatforms import importer
from portal.extensions import db
from portal.log_context import workspace_id_var
from portal.models import AdAccount, SpendImport, Workspace
from portal.models.ad_account import CONNECTED, QUEUED, RUNNING, WAITING
from portal.models.types import utcnow

DUE_EVERY_SECONDS = 60
# A queued or running run untouched this long lost its job (Redis forgot it, the worker died): queue it again.
LOST_AFTER = timedelta(minutes=30)

log = logging.getLogger(__name__)


def import_spend(import_id: int) -> str:
    run = db.session.get(SpendImport, import_id)
    if run is not None:
        workspace_id_var.set(str(run.workspace_id))
    return importer.run_import(import_id)


def import_due_accounts() -> dict:
    """Queue the daily import of every enabled, connected account whose workspace's import hour has come today
    (its own time zone), and enqueue again the runs whose wait is over or whose job was lost."""
    now = utcnow()
    queued = 0
    accounts = db.session.execute(select(AdAccount, Workspace).join(Workspace, Workspace.id == AdAccount.workspace_id)
                                  .where(AdAccount.enabled.is_(True), AdAccount.status == CONNECTED)).all()
    for account, workspace in accounts:
        today = importer.local_today(workspace, now)
        local_hour = now.astimezone(ZoneInfo(workspace.timezone or "UTC")).hour
        if local_hour < workspace.ad_import_hour or (account.last_daily_on is not None
                                                     and account.last_daily_on >= today):
            continue
        importer.queue_daily(account, workspace, today)
        queued += 1
    db.session.commit()
    resent = 0
    for run in db.session.scalars(select(SpendImport).where(or_(
            (SpendImport.status == WAITING) & (SpendImport.retry_at <= now),
            (SpendImport.status.in_((QUEUED, RUNNING))) & (SpendImport.created_at < now - LOST_AFTER)
            & (or_(SpendImport.started_at.is_(None), SpendImport.started_at < now - LOST_AFTER))))):
        run.status, run.retry_at = QUEUED, None
        importer.enqueue_run(run)
        resent += 1
    db.session.commit()
    if queued or resent:
        log.info("ad spend: %s daily imports queued, %s runs enqueued again", queued, resent)
    return {"daily": queued, "resent": resent}
