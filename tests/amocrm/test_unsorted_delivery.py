"""Delivery to amoCRM's Unsorted: what a lead becomes there, exactly once, and how a manager's accept or decline
comes back into the lead — read from amoCRM, announced by real webhooks over HTTP. Against the sandbox, on
PostgreSQL and Redis."""
import re

import pytest
import requests
from fixtures.live_services import wait_until
from fixtures.sync import StaticTokens, add_leads
from sqlalchemy import select

from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.connection import refresh_pipelines
from portal.amocrm.limiter import RequestLimiter
from portal.amocrm.push import push_pending
from portal.amocrm.subscription import check_webhook
from portal.extensions import db
from portal.jobs.queues import WEBHOOKS
from portal.jobs.worker import build_worker
from portal.models import AmoCRMConnection, Deal, Lead

pytestmark = pytest.mark.integration


def base_of(connected) -> str:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == connected.id))
    return f"http://{connection.base_domain}"


def deliver_to_unsorted(app, connected) -> None:
    with app.app_context():
        connection = db.session.scalar(select(AmoCRMConnection).where(
            AmoCRMConnection.workspace_id == connected.id))
        connection.delivery_mode = "unsorted"
        db.session.commit()
        refresh_pipelines(connected.id)


def push(app, connected, timeout=5.0):
    with app.app_context():
        limiter = RequestLimiter(app.extensions["leadpath_redis"], f"test:{connected.id}", 1000)
        client = AmoCRMClient(base_of(connected), StaticTokens(connected.tokens["access_token"]), timeout=timeout,
                              before_request=limiter.wait)
        outcome = push_pending(connected.id, client, limiter)
        db.session.commit()
        return outcome


def leads_of(app, workspace_id):
    with app.app_context():
        leads = db.session.scalars(select(Lead).where(Lead.workspace_id == workspace_id).order_by(Lead.id)).all()
        db.session.expunge_all()
        return leads


def make_due(app, workspace_id):
    with app.app_context():
        db.session.execute(db.update(Lead).where(Lead.workspace_id == workspace_id).values(next_attempt_at=None))
        db.session.commit()


@pytest.fixture
def unsorted_workspace(app, sandbox, connected):
    deliver_to_unsorted(app, connected)
    return connected


def test_a_lead_arrives_in_unsorted_with_its_form_metadata_tags_and_tracking_fields(app, sandbox,
                                                                                     unsorted_workspace):
    with app.app_context():
        lead = Lead(workspace_id=unsorted_workspace.id, name="Иван", phone="+79991234567", email="ivan@example.com",
                    utm_source="yandex", utm_medium="cpc", utm_campaign="autumn", referrer="https://ya.ru/",
                    landing_page="https://shop.example/landing?utm_source=yandex", ip="203.0.113.7")
        db.session.add(lead)
        db.session.commit()
        lead_id, sent_at = lead.id, int(lead.created_at.timestamp())
    assert push(app, unsorted_workspace).pushed == 1
    [item] = sandbox.unsorted()
    assert (item["status"], item["category"], item["source_name"]) == ("new", "forms", "Leadpath")
    assert item["pipeline_id"] == unsorted_workspace.pipeline_id
    assert item["metadata"] == {"form_id": "leadpath", "form_name": "Leadpath",
                                "form_page": "https://shop.example/landing?utm_source=yandex",
                                "form_sent_at": sent_at, "ip": "203.0.113.7", "referer": "https://ya.ru/"}
    [deal] = item["_embedded"]["leads"]
    incoming = next(s["id"] for p in sandbox.state()["accounts"][0]["pipelines"] if p["id"] == item["pipeline_id"]
                    for s in p["statuses"] if s["type"] == 1)
    assert deal["status_id"] == incoming
    assert {"leadpath", f"lp-{lead_id}"} <= {tag["name"] for tag in deal["_embedded"]["tags"]}
    assert {f["field_code"]: f["values"][0]["value"] for f in deal["custom_fields_values"]}.items() >= {
        "UTM_SOURCE": "yandex", "UTM_MEDIUM": "cpc", "UTM_CAMPAIGN": "autumn"}.items()
    [stored] = leads_of(app, unsorted_workspace.id)
    assert (stored.sync_status, stored.unsorted_state, stored.unsorted_uid) == ("synced", "waiting", item["uid"])
    assert stored.amocrm_lead_id == deal["id"]


