"""What amoCRM may answer a push beyond "created": `merged: true` (its duplicate control), 400 for a deal field the
account lacks, 403 for missing rights. Against the sandbox over HTTP, on PostgreSQL and Redis; every amoCRM
condition (duplicate control, an account's fields, the connected user's rights) is set through the sandbox's control
API, as an administrator would set it in amoCRM."""
from decimal import Decimal

import pytest
from fixtures.support import log_in
from fixtures.sync import StaticTokens, add_leads, connect_workspace, tracking_codes_without
from test_sync_push import deals, field_values, leads_of, make_due, run_push, sandbox_base

from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.api.webhook_bodies import DealSnapshot
from portal.amocrm.deals import apply_deal
from portal.extensions import db
from portal.models import AmoCRMConnection, AmoCRMContact, Deal, Lead
from portal.models.types import utcnow

pytestmark = pytest.mark.integration


def api_of(app, connected) -> AmoCRMClient:
    with app.app_context():
        return AmoCRMClient(sandbox_base(app, connected), StaticTokens(connected.tokens["access_token"]))


# add_leads gives its first lead this phone.
FIRST_PHONE = "+79990000000"


def managers_deal(app, connected, phone: str = FIRST_PHONE) -> int:
    """An open deal a manager made in the main pipeline, with a contact that has `phone`."""
    [made] = api_of(app, connected).request("POST", "/api/v4/leads/complex", json=[{
        "name": "Phone call", "pipeline_id": connected.pipeline_id, "status_id": connected.status_id,
        "_embedded": {"contacts": [{"first_name": "Caller", "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}]}]}}])
    return made["id"]


def forget_contacts(app, workspace_id: int) -> None:
    """Leadpath's contacts index without the account's contacts (one rebuilt from amoCRM's contacts list, which may
    lag new contacts): the lead goes with a new contact, and amoCRM's duplicate control does the matching."""
    with app.app_context():
        db.session.execute(db.delete(AmoCRMContact).where(AmoCRMContact.workspace_id == workspace_id))
        db.session.commit()


def win(app, workspace_id: int, deal_id: int, amount: int) -> Deal:
    with app.app_context():
        apply_deal(workspace_id, DealSnapshot(deal_id, action="status", status_id=142, price=Decimal(amount),
                                              updated_at=int(utcnow().timestamp())))
        db.session.commit()
        return db.session.scalar(db.select(Deal).where(Deal.amocrm_lead_id == deal_id))


def test_a_lead_merged_into_a_managers_deal_is_linked_as_merged_and_never_takes_its_revenue(
        app, sandbox, connected, make_user):
    """Duplicate control on (the sandbox's main account has it): the lead's phone is a contact's with an open deal,
    so amoCRM merges the lead into that deal and answers its id with `merged: true`; no new deal is made."""
    assert sandbox.main_account()["duplicate_control"] is True
    existing = managers_deal(app, connected)
    [lead_id] = add_leads(app, connected.id, 1)
    assert run_push(app, connected).pushed == 1
    [lead] = leads_of(app, connected.id)
    assert (lead.sync_status, lead.amocrm_lead_id, lead.deal_merged) == ("synced", existing, True)
    assert [deal["id"] for deal in deals(sandbox)] == [existing]
    assert win(app, connected.id, existing, 50_000).lead_id is None  # the deal's own revenue, not this lead's
    make_user("merged@example.com", workspace_id=connected.id)
    client = app.test_client()
    log_in(client, "merged@example.com")
    assert f"Merged into deal {existing}" in client.get(f"/leads/{lead_id}").get_data(as_text=True)


def test_revenue_stays_with_the_lead_that_made_the_deal_when_another_is_merged_into_it(app, sandbox, connected):
    [first_id] = add_leads(app, connected.id, 1)
    run_push(app, connected)
    [first] = leads_of(app, connected.id)
    forget_contacts(app, connected.id)
    with app.app_context():
        db.session.add(Lead(workspace_id=connected.id, name="Again", phone=FIRST_PHONE))
        db.session.commit()
    run_push(app, connected)
    first, second = leads_of(app, connected.id)
    assert (first.deal_merged, second.deal_merged) == (False, True)
    assert second.amocrm_lead_id == first.amocrm_lead_id and len(deals(sandbox)) == 1
    assert win(app, connected.id, first.amocrm_lead_id, 70_000).lead_id == first_id


def test_merged_true_naming_the_leads_own_new_deal_is_not_a_merge(app, sandbox, connected):
    """The contact matched one a manager made, amoCRM made a new deal for the lead: it is the lead's own."""
    sandbox.set_duplicate_control(connected.account["id"], True)
    api_of(app, connected).request("POST", "/api/v4/contacts", json=[{"name": "Known", "custom_fields_values": [
        {"field_code": "PHONE", "values": [{"value": "+79990000000", "enum_code": "WORK"}]}]}])
    [lead_id] = add_leads(app, connected.id, 1)
    run_push(app, connected)
    [lead] = leads_of(app, connected.id)
    assert lead.sync_status == "synced" and lead.deal_merged is False
    assert win(app, connected.id, lead.amocrm_lead_id, 10_000).lead_id == lead_id


def test_a_value_for_a_field_the_account_lacks_is_dropped_and_the_lead_still_goes(app, sandbox, make_user):
    account = sandbox.create_account(tracking_fields=tracking_codes_without("GCLID"))  # an account without it
    connected = connect_workspace(app, sandbox, account_id=account["id"])
    add_leads(app, connected.id, 1, gclid="g-1")
    first = run_push(app, connected)
    assert (first.pushed, first.failed, first.calls) == (1, 0, 2)  # refused once for GCLID, then sent without it
    add_leads(app, connected.id, 1, gclid="g-2")
    second = run_push(app, connected)
    assert (second.pushed, second.calls) == (1, 1)  # known now: dropped before sending
    assert {lead.sync_status for lead in leads_of(app, connected.id)} == {"synced"}
    assert all("GCLID" not in field_values(deal) and field_values(deal)["UTM_SOURCE"] == "google"
               for deal in deals(sandbox))
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection))
        assert connection.dropped_fields["GCLID"]["count"] == 2 and "GCLID" not in connection.lead_field_codes
    make_user("fields@example.com", workspace_id=connected.id)
    client = app.test_client()
    log_in(client, "fields@example.com")
    page = client.get("/settings/amocrm").get_data(as_text=True)
    section = page[page.index('id="amocrm-dropped-fields"'):]
    assert "GCLID" in section and "no deal field" in section


def test_the_accounts_deal_fields_are_learned_when_pipelines_are_refreshed(app, sandbox):
    from portal.amocrm.connection import refresh_pipelines

    account = sandbox.create_account(tracking_fields=tracking_codes_without("YCLID"))
    connected = connect_workspace(app, sandbox, account_id=account["id"])
    with app.test_request_context():
        refresh_pipelines(connected.id)
        codes = db.session.scalar(db.select(AmoCRMConnection.lead_field_codes))
    assert "UTM_SOURCE" in codes and "GCLID" in codes and "YCLID" not in codes
    add_leads(app, connected.id, 1, yclid="y-1")
    assert run_push(app, connected).calls == 1
    assert "YCLID" not in field_values(deals(sandbox)[0])


def test_missing_rights_keep_leads_waiting_without_pausing_the_workspace(app, sandbox, connected):
    """The connected amoCRM user may not add deals: amoCRM answers that call 403 with a problem JSON (not its
    block page). Leads wait uncounted; once an administrator grants the right they go by themselves."""
    sandbox.set_account(connected.account["id"], denied=["leads:write"])
    add_leads(app, connected.id, 2)
    outcome = run_push(app, connected)
    assert outcome.stopped == "forbidden" and outcome.failed == 0
    assert sandbox.counters()["http_403_rights"] == 1 and deals(sandbox) == []
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection))
        assert connection.status == "connected" and "lacks the rights" in connection.last_error
    waiting = leads_of(app, connected.id)
    assert all(lead.sync_status == "pending" and lead.sync_attempts == 0 and lead.next_attempt_at > utcnow()
               for lead in waiting)
    sandbox.set_account(connected.account["id"], denied=[])  # an administrator granted the rights
    make_due(app, connected.id)
    assert run_push(app, connected).pushed == 2 and len(deals(sandbox)) == 2
