"""Jobs for amoCRM webhooks: process a workspace's stored events in batches; sweep events left behind.

Scheduling is the protocol the lead intake uses for pushes (`portal.amocrm.scheduling`), and as cheap on the
acknowledgement's hot path — at most one Redis SET NX per event (a web process makes one per workspace per
SCHEDULE_DEBOUNCE_SECONDS, `portal.jobs.coalesce`) instead of an RQ job per event:

- After an event commits, the endpoint calls `schedule_processing(workspace_id)`. It sets a short-lived marker
  (SET NX, `MARKER_SECONDS`); only the call that sets it enqueues `process_workspace_events(workspace_id)` (job id
  `webhook-events-<id>`, skipped while such a job waits), so a burst costs one enqueue per workspace per
  `MARKER_SECONDS`.
- The job clears the marker FIRST, then drains every `received` event of the workspace in batches of
  `services.EVENT_BATCH` (one transaction each). An event committed after the job read its last batch sets the
  marker again and schedules the next job.
- Safety net: a marker left without a job expires in `MARKER_SECONDS`; the sweeper (`requeue_stale_webhooks`,
  every minute) schedules processing, whatever the marker says, for workspaces with events still `received` a
  minute after arriving (Redis down, a worker killed mid-batch, a failed event's next attempt).
"""
from sqlalchemy import select

from portal.amocrm import inbox as services
from portal.extensions import db
from portal.jobs.coalesce import CoalescedJob
from portal.jobs.queues import AMOCRM, WEBHOOKS, enqueue
from portal.jobs.scheduler import every
from portal.models import AmoCRMConnection
from portal.models.amocrm import CONNECTED

PROCESS_EVENTS = "portal.jobs.webhooks.process_workspace_events"
# A job hands over to a fresh one after this long, so a workspace under constant load never hits the job timeout.
TIME_BUDGET_SECONDS = 60


# One waiting processing job per workspace: the protocol of portal.jobs.coalesce.
EVENT_PROCESSING = CoalescedJob(WEBHOOKS, PROCESS_EVENTS, "webhook-events")
schedule_processing = EVENT_PROCESSING.schedule
processing_job_id = EVENT_PROCESSING.job_id


def process_workspace_events(workspace_id: int) -> int:
    """Apply every received event of the workspace to Sales, in batches (idempotent: processed events are left
    alone). Returns the number of events processed."""
    EVENT_PROCESSING.started(workspace_id)  # FIRST: later events schedule the next job
    processed, more = services.process_workspace_events(workspace_id, time_budget=TIME_BUDGET_SECONDS)
    if more:
        schedule_processing(workspace_id, force=True)
    return processed


def process_webhook(event_id: int) -> str | None:
    """Apply one stored webhook event (jobs enqueued before per-workspace processing existed)."""
    return services.process_event(event_id)


def requeue_stale_webhooks() -> int:
    """Events still `received` a minute after arriving missed their job (Redis was down): schedule them again."""
    return services.requeue_stale_events()


every(60, WEBHOOKS, "portal.jobs.webhooks.requeue_stale_webhooks")


def check_webhook(workspace_id: int) -> dict:
    """Re-create the workspace's webhook in amoCRM if it is missing, disabled or on a rotated secret."""
    from portal.amocrm.connection import NotConnected

    try:
        return services.check_webhook(workspace_id)
    except NotConnected:
        return {"status": "not connected"}


def check_all_webhooks() -> int:
    """The periodic health check: one check_webhook job per connected workspace."""
    workspace_ids = db.session.scalars(select(AmoCRMConnection.workspace_id)
                                       .where(AmoCRMConnection.status == CONNECTED)).all()
    db.session.rollback()
    for workspace_id in workspace_ids:
        enqueue(AMOCRM, "portal.jobs.webhooks.check_webhook", workspace_id, job_id=f"check-webhook-{workspace_id}")
    return len(workspace_ids)


every(15 * 60, AMOCRM, "portal.jobs.webhooks.check_all_webhooks")
