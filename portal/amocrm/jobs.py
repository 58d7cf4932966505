"""The amoCRM jobs RQ runs, by dotted path (`portal.amocrm.scheduling` names the ones enqueued by name, and
`portal.periodic_jobs` the periodic ones). Each takes ids, runs in the app context and leaves the work to its
module; what is here is what a job adds: locks, hand-over to a fresh job, fan-out, and which failures end it.
"""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from rq import get_current_job
from sqlalchemy import select, text

from portal.amocrm import deals, inbox, reconcile, subscription, sync_admin
from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.connection import ConnectError, NotConnected, client_for
from portal.amocrm.connection import refresh_pipelines as read_pipelines
from portal.amocrm.contacts_index import index_contacts
from portal.amocrm.limiter import limiter_for_workspace
from portal.amocrm.push import due_pending_exists, next_retry_at, push_pending
from portal.amocrm.push_sweeper import sweep_pending_leads
from portal.amocrm.scheduling import (
    CHECK_WEBHOOK,
    EVENT_PROCESSING,
    PUSH_LEADS,
    RECONCILE_RETRY,
    RECONCILE_WORKSPACE,
    push_started,
    schedule_processing,
)
from portal.amocrm.sync_log import SyncLogRecorder
from portal.amocrm.token_provider import refresh_idle_connections
from portal.extensions import db, redis_connection
from portal.jobs.queues import AMOCRM, DEFAULT, enqueue, get_queue
from portal.log_context import workspace_id_var
from portal.models import AmoCRMConnection
from portal.models.amocrm import CONNECTED
from portal.models.types import utcnow

# Run by the scheduler under these paths; the work is all theirs.
__all__ = ["refresh_idle_connections", "sweep_pending_leads"]

PUSH_TIME_BUDGET_SECONDS = 20  # then the push hands over to a fresh job, so no job runs long
# Event processing hands over after this long, so a workspace under constant load never hits the job timeout.
EVENTS_TIME_BUDGET_SECONDS = 60
LOCK_SECONDS = 60  # without PostgreSQL: outlives a job that was killed by at most this long
ADVISORY_LOCK_NAMESPACE = 7301  # pg_advisory_lock(namespace, workspace id): "a push runs for this workspace"

log = logging.getLogger(__name__)


# --- pushing leads ------------------------------------------------------------------------------------------------

def push_leads(workspace_id: int) -> dict:
    """Push the workspace's pending leads to amoCRM. Never two at once for one workspace."""
    workspace_id_var.set(str(workspace_id))
    push_started(workspace_id)  # leads committed from now on schedule another push
    with push_lock(workspace_id) as acquired:
        if not acquired:
            return {"skipped": "another push is running"}
        job = get_current_job()
        recorder = SyncLogRecorder(workspace_id, job.id if job else None)
        limiter = limiter_for_workspace(workspace_id)
        try:
            client = client_for(workspace_id, before_request=limiter.wait, on_call=recorder.record)
        except NotConnected:
            return {"stopped": "not_connected"}
        outcome = push_pending(workspace_id, client, limiter, recorder, time_budget=PUSH_TIME_BUDGET_SECONDS)
        db.session.commit()  # the last calls' sync log rows
    log.info("pushed %d, adopted %d, failed %d, retrying %d in %d calls%s", outcome.pushed, outcome.adopted,
             outcome.failed, outcome.retried, outcome.calls, f"; stopped: {outcome.stopped}" if outcome.stopped else "")
    if outcome.stopped in (None, "forbidden"):  # waiting for rights: look again when the leads are due
        if due_pending_exists(workspace_id):
            follow_up(workspace_id)
        elif (retry_at := next_retry_at(workspace_id)) is not None:
            follow_up(workspace_id, max((retry_at - utcnow()).total_seconds(), 0.5))
    return {"pushed": outcome.pushed, "adopted": outcome.adopted, "failed": outcome.failed,
            "retried": outcome.retried, "calls": outcome.calls, "stopped": outcome.stopped}


