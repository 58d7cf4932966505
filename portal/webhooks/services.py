"""Receiving amoCRM webhooks and turning deal events into Sales.

Receiving is the hot path (amoCRM waits 2 s and disables a webhook that keeps failing): authenticate, parse,
dedupe, store, commit, enqueue — a handful of indexed queries and no amoCRM call. Everything else happens in
`process_event`, run by the `webhooks` queue, and `apply_deal`, which reconciliation reuses.
"""
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from portal.amocrm.contacts_index import apply_contact_events, workspace_region
from portal.amocrm.webhooks import (
    DealSnapshot,
    WebhookBodyError,
    parse_form,
    parse_notification,
)
from portal.extensions import db, redis_connection
from portal.jobs.queues import AMOCRM, enqueue
from portal.logging import job_id_var, workspace_id_var
from portal.masking import mask_document
from portal.models import AmoCRMConnection, Lead, Sale, SyncLogEntry, WebhookEvent, Workspace
from portal.models.activity import FAILED, IGNORED, PROCESSED, RECEIVED
from portal.models.sale import LOST, LOST_STATUS_ID, OPEN, WON, WON_STATUS_ID, state_for_status
from portal.models.types import utcnow

log = logging.getLogger(__name__)

DEDUPE_WINDOW = timedelta(hours=24)
# last_webhook_at is written at most this often: under a burst, every request updating the one connection
# row would queue them all behind its row lock.
LAST_SEEN_GRANULARITY = timedelta(seconds=10)
MAX_ATTEMPTS = 5
UNREADABLE_BODY_CHARS = 20_000
PIPELINES_REFRESH_INTERVAL = 300  # seconds
NO_CONNECTION = "No amoCRM account is connected to this workspace: event stored, not processed."
REFRESH_PIPELINES_JOB = "portal.jobs.deals.refresh_pipelines"
_PUBLIC_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DUMMY_SECRET = "x" * 43  # compared against when the workspace does not exist, so timing tells nothing


class WebhookRejected(Exception):
    status = 400


class UnknownWebhookURL(WebhookRejected):
    status = 404


class AccountMismatch(WebhookRejected):
    status = 403


@dataclass
class Receipt:
    event_id: int | None
    duplicate: bool = False
    ignored: bool = False


# --- receiving ------------------------------------------------------------------------------------------------


def receive_webhook(public_id: str, secret: str, body: bytes) -> Receipt:
    """Authenticate, parse, dedupe and store one webhook body; then make sure its workspace's events get processed.

    A workspace without a connected amoCRM account still gets its events stored (status `ignored`, so support
    can see them) but not processed: without an account id there is nothing to check `account[id]` against,
    and the backfill that runs right after connecting recovers those deals anyway. The answer is 200 so amoCRM
    does not count failures against (and disable) a webhook that will work once the account is connected.

    Cost: the workspace comes from a per-process cache (WEBHOOK_WORKSPACE_CACHE_SECONDS); dedupe and store are
    one INSERT … SELECT … WHERE NOT EXISTS in autocommit, committed without waiting for the WAL flush (see
    `_insert_event_statement`); scheduling is at most one Redis SET NX per event (`portal.jobs.webhooks`).
    """
    row = _workspace_for(public_id)
    stored_secret = row.webhook_secret if row is not None else _DUMMY_SECRET
    if not hmac.compare_digest(secret.encode(), stored_secret.encode()) or row is None:
        raise UnknownWebhookURL("No webhook here.")
    workspace_id_var.set(str(row.workspace_id))
    connected_account = row.amocrm_account_id
    # A body from the connected account is never refused for what cannot be read of it (amoCRM counts every
    # refusal toward switching the webhook off): read leniently, kept, flagged. The strict reading decides only
    # for a body that does not show the connected account.
    problems: list[str] = []
    try:
        limits = current_app.config
        data = parse_form(body, max_bytes=limits.get("WEBHOOK_MAX_BYTES", 512 * 1024),
                          max_fields=limits.get("WEBHOOK_MAX_FIELDS", 10_000), problems=problems)
        notification = parse_notification(data, problems)
        if problems and (connected_account is None or notification.account_id != connected_account):
            parse_notification(parse_form(body, max_bytes=limits.get("WEBHOOK_MAX_BYTES", 512 * 1024),
                                          max_fields=limits.get("WEBHOOK_MAX_FIELDS", 10_000)))
    except WebhookBodyError as error:
        rejected = WebhookRejected(str(error))
        rejected.status = error.status
        raise rejected from error

    if connected_account is not None:
        if notification.account_id is None:
            raise WebhookRejected("account[id] is missing.")
        if notification.account_id != connected_account:
            log.warning("webhook for account %s reached a workspace connected to %s", notification.account_id,
                        connected_account)
            raise AccountMismatch("This webhook comes from an amoCRM account that is not connected here.")
    unreadable = {"problems": problems[:50], "body": body.decode("utf-8", errors="replace")[:UNREADABLE_BODY_CHARS]
                  } if problems else None
    if problems:
        log.warning("a webhook body could not be fully read (%d problems); kept and flagged", len(problems))

    digest = hashlib.sha256(body).hexdigest()
    now = utcnow()
    ignored = connected_account is None
    params = {"p_workspace_id": row.workspace_id, "p_received_at": now, "p_body_sha256": digest, "p_payload": data,
              "p_status": IGNORED if ignored else RECEIVED, "p_error": NO_CONNECTION if ignored else None,
              "p_attempts": 0, "p_unreadable": unreadable, "window_start": now - DEDUPE_WINDOW}
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        event_id = connection.scalar(_insert_event_statement(connection.dialect.name), params)
        if event_id is None:  # the same body within the window: answer with the event stored first
            duplicate = connection.scalar(
                select(WebhookEvent.id).where(WebhookEvent.workspace_id == row.workspace_id,
                                              WebhookEvent.body_sha256 == digest,
                                              WebhookEvent.received_at >= now - DEDUPE_WINDOW)
                .order_by(WebhookEvent.id).limit(1))
            return Receipt(duplicate, duplicate=True)
        if row.connection_id is not None and row.last_seen_due(now):
            connection.execute(update(AmoCRMConnection).where(AmoCRMConnection.id == row.connection_id)
                               .values(last_webhook_at=now))
    if not ignored:
        from portal.jobs.webhooks import schedule_processing

        schedule_processing(row.workspace_id)
    return Receipt(event_id, ignored=ignored)


