"""Deals as amoCRM last showed them: the upsert that webhook events, reconciliation and the spam close share, and
closing a spam lead's deal as lost in amoCRM.

amoCRM is the system of record: a deal row only ever takes what amoCRM said, newest `updated_at` wins.
"""
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.api.webhook_bodies import DealSnapshot
from portal.amocrm.connection import client_for
from portal.amocrm.scheduling import REFRESH_PIPELINES
from portal.amocrm.sync_log import current_job_id
from portal.amocrm.unsorted import has_waiting, incoming_statuses, settle_waiting
from portal.extensions import db, redis_connection
from portal.jobs.queues import AMOCRM, enqueue
from portal.models import AmoCRMConnection, Deal, Lead, SyncLogEntry, Workspace
from portal.models.deal import LOST, LOST_STATUS_ID, OPEN, WON, WON_STATUS_ID, state_for_status
from portal.models.types import utcnow

log = logging.getLogger(__name__)

PIPELINES_REFRESH_INTERVAL = 300  # seconds


@dataclass
class DealOutcome:
    deal_id: int
    result: str  # created | updated | stale | unknown_deleted
    deal: Deal | None = None


@dataclass
class ProcessSummary:
    outcomes: list[DealOutcome] = field(default_factory=list)
    unknown_pipelines: set = field(default_factory=set)

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts


@dataclass
class DealContext:
    """What applying deals needs of the workspace, read once per transaction (or batch of events)."""

    connection: AmoCRMConnection | None
    currency: str | None
    known: dict | None
    prefetched: "Prefetched | None" = None
    region: str = ""  # the workspace's country: how phones typed without a country code are read
    # Leads of the workspace wait in Unsorted: deal reads also settle where they stand (`portal.amocrm.unsorted`).
    unsorted_waiting: bool = False
    incoming: frozenset = frozenset()


def deal_context(workspace_id: int) -> DealContext:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    currency, region = db.session.execute(select(Workspace.currency, Workspace.country)
                                          .where(Workspace.id == workspace_id)).one()
    return DealContext(connection, currency, known_statuses(connection.pipelines if connection else None),
                       region=region or "", unsorted_waiting=has_waiting(workspace_id),
                       incoming=incoming_statuses(connection.pipelines if connection else None))


def apply_deals(workspace_id: int, snapshots: list[DealSnapshot], context: DealContext | None = None,
                refresh: bool = True, said: dict[int, str] | None = None) -> ProcessSummary:
    """apply_deal for each snapshot, then one pipelines refresh if any pipeline or status is unknown (unless
    `refresh` is False: the caller asks for it), and leads waiting in Unsorted settled from the same reads (`said`:
    what Unsorted webhooks claimed of some deals, see `portal.amocrm.unsorted.state_after`). Does not commit: the
    caller's transaction."""
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
    if context.unsorted_waiting:
        settle_waiting(workspace_id, snapshots, context.incoming, said)
    return summary


