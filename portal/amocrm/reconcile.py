"""Reconciliation: webhooks get lost, so the deals amoCRM changed since the last run are read back and applied
with the same upsert as webhook events. Runs right after connecting (the 90-day backfill), every hour (jobs
`reconcile_workspace` and `reconcile_connected_workspaces` in `portal.amocrm.jobs`), and from
`flask --app wsgi amocrm reconcile WORKSPACE [--since DATE]`. The deals of leads still waiting in Unsorted are read
by id as well (`_read_waiting_unsorted`)."""
import json
import logging
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.api.webhook_bodies import DealSnapshot, deal_from_api
from portal.amocrm.connection import NotConnected, client_for
from portal.amocrm.contacts_index import refresh_contacts_index
from portal.amocrm.deals import apply_deals
from portal.amocrm.sync_log import current_job_id
from portal.amocrm.unsorted import waiting_deal_ids
from portal.extensions import db
from portal.log_context import workspace_id_var
from portal.models import AmoCRMConnection, SyncLogEntry
from portal.models.amocrm import CONNECTED
from portal.models.types import utcnow

BACKFILL = timedelta(days=90)
OVERLAP = timedelta(minutes=10)  # clocks and amoCRM's second-resolution updated_at: read a little twice
BATCH = 250

log = logging.getLogger(__name__)


def parse_since(text: str | None) -> datetime | None:
    """An ISO date or datetime (naive means UTC)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reconcile_workspace(workspace_id: int, since_iso: str | None = None) -> dict:
    """Apply every deal amoCRM changed since `since_iso` (default: the last run's start minus OVERLAP, or
    90 days back the first time). Commits every BATCH deals; `reconciled_until` moves only when the whole
    window was read without a gap. Returns counts."""
    workspace_id_var.set(str(workspace_id))
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None or connection.status != CONNECTED:
        db.session.rollback()
        return {"skipped": "not connected"}
    started = utcnow()
    previous = connection.reconciled_until
    since = parse_since(since_iso) or ((previous - OVERLAP) if previous else started - BACKFILL)
    try:
        client = client_for(workspace_id)
    except NotConnected:
        db.session.rollback()
        return {"skipped": "not connected"}
    db.session.rollback()  # no transaction open across amoCRM calls

    counts: dict[str, int] = {"read": 0}
    clock = time.perf_counter()
    batch = []
    try:
        for lead in client.iter_leads(updated_from=int(since.timestamp()), newest_first_by="updated_at",
                                      with_=("contacts",)):
            try:
                batch.append(deal_from_api(lead))
            except ValueError:
                counts["unreadable"] = counts.get("unreadable", 0) + 1
                continue
            if len(batch) >= BATCH:
                _apply(workspace_id, batch, counts)
                batch = []
        _apply(workspace_id, batch, counts)
        _read_waiting_unsorted(client, workspace_id, counts)
    except AmoCRMError as exc:
        db.session.rollback()
        _log(workspace_id, since, counts, clock, error=f"{exc.__class__.__name__}: {str(exc)[:300]}",
             status=exc.status)
        db.session.commit()
        raise
    try:
        counts["contacts"] = refresh_contacts_index(client, workspace_id, int(since.timestamp()))
    except AmoCRMError as exc:  # the deals are applied; the contacts index waits for the next run
        db.session.rollback()
        log.warning("contacts of workspace %s not reconciled: %s", workspace_id, exc.__class__.__name__)
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is not None and (connection.reconciled_until is None or since <= connection.reconciled_until):
        connection.reconciled_until = max(started, connection.reconciled_until or started)
    _log(workspace_id, since, counts, clock)
    db.session.commit()
    log.info("reconciled workspace %s since %s: %s", workspace_id, since.isoformat(), counts)
    return counts


def _read_waiting_unsorted(client, workspace_id: int, counts: dict) -> None:
    """The deals of leads still waiting in Unsorted, read by id: a lost webhook about an accept shows among the
    changed deals anyway, but a decline deletes the deal, which no list of changed deals shows."""
    deal_ids = waiting_deal_ids(workspace_id)
    db.session.rollback()
    if not deal_ids:
        return
    snapshots = []
    for deal_id, lead in client.get_leads_by_id(deal_ids).leads.items():
        try:
            snapshots.append(DealSnapshot(deal_id, action="delete", is_deleted=True) if lead is None
                             else deal_from_api(lead))
        except ValueError:
            continue
    counts["unsorted_read"] = len(snapshots)
    _apply(workspace_id, snapshots, counts)


def _apply(workspace_id: int, batch: list, counts: dict) -> None:
    if not batch:
        return
    summary = apply_deals(workspace_id, batch)
    counts["read"] += len(batch)
    for key, value in summary.counts().items():
        counts[key] = counts.get(key, 0) + value
    db.session.commit()


def _log(workspace_id: int, since: datetime, counts: dict, clock: float, *, error: str | None = None,
         status: int | None = None) -> None:
    db.session.add(SyncLogEntry(
        workspace_id=workspace_id, direction="outbound", operation="reconcile GET /api/v4/leads",
        outcome="error" if error else "ok", http_status=status, error=error,
        duration_ms=int((time.perf_counter() - clock) * 1000),
        request=json.dumps({"filter[updated_at][from]": int(since.timestamp()), "since": since.isoformat()}),
        response=json.dumps(counts), job_id=current_job_id()))
