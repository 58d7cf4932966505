"""The deal's note of extra form fields, exactly once, against the sandbox over real HTTP on PostgreSQL and Redis:
a note whose answer was lost is found on the deal (by the lead's marker line) and not written again; a note that
met a 5xx is written on the next try; a lead without extra fields makes no note at all."""
from datetime import timedelta

import pytest
import requests
from fixtures.sync import add_leads
from test_sync_push import run_push

from portal.amocrm.push import NOTE_UNKNOWN, due_pending_exists
from portal.amocrm.push_sweeper import workspaces_with_overdue_leads
from portal.extensions import db
from portal.models import Lead
from portal.models.types import utcnow

pytestmark = pytest.mark.integration

NOTES = "/api/v4/leads/notes"


def deal_notes(sandbox, connected, deal_id) -> list[dict]:
    """Every note on the deal, as amoCRM lists them (204 when there is none)."""
    response = requests.get(f"{sandbox.base_url}/api/v4/leads/{deal_id}/notes", params={"limit": 250},
                            headers={"Authorization": f"Bearer {connected.tokens['access_token']}"}, timeout=5)
    response.raise_for_status()
    return response.json()["_embedded"]["notes"] if response.status_code == 200 else []


def lead_of(app, lead_id) -> Lead:
    with app.app_context():
        return db.session.get(Lead, lead_id)


def make_note_due(app, lead_id) -> None:
    """The owed note's wait (settle + backoff) has passed."""
    with app.app_context():
        db.session.execute(db.update(Lead).where(Lead.id == lead_id, Lead.next_attempt_at.is_not(None))
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def test_a_note_whose_answer_was_dropped_is_found_on_the_deal_and_not_written_again(app, sandbox, connected):
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"comment": "Call after 6 pm"})
    sandbox.faults(drop_after_commit_rate=1.0, paths=[NOTES])
    assert run_push(app, connected).pushed == 1
    lead = lead_of(app, lead_id)
    assert lead.sync_status == "synced" and lead.extra_note_id is None
    assert lead.push_batch == NOTE_UNKNOWN and lead.next_attempt_at > utcnow()  # owed, outcome unknown
    [written] = deal_notes(sandbox, connected, lead.amocrm_lead_id)
    assert written["params"]["text"].endswith(f"\nLeadpath lead #{lead_id}")
    with app.app_context():
        assert not due_pending_exists(connected.id)
    sandbox.faults()
    make_note_due(app, lead_id)
    with app.app_context():
        assert due_pending_exists(connected.id) and connected.id in workspaces_with_overdue_leads(0)
    run_push(app, connected)
    assert [note["id"] for note in deal_notes(sandbox, connected, lead.amocrm_lead_id)] == [written["id"]]
    lead = lead_of(app, lead_id)
    assert lead.extra_note_id == written["id"] and lead.next_attempt_at is None and lead.push_batch is None
    with app.app_context():
        assert not due_pending_exists(connected.id)


def test_a_note_that_met_a_5xx_is_written_on_the_next_try(app, sandbox, connected):
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"size": "L"})
    sandbox.faults(http_500_rate=1.0, paths=[NOTES])
    run_push(app, connected)
    lead = lead_of(app, lead_id)
    assert lead.sync_status == "synced" and lead.extra_note_id is None and lead.next_attempt_at > utcnow()
    assert deal_notes(sandbox, connected, lead.amocrm_lead_id) == []
    sandbox.faults()
    make_note_due(app, lead_id)
    run_push(app, connected)
    [note] = deal_notes(sandbox, connected, lead.amocrm_lead_id)
    assert note["params"]["text"] == f"Leadpath form fields:\nsize: L\nLeadpath lead #{lead_id}"
    assert lead_of(app, lead_id).extra_note_id == note["id"]
    make_note_due(app, lead_id)
    run_push(app, connected)  # nothing owed any more: no second note
    assert len(deal_notes(sandbox, connected, lead.amocrm_lead_id)) == 1


def test_another_leads_note_on_the_deal_is_not_taken_for_this_ones(app, sandbox, connected):
    """The look after an unknown outcome matches the whole marker line: lead #1's note is not lead #12's."""
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"size": "M"})
    sandbox.faults(http_500_rate=1.0, paths=[NOTES])
    run_push(app, connected)
    deal_id = lead_of(app, lead_id).amocrm_lead_id
    sandbox.faults()
    requests.post(f"{sandbox.base_url}/api/v4/leads/notes", json=[
        {"entity_id": deal_id, "note_type": "common", "params": {"text": f"x\nLeadpath lead #{lead_id}0"}}],
        headers={"Authorization": f"Bearer {connected.tokens['access_token']}"}, timeout=5).raise_for_status()
    make_note_due(app, lead_id)
    run_push(app, connected)
    texts = [note["params"]["text"] for note in deal_notes(sandbox, connected, deal_id)]
    assert len(texts) == 2 and texts[1].endswith(f"\nLeadpath lead #{lead_id}")


def test_a_lead_without_extra_fields_makes_no_note(app, sandbox, connected):
    [lead_id] = add_leads(app, connected.id, 1)
    assert run_push(app, connected).pushed == 1
    lead = lead_of(app, lead_id)
    assert lead.sync_status == "synced" and lead.next_attempt_at is None and lead.push_batch is None
    assert deal_notes(sandbox, connected, lead.amocrm_lead_id) == []