_event_statements: dict[str, object] = {}


def _insert_event_statement(dialect_name: str):
    """INSERT the event unless the same body arrived in the workspace within DEDUPE_WINDOW; RETURNING its id.

    One statement, so one round trip; built once per dialect. Two identical bodies arriving at the very same
    moment can both be stored (as with the SELECT-then-INSERT it replaces): processing is idempotent, so the
    second one changes nothing.

    **Durability trade-off (PostgreSQL)**: the statement sets `synchronous_commit = off` for its own transaction
    (`set_config(..., true)`, local to the implicit transaction of this autocommit statement). The commit then
    returns before the WAL is flushed to disk (PostgreSQL flushes it within `wal_writer_delay`, 200 ms by
    default, ×3 at worst). A crash of PostgreSQL itself (not of our process) in that window can lose an
    acknowledged event, but never corrupts anything. That is acceptable here and only here: amoCRM's own
    state is the truth, and the hourly reconciliation (`portal.jobs.reconcile`) re-reads every deal updated
    since the last run, so a lost event's deal is applied anyway. The lead intake, whose rows exist nowhere
    else, keeps the fsync'd commit.
    """
    statement = _event_statements.get(dialect_name)
    if statement is None:
        table = WebhookEvent.__table__
        columns = ("workspace_id", "received_at", "body_sha256", "payload", "status", "error", "attempts",
                   "unreadable")
        source = select(*(bindparam(f"p_{name}", type_=table.c[name].type).label(name) for name in columns))
        seen = exists().where(table.c.workspace_id == bindparam("p_workspace_id"),
                              table.c.body_sha256 == bindparam("p_body_sha256"),
                              table.c.received_at >= bindparam("window_start", type_=table.c.received_at.type))
        source = source.where(~seen)
        if dialect_name == "postgresql":
            source = source.where(func.set_config("synchronous_commit", "off", True).is_not(None))
        statement = table.insert().from_select(list(columns), source).returning(table.c.id)
        _event_statements[dialect_name] = statement
    return statement


@dataclass
class _WebhookWorkspace:
    workspace_id: int
    webhook_secret: str
    connection_id: int | None
    amocrm_account_id: int | None
    last_webhook_at: datetime | None  # as this process last wrote or read it

    def last_seen_due(self, now: datetime) -> bool:
        """last_webhook_at is written at most every LAST_SEEN_GRANULARITY (per process)."""
        if self.last_webhook_at is not None and self.last_webhook_at >= now - LAST_SEEN_GRANULARITY:
            return False
        self.last_webhook_at = now
        return True


