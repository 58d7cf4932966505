"""The webhook inbox: receiving amoCRM's webhooks, and processing the stored events into deals.

Receiving is the hot path (amoCRM waits 2 s and disables a webhook that keeps failing): authenticate, parse,
dedupe, store, commit, schedule — a handful of indexed queries and no amoCRM call. The `webhooks` queue then runs
`process_workspace_events` (`portal.amocrm.jobs`), which applies each workspace's events in batches with the deal
upsert of `portal.amocrm.deals`.
"""
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.api.webhook_bodies import DealSnapshot, WebhookBodyError, parse_form, parse_notification
from portal.amocrm.contacts_index import apply_contact_events, workspace_region
from portal.amocrm.deal_reads import read_deals
from portal.amocrm.deals import ProcessSummary, apply_deals, deal_context, prefetch_deals, request_pipelines_refresh
from portal.amocrm.scheduling import schedule_processing
from portal.amocrm.sync_log import current_job_id, stored_document
from portal.amocrm.token_provider import NotConnected
from portal.amocrm.unsorted import deals_named
from portal.extensions import db
from portal.ingest.workspaces import CachedWorkspace, cached_workspace
from portal.log_context import workspace_id_var
from portal.models import AmoCRMConnection, SyncLogEntry, WebhookEvent, WebhookReceipt
from portal.models.activity import FAILED, IGNORED, PROCESSED, RECEIVED
from portal.models.types import utcnow

log = logging.getLogger(__name__)

