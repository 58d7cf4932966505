"""What amoCRM may answer a push beyond "created": `merged: true` (its duplicate control), 400 for a deal field the
account lacks, 403 for missing rights. Against the sandbox over HTTP, on PostgreSQL and Redis."""
from decimal import Decimal

import pytest
from fixtures.support import log_in
from fixtures.sync import StaticTokens, add_leads
from test_sync_push import deals, field_values, leads_of, make_due, run_push, sandbox_base

from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.api.errors import Forbidden
from portal.amocrm.api.webhook_bodies import DealSnapshot
from portal.amocrm.deals import apply_deal
from portal.extensions import db
from portal.models import AmoCRMConnection, Deal, Lead
from portal.models.types import utcnow

pytestmark = pytest.mark.integration


def api_of(app, connected) -> AmoCRMClient:
    with app.app_context():
        return AmoCRMClient(sandbox_base(app, connected), StaticTokens(connected.tokens["access_token"]))


def managers_deal(app, connected) -> int:
    [made] = api_of(app, connected).request("POST", "/api/v4/leads", json=[{"name": "Phone call"}])["_embedded"][
        "leads"]
    return made["id"]


def merging_into(monkeypatch, sandbox, existing_deal_id: int) -> None:
    """amoCRM's duplicate control as documented: the new lead is merged into an existing deal, and the answer names
    that deal with `merged: true` (no new deal remains)."""
    create = AmoCRMClient.create_leads_complex

    def create_merged(self, items):
        results = create(self, items)
        for result in results:
            sandbox.delete_lead(result["id"])
            result.update(id=existing_deal_id, merged=True)
        return results

    monkeypatch.setattr(AmoCRMClient, "create_leads_complex", create_merged)


def win(app, workspace_id: int, deal_id: int, amount: int) -> Deal:
    with app.app_context():
        apply_deal(workspace_id, DealSnapshot(deal_id, action="status", status_id=142, price=Decimal(amount),
                                              updated_at=int(utcnow().timestamp())))
        db.session.commit()
        return db.session.scalar(db.select(Deal).where(Deal.amocrm_lead_id == deal_id))


def test_a_lead_merged_into_a_managers_deal_is_linked_as_merged_and_never_takes_its_revenue(
        app, sandbox, connected, monkeypatch, make_user):
    existing = managers_deal(app, connected)
    merging_into(monkeypatch, sandbox, existing)
    [lead_id] = add_leads(app, connected.id, 1)
    assert run_push(app, connected).pushed == 1
    [lead] = leads_of(app, connected.id)
    assert (lead.sync_status, lead.amocrm_lead_id, lead.deal_merged) == ("synced", existing, True)
    assert win(app, connected.id, existing, 50_000).lead_id is None  # the deal's own revenue, not this lead's
    make_user("merged@example.com", workspace_id=connected.id)
    client = app.test_client()
    log_in(client, "merged@example.com")
    assert f"Merged into deal {existing}" in client.get(f"/leads/{lead_id}").get_data(as_text=True)


def test_revenue_stays_with_the_lead_that_made_the_deal_when_another_is_merged_into_it(app, sandbox, connected,
                                                                                       monkeypatch):
    [first_id] = add_leads(app, connected.id, 1)
    run_push(app, connected)
    [first] = leads_of(app, connected.id)
    merging_into(monkeypatch, sandbox, first.amocrm_lead_id)
    with app.app_context():
        db.session.add(Lead(workspace_id=connected.id, name="Again", phone="+79990000000"))
        db.session.commit()
    run_push(app, connected)
    first, second = leads_of(app, connected.id)
    assert (first.deal_merged, second.deal_merged) == (False, True)
    assert second.amocrm_lead_id == first.amocrm_lead_id
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


def test_a_value_for_a_field_the_account_lacks_is_dropped_and_the_lead_still_goes(app, sandbox, sandbox_server,
                                                                                  connected, make_user):
    account = sandbox_server.app.extensions["amocrm_sandbox"].state.account(connected.account["id"])
    account["lead_fields"] = [f for f in account["lead_fields"] if f["code"] != "GCLID"]  # an account without it
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


def test_the_accounts_deal_fields_are_learned_when_pipelines_are_refreshed(app, sandbox, sandbox_server, connected):
    from portal.amocrm.connection import refresh_pipelines

    account = sandbox_server.app.extensions["amocrm_sandbox"].state.account(connected.account["id"])
    account["lead_fields"] = [f for f in account["lead_fields"] if f["code"] != "YCLID"]
    with app.test_request_context():
        refresh_pipelines(connected.id)
        codes = db.session.scalar(db.select(AmoCRMConnection.lead_field_codes))
    assert "UTM_SOURCE" in codes and "GCLID" in codes and "YCLID" not in codes
    add_leads(app, connected.id, 1, yclid="y-1")
    assert run_push(app, connected).calls == 1
    assert "YCLID" not in field_values(deals(sandbox)[0])


def test_missing_rights_keep_leads_waiting_without_pausing_the_workspace(app, sandbox, connected, monkeypatch):
    def refused(self, items):
        raise Forbidden("amoCRM answered 403 to POST /api/v4/leads/complex: Access denied", status=403,
                        body={"title": "Forbidden", "status": 403, "detail": "Access denied"})

    add_leads(app, connected.id, 2)
    with monkeypatch.context() as no_rights:
        no_rights.setattr(AmoCRMClient, "create_leads_complex", refused)
        outcome = run_push(app, connected)
    assert outcome.stopped == "forbidden" and outcome.failed == 0
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection))
        assert connection.status == "connected" and "lacks the rights" in connection.last_error
    waiting = leads_of(app, connected.id)
    assert all(lead.sync_status == "pending" and lead.sync_attempts == 0 and lead.next_attempt_at > utcnow()
               for lead in waiting)
    make_due(app, connected.id)  # an administrator granted the rights
    assert run_push(app, connected).pushed == 2 and len(deals(sandbox)) == 2