WORKSPACE_CACHE_KEY = "leadpath_webhook_workspaces"


def _workspace_for(public_id: str) -> _WebhookWorkspace | None:
    """The workspace's secret and connection, from a per-process cache of WEBHOOK_WORKSPACE_CACHE_SECONDS.

    Trade-off: after a secret rotation or a (dis)connection in another process, this process acts on the old
    values for at most that long (a rotation in this process takes effect at once). Unknown ids are not cached.
    """
    if not _PUBLIC_ID.fullmatch(public_id):
        return None
    ttl = current_app.config.get("WEBHOOK_WORKSPACE_CACHE_SECONDS", 5)
    cache: dict = current_app.extensions.setdefault(WORKSPACE_CACHE_KEY, {})
    now = time.monotonic()
    entry = cache.get(public_id)
    if entry is not None and entry[0] > now:
        return entry[1]
    found = db.session.execute(
        select(Workspace.id.label("workspace_id"), Workspace.webhook_secret,
               AmoCRMConnection.id.label("connection_id"), AmoCRMConnection.amocrm_account_id,
               AmoCRMConnection.last_webhook_at)
        .outerjoin(AmoCRMConnection, AmoCRMConnection.workspace_id == Workspace.id)
        .where(Workspace.public_id == public_id)).first()
    db.session.rollback()  # end the read transaction
    if found is None:
        return None
    row = _WebhookWorkspace(found.workspace_id, found.webhook_secret, found.connection_id, found.amocrm_account_id,
                            found.last_webhook_at)
    if ttl > 0:
        if len(cache) > 10_000:
            cache.clear()
        cache[public_id] = (now + ttl, row)
    return row


def forget_webhook_workspace(public_id: str) -> None:
    current_app.extensions.get(WORKSPACE_CACHE_KEY, {}).pop(public_id, None)


def requeue_stale_events(older_than: timedelta = timedelta(minutes=1), limit: int = 1000) -> int:
    """Schedule processing again for workspaces with events still `received` after `older_than` (Redis was down,
    a worker died, or an event failed and waits for its next attempt). Returns how many such events there are."""
    from portal.jobs.webhooks import schedule_processing

    rows = db.session.execute(
        select(WebhookEvent.workspace_id, func.count(WebhookEvent.id))
        .where(WebhookEvent.id.in_(select(WebhookEvent.id).where(WebhookEvent.status == RECEIVED,
                                                                  WebhookEvent.received_at < utcnow() - older_than)
                                   .order_by(WebhookEvent.id).limit(limit)))
        .group_by(WebhookEvent.workspace_id)).all()
    db.session.rollback()
    for workspace_id, _count in rows:
        schedule_processing(workspace_id, force=True)
    return sum(count for _workspace_id, count in rows)


# --- processing -----------------------------------------------------------------------------------------------


@dataclass
class DealOutcome:
    deal_id: int
    result: str  # created | updated | stale | unknown_deleted
    sale: Sale | None = None


@dataclass
class ProcessSummary:
    outcomes: list[DealOutcome] = field(default_factory=list)
    unknown_pipelines: set = field(default_factory=set)

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts


EVENT_BATCH = 200


def process_events(workspace_id: int, event_ids: list[int]) -> int:
    """Apply several stored events of one workspace in ONE transaction (one commit, the workspace's connection
    and currency read once). Events no longer `received`, or locked by another worker, are skipped. Returns the
    number processed.

    If anything fails, the batch rolls back and each event is processed on its own with `process_event`, which
    records the failure on the event that caused it; the others go through.
    """
    workspace_id_var.set(str(workspace_id))
    events = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.workspace_id == workspace_id, WebhookEvent.id.in_(event_ids),
                                   WebhookEvent.status == RECEIVED)
        .order_by(WebhookEvent.id).with_for_update(skip_locked=True)).all()
    if not events:
        db.session.rollback()
        return 0
    try:
        context = deal_context(workspace_id)
        notifications = [parse_notification(event.payload, []) for event in events]  # flagged when received
        deal_ids = {snapshot.deal_id for notification in notifications for snapshot in notification.deals
                    if snapshot.action != "delete"}
        context.prefetched = prefetch_sales(workspace_id, deal_ids, context.currency)
        unknown_pipelines: set = set()
        now = utcnow()
        with db.session.no_autoflush:
            for event, notification in zip(events, notifications, strict=True):
                summary = apply_deals(workspace_id, notification.deals, context, refresh=False)
                apply_contact_events(workspace_id, notification.others, context.region)
                unknown_pipelines |= summary.unknown_pipelines
                _mark_processed(event, notification, summary, now)
        if unknown_pipelines and context.connection is not None:
            request_pipelines_refresh(workspace_id)
        db.session.commit()
        return len(events)
    except Exception:
        db.session.rollback()
        ids = [event.id for event in events]
        log.warning("a batch of %d webhook events failed; processing them one by one", len(ids))
    processed = 0
    for event_id in ids:
        try:
            processed += process_event(event_id) == PROCESSED
        except Exception:  # recorded on the event by process_event; the sweeper retries it
            log.exception("webhook event %s failed", event_id)
    return processed