def apply_deal(workspace_id: int, snapshot: DealSnapshot, *, currency: str | None = None,
               prefetched: "Prefetched | None" = None) -> DealOutcome:
    """Upsert the workspace's deal row for one amoCRM deal from an event or an API read. Does not commit.

    The row is credited to the lead that made the deal; a lead amoCRM merged into it (`deal_merged`) never is.

    Ordering: a snapshot older (amoCRM `updated_at`) than what the row holds changes nothing; an equal one is
    applied again (the result is the same), except that an open one does not reopen a won/lost deal. Fields a
    snapshot does not carry are left as they are; created_at is amoCRM's (first seen, until a snapshot says it).
    Moving to won
    or lost sets closed_at (the snapshot's, else the time of the change); moving back out clears it.
    """
    if prefetched is not None:
        deal = prefetched.deals.get(snapshot.deal_id)
    else:
        deal = _locked_deal(workspace_id, snapshot.deal_id)
    if snapshot.action == "delete":
        if deal is None:
            return DealOutcome(snapshot.deal_id, "unknown_deleted")
        deal.deleted = True
        return DealOutcome(snapshot.deal_id, "updated", deal)
    created = deal is None
    if created and prefetched is not None:  # inserted by prefetch_deals: new to this batch
        raise RuntimeError(f"deal {snapshot.deal_id} was not prefetched")
    if created:
        deal, created = _insert_deal(workspace_id, snapshot.deal_id, currency)
    elif prefetched is not None:  # inserted by prefetch_deals: "created" for the first snapshot that touches it
        created = snapshot.deal_id in prefetched.created
        prefetched.created.discard(snapshot.deal_id)
    if snapshot.updated_at is not None and snapshot.updated_at < deal.amocrm_updated_at:
        return DealOutcome(snapshot.deal_id, "stale", deal)
    if _reopens_in_the_same_second(deal, snapshot, created):
        return DealOutcome(snapshot.deal_id, "stale", deal)

    if snapshot.updated_at is not None:
        deal.amocrm_updated_at = snapshot.updated_at
    if snapshot.name is not None:
        deal.name = snapshot.name[:255]
    if snapshot.pipeline_id is not None:
        deal.pipeline_id = snapshot.pipeline_id
    if snapshot.status_id is not None:
        deal.status_id = snapshot.status_id
    if snapshot.price is not None:
        deal.amount = snapshot.price
    deal.deleted = snapshot.is_deleted
    if snapshot.contact_id is not None:
        deal.amocrm_contact_id = snapshot.contact_id
    if snapshot.created_at:  # amoCRM's creation time orders a customer's deals, whatever order they reach us in
        deal.created_at = _from_unix(snapshot.created_at)
    state = state_for_status(deal.status_id)
    if state in (WON, LOST):
        if snapshot.closed_at:
            deal.closed_at = _from_unix(snapshot.closed_at)
        elif deal.state != state or deal.closed_at is None:
            deal.closed_at = _from_unix(snapshot.updated_at) if snapshot.updated_at else utcnow()
    else:
        deal.closed_at = None
    deal.state = state

    if deal.lead_id is None and prefetched is not None:
        deal.lead_id = prefetched.lead_ids.get(snapshot.deal_id)
    elif deal.lead_id is None:
        deal.lead_id = db.session.scalar(
            select(Lead.id).where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id == snapshot.deal_id,
                                  Lead.deal_merged.is_(False))
            .order_by(Lead.id).limit(1))
    if deal.lead_id is None and snapshot.utm:
        for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
            setattr(deal, key, snapshot.utm.get(key))
    return DealOutcome(snapshot.deal_id, "created" if created else "updated", deal)


def _reopens_in_the_same_second(deal: Deal, snapshot: DealSnapshot, created: bool) -> bool:
    """amoCRM's updated_at has one-second resolution: a deal created and won within the same second sends `add`
    (open) and `status` (won) events with equal timestamps, which the queue may process in either order. On such a
    tie an open snapshot does not undo a won/lost one (else a late `add` would reopen a won deal)."""
    if created or snapshot.updated_at is None or snapshot.updated_at != deal.amocrm_updated_at:
        return False
    if deal.state not in (WON, LOST) or snapshot.status_id is None:
        return False
    return state_for_status(snapshot.status_id) == OPEN


@dataclass
class Prefetched:
    """A batch's deal rows (locked, every deal of the batch, created when missing) and leads by deal id."""

    deals: dict[int, Deal]
    lead_ids: dict[int, int]
    created: set[int]


def prefetch_deals(workspace_id: int, deal_ids: set[int], currency: str | None) -> Prefetched:
    """Three statements for a whole batch instead of three per deal: insert the missing deal rows (ON CONFLICT DO
    NOTHING: another worker may be inserting them too), lock and load them all, and find their leads."""
    if not deal_ids:
        return Prefetched({}, {}, set())
    table = Deal.__table__
    rows = [{"workspace_id": workspace_id, "amocrm_lead_id": deal_id, "currency": currency or "RUB", "state": OPEN,
             "amocrm_updated_at": 0, "deleted": False} for deal_id in sorted(deal_ids)]
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = set(db.session.scalars(insert(table).values(rows).on_conflict_do_nothing(
        index_elements=["workspace_id", "amocrm_lead_id"]).returning(table.c.amocrm_lead_id)).all())
    deals = {deal.amocrm_lead_id: deal for deal in db.session.scalars(
        select(Deal).where(Deal.workspace_id == workspace_id, Deal.amocrm_lead_id.in_(deal_ids))
        .order_by(Deal.id).with_for_update())}
    lead_ids = dict(db.session.execute(
        select(Lead.amocrm_lead_id, func.min(Lead.id))
        .where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id.in_(deal_ids), Lead.deal_merged.is_(False))
        .group_by(Lead.amocrm_lead_id)).all())
    return Prefetched(deals, lead_ids, created)