@pytest.mark.parametrize("fault", [{"drop_after_commit_rate": 1.0}, {"http_500_rate": 1.0}])
def test_an_ambiguous_failure_never_makes_a_second_unsorted_item(app, sandbox, unsorted_workspace, fault):
    add_leads(app, unsorted_workspace.id, 4)
    sandbox.faults(**fault)
    first = push(app, unsorted_workspace, timeout=1.0)
    assert first.pushed == 0 and first.retried == 4
    made_by_the_failed_call = len(sandbox.unsorted())
    sandbox.faults()
    make_due(app, unsorted_workspace.id)
    second = push(app, unsorted_workspace)
    assert (second.adopted, second.pushed) == (made_by_the_failed_call, 4 - made_by_the_failed_call)
    items = sandbox.unsorted()
    assert len(items) == 4
    leads = leads_of(app, unsorted_workspace.id)
    assert {lead.unsorted_uid for lead in leads} == {item["uid"] for item in items}
    assert {lead.unsorted_state for lead in leads} == {"waiting"}


def test_an_item_accepted_before_the_retry_is_adopted_as_accepted_not_sent_again(app, sandbox, unsorted_workspace):
    add_leads(app, unsorted_workspace.id, 1)
    sandbox.faults(drop_after_commit_rate=1.0)
    push(app, unsorted_workspace, timeout=1.0)
    sandbox.faults()
    [item] = sandbox.unsorted()
    sandbox.accept_unsorted(item["uid"])
    make_due(app, unsorted_workspace.id)
    assert push(app, unsorted_workspace).adopted == 1
    assert len(sandbox.unsorted()) == 1
    [lead] = leads_of(app, unsorted_workspace.id)
    assert (lead.unsorted_state, lead.amocrm_lead_id) == ("accepted", item["_embedded"]["leads"][0]["id"])


def test_the_sandbox_refuses_form_items_without_the_documented_metadata(app, sandbox, unsorted_workspace):
    with app.app_context():
        base = base_of(unsorted_workspace)
    headers = {"Authorization": f"Bearer {unsorted_workspace.tokens['access_token']}"}
    item = {"source_name": "x", "source_uid": "y", "metadata": {"form_id": "f", "form_name": "F",
                                                               "form_sent_at": "yesterday"},
            "_embedded": {"leads": [{"name": "n"}]}}
    response = requests.post(f"{base}/api/v4/leads/unsorted/forms", json=[item], headers=headers, timeout=5)
    assert response.status_code == 400
    paths = {e["path"] for entry in response.json()["validation-errors"] for e in entry["errors"]}
    assert paths == {"metadata.form_page", "metadata.form_sent_at"}


def test_the_sandbox_serves_decline_by_the_methods_the_account_is_set_to(app, sandbox, unsorted_workspace):
    add_leads(app, unsorted_workspace.id, 2)
    push(app, unsorted_workspace)
    with app.app_context():
        base = base_of(unsorted_workspace)
    headers = {"Authorization": f"Bearer {unsorted_workspace.tokens['access_token']}"}
    first, second = (item["uid"] for item in sandbox.unsorted())
    assert requests.post(f"{base}/api/v4/leads/unsorted/{first}/decline", headers=headers,
                         timeout=5).status_code == 405
    assert requests.delete(f"{base}/api/v4/leads/unsorted/{first}/decline", headers=headers,
                           timeout=5).status_code == 200
    sandbox.set_account(unsorted_workspace.account["id"], unsorted_decline_methods=["POST"])
    assert requests.post(f"{base}/api/v4/leads/unsorted/{second}/decline", headers=headers,
                         timeout=5).status_code == 200
    assert {item["status"] for item in sandbox.unsorted()} == {"declined"}


@pytest.fixture
def subscribed_unsorted(app, sandbox, unsorted_workspace, live_server):
    app.config["PUBLIC_BASE_URL"] = live_server
    with app.app_context():
        assert check_webhook(unsorted_workspace.id)["status"] == "resubscribed"
    return unsorted_workspace


def settled(app, sandbox, workspace_id: int, state: str) -> Lead:
    def check():
        build_worker(app, (WEBHOOKS,)).work(burst=True)
        [lead] = leads_of(app, workspace_id)
        return lead if lead.unsorted_state == state else None
    return wait_until(check, message=f"the lead {state}")


def deal_of(app, workspace_id: int, deal_id: int) -> Deal | None:
    with app.app_context():
        deal = db.session.scalar(select(Deal).where(Deal.workspace_id == workspace_id, Deal.amocrm_lead_id == deal_id))
        db.session.expunge_all()
        return deal


def test_a_managers_accept_comes_back_as_accepted_into_the_deal(app, sandbox, subscribed_unsorted):
    add_leads(app, subscribed_unsorted.id, 1)
    push(app, subscribed_unsorted)
    [item] = sandbox.unsorted()
    sandbox.accept_unsorted(item["uid"], status_id=subscribed_unsorted.status_id)
    lead = settled(app, sandbox, subscribed_unsorted.id, "accepted")
    deal = deal_of(app, subscribed_unsorted.id, lead.amocrm_lead_id)
    assert (deal.status_id, deal.state, deal.deleted, deal.lead_id) == (subscribed_unsorted.status_id, "open",
                                                                        False, lead.id)