def process_workspace_events(workspace_id: int, batch_size: int = EVENT_BATCH,
                             time_budget: float | None = None) -> tuple[int, bool]:
    """Process the workspace's `received` events oldest first, in batches. Each event is tried once per call
    (a failed one waits for the sweeper). Returns (events processed, True if it stopped at `time_budget`
    seconds with events maybe left)."""
    started = time.monotonic()
    after_id = 0
    total = 0
    while True:
        ids = db.session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.workspace_id == workspace_id, WebhookEvent.status == RECEIVED,
                                          WebhookEvent.id > after_id)
            .order_by(WebhookEvent.id).limit(batch_size)).all()
        db.session.rollback()
        if not ids:
            return total, False
        after_id = ids[-1]
        total += process_events(workspace_id, list(ids))
        if time_budget is not None and time.monotonic() - started > time_budget:
            return total, True


def _mark_processed(event: WebhookEvent, notification, summary: ProcessSummary, now: datetime) -> None:
    event.status = PROCESSED
    event.processed_at = now
    event.attempts += 1
    event.error = None
    lead_ids = sorted({o.sale.lead_id for o in summary.outcomes if o.sale is not None and o.sale.lead_id})
    db.session.add(SyncLogEntry(
        workspace_id=event.workspace_id, direction="inbound", operation="webhook " + " ".join(notification.actions),
        lead_ids=lead_ids or None, outcome="ok", request=_document(event.payload),
        response=json.dumps({"event_id": event.id, "deals": [d.deal_id for d in notification.deals],
                             **summary.counts()}),
        job_id=_job_id()))


def process_event(event_id: int) -> str | None:
    """Apply one stored webhook event to the workspace's Sales, in one transaction. Idempotent: an event that
    is no longer `received` is left alone. Returns the event's status afterwards (None when it does not exist).

    A failure rolls back, counts the attempt on the event and re-raises; after MAX_ATTEMPTS the event is
    `failed` and the sweeper stops retrying it.
    """
    event = db.session.get(WebhookEvent, event_id)
    if event is None or event.status != RECEIVED:
        db.session.rollback()
        return None if event is None else event.status
    workspace_id = event.workspace_id
    workspace_id_var.set(str(workspace_id))
    try:
        notification = parse_notification(event.payload, [])  # what could not be read was flagged when received
        summary = apply_deals(workspace_id, notification.deals)
        apply_contact_events(workspace_id, notification.others, workspace_region(workspace_id))
        _mark_processed(event, notification, summary, utcnow())
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        _record_failure(event_id, exc)
        raise
    return PROCESSED


def _record_failure(event_id: int, exc: Exception) -> None:
    event = db.session.get(WebhookEvent, event_id)
    if event is None:
        return
    event.attempts += 1
    event.error = f"{exc.__class__.__name__}: {str(exc)[:500]}"
    if event.attempts >= MAX_ATTEMPTS:
        event.status = FAILED
    db.session.commit()


@dataclass
class DealContext:
    """What applying deals needs of the workspace, read once per transaction (or batch of events)."""

    connection: AmoCRMConnection | None
    currency: str | None
    known: dict | None
    prefetched: "Prefetched | None" = None
    region: str = ""  # the workspace's country: how phones typed without a country code are read


def deal_context(workspace_id: int) -> DealContext:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    currency, region = db.session.execute(select(Workspace.currency, Workspace.country)
                                          .where(Workspace.id == workspace_id)).one()
    return DealContext(connection, currency, known_statuses(connection.pipelines if connection else None),
                       region=region or "")


