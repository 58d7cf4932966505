"""Leads delivered to amoCRM's Unsorted: where each stands — waiting for a manager, accepted (a deal in a pipeline)
or declined — settled from amoCRM's reads, never from a webhook's word.

An Unsorted form item holds one lead (a deal in the pipeline's incoming stage) from the moment it is made. A
manager's accept moves that same lead to a working stage; a decline deletes it (amoCRM unsorted-api; some accounts
were reported to close it as lost instead — both read as declined while the lead still waited). amoCRM announces
both with `unsorted[delete]` webhooks (and the lead's own `leads[status]` / `leads[delete]`), but webhooks carry no
signature: they only say which deals to read again (`portal.amocrm.deal_reads`, with every other deal event), and
the lead as amoCRM holds it then decides here, in the same transaction as the deal upsert.

Reports: a declined lead stays a lead (its ad brought it, its cost counts), its deal is deleted in amoCRM and so
leaves the deal counts: neither won nor lost (docs/amocrm.md, "Delivery to Unsorted").
"""
from collections.abc import Iterable

from sqlalchemy import func, select

from portal.amocrm.api.webhook_bodies import DealSnapshot, Notification
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead
from portal.models.amocrm import DELIVER_AS_DEAL, DELIVER_TO_UNSORTED
from portal.models.deal import LOST_STATUS_ID
from portal.models.lead import UNSORTED_ACCEPTED, UNSORTED_DECLINED, UNSORTED_WAITING

INCOMING_STATUS_TYPE = 1


def incoming_statuses(pipelines) -> frozenset[int]:
    """The incoming ("Unsorted", type 1) status ids of the stored pipelines read (`connection.pipelines`: a list,
    the API document, or {"pipelines": …})."""
    if isinstance(pipelines, dict):
        pipelines = (pipelines.get("_embedded") or {}).get("pipelines") or pipelines.get("pipelines") or []
    found = set()
    for pipeline in pipelines if isinstance(pipelines, list) else []:
        if not isinstance(pipeline, dict):
            continue
        statuses = pipeline.get("statuses") or (pipeline.get("_embedded") or {}).get("statuses") or []
        found |= {status["id"] for status in statuses if isinstance(status, dict)
                  and status.get("type") == INCOMING_STATUS_TYPE and isinstance(status.get("id"), int)}
    return frozenset(found)


def state_after(snapshot: DealSnapshot, incoming: frozenset[int], said: str | None = None) -> str:
    """Where a waiting lead stands once amoCRM shows its deal as `snapshot`. `said` is what an Unsorted webhook
    claimed (accept | decline): it only tells an accepted-then-lost deal from a declined one, whose reads look
    alike on accounts that close declined leads as lost."""
    if snapshot.is_deleted:
        return UNSORTED_DECLINED
    if snapshot.status_id is None or snapshot.status_id in incoming:
        return UNSORTED_WAITING
    if snapshot.status_id == LOST_STATUS_ID and said != "accept":
        return UNSORTED_DECLINED
    return UNSORTED_ACCEPTED


def has_waiting(workspace_id: int) -> bool:
    return db.session.scalar(select(Lead.id).where(Lead.workspace_id == workspace_id,
                                                   Lead.unsorted_state == UNSORTED_WAITING).limit(1)) is not None


WAITING_READ_LIMIT = 1000  # waiting leads whose deals one reconciliation reads by id (4 calls)


def waiting_deal_ids(workspace_id: int, limit: int = WAITING_READ_LIMIT) -> list[int]:
    """The deals of the workspace's leads still waiting in Unsorted, oldest first: reconciliation reads them by id,
    since a declined lead's deal is deleted and never shows among the deals changed since the last run."""
    return list(db.session.scalars(select(Lead.amocrm_lead_id).where(
        Lead.workspace_id == workspace_id, Lead.unsorted_state == UNSORTED_WAITING, Lead.amocrm_lead_id.is_not(None))
        .order_by(Lead.id).limit(limit)))


def settle_waiting(workspace_id: int, snapshots: Iterable[DealSnapshot], incoming: frozenset[int],
                   said: dict[int, str] | None = None) -> int:
    """Move the workspace's waiting leads whose deals these snapshots show to accepted or declined. Does not
    commit. Returns how many changed."""
    latest = {snapshot.deal_id: snapshot for snapshot in snapshots}
    if not latest:
        return 0
    changed = 0
    for lead in db.session.scalars(select(Lead).where(Lead.workspace_id == workspace_id,
                                                      Lead.unsorted_state == UNSORTED_WAITING,
                                                      Lead.amocrm_lead_id.in_(list(latest)))):
        state = state_after(latest[lead.amocrm_lead_id], incoming, (said or {}).get(lead.amocrm_lead_id))
        if state != lead.unsorted_state:
            lead.unsorted_state = state
            changed += 1
    return changed


def deals_named(workspace_id: int, notification: Notification) -> tuple[set[int], dict[int, str]]:
    """The deals an event's Unsorted items concern — the lead ids the body names, and the deals of our leads with
    the uids it names — to be read with the event's other deals; and what the body said of each (accept |
    decline)."""
    deal_ids: set[int] = set()
    said: dict[int, str] = {}
    uids = {}
    for event in notification.unsorted:
        deal_ids.update(event.lead_ids)
        for lead_id in event.lead_ids:
            if event.outcome:
                said[lead_id] = event.outcome
        if event.uid:
            uids[event.uid] = event.outcome
    if uids:
        for deal_id, uid in db.session.execute(select(Lead.amocrm_lead_id, Lead.unsorted_uid).where(
                Lead.workspace_id == workspace_id, Lead.unsorted_uid.in_(list(uids)),
                Lead.amocrm_lead_id.is_not(None))):
            deal_ids.add(deal_id)
            if uids[uid]:
                said.setdefault(deal_id, uids[uid])
    return deal_ids, said


def choose_delivery_mode(workspace_id: int, mode: str) -> None:
    """How the workspace's next leads reach amoCRM. Leads already delivered keep their way; a lead whose request
    had an unknown outcome is looked for both ways before it is sent again (`portal.amocrm.push`)."""
    if mode not in (DELIVER_AS_DEAL, DELIVER_TO_UNSORTED):
        raise ValueError(f"unknown delivery mode {mode!r}")
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        raise ValueError("amoCRM is not connected")
    connection.delivery_mode = mode
    db.session.commit()


def unsorted_counts(workspace_id: int) -> dict[str, int]:
    """How many of the workspace's leads wait in Unsorted, were accepted, were declined."""
    rows = db.session.execute(select(Lead.unsorted_state, func.count()).where(
        Lead.workspace_id == workspace_id, Lead.unsorted_state.is_not(None)).group_by(Lead.unsorted_state))
    return {UNSORTED_WAITING: 0, UNSORTED_ACCEPTED: 0, UNSORTED_DECLINED: 0, **dict(rows.all())}