@pytest.mark.parametrize("outcome", ["delete", "lost"])
def test_a_managers_decline_comes_back_as_declined_and_leaves_the_deal_counts(app, sandbox, subscribed_unsorted,
                                                                              outcome):
    sandbox.set_account(subscribed_unsorted.account["id"], unsorted_decline_outcome=outcome)
    add_leads(app, subscribed_unsorted.id, 1)
    push(app, subscribed_unsorted)
    [item] = sandbox.unsorted()
    sandbox.decline_unsorted(item["uid"])
    lead = settled(app, sandbox, subscribed_unsorted.id, "declined")
    deal = deal_of(app, subscribed_unsorted.id, lead.amocrm_lead_id)
    if outcome == "delete":
        assert deal is None or deal.deleted
    else:
        assert deal.status_id == 143


def test_a_forged_unsorted_webhook_cannot_settle_a_lead_the_lead_is_read(app, client, sandbox, subscribed_unsorted):
    add_leads(app, subscribed_unsorted.id, 1)
    push(app, subscribed_unsorted)
    [lead] = leads_of(app, subscribed_unsorted.id)
    with app.app_context():
        from portal.models import Workspace
        workspace = db.session.get(Workspace, subscribed_unsorted.id)
        url = f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"
    body = {"unsorted[delete][0][uid]": lead.unsorted_uid, "unsorted[delete][0][action]": "decline",
            "unsorted[delete][0][decline_result][leads][0]": str(lead.amocrm_lead_id),
            "account[id]": str(subscribed_unsorted.account["id"]), "account[subdomain]": "x"}
    assert client.post(url, data=body).status_code == 200
    build_worker(app, (WEBHOOKS,)).work(burst=True)
    [after] = leads_of(app, subscribed_unsorted.id)
    assert after.unsorted_state == "waiting"


def test_the_owner_chooses_unsorted_in_settings_and_a_viewer_cannot(app, connected, make_user):
    from fixtures.support import log_in, post_form

    make_user("boss@example.com", workspace_id=connected.id)
    make_user("viewer@example.com", role="viewer", workspace_id=connected.id)
    owner, viewer = app.test_client(), app.test_client()
    log_in(owner, "boss@example.com")
    log_in(viewer, "viewer@example.com")
    page = owner.get("/settings/amocrm").get_data(as_text=True)
    assert 'id="amocrm-delivery"' in page and re.search(r'<input checked[^>]*value="deal"', page)
    refused = post_form(viewer, "/settings/amocrm/delivery", {"mode": "unsorted"}, page="/settings/amocrm")
    assert refused.status_code == 403
    response = post_form(owner, "/settings/amocrm/delivery", {"mode": "unsorted"}, page="/settings/amocrm")
    assert response.status_code == 302
    assert post_form(owner, "/settings/amocrm/delivery", {"mode": "everywhere"}, page="/settings/amocrm"
                     ).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(AmoCRMConnection.delivery_mode).where(
            AmoCRMConnection.workspace_id == connected.id)) == "unsorted"
    assert re.search(r'<input checked[^>]*value="unsorted"', owner.get("/settings/amocrm").get_data(as_text=True))


@pytest.mark.parametrize(("state", "shown"), [("waiting", "In Unsorted"), ("accepted", "accepted from Unsorted → deal"),
                                              ("declined", "declined in Unsorted")])
def test_the_lead_page_says_where_an_unsorted_lead_stands(app, connected, make_user, state, shown):
    from fixtures.support import log_in

    make_user("boss@example.com", workspace_id=connected.id)
    [lead_id] = add_leads(app, connected.id, 1, sync_status="synced", amocrm_lead_id=777, unsorted_uid="u1",
                          unsorted_state=state)
    client = app.test_client()
    log_in(client, "boss@example.com")
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert f'data-state="{state}"' in page and shown in page


def test_a_decline_whose_webhook_was_lost_is_found_by_the_hourly_reconciliation(app, sandbox, unsorted_workspace):
    from portal.amocrm.reconcile import reconcile_workspace

    add_leads(app, unsorted_workspace.id, 2)
    push(app, unsorted_workspace)
    declined, accepted = sandbox.unsorted()
    sandbox.decline_unsorted(declined["uid"])  # no webhook is subscribed: both events are lost
    sandbox.accept_unsorted(accepted["uid"])
    with app.app_context():
        counts = reconcile_workspace(unsorted_workspace.id)
    assert counts["unsorted_read"] == 1  # the accepted deal was among the changed deals; the declined one is gone
    states = {lead.unsorted_uid: lead.unsorted_state for lead in leads_of(app, unsorted_workspace.id)}
    assert states == {declined["uid"]: "declined", accepted["uid"]: "accepted"}