def apply_deals(workspace_id: int, snapshots: list[DealSnapshot], context: DealContext | None = None,
                refresh: bool = True) -> ProcessSummary:
    """apply_deal for each snapshot, then one pipelines refresh if any pipeline or status is unknown (unless
    `refresh` is False: the caller asks for it). Does not commit: the caller's transaction."""
    summary = ProcessSummary()
    if not snapshots:
        return summary
    context = context or deal_context(workspace_id)
    for snapshot in snapshots:
        summary.outcomes.append(apply_deal(workspace_id, snapshot, currency=context.currency,
                                           prefetched=context.prefetched))
        if snapshot.pipeline_id is not None and not _is_known(context.known, snapshot.pipeline_id,
                                                              snapshot.status_id):
            summary.unknown_pipelines.add(snapshot.pipeline_id)
    if refresh and summary.unknown_pipelines and context.connection is not None:
        request_pipelines_refresh(workspace_id)
    return summary


def apply_deal(workspace_id: int, snapshot: DealSnapshot, *, currency: str | None = None,
               prefetched: "Prefetched | None" = None) -> DealOutcome:
    """Upsert the workspace's Sale for one amoCRM deal from an event or an API read. Does not commit.

    The Sale is credited to the lead that made the deal; a lead amoCRM merged into it (`deal_merged`) never is.

    Ordering: a snapshot older (amoCRM `updated_at`) than what the Sale holds changes nothing; an equal one is
    applied again (the result is the same), except that an open one does not reopen a won/lost deal. Fields a
    snapshot does not carry are left as they are. Moving to won
    or lost sets closed_at (the snapshot's, else the time of the change); moving back out clears it.
    """
    if prefetched is not None:
        sale = prefetched.sales.get(snapshot.deal_id)
    else:
        sale = _locked_sale(workspace_id, snapshot.deal_id)
    if snapshot.action == "delete":
        if sale is None:
            return DealOutcome(snapshot.deal_id, "unknown_deleted")
        sale.deleted = True
        return DealOutcome(snapshot.deal_id, "updated", sale)
    created = sale is None
    if created and prefetched is not None:  # inserted by prefetch_sales: new to this batch
        raise RuntimeError(f"deal {snapshot.deal_id} was not prefetched")
    if created:
        sale, created = _insert_sale(workspace_id, snapshot.deal_id, currency)
    elif prefetched is not None:  # inserted by prefetch_sales: "created" for the first snapshot that touches it
        created = snapshot.deal_id in prefetched.created
        prefetched.created.discard(snapshot.deal_id)
    if snapshot.updated_at is not None and snapshot.updated_at < sale.amocrm_updated_at:
        return DealOutcome(snapshot.deal_id, "stale", sale)
    if _reopens_in_the_same_second(sale, snapshot, created):
        return DealOutcome(snapshot.deal_id, "stale", sale)

    if snapshot.updated_at is not None:
        sale.amocrm_updated_at = snapshot.updated_at
    if snapshot.name is not None:
        sale.name = snapshot.name[:255]
    if snapshot.pipeline_id is not None:
        sale.pipeline_id = snapshot.pipeline_id
    if snapshot.status_id is not None:
        sale.status_id = snapshot.status_id
    if snapshot.price is not None:
        sale.amount = snapshot.price
    sale.deleted = snapshot.is_deleted
    state = state_for_status(sale.status_id)
    if state in (WON, LOST):
        if snapshot.closed_at:
            sale.closed_at = _from_unix(snapshot.closed_at)
        elif sale.state != state or sale.closed_at is None:
            sale.closed_at = _from_unix(snapshot.updated_at) if snapshot.updated_at else utcnow()
    else:
        sale.closed_at = None
    sale.state = state

    if sale.lead_id is None and prefetched is not None:
        sale.lead_id = prefetched.lead_ids.get(snapshot.deal_id)
    elif sale.lead_id is None:
        sale.lead_id = db.session.scalar(
            select(Lead.id).where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id == snapshot.deal_id,
                                  Lead.deal_merged.is_(False))
            .order_by(Lead.id).limit(1))
    if sale.lead_id is None and snapshot.utm:
        for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
            setattr(sale, key, snapshot.utm.get(key))
    return DealOutcome(snapshot.deal_id, "created" if created else "updated", sale)


def _reopens_in_the_same_second(sale: Sale, snapshot: DealSnapshot, created: bool) -> bool:
    """amoCRM's updated_at has one-second resolution: a deal created and won within the same second sends `add`
    (open) and `status` (won) events with equal timestamps, which the queue may process in either order. On such a
    tie an open snapshot does not undo a won/lost one (found by the soak: the late `add` reopened won deals)."""
    if created or snapshot.updated_at is None or snapshot.updated_at != sale.amocrm_updated_at:
        return False
    if sale.state not in (WON, LOST) or snapshot.status_id is None:
        return False
    return state_for_status(snapshot.status_id) == OPEN