def _locked_deal(workspace_id: int, deal_id: int) -> Deal | None:
    return db.session.scalar(select(Deal).where(Deal.workspace_id == workspace_id, Deal.amocrm_lead_id == deal_id)
                             .with_for_update())


def _insert_deal(workspace_id: int, deal_id: int, currency: str | None) -> tuple[Deal, bool]:
    """(a new deal row, True); if another worker inserted it meanwhile, (that row, locked, False)."""
    deal = Deal(workspace_id=workspace_id, amocrm_lead_id=deal_id, currency=currency or "RUB", state=OPEN,
                amocrm_updated_at=0)
    try:
        with db.session.begin_nested():
            db.session.add(deal)
    except IntegrityError:
        return _locked_deal(workspace_id, deal_id), False
    return deal, True


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
    enqueue(AMOCRM, REFRESH_PIPELINES, workspace_id, job_id=f"pipelines-{workspace_id}")



def close_spam_deal(workspace_id: int, lead_id: int) -> str:
    """PATCH the spam lead's deal to 143 with its pipeline_id. Skipped when the lead is no longer spam, has no
    deal, or the deal is already lost — or won: revenue is never thrown away because of a spam flag."""
    lead = db.session.scalar(select(Lead).where(Lead.workspace_id == workspace_id, Lead.id == lead_id))
    if lead is None or not lead.is_spam or lead.amocrm_lead_id is None:
        db.session.rollback()
        return "skipped"
    deal_id = lead.amocrm_lead_id
    deal = db.session.scalar(select(Deal).where(Deal.workspace_id == workspace_id, Deal.amocrm_lead_id == deal_id))
    if deal is not None and deal.state in (LOST, WON):
        db.session.rollback()
        return f"already {deal.state}"
    pipeline_id = deal.pipeline_id if deal is not None else None
    client = client_for(workspace_id)
    db.session.rollback()
    started = time.perf_counter()
    request = [{"id": deal_id, "status_id": LOST_STATUS_ID, "pipeline_id": pipeline_id}]
    try:
        if pipeline_id is None:
            remote = client.get_lead(deal_id) or {}
            if remote.get("status_id") in (WON_STATUS_ID, LOST_STATUS_ID):
                return "already closed in amoCRM"
            pipeline_id = request[0]["pipeline_id"] = remote.get("pipeline_id")
        answer = client.update_leads(request)
    except AmoCRMError as exc:
        db.session.add(SyncLogEntry(workspace_id=workspace_id, direction="outbound", operation="PATCH /api/v4/leads",
                                    lead_ids=[lead_id], outcome="retry", http_status=exc.status,
                                    request=json.dumps(request), error=f"{exc.__class__.__name__}: {str(exc)[:300]}",
                                    duration_ms=int((time.perf_counter() - started) * 1000), job_id=current_job_id()))
        db.session.commit()
        raise
    updated_at = next((item.get("updated_at") for item in answer or [] if isinstance(item, dict)), None)
    apply_deal(workspace_id, DealSnapshot(deal_id, action="update", status_id=LOST_STATUS_ID, pipeline_id=pipeline_id,
                                          updated_at=updated_at if isinstance(updated_at, int) else None))
    db.session.add(SyncLogEntry(workspace_id=workspace_id, direction="outbound", operation="PATCH /api/v4/leads",
                                lead_ids=[lead_id], outcome="ok", http_status=200, request=json.dumps(request),
                                response=json.dumps(answer, default=str)[:5000],
                                duration_ms=int((time.perf_counter() - started) * 1000), job_id=current_job_id()))
    db.session.commit()
    return "closed"

