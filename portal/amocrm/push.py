"""Pushing a workspace's pending leads into amoCRM: up to 50 per `POST /api/v4/leads/complex`, exactly once.

A lead goes through: claim (a short transaction takes it with SKIP LOCKED and leases it for LEASE, so a worker that
dies mid-batch only delays it) → adoption (if an earlier request for it may have been applied, the deals that
request created are found in the deals list, newest first, by their tags — `portal.amocrm.adoption`, no search —
and adopted instead of resent) → send → outcome on the lead row.

A lead keeps the batch tag of the first request that carried it (and when that request left) until it is synced,
and every later request carries that same tag: so whichever of its requests amoCRM applied, the read back to the
first one finds the deal.

`merged: true` in amoCRM's answer (duplicate control) may name a deal that existed before the lead: the lead is
linked to it as merged, and the deal's revenue stays with whoever made it. A value for a deal field the account
lacks (a tracking field such as GCLID) is dropped and counted on the connection, learned at connect or from the
400 that names it; the lead goes without it.

Failures: 429 waits and resends; a 400 naming items fails those leads and resends the rest (when it names every
lead for the pipeline or stage chosen for new leads, that choice is read again from amoCRM instead); timeouts,
dropped connections, 5xx and 504 are ambiguous: the request may yet be applied, so the lead waits at least
SYNC_SETTLE_SECONDS, then with exponential backoff and jitter, adopting first (504 also halves the batch); other
amoCRM errors are retried the same way, so a lead fails with the reason after SYNC_MAX_ATTEMPTS; a 403 problem
(the integration's user may not create deals) keeps the leads waiting, unfailed, while Settings says which rights
are missing; 401 after a refresh, a lost connection or the 403 block page (account blocked) stop the workspace's
sync and leave the leads pending until someone reconnects or resumes.

Delivery to Unsorted (the workspace's choice) follows the same protocol with `POST /api/v4/leads/unsorted/forms`:
the same claim, batch tag and lead tags (on the item's lead), the same outcomes per failure; adoption looks among
the items waiting in Unsorted first (`find_waiting_unsorted`), then in the deals list (an item accepted since is a
deal there). Such a lead is synced with its Unsorted uid and `unsorted_state` "waiting" until amoCRM's reads say a
manager accepted or declined it (`portal.amocrm.unsorted`). Its contact is always sent as new data (an Unsorted
item's contacts stay hidden until accepted), and is not remembered.

Extra form fields go to the account's custom fields they are mapped to (`portal.amocrm.custom_fields`) when their
values fit the field's type; the rest go into a common note on the deal, exactly once. The note is owed from the
transaction that stores the deal: a synced lead without `extra_note_id` whose `next_attempt_at` is set owes it, and
`push_batch` = NOTE_UNKNOWN says its last note request (or the first, not yet answered) may have been applied. The
note's text ends with the lead's marker (`payloads.note_marker`). After a known failure (429, 400, 401, 403) the
note goes again after a backoff; after an unknown outcome (timeout, dropped answer, 5xx, 504, a worker that died)
the deal's notes are read first (`GET /api/v4/leads/{id}/notes`, every page, every item re-checked) and the note
is sent only when none carries the marker (`send_owed_notes`, run by every push and scheduled by the sweeper). A
mapped field amoCRM refuses is unmapped and the leads go again without it.

One module past 400 lines on purpose: claim, adoption, send and the outcome of each failure are one protocol, whose
exactly-once guarantee is only checkable when read together. The job that runs it is `portal.amocrm.jobs.push_leads`.
"""
import functools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from portal.amocrm.adoption import CLOCK_MARGIN_SECONDS, find_created_deals, find_waiting_unsorted
from portal.amocrm.api import payloads
from portal.amocrm.api.errors import (
    AccountBlocked,
    AmoCRMError,
    BatchTooLarge,
    Forbidden,
    OAuthError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from portal.amocrm.connection import apply_pipelines, connection_of
from portal.amocrm.custom_fields import mapping_for_push, unmap_fields
from portal.amocrm.token_provider import NotConnected
from portal.amocrm.unsorted import incoming_statuses
from portal.extensions import db
from portal.models import AmoCRMConnection, AmoCRMContact, Lead, Workspace
from portal.models.amocrm import BLOCKED, CONNECTED, DELIVER_AS_DEAL, DELIVER_TO_UNSORTED
from portal.models.lead import FAILED, PENDING, SYNCED, UNSORTED_ACCEPTED, UNSORTED_WAITING
from portal.models.types import utcnow

BATCH_SIZE = 50
LEASE = timedelta(seconds=60)  # longer than a batch can be in flight (rate wait + timeout)
DEFAULT_RETRY_AFTER = 1.0

log = logging.getLogger(__name__)


class StopSync(Exception):
    """The workspace's sync cannot go on now (not connected, unauthorized, blocked); its leads wait."""


@dataclass
class PushOutcome:
    pushed: int = 0
    adopted: int = 0
    failed: int = 0
    retried: int = 0
    calls: int = 0
    stopped: str | None = None
    batch_sizes: list[int] = field(default_factory=list)


@dataclass
class PushContext:
    workspace_id: int
    client: object
    limiter: object
    pipeline_id: int | None
    status_id: int | None
    name_template: str
    batch_size: int = BATCH_SIZE
    # The codes of the account's deal fields, None when not known (then every tracking value is sent).
    field_codes: frozenset[str] | None = None
    delivery_mode: str = DELIVER_AS_DEAL
    # The pipelines' incoming ("Unsorted") status ids: a found deal in one of them still waits for a manager.
    incoming_statuses: frozenset[int] = frozenset()
    # {extra form field name: {"entity", "field"}}: where extra form fields go (`custom_fields.mapping_for_push`).
    mapping: dict = field(default_factory=dict)

    @property
    def to_unsorted(self) -> bool:
        return self.delivery_mode == DELIVER_TO_UNSORTED

    def sendable(self, code: str) -> bool:
        return self.field_codes is None or code in self.field_codes


def backoff_seconds(attempt: int, ceiling: float) -> float:
    """1, 2, 4… seconds after the 1st, 2nd, 3rd… failed attempt, ±50% jitter, never above `ceiling`."""
    return min(ceiling, 2 ** max(attempt - 1, 0) * random.uniform(0.5, 1.5))


def claim_batch(workspace_id: int, size: int) -> list[Lead]:
    """Take up to `size` due pending leads of the workspace and lease them (locked FOR UPDATE SKIP LOCKED, then
    one UPDATE for them all). Safe with any number of workers."""
    now = utcnow()
    rows = db.session.scalars(
        select(Lead)
        .where(Lead.workspace_id == workspace_id, Lead.sync_status == PENDING, Lead.is_spam.is_(False),
               Lead.duplicate_of_id.is_(None), or_(Lead.next_attempt_at.is_(None), Lead.next_attempt_at <= now))
        .order_by(Lead.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)  # what the database says now, not what this push last saw
    ).all()
    if rows:
        lease_until = now + LEASE
        db.session.execute(update(Lead).where(Lead.id.in_([lead.id for lead in rows]))
                           .values(sync_attempts=Lead.sync_attempts + 1, next_attempt_at=lease_until),
                           execution_options={"synchronize_session": False})
        for lead in rows:
            set_committed_value(lead, "sync_attempts", lead.sync_attempts + 1)
            set_committed_value(lead, "next_attempt_at", lease_until)
    db.session.commit()
    return rows


def release(leads: list[Lead], *, forget_attempt: bool = False, untag: set[int] = frozenset()) -> None:
    """Give leads back to the queue at once: the request they were in was certainly not applied. Those in `untag`
    got their batch tag from that request, which no deal carries: they lose it (no search before they go again);
    the others keep theirs, since an earlier request with it may have been applied."""
    for lead in leads:
        lead.next_attempt_at = None
        if forget_attempt:
            lead.sync_attempts = max(lead.sync_attempts - 1, 0)
        if lead.id in untag:
            lead.push_batch = lead.push_batch_at = None
    db.session.commit()


def defer(leads: list[Lead], error: str) -> int:
    """Retry later (the outcome is unknown, so the batch tag stays): not before SYNC_SETTLE_SECONDS, when a request
    amoCRM was still working on is applied and its deals can be found, then with backoff; fail after the last
    attempt (SYNC_MAX_ATTEMPTS)."""
    failed = 0
    settle = current_app.config["SYNC_SETTLE_SECONDS"]
    ceiling = current_app.config["SYNC_MAX_BACKOFF_SECONDS"]
    max_attempts = current_app.config["SYNC_MAX_ATTEMPTS"]
    for lead in leads:
        lead.last_error = error[:2000]
        if lead.sync_attempts >= max_attempts:
            lead.sync_status = FAILED
            lead.next_attempt_at = None
            failed += 1
        else:
            delay = max(settle, backoff_seconds(lead.sync_attempts, ceiling))
            lead.next_attempt_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    return failed


def mark_synced(done: list[tuple[Lead, int, int | None, bool]]) -> None:
    """Store the deal (and contact) amoCRM made for each lead, or merged it into (the flag): one UPDATE for the
    batch, joined to a VALUES list of (lead, deal, contact, merged), instead of one UPDATE per lead. The caller
    commits."""
    if not done:
        return
    now = utcnow()
    params = {"synced": SYNCED, "now": now}
    for n, (lead, deal_id, contact_id, merged) in enumerate(done):
        params.update({f"lead{n}": lead.id, f"deal{n}": deal_id, f"contact{n}": contact_id, f"merged{n}": merged})
    db.session.execute(_synced_statement(len(done)), params)
    settled = {"sync_status": SYNCED, "synced_at": now, "next_attempt_at": None, "last_error": None, "push_batch": None,
               "push_batch_at": None}
    for lead, deal_id, contact_id, merged in done:
        for name, value in {**settled, "amocrm_lead_id": deal_id, "amocrm_contact_id": contact_id,
                            "deal_merged": merged}.items():
            set_committed_value(lead, name, value)


@functools.cache
def _synced_statement(rows: int):
    """mark_synced's UPDATE for `rows` leads, as SQL text (the same on PostgreSQL and SQLite): built once per
    batch size, where SQLAlchemy's VALUES construct was compiled anew for every batch (~7 ms)."""
    listed = ", ".join(f"(CAST(:lead{n} AS INTEGER), CAST(:deal{n} AS BIGINT), CAST(:contact{n} AS BIGINT), "
                       f"CAST(:merged{n} AS BOOLEAN))" for n in range(rows))
    return text(f"WITH done (id, deal, contact, merged) AS (VALUES {listed}) "
                "UPDATE leads SET sync_status = :synced, amocrm_lead_id = done.deal, amocrm_contact_id = done.contact, "
                "deal_merged = done.merged, synced_at = :now, next_attempt_at = NULL, last_error = NULL, "
                "push_batch = NULL, push_batch_at = NULL "
                "FROM done WHERE leads.id = done.id").bindparams(bindparam("now", type_=Lead.synced_at.type))


def mark_unsorted(states: dict[int, tuple[str | None, str]]) -> None:
    """Store, for leads delivered to Unsorted, the item's uid and where it stands: one UPDATE for the batch. The
    caller commits."""
    if states:
        table = Lead.__table__
        db.session.execute(update(table).where(table.c.id == bindparam("lead_id"))
                           .values(unsorted_uid=bindparam("uid"), unsorted_state=bindparam("state")),
                           [{"lead_id": lead_id, "uid": uid, "state": state}
                            for lead_id, (uid, state) in states.items()])


def remember_contacts(workspace_id: int, pairs: dict[str, int]) -> None:
    """Upsert the workspace's contact map (phone / e-mail → amoCRM contact id)."""
    if not pairs:
        return
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # One row per parameter set: the statement stays the same whatever the batch holds, so it is compiled once.
    statement = insert(AmoCRMContact.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["workspace_id", "key"],
        set_={"amocrm_contact_id": statement.excluded.amocrm_contact_id, "updated_at": statement.excluded.updated_at})
    now = utcnow()
    db.session.execute(statement, [{"workspace_id": workspace_id, "key": key, "amocrm_contact_id": contact_id,
                                    "updated_at": now} for key, contact_id in pairs.items()])


def known_contacts(workspace_id: int, leads: list[Lead]) -> dict[str, int]:
    keys = {key for lead in leads for key in payloads.contact_keys(lead.phone, lead.email)}
    if not keys:
        return {}
    rows = db.session.execute(select(AmoCRMContact.key, AmoCRMContact.amocrm_contact_id).where(
        AmoCRMContact.workspace_id == workspace_id, AmoCRMContact.key.in_(keys)))
    return dict(rows.all())


def adopt_existing_deals(context: PushContext, leads: list[Lead], outcome: PushOutcome) -> list[Lead]:
    """For leads whose earlier request may have been applied, adopt the deals it created (one read of the deals
    list, newest first, back to the earliest of those requests). Returns the rest."""
    wanted = {lead.id: lead for lead in leads if lead.push_batch}
    if not wanted:
        return leads
    since = min(lead.push_batch_at or lead.created_at for lead in wanted.values())
    batches = {lead_id: lead.push_batch for lead_id, lead in wanted.items()}
    found = {}
    if context.to_unsorted:
        outcome.calls += 1
        found = find_waiting_unsorted(context.client, batches, int(since.timestamp()), context.pipeline_id)
    if len(found) < len(batches):
        outcome.calls += 1
        found.update(find_created_deals(context.client, {lead_id: batch for lead_id, batch in batches.items()
                                                         if lead_id not in found}, int(since.timestamp())))
    if found:
        mark_synced([(wanted[lead_id], deal.deal_id, deal.contact_id, False) for lead_id, deal in found.items()])
        for lead_id in found:  # a note for an adopted deal may have gone (its request's answer was lost): look first
            if wanted[lead_id].extra_fields and as_payload(wanted[lead_id], context.mapping).extra.note:
                owe_note(wanted[lead_id])
        if context.to_unsorted:
            mark_unsorted({lead_id: (deal.uid, UNSORTED_WAITING if deal.uid or deal.status_id in
                                     context.incoming_statuses else UNSORTED_ACCEPTED)
                           for lead_id, deal in found.items()})
        else:
            remember_contacts(context.workspace_id, {
                key: deal.contact_id for lead_id, deal in found.items() if deal.contact_id
                for key in payloads.contact_keys(wanted[lead_id].phone, wanted[lead_id].email)})
        outcome.adopted += len(found)
        db.session.commit()
    return [lead for lead in leads if lead.id not in found]


def split_shared_contacts(leads: list[Lead], known: dict[str, int]) -> tuple[list[Lead], list[Lead]]:
    """amoCRM does not de-duplicate contacts within one request: send one lead per new phone/e-mail now, the
    others in the next request, when the contact they share is known."""
    now, later, seen = [], [], set()
    for lead in leads:
        new_keys = {key for key in payloads.contact_keys(lead.phone, lead.email) if key not in known}
        if new_keys & seen:
            later.append(lead)
        else:
            seen |= new_keys
            now.append(lead)
    return now, later


def existing_contact_for(lead: Lead, known: dict[str, int]) -> int | None:
    for key in payloads.contact_keys(lead.phone, lead.email):
        if key in known:
            return known[key]
    return None


def as_payload(lead: Lead, mapping: dict | None = None, *, contact_is_new: bool = True) -> payloads.LeadForPush:
    extra = payloads.extra_values(lead.extra_fields, mapping or {}, contact_is_new=contact_is_new) \
        if lead.extra_fields else None
    return payloads.LeadForPush(
        id=lead.id, name=lead.name, phone=lead.phone, email=lead.email, utm_source=lead.utm_source,
        utm_medium=lead.utm_medium, utm_campaign=lead.utm_campaign, utm_term=lead.utm_term,
        utm_content=lead.utm_content, referrer=lead.referrer, gclid=lead.gclid, yclid=lead.yclid, fbclid=lead.fbclid,
        landing_page=lead.landing_page, ip=lead.ip, sent_at=int(lead.created_at.timestamp()), extra=extra,
        test=bool(lead.is_test))


def send_batch(context: PushContext, leads: list[Lead], outcome: PushOutcome) -> None:
    known = {} if context.to_unsorted else known_contacts(context.workspace_id, leads)
    leads, later = split_shared_contacts(leads, known)
    if later:
        release(later, forget_attempt=True)
    # Leads sent for the first time get this request's tag and start time; the others keep theirs. They are
    # stored, and the leases renewed (the adoption read took time), before the request that carries them leaves.
    batch, now = uuid.uuid4().hex[:16], utcnow()
    lease_until = now + LEASE
    fresh = {lead.id for lead in leads if not lead.push_batch}
    db.session.execute(update(Lead).where(Lead.id.in_([lead.id for lead in leads]))
                       .values(push_batch=func.coalesce(Lead.push_batch, batch),
                               push_batch_at=func.coalesce(Lead.push_batch_at, now), next_attempt_at=lease_until),
                       execution_options={"synchronize_session": False})
    record_dropped_fields(context, leads)
    db.session.commit()
    for lead in leads:
        set_committed_value(lead, "push_batch", lead.push_batch or batch)
        set_committed_value(lead, "push_batch_at", lead.push_batch_at if lead.id not in fresh else now)
        set_committed_value(lead, "next_attempt_at", lease_until)
    existing = {lead.id: existing_contact_for(lead, known) for lead in leads}
    sent = {lead.id: as_payload(lead, context.mapping, contact_is_new=existing[lead.id] is None) for lead in leads}
    if context.to_unsorted:
        items = [payloads.unsorted_item(sent[lead.id], batch=lead.push_batch, pipeline_id=context.pipeline_id,
                                        name_template=context.name_template, sendable=context.sendable)
                 for lead in leads]
    else:
        items = [payloads.complex_item(sent[lead.id], batch=lead.push_batch, pipeline_id=context.pipeline_id,
                                       status_id=context.status_id, name_template=context.name_template,
                                       existing_contact_id=existing[lead.id], sendable=context.sendable)
                 for lead in leads]
    outcome.calls += 1
    outcome.batch_sizes.append(len(items))
    try:
        if context.to_unsorted:
            results = payloads.unsorted_results(context.client.create_unsorted_forms(items))
        else:
            results = context.client.create_leads_complex(items)
    except RateLimited as error:
        context.limiter.pause(error.retry_after or DEFAULT_RETRY_AFTER)
        release(leads, forget_attempt=True, untag=fresh)
    except ValidationFailed as error:
        refused_validation(context, leads, items, known, error, outcome, fresh)
    except (TransportError, ServerError) as error:  # BatchTooLarge (504) included: ambiguous
        if isinstance(error, BatchTooLarge):
            context.batch_size = max(1, len(leads) // 2)
        outcome.retried += len(leads)
        outcome.failed += defer(leads, f"{error.__class__.__name__}: {error}")
    except Forbidden as error:
        release(leads, forget_attempt=True, untag=fresh)
        wait_for_rights(context, leads, str(error))
        raise StopSync("forbidden") from error
    except AccountBlocked as error:
        release(leads, forget_attempt=True, untag=fresh)
        stop_blocked(context.workspace_id, str(error))
        raise StopSync("blocked") from error
    except (Unauthorized, OAuthError) as error:
        release(leads, forget_attempt=True, untag=fresh)
        raise StopSync("unauthorized") from error
    else:
        context.batch_size = min(BATCH_SIZE, context.batch_size * 2)  # back up after a 504 made it smaller
        notes = {lead.id: sent[lead.id].extra.note for lead in leads
                 if sent[lead.id].extra and sent[lead.id].extra.note}
        record_results(context, leads, results, outcome, notes)
        send_notes(context, [(lead, notes[lead.id]) for lead in leads
                             if lead.id in notes and lead.sync_status == SYNCED and lead.next_attempt_at])


# -- the note of extra fields, exactly once ---------------------------------------------------------------------

NOTE_UNKNOWN = "note"  # a synced lead's push_batch: its last note request's outcome is unknown


def owed_notes():
    """The condition for a synced lead that owes its deal the note (due or not)."""
    return and_(Lead.sync_status == SYNCED, Lead.extra_note_id.is_(None), Lead.next_attempt_at.is_not(None))


def owe_note(lead: Lead) -> None:
    """From now on the lead owes its note, and a request for it may leave at once: whoever finds it due later looks
    for the note before sending. The caller commits (with the deal, so a worker that dies loses nothing)."""
    lead.next_attempt_at = utcnow() + LEASE
    lead.push_batch = NOTE_UNKNOWN


def send_notes(context: PushContext, notes: list[tuple[Lead, str]]) -> None:
    """One `POST /api/v4/leads/notes` for the notes the leads owe (marked as owed, outcome unknown, and committed
    before it leaves). Written → `extra_note_id`; refused (400) → given up with the reason; another known failure
    → again after a backoff; an unknown outcome → again after SYNC_SETTLE_SECONDS and a backoff, looking first."""
    if not notes:
        return
    items = [payloads.note_item(lead.id, lead.amocrm_lead_id, text) for lead, text in notes]
    leads = [lead for lead, _text in notes]
    try:
        made = context.client.add_lead_notes(items)
    except RateLimited as error:
        context.limiter.pause(error.retry_after or DEFAULT_RETRY_AFTER)
        note_again(leads, "amoCRM asked to slow down (429)", known=True)
    except ValidationFailed as error:
        refused = {payloads.lead_id_from_request_id(str(item.get("request_id", "")), [lead.id for lead in leads])
                   for item in error.errors}
        for lead in leads:
            if lead.id in refused:
                lead.next_attempt_at = lead.push_batch = None
                lead.last_error = f"amoCRM refused the note of extra fields: {error}"[:2000]
        note_again([lead for lead in leads if lead.id not in refused], "not sent: another note was refused",
                   known=True)
    except (TransportError, ServerError) as error:
        note_again(leads, f"{error.__class__.__name__}: {error}", known=False)
    except AmoCRMError as error:
        note_again(leads, f"{error.__class__.__name__}: {error}", known=True)
    else:
        by_lead = {lead.id: lead for lead in leads}
        for note in made:
            lead_id = payloads.lead_id_from_request_id(str(note.get("request_id", "")), list(by_lead))
            if lead_id is not None and isinstance(note.get("id"), int):
                note_written(by_lead.pop(lead_id), note["id"])
        note_again(list(by_lead.values()), "amoCRM's answer did not mention this note", known=False)
    db.session.commit()


def note_written(lead: Lead, note_id: int) -> None:
    lead.extra_note_id = note_id
    lead.next_attempt_at = lead.push_batch = lead.last_error = None


def note_again(leads: list[Lead], error: str, *, known: bool) -> None:
    """The note goes again after a backoff (counted in sync_attempts); `known`: it was certainly not written, so
    no look first. The caller commits."""
    settle = current_app.config["SYNC_SETTLE_SECONDS"]
    ceiling = current_app.config["SYNC_MAX_BACKOFF_SECONDS"]
    for lead in leads:
        lead.sync_attempts += 1
        delay = backoff_seconds(lead.sync_attempts, ceiling)
        lead.next_attempt_at = utcnow() + timedelta(seconds=delay if known else max(settle, delay))
        if known:
            lead.push_batch = None
        lead.last_error = f"The note of extra fields waits: {error}"[:2000]
        log.warning("lead %s: the note of extra fields goes again: %s", lead.id, error.split(":")[0])


def claim_owed_notes(workspace_id: int, size: int) -> list[Lead]:
    """Take up to `size` synced leads of the workspace whose note is due, leased like claim_batch's."""
    now = utcnow()
    rows = db.session.scalars(
        select(Lead).where(Lead.workspace_id == workspace_id, owed_notes(), Lead.next_attempt_at <= now)
        .order_by(Lead.id).limit(size).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)).all()
    for lead in rows:
        lead.next_attempt_at = now + LEASE
    db.session.commit()
    return rows


def send_owed_notes(context: PushContext, outcome: PushOutcome, more: Callable[[], bool]) -> None:
    """The notes owed by synced leads and due: those whose last request's outcome is unknown are looked for on
    their deal first (every page of its common notes, each checked for the lead's marker); the others, and those
    not found, are sent, written from the lead's fields and the mapping as they are now."""
    while more():
        leads = claim_owed_notes(context.workspace_id, context.batch_size)
        if not leads:
            return
        due = []
        for lead in leads:
            note = payloads.extra_values(lead.extra_fields, context.mapping).note if lead.extra_fields else None
            if note is None:  # every field has a custom field now: nothing left for a note
                lead.next_attempt_at = lead.push_batch = None
                continue
            if lead.push_batch == NOTE_UNKNOWN:
                outcome.calls += 1
                try:
                    found = next((item for item in context.client.iter_deal_notes(lead.amocrm_lead_id)
                                  if payloads.is_lead_note(item, lead.id)), None)
                except AmoCRMError as error:
                    note_again([lead], f"the deal's notes could not be read: {error.__class__.__name__}",
                               known=False)
                    continue
                if found is not None and isinstance(found.get("id"), int):
                    note_written(lead, found["id"])
                    continue
            due.append((lead, note))
        for lead, _note in due:
            owe_note(lead)
        db.session.commit()
        if due:
            outcome.calls += 1
            send_notes(context, due)


def record_dropped_fields(context: PushContext, leads: list[Lead]) -> None:
    """Count, on the connection, the tracking values these leads carry for fields the account lacks (Settings →
    amoCRM lists them). The caller commits."""
    dropped: dict[str, int] = {}
    for lead in leads:
        for custom_field in payloads.tracking_fields(as_payload(lead)):
            if not context.sendable(custom_field["field_code"]):
                dropped[custom_field["field_code"]] = dropped.get(custom_field["field_code"], 0) + 1
    if dropped:
        note_dropped_fields(context.workspace_id, dropped)


def note_dropped_fields(workspace_id: int, dropped: dict[str, int]) -> None:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    now = utcnow().isoformat()
    record = dict(connection.dropped_fields or {})
    for code, count in dropped.items():
        record[code] = {"count": (record.get(code) or {}).get("count", 0) + count, "last_at": now}
    connection.dropped_fields = record


def wait_for_rights(context: PushContext, leads: list[Lead], detail: str) -> None:
    """amoCRM answered 403 with a problem (not its block page): the integration's user may not create deals. The
    workspace is not paused and no lead fails: they wait SYNC_MAX_BACKOFF_SECONDS, uncounted, and go as soon as
    an administrator grants the rights; Settings says what to do."""
    connection = db.session.scalar(select(AmoCRMConnection).where(
        AmoCRMConnection.workspace_id == context.workspace_id))
    connection.last_error = ("amoCRM refused to create deals: the user who connected amoCRM lacks the rights to "
                             "add deals and contacts (403). Ask an amoCRM administrator to grant them, or reconnect "
                             "as a user who has them; waiting leads go out by themselves. " + detail)[:2000]
    retry_at = utcnow() + timedelta(seconds=current_app.config["SYNC_MAX_BACKOFF_SECONDS"])
    for lead in leads:
        lead.next_attempt_at = retry_at
        lead.last_error = "Waiting: amoCRM says the connected user may not create deals (403)."
    db.session.commit()
    log.warning("amoCRM refused workspace %s's deals for missing rights (403); leads wait", context.workspace_id)


MISSING_FIELD_PATH = re.compile(r"(?:^|\.)custom_fields_values\.(\d+)\.field_(?:code|id)$")


def refused_validation(context: PushContext, leads: list[Lead], items: list[dict], known: dict[str, int],
                       error: ValidationFailed, outcome: PushOutcome, fresh: set[int]) -> None:
    """amoCRM refused the whole request: nothing was created. A field the account lacks is learned and the leads
    go again without it; other leads it named fail; the rest go again."""
    batch_ids = [lead.id for lead in leads]
    items_by_lead = dict(zip(batch_ids, items, strict=True))
    named: dict[int, list[str]] = {}
    missing: set[str] = set()
    already: set[int] = set()
    refused_fields: set[int] = set()
    for item in error.errors:
        lead_id = payloads.lead_id_from_request_id(item.get("request_id", ""), batch_ids)
        if lead_id is None:
            continue
        code = _missing_field_code(payloads.deal_part(items_by_lead[lead_id]), str(item.get("path") or ""))
        mapped = _mapped_field_id(items_by_lead[lead_id], str(item.get("path") or ""))
        if code is not None:
            missing.add(code)
        elif mapped is not None:
            refused_fields.add(mapped)
        elif context.to_unsorted and str(item.get("path") or "").endswith("source_uid"):
            already.add(lead_id)  # this item is in Unsorted already: an earlier request carried it
        else:
            named.setdefault(lead_id, []).append(f"{item.get('path', '')}: {item.get('detail') or item.get('code')}")
    if missing:
        learn_missing_fields(context, missing)
    if refused_fields:
        unmap_fields(context.workspace_id, refused_fields)
        context.mapping = {name: target for name, target in context.mapping.items()
                           if target["field"]["id"] not in refused_fields}
    if already:  # adopted from Unsorted once the read finds it; the others go again
        outcome.retried += len(already)
        outcome.failed += defer([lead for lead in leads if lead.id in already],
                                "amoCRM says this lead is in Unsorted already; it is looked for there")
        leads = [lead for lead in leads if lead.id not in already]
        if not leads:
            return
        batch_ids = [lead.id for lead in leads]
    if not named and (missing or already or refused_fields):  # only fields: every lead goes again without them
        release(leads, forget_attempt=True, untag=fresh)
        return
    if not named:  # it named no item: the request as a whole is wrong, so every lead in it fails
        named = {lead_id: [str(error)] for lead_id in batch_ids}
    elif len(named) == len(batch_ids) and all(_names_the_target(problem) for problems in named.values()
                                                for problem in problems) and retarget(context):
        release(leads, forget_attempt=True, untag=fresh)  # they go again, to where new leads go now
        return
    stale_contacts = []
    for lead in leads:
        lead.next_attempt_at = None
        if lead.id in fresh:
            lead.push_batch = lead.push_batch_at = None
        problems = named.get(lead.id)
        if problems is None:
            lead.sync_attempts = max(lead.sync_attempts - 1, 0)
        elif existing_contact_for(lead, known) and any("contacts" in problem for problem in problems):
            # A contact we remembered is gone from amoCRM: forget it and send the lead with a new one.
            stale_contacts += payloads.contact_keys(lead.phone, lead.email)
        else:
            lead.sync_status = FAILED
            lead.last_error = ("amoCRM refused this lead: " + "; ".join(problems))[:2000]
            outcome.failed += 1
    if stale_contacts:
        db.session.execute(AmoCRMContact.__table__.delete().where(
            AmoCRMContact.workspace_id == context.workspace_id, AmoCRMContact.key.in_(stale_contacts)))
    db.session.commit()


MAPPED_FIELD_PATH = re.compile(
    r"^(?:_embedded\.leads\.0\.)?(?:(_embedded\.contacts\.0)\.)?custom_fields_values\.(\d+)\.")


def _mapped_field_id(item: dict, path: str) -> int | None:
    """The id of the mapped custom field (sent by `field_id`) a validation error's path points into, on the deal
    or its contact; None for anything else."""
    found = MAPPED_FIELD_PATH.search(path)
    if found is None:
        return None
    deal = payloads.deal_part(item)
    if found.group(1):
        contacts = (item.get("_embedded") or {}).get("contacts") or (deal.get("_embedded") or {}).get("contacts")
        owner = contacts[0] if contacts else {}
    else:
        owner = deal
    values = owner.get("custom_fields_values") or []
    index = int(found.group(2))
    field_id = values[index].get("field_id") if index < len(values) else None
    return field_id if isinstance(field_id, int) else None


def _missing_field_code(item: dict, path: str) -> str | None:
    """The tracking field code a validation error's path names (`custom_fields_values.3.field_code`), when the item
    sent one there: a field the account lacks. None for any other problem."""
    found = MISSING_FIELD_PATH.search(path)
    values = item.get("custom_fields_values") or []
    if found is None or int(found.group(1)) >= len(values):
        return None
    code = values[int(found.group(1))].get("field_code")
    return code if code in payloads.TRACKING_CODES else None


def learn_missing_fields(context: PushContext, codes: set[str]) -> None:
    """amoCRM named deal fields the account lacks: drop them from the known codes, so their values are dropped (and
    counted) from now on. The caller commits."""
    connection = db.session.scalar(select(AmoCRMConnection).where(
        AmoCRMConnection.workspace_id == context.workspace_id))
    if connection.lead_field_codes is not None:
        connection.lead_field_codes = [code for code in connection.lead_field_codes if code not in codes]
    else:
        connection.lead_field_codes = sorted(set(payloads.TRACKING_CODES) - codes)
    context.field_codes = frozenset(connection.lead_field_codes)
    log.warning("workspace %s: amoCRM lacks the deal fields %s; their values are dropped", context.workspace_id,
                ", ".join(sorted(codes)))


def _names_the_target(problem: str) -> bool:
    return problem.split(":", 1)[0].endswith(("pipeline_id", "status_id"))


def retarget(context: PushContext) -> bool:
    """amoCRM refused every lead for the pipeline or stage chosen for new leads: someone deleted or changed it.
    Read the pipelines again; if the choice is gone, new leads go where they go after a fresh connect (the main
    pipeline's first working stage) and Settings says so. False if the choice still exists."""
    connection = connection_of(context.workspace_id)
    chosen = (connection.pipeline_id, connection.status_id)
    apply_pipelines(connection, context.client.get_pipelines())
    if (connection.pipeline_id, connection.status_id) == chosen:
        db.session.commit()
        return False
    connection.last_error = ("The pipeline stage chosen for new leads no longer exists in amoCRM: new leads go to "
                             "the main pipeline now. Choose another stage in Settings → amoCRM.")
    context.pipeline_id, context.status_id = connection.pipeline_id, connection.status_id
    db.session.commit()
    log.warning("workspace %s: the stage for new leads is gone from amoCRM; using the main pipeline",
                context.workspace_id)
    return True


def record_results(context: PushContext, leads: list[Lead], results: list[dict], outcome: PushOutcome,
                   notes: dict[int, str] | None = None) -> None:
    """Store what amoCRM made for each lead; those with a note (`notes`: lead id → text) owe it from the same
    commit."""
    by_id = {lead.id: lead for lead in leads}
    batch_ids = list(by_id)
    contacts: dict[str, int] = {}
    done = []
    merged = []
    unsorted: dict[int, tuple[str | None, str]] = {}
    for result in results or []:
        request_ids = result.get("request_id")
        request_ids = request_ids if isinstance(request_ids, list) else [request_ids]
        lead_id = payloads.lead_id_from_request_id(request_ids[0] if request_ids else "", batch_ids)
        lead = by_id.pop(lead_id, None)
        if lead is None or not result.get("id"):
            continue
        contact_id = int(result["contact_id"]) if result.get("contact_id") else None
        if "uid" in result:
            unsorted[lead.id] = (result["uid"], UNSORTED_WAITING)
        if result.get("merged") is True:
            merged.append((lead, int(result["id"]), contact_id))
        else:
            done.append((lead, int(result["id"]), contact_id, False))
        outcome.pushed += 1
        if contact_id and lead.id not in unsorted:  # an Unsorted item's contact is hidden until accepted
            for key in payloads.contact_keys(lead.phone, lead.email):
                contacts[key] = contact_id
    done += merged_outcomes(context, merged)
    mark_synced(done)
    for lead, *_rest in done:
        if lead.id in (notes or {}):
            owe_note(lead)
    mark_unsorted(unsorted)
    remember_contacts(context.workspace_id, contacts)
    db.session.commit()
    if by_id:  # amoCRM answered without them: unknown, so look before resending
        outcome.retried += len(by_id)
        outcome.failed += defer(list(by_id.values()), "amoCRM's answer did not mention this lead")


def merged_outcomes(context: PushContext, merged: list[tuple[Lead, int, int | None]]) -> list[tuple]:
    """`merged: true`: amoCRM's duplicate control found existing data. The deal it names is this lead's own when it
    carries the lead's tag and the name it was sent with and was created by this push (a merge adds the lead's tags
    to the existing deal, and a deal made moments before the push passes the clock check); otherwise it existed
    before (made by a manager, a call, an earlier lead) and the lead is linked to it as merged, so its revenue never
    moves to this lead. One read per merged deal (they are few); a deal that cannot be read counts as merged:
    revenue stays where it was."""
    outcomes = []
    for lead, deal_id, contact_id in merged:
        made_here = False
        since = int((lead.push_batch_at or lead.created_at).timestamp()) - CLOCK_MARGIN_SECONDS
        if not _deal_has_a_lead(context.workspace_id, deal_id, lead.id):
            try:
                deal = context.client.get_lead(deal_id) or {}
            except AmoCRMError:
                log.warning("workspace %s: merged deal %s could not be read; linked as merged", context.workspace_id,
                            deal_id)
                deal = {}
            created_at = deal.get("created_at")
            made_here = (payloads.lead_id_from_tags(deal) == lead.id and isinstance(created_at, int)
                         and created_at >= since
                         and deal.get("name") == payloads.sent_deal_name(context.name_template, as_payload(lead)))
        outcomes.append((lead, deal_id, contact_id, not made_here))
    return outcomes


def _deal_has_a_lead(workspace_id: int, deal_id: int, lead_id: int) -> bool:
    """Another of the workspace's leads is in this deal already: it existed before this lead."""
    return db.session.scalar(select(Lead.id).where(Lead.workspace_id == workspace_id, Lead.amocrm_lead_id == deal_id,
                                                   Lead.id != lead_id).limit(1)) is not None


def stop_blocked(workspace_id: int, detail: str) -> None:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    connection.status = BLOCKED
    connection.last_error = ("amoCRM blocked this account's API access (403). Sync is paused; check the account "
                             "in amoCRM, then resume sync in Settings. " + detail)[:2000]
    db.session.commit()
    log.error("amoCRM answered 403 for workspace %s: sync paused", workspace_id)


def push_pending(workspace_id: int, client, limiter, recorder=None, *, time_budget: float | None = None) -> PushOutcome:
    """Push the workspace's due pending leads until none is left (or `time_budget` seconds have passed).

    `recorder` (a SyncLogRecorder) is told which leads each call concerns."""
    started = time.monotonic()
    outcome = PushOutcome()
    workspace = db.session.get(Workspace, workspace_id)
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if workspace is None or connection is None or connection.status != CONNECTED:
        outcome.stopped = "not_connected"
        return outcome
    context = PushContext(workspace_id, client, limiter, connection.pipeline_id, connection.status_id,
                          workspace.deal_name_template,
                          field_codes=frozenset(connection.lead_field_codes)
                          if connection.lead_field_codes is not None else None,
                          delivery_mode=connection.delivery_mode or DELIVER_AS_DEAL,
                          incoming_statuses=incoming_statuses(connection.pipelines),
                          mapping=mapping_for_push(connection))
    # The claimed leads are this push's own (leased) while it runs: keep their loaded state across its many
    # commits instead of reloading every lead, one SELECT each, after every commit.
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        _push_loop(context, outcome, recorder, started, time_budget)
        if outcome.stopped is None:
            send_owed_notes(context, outcome, lambda: time_budget is None or time.monotonic() - started < time_budget)
    finally:
        session.expire_on_commit = expire_on_commit
    return outcome


def _push_loop(context: PushContext, outcome: PushOutcome, recorder, started: float, time_budget: float | None):
    workspace_id = context.workspace_id
    while time_budget is None or time.monotonic() - started < time_budget:
        leads = claim_batch(workspace_id, context.batch_size)
        if not leads:
            break
        if recorder is not None:
            recorder.lead_ids = [lead.id for lead in leads]
        try:
            remaining = adopt_existing_deals(context, leads, outcome)
            if remaining:
                send_batch(context, remaining, outcome)
        except StopSync as stop:
            outcome.stopped = str(stop)
            break
        except RateLimited as error:  # the adoption search was refused: nothing sent, everyone waits
            context.limiter.pause(error.retry_after or DEFAULT_RETRY_AFTER)
            release(leads, forget_attempt=True)
        except (TransportError, ServerError) as error:  # the adoption search failed: try the batch later
            outcome.retried += len(leads)
            outcome.failed += defer([lead for lead in leads if lead.sync_status == PENDING],
                                    f"{error.__class__.__name__}: {error}")
        except Forbidden as error:  # the adoption read was refused for missing rights
            release(leads, forget_attempt=True)
            wait_for_rights(context, leads, str(error))
            outcome.stopped = "forbidden"
            break
        except (Unauthorized, OAuthError, AccountBlocked, NotConnected) as error:
            release(leads, forget_attempt=True)
            if isinstance(error, AccountBlocked):
                stop_blocked(workspace_id, str(error))
            outcome.stopped = error.__class__.__name__
            break
        except AmoCRMError as error:  # any other answer (402, 404, …): retried with backoff, failed in the end
            outcome.retried += len(leads)
            outcome.failed += defer([lead for lead in leads if lead.sync_status == PENDING],
                                    f"amoCRM answered {error.__class__.__name__}: {error}")


def due_pending_exists(workspace_id: int) -> bool:
    now = utcnow()
    return db.session.scalar(select(Lead.id).where(
        Lead.workspace_id == workspace_id, Lead.sync_status == PENDING, Lead.is_spam.is_(False),
        Lead.duplicate_of_id.is_(None), or_(Lead.next_attempt_at.is_(None), Lead.next_attempt_at <= now)
    ).limit(1)) is not None or db.session.scalar(select(Lead.id).where(
        Lead.workspace_id == workspace_id, owed_notes(), Lead.next_attempt_at <= now).limit(1)) is not None


def next_retry_at(workspace_id: int):
    """When the workspace's next waiting lead or owed note is due."""
    return db.session.scalar(select(func.min(Lead.next_attempt_at)).where(
        Lead.workspace_id == workspace_id, or_(Lead.sync_status == PENDING, owed_notes()),
        Lead.next_attempt_at.is_not(None)))


def clear_failed(leads_query) -> int:
    """Failed leads back to pending (their batch tag stays, so a deal made before the failure is adopted)."""
    result = db.session.execute(update(Lead).where(*leads_query).values(
        sync_status=PENDING, sync_attempts=0, next_attempt_at=None, last_error=None))
    db.session.commit()
    return result.rowcount