@dataclass
class Prefetched:
    """A batch's Sales (locked, every deal of the batch, created when missing) and leads by deal id."""

    sales: dict[int, Sale]
    lead_ids: dict[int, int]
    created: set[int]


def prefetch_sales(workspace_id: int, deal_ids: set[int], currency: str | None) -> Prefetched:
    """Three statements for a whole batch instead of three per deal: insert the missing Sales (ON CONFLICT DO
    NOTHING: another worker may be inserting them too), lock and load them all, and find their leads."""
    if not deal_ids:
        return Prefetched({}, {}, set())
    table = Sale.__table__
    rows = [{"workspace_id": workspace_id, "amocrm_lead_id": deal_id, "currency": currency or "RUB", "state": OPEN,
             "amocrm_updated_at": 0, "deleted": False} for deal_id in sorted(deal_ids)]
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = set(db.session.scalars(insert(table).values(rows).on_conflict_do_nothing(
        index_elements=["workspace_id", "amocrm_lead_id"]).returning(table.c.amocrm_lead_id)).all())
    sales = {sale.amocrm_lead_id: sale for sale in db.session.scalars(
        select(Sale).where(Sale.workspace_id == workspace_id, Sale.amocrm_lead_id.in_(deal_ids))
        .order_by(Sale.id).with_for_update())}
    lead_ids = dict(db.session.execute(
        select(Lead.amocrm_lead_id, func.min(Lead.id))
        .where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id.in_(deal_ids), Lead.deal_merged.is_(False))
        .group_by(Lead.amocrm_lead_id)).all())
    return Prefetched(sales, lead_ids, created)


def _locked_sale(workspace_id: int, deal_id: int) -> Sale | None:
    return db.session.scalar(select(Sale).where(Sale.workspace_id == workspace_id, Sale.amocrm_lead_id == deal_id)
                             .with_for_update())


def _insert_sale(workspace_id: int, deal_id: int, currency: str | None) -> tuple[Sale, bool]:
    """(a new Sale row, True); if another worker inserted it meanwhile, (that row, locked, False)."""
    sale = Sale(workspace_id=workspace_id, amocrm_lead_id=deal_id, currency=currency or "RUB", state=OPEN,
                amocrm_updated_at=0)
    try:
        with db.session.begin_nested():
            db.session.add(sale)
    except IntegrityError:
        return _locked_sale(workspace_id, deal_id), False
    return sale, True


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def known_statuses(pipelines) -> dict[int, set[int]] | None:
    """{pipeline id: status ids} from the stored pipelines read (a list, the API document, or {"pipelines": …});
    None when nothing is stored yet."""
    if not pipelines:
        return None
    if isinstance(pipelines, dict):
        pipelines = (pipelines.get("_embedded") or {}).get("pipelines") or pipelines.get("pipelines") or []
    known: dict[int, set[int]] = {}
    for pipeline in pipelines if isinstance(pipelines, list) else []:
        if not isinstance(pipeline, dict) or pipeline.get("id") is None:
            continue
        statuses = pipeline.get("statuses") or (pipeline.get("_embedded") or {}).get("statuses") or []
        known[int(pipeline["id"])] = {int(s["id"]) for s in statuses if isinstance(s, dict) and "id" in s}
    return known


def _is_known(known: dict[int, set[int]] | None, pipeline_id: int, status_id: int | None) -> bool:
    if known is None:
        return False
    if pipeline_id not in known:
        return False
    # 142 and 143 exist in every pipeline
    return status_id is None or status_id in (WON_STATUS_ID, LOST_STATUS_ID) or status_id in known[pipeline_id]


def request_pipelines_refresh(workspace_id: int) -> None:
    """Enqueue a read of the workspace's pipelines, at most once per PIPELINES_REFRESH_INTERVAL: a deal in a
    pipeline we cannot see must not turn every event into an amoCRM call."""
    try:
        if not redis_connection.client.set(f"leadpath:pipelines-refresh:{workspace_id}", "1", nx=True,
                                           ex=PIPELINES_REFRESH_INTERVAL):
            return
    except RedisError:
        return
    enqueue(AMOCRM, REFRESH_PIPELINES_JOB, workspace_id, job_id=f"pipelines-{workspace_id}")


def _document(payload) -> str:
    return json.dumps(mask_document(payload), ensure_ascii=False)[:20_000]


def _job_id() -> str | None:
    job_id = job_id_var.get()
    return None if job_id == "-" else job_id[:64]


# --- webhook health -------------------------------------------------------------------------------------------

