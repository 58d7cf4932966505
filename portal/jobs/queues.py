"""Named queues, and enqueueing that happens only after the transaction commits.

A job enqueued inside a transaction that later rolls back would read rows that never existed; one enqueued
before commit may run before the rows are visible. So `enqueue` parks the job on the session and sends it
to Redis from the session's after_commit hook; a rollback drops it. If Redis is unreachable the job is
dropped with a warning: every job here is re-derivable from the database (the sweeper finds pending
leads and unprocessed webhook events), so Redis being down loses no data.
"""
import logging
from dataclasses import dataclass, field

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db, redis_connection

AMOCRM = "amocrm"
WEBHOOKS = "webhooks"
DEFAULT = "default"
ADSPEND = "adspend"  # ad platform imports: slow calls (offline reports) that must not hold up amoCRM's queues
QUEUE_NAMES = (AMOCRM, WEBHOOKS, DEFAULT, ADSPEND)

log = logging.getLogger(__name__)


@dataclass
class PendingJob:
    queue: str
    func: str
    args: tuple
    job_id: str | None = None
    options: dict = field(default_factory=dict)


def get_queue(name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection.client, default_timeout=current_app.config["JOB_TIMEOUT_SECONDS"])


def enqueue(queue: str, func: str, *args, job_id: str | None = None, retry: Retry | None = None, **options) -> None:
    """Enqueue `func` (dotted path) once the current transaction commits; at once if it has written nothing.

    `job_id` makes the job unique while it waits: enqueueing the same id again is a no-op then.
    """
    job = PendingJob(queue, func, args, job_id, {"retry": retry, **options} if retry else options)
    session = db.session()
    if _has_writes(session):
        session.info.setdefault("leadpath_pending_jobs", []).append(job)
    else:
        send(job)


def _has_writes(session: Session) -> bool:
    return bool(session.new or session.dirty or session.deleted or session.info.get("leadpath_flushed"))


ENQUEUE_CLAIM_MS = 5000


def send(job: PendingJob) -> bool:
    """Put the job on its queue now. False when Redis is unreachable (logged, not raised).

    A job with an id is enqueued once however many processes send it at the same moment: "is one waiting?" and
    "enqueue it" are two steps, so the sender first claims the id (SET NX, gone after ENQUEUE_CLAIM_MS should it
    die); a sender that finds the claim taken leaves the enqueue to its holder, which makes sure one is waiting."""
    try:
        queue = get_queue(job.queue)
        if not job.job_id:
            queue.enqueue(job.func, *job.args, **job.options)
            return True
        claim = f"leadpath:enqueueing:{job.job_id}"
        if not queue.connection.set(claim, b"1", nx=True, px=ENQUEUE_CLAIM_MS):
            return True
        try:
            if not _is_waiting(queue, job.job_id):
                queue.enqueue(job.func, *job.args, job_id=job.job_id, **job.options)
        finally:
            queue.connection.delete(claim)
        return True
    except RedisError as exc:
        log.warning("Could not enqueue %s on %s: %s", job.func, job.queue, exc.__class__.__name__)
        return False


def _is_waiting(queue: Queue, job_id: str) -> bool:
    """True while a job with that id is queued and not yet started (a started one may have missed new rows)."""
    try:
        status = Job.fetch(job_id, connection=queue.connection).get_status(refresh=False)
    except NoSuchJobError:
        return False
    return status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context) -> None:
    session.info["leadpath_flushed"] = True


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    session.info.pop("leadpath_flushed", None)
    for job in session.info.pop("leadpath_pending_jobs", []):
        send(job)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    session.info.pop("leadpath_flushed", None)
    session.info.pop("leadpath_pending_jobs", None)