@contextmanager
def push_lock(workspace_id: int) -> Iterator[bool]:
    """Held while a push runs for the workspace. On PostgreSQL a session advisory lock on its own connection: it
    dies with the process that holds it, so a worker killed mid-push blocks nobody. Elsewhere a Redis lock with a
    timeout. (Claims are safe without it: it only keeps two pushes from competing for one workspace.)"""
    if db.engine.dialect.name == "postgresql":
        # AUTOCOMMIT: the connection waits idle, not "idle in transaction", which a server's
        # idle_in_transaction_session_timeout would end, and the lock with it, in the middle of a push.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            keys = {"namespace": ADVISORY_LOCK_NAMESPACE, "id": workspace_id}
            acquired = connection.scalar(text("SELECT pg_try_advisory_lock(:namespace, :id)"), keys)
            try:
                yield acquired
            finally:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:namespace, :id)"), keys)
                connection.commit()
        return
    lock = redis_connection.client.lock(f"leadpath:push-lock:{workspace_id}", timeout=LOCK_SECONDS, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def follow_up(workspace_id: int, delay_seconds: float = 0) -> None:
    """Another push for the workspace, now or after a delay (its own id: this one is still running)."""
    queue = get_queue(AMOCRM)
    job_id = f"push-leads-{workspace_id}-next"
    if delay_seconds > 0:
        queue.enqueue_in(timedelta(seconds=delay_seconds), PUSH_LEADS, workspace_id, job_id=job_id)
    else:
        queue.enqueue(PUSH_LEADS, workspace_id, job_id=job_id)


def prune_sync_log() -> tuple[int, int]:
    """Daily: sync log rows and processed webhook bodies older than SYNC_LOG_RETENTION_DAYS."""
    return sync_admin.prune_sync_log(current_app.config["SYNC_LOG_RETENTION_DAYS"])


# --- webhook events and the subscription ----------------------------------------------------------------------

def process_workspace_events(workspace_id: int) -> int:
    """Apply every received event of the workspace to its deals, in batches (idempotent: processed events are left
    alone). Returns the number of events processed."""
    EVENT_PROCESSING.started(workspace_id)  # FIRST: events committed from now on schedule the next job
    processed, more = inbox.process_workspace_events(workspace_id, time_budget=EVENTS_TIME_BUDGET_SECONDS)
    if more:
        schedule_processing(workspace_id, force=True)
    return processed


def requeue_stale_webhooks() -> int:
    """Every minute: events still `received` a minute after arriving missed their job (Redis was down, a worker
    died, a failed event waits for its next attempt): schedule them again."""
    return inbox.requeue_stale_events()


def check_webhook(workspace_id: int) -> dict:
    """Re-create the workspace's webhook in amoCRM if it is missing, disabled or on a rotated secret."""
    try:
        return subscription.check_webhook(workspace_id)
    except NotConnected:
        return {"status": "not connected"}


def check_all_webhooks() -> int:
    """Every 15 minutes: one check_webhook job per connected workspace."""
    workspace_ids = _connected_workspaces()
    for workspace_id in workspace_ids:
        enqueue(AMOCRM, CHECK_WEBHOOK, workspace_id, job_id=f"check-webhook-{workspace_id}")
    return len(workspace_ids)


def _connected_workspaces() -> list[int]:
    workspace_ids = list(db.session.scalars(select(AmoCRMConnection.workspace_id)
                                            .where(AmoCRMConnection.status == CONNECTED)))
    db.session.rollback()  # end the read; each job runs in its own transaction
    return workspace_ids


# --- deals ------------------------------------------------------------------------------------------------------

def refresh_pipelines(workspace_id: int) -> bool:
    """Store the workspace's pipelines again (a webhook named a pipeline or status we did not know)."""
    try:
        read_pipelines(workspace_id)
    except ConnectError as exc:
        log.warning("pipelines of workspace %s not refreshed: %s", workspace_id, exc)
        return False
    return True


def close_spam_deal(workspace_id: int, lead_id: int) -> str:
    """Close the deal of a lead marked as spam as lost in amoCRM (see `deals.close_spam_deal`). An amoCRM error is
    recorded in the sync log and raised, so RQ's Retry tries again."""
    try:
        return deals.close_spam_deal(workspace_id, lead_id)
    except NotConnected:
        log.warning("deal of spam lead %s not closed: amoCRM is not connected", lead_id)
        return "not_connected"


def reconcile_workspace(workspace_id: int, since_iso: str | None = None) -> dict:
    """Read back the deals amoCRM changed since the last run (or `since_iso`) and apply them."""
    return reconcile.reconcile_workspace(workspace_id, since_iso)


def reconcile_connected_workspaces() -> int:
    """Hourly: one reconcile job per connected workspace (unique per workspace while it waits)."""
    workspace_ids = _connected_workspaces()
    for workspace_id in workspace_ids:
        enqueue(DEFAULT, RECONCILE_WORKSPACE, workspace_id, job_id=f"reconcile-{workspace_id}",
                retry=RECONCILE_RETRY)
    return len(workspace_ids)


def build_contacts_index(workspace_id: int) -> dict:
    """Run at connect: every contact of the account into the contacts index (`portal.amocrm.contacts_index`).
    Idempotent; safe to run again. A failure leaves what was read; reconciliation keeps filling it."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None or connection.status != CONNECTED:
        db.session.rollback()
        return {"skipped": "not connected"}
    try:
        client = client_for(workspace_id)
    except NotConnected:
        return {"skipped": "not connected"}
    db.session.rollback()
    try:
        read = index_contacts(workspace_id, client.contact_pages())
    except AmoCRMError:
        db.session.rollback()
        log.warning("the contacts index of workspace %s could not be built; reconciliation fills it", workspace_id)
        raise
    log.info("contacts index of workspace %s built from %d contacts", workspace_id, read)
    return {"contacts": read}
