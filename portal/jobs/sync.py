"""Jobs of the sync engine: push_leads (queue `amocrm`) and prune_sync_log (periodic)."""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from rq import get_current_job
from sqlalchemy import text

from portal.extensions import db, redis_connection
from portal.jobs import scheduler
from portal.jobs.queues import AMOCRM, DEFAULT, get_queue
from portal.logging import workspace_id_var
from portal.models.types import utcnow

TIME_BUDGET_SECONDS = 20  # then the job hands over to a fresh one, so no job runs long
LOCK_SECONDS = 60  # without PostgreSQL: outlives a job that was killed by at most this long
ADVISORY_LOCK_NAMESPACE = 7301  # pg_advisory_lock(namespace, workspace id): "a push runs for this workspace"
PUSH = "portal.jobs.sync.push_leads"

log = logging.getLogger(__name__)


def push_leads(workspace_id: int) -> dict:
    """Push the workspace's pending leads to amoCRM. Never two at once for one workspace."""
    from portal.connection.services import NotConnected, client_for
    from portal.jobs.sync_schedule import push_started
    from portal.sync.limiter import limiter_for_workspace
    from portal.sync.log import SyncLogRecorder
    from portal.sync.push import due_pending_exists, next_retry_at, push_pending

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
        outcome = push_pending(workspace_id, client, limiter, recorder, time_budget=TIME_BUDGET_SECONDS)
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
        queue.enqueue_in(timedelta(seconds=delay_seconds), PUSH, workspace_id, job_id=job_id)
    else:
        queue.enqueue(PUSH, workspace_id, job_id=job_id)


def prune_sync_log() -> tuple[int, int]:
    from portal.sync.services import prune_sync_log as prune

    return prune(current_app.config["SYNC_LOG_RETENTION_DAYS"])


scheduler.every(24 * 3600, DEFAULT, "portal.jobs.sync.prune_sync_log")