DEDUPE_WINDOW = timedelta(hours=24)
# last_webhook_at is written at most this often: under a burst, every request updating the one connection
# row would queue them all behind its row lock.
LAST_SEEN_GRANULARITY = timedelta(seconds=10)
MAX_ATTEMPTS = 5
UNREADABLE_BODY_CHARS = 20_000
NO_CONNECTION = "No amoCRM account is connected to this workspace: event stored, not processed."
NOT_CONNECTED_AT_PROCESSING = ("amoCRM was not connected when the event was processed: its deals could not be "
                               "read. Reconciliation reads them once the account is connected again.")
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
    one statement in autocommit (claim the body's receipt, insert the event: `_claim_and_insert_statement`),
    committed durably unless the operator opted out; scheduling is at most one Redis SET NX per event
    (`portal.amocrm.scheduling`).
    """
    row = _workspace_for(public_id)
    stored_secret = row.webhook_secret if row is not None else _DUMMY_SECRET
    if not hmac.compare_digest(secret.encode(), stored_secret.encode()) or row is None:
        raise UnknownWebhookURL("No webhook here.")
    workspace_id_var.set(str(row.id))
    connected_account = row.amocrm_account_id
    # A body from the connected account is never refused for what cannot be read of it (amoCRM counts every
    # refusal toward switching the webhook off): read leniently, kept, flagged. The strict reading decides only
    # for a body that does not show the connected account.
    problems: list[str] = []
    try:
        limits = current_app.config
        data = parse_form(body, max_bytes=limits["WEBHOOK_MAX_BYTES"], max_fields=limits["WEBHOOK_MAX_FIELDS"],
                          problems=problems)
        notification = parse_notification(data, problems)
        if problems and (connected_account is None or notification.account_id != connected_account):
            parse_notification(parse_form(body, max_bytes=limits["WEBHOOK_MAX_BYTES"],
                                          max_fields=limits["WEBHOOK_MAX_FIELDS"]))
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
    params = {"p_workspace_id": row.id, "p_received_at": now, "p_body_sha256": digest, "p_payload": data,
              "p_status": IGNORED if ignored else RECEIVED, "p_error": NO_CONNECTION if ignored else None,
              "p_attempts": 0, "p_unreadable": unreadable, "window_start": now - DEDUPE_WINDOW}
    synchronous = current_app.config.get("WEBHOOK_SYNCHRONOUS_COMMIT", True)
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # one statement per commit: no BEGIN / COMMIT round trips
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        event_id = _store_event(connection, params, synchronous)
        if event_id is None:  # the same body within the window: answer with the event stored first
            duplicate = connection.scalar(
                select(WebhookEvent.id).where(WebhookEvent.workspace_id == row.id,
                                              WebhookEvent.body_sha256 == digest,
                                              WebhookEvent.received_at >= now - DEDUPE_WINDOW)
                .order_by(WebhookEvent.id).limit(1))
            return Receipt(duplicate, duplicate=True)
        if row.connection_id is not None and _last_seen_due(row, now):
            if connection.dialect.name != "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(update(AmoCRMConnection).where(AmoCRMConnection.id == row.connection_id)
                               .values(last_webhook_at=now))
    if not ignored:
        schedule_processing(row.id)
    return Receipt(event_id, ignored=ignored)


def _store_event(connection, params: dict, synchronous: bool) -> int | None:
    """Claim the body's receipt and store its event, atomically: the new event's id, or None when the same body
    was stored in the workspace within DEDUPE_WINDOW (by this delivery's retry, or by a concurrent one)."""
    if connection.dialect.name == "postgresql":  # one statement (in autocommit): one round trip
        return connection.scalar(_claim_and_insert_statement(synchronous), params)
    with connection.begin():  # SQLite: no data-modifying WITH; its write lock serialises the two statements
        if connection.scalar(_claim_statement("sqlite"), params) is None:
            return None
        insert = _event_statements.get("insert")
        if insert is None:
            insert = _event_statements["insert"] = _insert_event_statement()
        return connection.scalar(insert, params)


_event_statements: dict[object, object] = {}


def _claim_statement(dialect_name: str):
    """INSERT the (workspace, body) receipt, or take over one older than the window; RETURNING a row only when
    this call claimed it. Concurrent identical deliveries: PostgreSQL makes the second wait for the first's
    commit and then re-checks the WHERE on the committed row, so exactly one of them claims it."""
    key = ("claim", dialect_name)
    if key not in _event_statements:
        table = WebhookReceipt.__table__
        insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
        claim = insert(table).values(workspace_id=bindparam("p_workspace_id"),
                                     body_sha256=bindparam("p_body_sha256"),
                                     received_at=bindparam("p_received_at", type_=table.c.received_at.type))
        _event_statements[key] = claim.on_conflict_do_update(
            index_elements=["workspace_id", "body_sha256"], set_={"received_at": claim.excluded.received_at},
            where=table.c.received_at < bindparam("window_start", type_=table.c.received_at.type),
        ).returning(table.c.body_sha256)
    return _event_statements[key]


def _insert_event_statement(source_filter=None):
    """INSERT the event RETURNING its id (`source_filter`: a condition on the SELECT it inserts from)."""
    table = WebhookEvent.__table__
    columns = ("workspace_id", "received_at", "body_sha256", "payload", "status", "error", "attempts", "unreadable")
    source = select(*(bindparam(f"p_{name}", type_=table.c[name].type).label(name) for name in columns))
    if source_filter is not None:
        source = source.where(source_filter)
    return table.insert().from_select(list(columns), source).returning(table.c.id)


def _claim_and_insert_statement(synchronous: bool):
    """PostgreSQL: WITH claim AS (the receipt's INSERT … ON CONFLICT) INSERT the event only if the claim
    returned a row. One statement, built once per durability setting.

    **Durability**: by default the commit returns after the WAL is flushed to disk, so an acknowledged event
    survives a PostgreSQL crash. With WEBHOOK_SYNCHRONOUS_COMMIT off (an operator's opt-out), the statement sets
    `synchronous_commit = off` for its own transaction (`set_config(..., true)`, local to the implicit
    transaction of this autocommit statement): the commit returns before the WAL flush (PostgreSQL flushes it
    within `wal_writer_delay`, 200 ms by default, ×3 at worst), and a crash of PostgreSQL in that window can
    lose an acknowledged event (never corrupt anything; reconciliation (`portal.amocrm.reconcile`) re-reads its
    deal within the hour).
    """
    key = ("claim and insert", synchronous)
    if key not in _event_statements:
        claim = _claim_statement("postgresql").cte("claim")
        condition = exists(select(claim.c.body_sha256))
        if not synchronous:
            condition = condition & func.set_config("synchronous_commit", "off", True).is_not(None)
        _event_statements[key] = _insert_event_statement(condition).add_cte(claim)
    return _event_statements[key]


def _workspace_for(public_id: str) -> CachedWorkspace | None:
    """The workspace's secret and connection, from the per-process cache (at most WEBHOOK_WORKSPACE_CACHE_SECONDS
    old: after a secret rotation or a (dis)connection in another process, this one acts on the old values for at
    most that long; a rotation in this process takes effect at once)."""
    if not _PUBLIC_ID.fullmatch(public_id):
        return None
    return cached_workspace(public_id, current_app.config["WEBHOOK_WORKSPACE_CACHE_SECONDS"])


def _last_seen_due(workspace: CachedWorkspace, now: datetime) -> bool:
    """last_webhook_at is written at most every LAST_SEEN_GRANULARITY (per process)."""
    if workspace.last_webhook_at is not None and workspace.last_webhook_at >= now - LAST_SEEN_GRANULARITY:
        return False
    workspace.last_webhook_at = now
    return True


def requeue_stale_events(older_than: timedelta = timedelta(minutes=1), limit: int = 1000) -> int:
    """Schedule processing again for workspaces with events still `received` after `older_than` (Redis was down,
    a worker died, or an event failed and waits for its next attempt). Returns how many such events there are."""
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


EVENT_BATCH = 200


def process_events(workspace_id: int, event_ids: list[int]) -> int:
    """Apply several stored events of one workspace in ONE transaction (one commit, the workspace's connection
    and currency read once). Events no longer `received`, or locked by another worker, are skipped. Returns the
    number processed.

    The bodies only say which deals changed: their state and price are read from amoCRM (`read_deals`, one call
    per 100 deals, or per 250 recently changed deals on an account without list filters, before the transaction
    starts). When amoCRM cannot be read, the events stay `received` with
    the error noted and the sweeper brings them back. If applying fails, the batch rolls back and each event is
    processed on its own with `process_event`, which records the failure on the event that caused it.
    """
    workspace_id_var.set(str(workspace_id))
    pending = db.session.execute(
        select(WebhookEvent.id, WebhookEvent.payload, WebhookEvent.received_at)
        .where(WebhookEvent.workspace_id == workspace_id, WebhookEvent.id.in_(event_ids),
               WebhookEvent.status == RECEIVED).order_by(WebhookEvent.id)).all()
    db.session.rollback()
    if not pending:
        return 0
    ids = [event_id for event_id, _payload, _received_at in pending]
    try:
        notifications = {event_id: parse_notification(payload, []) for event_id, payload, _received_at in pending}
        named = {event_id: deals_named(workspace_id, notification) for event_id, notification in notifications.items()}
        db.session.rollback()
        changed_since = min(_change_time(notifications[event_id], received_at)
                            for event_id, _payload, received_at in pending)
        deals = _read_deals_or_set_aside(workspace_id, ids, notifications.values(), changed_since,
                                         {deal_id for deal_ids, _said in named.values() for deal_id in deal_ids})
        if deals is None:
            return 0
        events = db.session.scalars(
            select(WebhookEvent).where(WebhookEvent.workspace_id == workspace_id, WebhookEvent.id.in_(ids),
                                       WebhookEvent.status == RECEIVED)
            .order_by(WebhookEvent.id).with_for_update(skip_locked=True)).all()
        if not events:
            db.session.rollback()
            return 0
        context = deal_context(workspace_id)
        context.prefetched = prefetch_deals(workspace_id, {deal_id for deal_id, snapshot in deals.items()
                                                           if snapshot.action != "delete"}, context.currency)
        unknown_pipelines: set = set()
        now = utcnow()
        with db.session.no_autoflush:
            for event in events:
                notification = notifications[event.id]
                also, said = named[event.id]
                summary = apply_deals(workspace_id, _as_read(notification, deals, also), context, refresh=False,
                                      said=said)
                apply_contact_events(workspace_id, notification.others, context.region)
                unknown_pipelines |= summary.unknown_pipelines
                _mark_processed(event, notification, summary, now)
        if unknown_pipelines and context.connection is not None:
            request_pipelines_refresh(workspace_id)
        db.session.commit()
        return len(events)
    except Exception:
        db.session.rollback()
        log.warning("a batch of %d webhook events failed; processing them one by one", len(ids))
    processed = 0
    for event_id in ids:
        try:
            processed += process_event(event_id) == PROCESSED
        except Exception:  # recorded on the event by process_event; the sweeper retries it
            log.exception("webhook event %s failed", event_id)
    return processed


def _as_read(notification, deals: dict[int, DealSnapshot], also: set[int] = frozenset()) -> list[DealSnapshot]:
    """The event's deals (and `also`: those its Unsorted items concern) as amoCRM holds them now, each once (a deal
    amoCRM's answer left out is skipped)."""
    deal_ids = dict.fromkeys([snapshot.deal_id for snapshot in notification.deals] + sorted(also))
    return [deals[deal_id] for deal_id in deal_ids if deal_id in deals]


# How far before an event's change amoCRM's updated_at may lie: amoCRM's clock against ours, and delivery time.
CHANGE_TIME_MARGIN = 120  # seconds


def _change_time(notification, received_at: datetime) -> int:
    """Unix seconds no later than the event's change in amoCRM (minus CHANGE_TIME_MARGIN): the body's
    last_modified when it says one before the event arrived (a retry delivered hours later still names its
    change), else the arrival. Only the cost of a read depends on it, never what is read: a deal not found among
    the deals changed since is read on its own (`read_deals`)."""
    received = int(received_at.timestamp())
    said = [snapshot.updated_at for snapshot in notification.deals
            if isinstance(snapshot.updated_at, int) and 0 < snapshot.updated_at <= received]
    return min(said, default=received) - CHANGE_TIME_MARGIN


def _read_deals_or_set_aside(workspace_id: int, event_ids: list[int], notifications,
                             changed_since: int | None = None,
                             also: set[int] = frozenset()) -> dict[int, DealSnapshot] | None:
    """The events' deals read from amoCRM; None when they cannot be: without a usable connection the events are
    set aside (`ignored`: reconciliation reads the deals once the account is connected again), on an amoCRM
    error they stay `received` with the error noted, for the sweeper to bring back."""
    deal_ids = {snapshot.deal_id for notification in notifications for snapshot in notification.deals} | set(also)
    try:
        return read_deals(workspace_id, deal_ids, changed_since)
    except NotConnected:
        db.session.rollback()
        db.session.execute(update(WebhookEvent).where(WebhookEvent.id.in_(event_ids),
                                                      WebhookEvent.status == RECEIVED)
                           .values(status=IGNORED, error=NOT_CONNECTED_AT_PROCESSING))
        db.session.commit()
    except AmoCRMError as exc:
        db.session.rollback()
        log.warning("amoCRM could not be read for %d webhook events: %s", len(event_ids), exc.__class__.__name__)
        db.session.execute(update(WebhookEvent).where(WebhookEvent.id.in_(event_ids),
                                                      WebhookEvent.status == RECEIVED)
                           .values(error=f"amoCRM could not be read: {exc.__class__.__name__}: {str(exc)[:400]}"))
        db.session.commit()
    return None


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
    lead_ids = sorted({o.deal.lead_id for o in summary.outcomes if o.deal is not None and o.deal.lead_id})
    db.session.add(SyncLogEntry(
        workspace_id=event.workspace_id, direction="inbound", operation="webhook " + " ".join(notification.actions),
        lead_ids=lead_ids or None, outcome="ok", request=stored_document(event.payload),
        response=json.dumps({"event_id": event.id, "deals": [d.deal_id for d in notification.deals],
                             **summary.counts()}),
        job_id=current_job_id()))


def process_event(event_id: int) -> str | None:
    """Apply one stored webhook event to the workspace's deals, as read from amoCRM, in one transaction.
    Idempotent: an event that is no longer `received` is left alone. Returns the event's status afterwards (None
    when it does not exist).

    When amoCRM cannot be read the event stays `received` (see `_read_deals_or_set_aside`). Any other failure
    rolls back, counts the attempt on the event and re-raises; after MAX_ATTEMPTS the event is `failed` and the
    sweeper stops retrying it.
    """
    event = db.session.get(WebhookEvent, event_id)
    if event is None or event.status != RECEIVED:
        db.session.rollback()
        return None if event is None else event.status
    workspace_id = event.workspace_id
    workspace_id_var.set(str(workspace_id))
    try:
        notification = parse_notification(event.payload, [])  # what could not be read was flagged when received
        also, said = deals_named(workspace_id, notification)
        db.session.rollback()
        deals = _read_deals_or_set_aside(workspace_id, [event_id], [notification],
                                         _change_time(notification, event.received_at), also)
        if deals is None:
            return db.session.scalar(select(WebhookEvent.status).where(WebhookEvent.id == event_id))
        event = db.session.scalar(select(WebhookEvent).where(WebhookEvent.id == event_id).with_for_update())
        if event.status != RECEIVED:
            db.session.rollback()
            return event.status
        summary = apply_deals(workspace_id, _as_read(notification, deals, also), said=said)
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

