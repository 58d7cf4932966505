"""The figures behind /metrics, read at scrape time; each query is one indexed aggregate over all workspaces.

Totals only (no per-workspace labels) so the series count stays fixed whatever the number of tenants.
amoCRM call counts are counters kept in Redis by the sync log recorder (`count_amocrm_call`): reading them
from the sync log would mean scanning it by time across workspaces, which no index serves.
"""
import logging
from dataclasses import dataclass, field

from redis.exceptions import RedisError
from sqlalchemy import func, select

from portal.extensions import db, redis_connection
from portal.jobs.queues import QUEUE_NAMES, get_queue
from portal.models import Lead, WebhookEvent, Workspace
from portal.models.activity import RECEIVED
from portal.models.lead import PENDING
from portal.models.types import utcnow

AMOCRM_CALLS_KEY = "leadpath:metrics:amocrm_calls"
AMOCRM_429_KEY = "leadpath:metrics:amocrm_429"

log = logging.getLogger(__name__)


@dataclass
class Metric:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[dict, float]] = field(default_factory=list)


def count_amocrm_call(status: int | None) -> None:
    """Count one amoCRM call (and a 429) in Redis; metrics are best effort, so Redis errors are ignored."""
    try:
        pipe = redis_connection.client.pipeline(transaction=False)
        pipe.incr(AMOCRM_CALLS_KEY)
        if status == 429:
            pipe.incr(AMOCRM_429_KEY)
        pipe.execute()
    except RedisError as error:
        log.debug("amoCRM call counter not updated: %s", error.__class__.__name__)


def collect() -> list[Metric]:
    now = utcnow()
    metrics = []

    # One parallel index-only pass over ix_leads_workspace_sync (it holds sync_status): the one query here that grows
    # with the table, measured at 0.3 s per million leads on a busy 2-core machine. Scrape every 30-60 s.
    leads = Metric("leadpath_leads", "gauge", "Leads stored, by sync status (accepted = the sum).")
    for status, count in db.session.execute(select(Lead.sync_status, func.count()).group_by(Lead.sync_status)):
        leads.samples.append(({"status": status}, count))
    metrics.append(leads)
    accepted = sum(value for _, value in leads.samples)
    metrics.append(Metric("leadpath_leads_accepted_total", "counter", "Leads accepted by the intake API.",
                          [({}, accepted)]))

    # Per workspace, so ix_leads_workspace_sync (workspace_id, sync_status, …) finds the few pending rows; a plain
    # min() over all leads WHERE sync_status = 'pending' has no index with sync_status first and scans them all.
    oldest_per_workspace = (select(func.min(Lead.created_at))
                            .where(Lead.workspace_id == Workspace.id, Lead.sync_status == PENDING).scalar_subquery())
    oldest_pending = db.session.scalar(select(func.min(oldest_per_workspace)).select_from(Workspace))
    metrics.append(Metric("leadpath_leads_pending_oldest_age_seconds", "gauge",
                          "Age of the oldest lead still waiting to be pushed to amoCRM (0 when none).",
                          [({}, _age(now, oldest_pending))]))

    events = Metric("leadpath_webhook_events", "gauge", "Webhook events stored, by processing status.")
    for status, count in db.session.execute(select(WebhookEvent.status, func.count())
                                            .group_by(WebhookEvent.status)):
        events.samples.append(({"status": status}, count))
    metrics.append(events)
    oldest_event = db.session.scalar(select(func.min(WebhookEvent.received_at))
                                     .where(WebhookEvent.status == RECEIVED))
    metrics.append(Metric("leadpath_webhook_lag_seconds", "gauge",
                          "Now minus the receipt time of the oldest unprocessed webhook event (0 when none).",
                          [({}, _age(now, oldest_event))]))

    calls, throttled = _redis_counters()
    metrics.append(Metric("leadpath_amocrm_calls_total", "counter", "Calls made to amoCRM.", calls))
    metrics.append(Metric("leadpath_amocrm_429_total", "counter", "amoCRM calls answered 429 (rate limited).",
                          throttled))
    metrics.append(Metric("leadpath_queue_jobs", "gauge", "Jobs waiting in each RQ queue.", _queue_depths()))
    return metrics


def _age(now, then) -> float:
    return round(max((now - then).total_seconds(), 0.0), 3) if then else 0.0


def _redis_counters() -> tuple[list, list]:
    try:
        calls, throttled = redis_connection.client.mget(AMOCRM_CALLS_KEY, AMOCRM_429_KEY)
    except RedisError:
        return [], []  # no sample rather than a false zero
    return [({}, int(calls or 0))], [({}, int(throttled or 0))]


def _queue_depths() -> list:
    samples = []
    for name in QUEUE_NAMES:
        try:
            samples.append(({"queue": name}, get_queue(name).count))
        except RedisError:
            continue
    return samples


def render(metrics: list[Metric]) -> str:
    lines = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {metric.help}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in sorted(labels.items()))
            lines.append(f"{metric.name}{{{label_text}}} {_number(value)}" if label_text
                         else f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