WEBHOOK_PATH = "/webhooks/amocrm/"
CHECK_WEBHOOK_JOB = "portal.jobs.webhooks.check_webhook"


def webhook_health(workspace_id: int) -> dict:
    """What Settings shows about the workspace's webhook: when the last one arrived, when the subscription was
    last checked in amoCRM, whether amoCRM had disabled it (and it could not be re-created), and the last
    automatic re-subscription."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        return {"subscribed": False, "last_webhook_at": None, "checked_at": None, "disabled": False,
                "last_resubscribed_at": None}
    resubscribed = db.session.scalar(
        select(SyncLogEntry.created_at).where(SyncLogEntry.workspace_id == workspace_id,
                                              SyncLogEntry.operation == "webhook resubscribe",
                                              SyncLogEntry.outcome == "ok")
        .order_by(SyncLogEntry.created_at.desc()).limit(1))
    return {"subscribed": bool(connection.webhook_destination), "last_webhook_at": connection.last_webhook_at,
            "checked_at": connection.webhook_checked_at, "disabled": connection.webhook_disabled,
            "last_resubscribed_at": resubscribed}


def check_webhook(workspace_id: int) -> dict:
    """Look for our subscription in amoCRM (`GET /api/v4/webhooks`); re-create it when it is missing, disabled,
    or still points at a rotated secret (then the old destination is removed). Records webhook_checked_at and
    webhook_disabled on the connection. Raises NotConnected / AmoCRMError."""
    from portal.amocrm.errors import AmoCRMError
    from portal.connection.services import client_for, subscribe_workspace_webhook

    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    workspace = db.session.get(Workspace, workspace_id)
    expected = _expected_destination(workspace, connection)
    stored = connection.webhook_destination if connection else None
    client = client_for(workspace_id)
    db.session.rollback()
    if expected is None:
        return {"status": "unknown destination"}  # never subscribed and no PUBLIC_BASE_URL to build one from
    hooks = client.list_webhooks()
    ours = next((hook for hook in hooks if hook.get("destination") == expected), None)
    problem = "missing" if ours is None else ("disabled" if ours.get("disabled") else None)
    result = {"status": "ok"}
    error = None
    if problem:
        try:
            hook = subscribe_workspace_webhook(client, expected)
            result = {"status": "resubscribed", "was": problem, "webhook_id": hook.get("id")}
        except AmoCRMError as exc:
            error = f"{exc.__class__.__name__}: {str(exc)[:300]}"
            result = {"status": "failed", "was": problem}
    if stored and stored != expected and any(hook.get("destination") == stored for hook in hooks) and not error:
        try:
            client.unsubscribe_webhook(stored)
        except AmoCRMError:
            log.warning("old webhook destination of workspace %s not removed", workspace_id)

    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    connection.webhook_checked_at = utcnow()
    connection.webhook_disabled = bool(problem == "disabled" and error)
    if problem and not error:
        connection.webhook_destination = expected
        connection.webhook_id = result.get("webhook_id") if isinstance(result.get("webhook_id"), int) else None
    if problem:
        db.session.add(SyncLogEntry(
            workspace_id=workspace_id, direction="outbound", operation="webhook resubscribe",
            outcome="error" if error else "ok", error=error, response=json.dumps({"was": problem}),
            job_id=_job_id()))
    db.session.commit()
    return result


def _expected_destination(workspace: Workspace, connection: AmoCRMConnection | None) -> str | None:
    """Our webhook URL with the workspace's current secret, on the base the subscription already uses (else
    PUBLIC_BASE_URL)."""
    base = None
    if connection is not None and connection.webhook_destination and WEBHOOK_PATH in connection.webhook_destination:
        base = connection.webhook_destination.split(WEBHOOK_PATH, 1)[0]
    base = base or current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return None
    return f"{base.rstrip('/')}{WEBHOOK_PATH}{workspace.public_id}/{workspace.webhook_secret}"


def rotate_webhook_secret(workspace_id: int) -> None:
    """A new webhook secret; the subscription in amoCRM moves to the new URL in a job (the old URL answers 404
    from now on, so amoCRM events in flight are retried to it and then recovered by reconciliation)."""
    from portal.models.workspace import new_webhook_secret

    workspace = db.session.get(Workspace, workspace_id)
    workspace.webhook_secret = new_webhook_secret()
    enqueue(AMOCRM, CHECK_WEBHOOK_JOB, workspace_id, job_id=f"check-webhook-{workspace_id}")
    db.session.commit()
    forget_webhook_workspace(workspace.public_id)


# --- seed 004: spam in Leadpath closes the deal as lost in amoCRM ----------------------------------------------

CLOSE_SPAM_DEAL_JOB = "portal.jobs.deals.close_spam_deal"


class LeadNotFound(LookupError):
    pass


def mark_lead_spam(workspace_id: int, lead_id: int, spam: bool = True) -> Lead:
    """Mark (or unmark) a lead of the workspace as spam. A lead not yet pushed will not be; a lead with a deal
    gets a job that closes the deal as lost (143) in amoCRM. Unmarking reopens nothing in amoCRM."""
    from portal.models.lead import FAILED as LEAD_FAILED
    from portal.models.lead import PENDING, SKIPPED

    lead = db.session.scalar(select(Lead).where(Lead.workspace_id == workspace_id, Lead.id == lead_id))
    if lead is None:
        raise LeadNotFound(lead_id)
    lead.is_spam = spam
    if spam and lead.sync_status in (PENDING, LEAD_FAILED) and lead.amocrm_lead_id is None:
        lead.sync_status = SKIPPED
    if spam and lead.amocrm_lead_id is not None:
        enqueue(AMOCRM, CLOSE_SPAM_DEAL_JOB, workspace_id, lead.id, job_id=f"close-deal-{lead.id}",
                retry=Retry(max=3, interval=[30, 300, 1800]))
    # Not spam after all, and never sent: it goes to amoCRM like any other lead (a repeat stays linked, unsent).
    pushes = not spam and lead.sync_status == SKIPPED and lead.amocrm_lead_id is None and lead.duplicate_of_id is None
    if pushes:
        lead.sync_status = PENDING
        lead.next_attempt_at = None
    db.session.commit()
    if pushes:
        from portal.jobs.sync_schedule import schedule_push

        schedule_push(workspace_id)
    return lead


def close_spam_deal(workspace_id: int, lead_id: int) -> str:
    """PATCH the spam lead's deal to 143 with its pipeline_id. Skipped when the lead is no longer spam, has no
    deal, or the deal is already lost — or won: revenue is never thrown away because of a spam flag."""
    import time

    from portal.amocrm.errors import AmoCRMError
    from portal.connection.services import client_for

    lead = db.session.scalar(select(Lead).where(Lead.workspace_id == workspace_id, Lead.id == lead_id))
    if lead is None or not lead.is_spam or lead.amocrm_lead_id is None:
        db.session.rollback()
        return "skipped"
    deal_id = lead.amocrm_lead_id
    sale = db.session.scalar(select(Sale).where(Sale.workspace_id == workspace_id, Sale.amocrm_lead_id == deal_id))
    if sale is not None and sale.state in (LOST, WON):
        db.session.rollback()
        return f"already {sale.state}"
    pipeline_id = sale.pipeline_id if sale is not None else None
    client = client_for(workspace_id)
    db.session.rollback()
    started = time.perf_counter()
    request = [{"id": deal_id, "status_id": LOST_STATUS_ID, "pipeline_id": pipeline_id}]
    try:
        if pipeline_id is None:
            deal = client.get_lead(deal_id) or {}
            if deal.get("status_id") in (WON_STATUS_ID, LOST_STATUS_ID):
                return "already closed in amoCRM"
            pipeline_id = request[0]["pipeline_id"] = deal.get("pipeline_id")
        answer = client.update_leads(request)
    except AmoCRMError as exc:
        db.session.add(SyncLogEntry(workspace_id=workspace_id, direction="outbound", operation="PATCH /api/v4/leads",
                                    lead_ids=[lead_id], outcome="retry", http_status=exc.status,
                                    request=json.dumps(request), error=f"{exc.__class__.__name__}: {str(exc)[:300]}",
                                    duration_ms=int((time.perf_counter() - started) * 1000), job_id=_job_id()))
        db.session.commit()
        raise
    updated_at = next((item.get("updated_at") for item in answer or [] if isinstance(item, dict)), None)
    apply_deal(workspace_id, DealSnapshot(deal_id, action="update", status_id=LOST_STATUS_ID, pipeline_id=pipeline_id,
                                          updated_at=updated_at if isinstance(updated_at, int) else None))
    db.session.add(SyncLogEntry(workspace_id=workspace_id, direction="outbound", operation="PATCH /api/v4/leads",
                                lead_ids=[lead_id], outcome="ok", http_status=200, request=json.dumps(request),
                                response=json.dumps(answer, default=str)[:5000],
                                duration_ms=int((time.perf_counter() - started) * 1000), job_id=_job_id()))
    db.session.commit()
    return "closed"
