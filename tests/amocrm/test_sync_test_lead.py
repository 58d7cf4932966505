"""Settings → amoCRM → "Send a test lead": one lead marked as a test goes through the normal push (the RQ job) to the
sandbox over real HTTP; the page shows it pending, then the deal with its link in the account, or amoCRM's refusal
and what to do. Test leads stay out of the reports."""
from datetime import timedelta

import pytest
import requests
from fixtures.support import log_in, post_form, workspace_of
from fixtures.sync import CLIENT_ID, CLIENT_SECRET, sandbox_tokens

from portal.amocrm.api.payloads import TEST_DEAL_NAME, TEST_TAG
from portal.amocrm.reconcile import reconcile_workspace
from portal.extensions import db
from portal.jobs.queues import AMOCRM
from portal.jobs.worker import build_worker
from portal.models import AmoCRMConnection, Lead
from portal.models.lead import PENDING, SYNCED
from portal.models.types import utcnow
from portal.reports import rollups

pytestmark = pytest.mark.integration


@pytest.fixture
def connected_owner(app, sandbox, owner) -> dict:
    """The owner's workspace connected to the sandbox's main account (tokens from its OAuth)."""
    account = sandbox.main_account()
    pipeline = next(p for p in account["pipelines"] if p["is_main"])
    status_id = next(s["id"] for s in pipeline["statuses"] if s.get("type") != 1 and s["id"] not in (142, 143))
    tokens = sandbox_tokens(sandbox, account["id"])
    workspace_id = workspace_of(app, owner)
    with app.app_context():
        db.session.add(AmoCRMConnection(
            workspace_id=workspace_id, base_domain=sandbox.base_url.split("://")[1], amocrm_account_id=account["id"],
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"], expires_at=utcnow() + timedelta(hours=23), status="connected",
            pipeline_id=pipeline["id"], status_id=status_id, connected_at=utcnow()))
        db.session.commit()
    return {"workspace_id": workspace_id, "account": account}


def send(owner_client):
    return post_form(owner_client, "/settings/amocrm/test-lead", {}, page="/settings/amocrm")


def marked_test(app, workspace_id: int) -> list[Lead]:
    with app.app_context():
        leads = db.session.scalars(db.select(Lead).where(Lead.workspace_id == workspace_id,
                                                         Lead.is_test.is_(True))).all()
        db.session.expunge_all()
        return leads


def run_push_job(app) -> None:
    build_worker(app, [AMOCRM]).work(burst=True)


def test_a_test_lead_goes_through_the_push_and_shows_its_deal(app, sandbox, owner_client, connected_owner):
    page = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert 'action="/settings/amocrm/test-lead"' in page and "amocrm-test-lead-result" not in page

    answer = send(owner_client)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/settings/amocrm#amocrm-test-lead")
    [lead] = marked_test(app, connected_owner["workspace_id"])
    assert lead.name == TEST_DEAL_NAME and lead.sync_status == PENDING
    page = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert 'data-state="pending"' in page and "Sending…" in page

    run_push_job(app)

    [lead] = marked_test(app, connected_owner["workspace_id"])
    assert lead.sync_status == SYNCED and lead.amocrm_lead_id
    [deal] = [d for d in sandbox.state()["leads"] if d["id"] == lead.amocrm_lead_id]
    assert deal["name"] == TEST_DEAL_NAME and deal["account_id"] == connected_owner["account"]["id"]
    assert TEST_TAG in {tag["name"] for tag in deal["_embedded"]["tags"]}
    page = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert 'data-state="synced"' in page
    assert f'href="{sandbox.base_url}/leads/detail/{deal["id"]}"' in page
    # The link opens the deal in the account (the sandbox serves amoCRM's deal page).
    assert requests.get(f"{sandbox.base_url}/leads/detail/{deal['id']}", timeout=5).status_code == 200


def test_test_leads_stay_out_of_the_reports(app, sandbox, owner_client, connected_owner):
    send(owner_client)
    run_push_job(app)
    workspace_id = connected_owner["workspace_id"]
    [lead] = marked_test(app, workspace_id)
    sandbox.move_lead(lead.amocrm_lead_id, 142, price=5000)  # even won, a test deal is no revenue
    with app.app_context():
        reconcile_workspace(workspace_id)
        # Neither the rollups the triggers keep nor the base tables grouped by the report's rules count it.
        assert rollups.rollup_facts(workspace_id, "last") == {}
        assert rollups.base_table_facts(workspace_id, "last", None) == {}
        assert rollups.check(workspace_id) == []


def test_a_refusal_shows_amocrms_reason_and_what_to_do(app, sandbox, owner_client, connected_owner):
    """The connected amoCRM user may not create deals (403 problem JSON): the page shows amoCRM's reason while the
    lead waits, and the connection card says what to do."""
    sandbox.set_account(connected_owner["account"]["id"], denied=["leads:write"])
    send(owner_client)
    run_push_job(app)
    [lead] = marked_test(app, connected_owner["workspace_id"])
    assert lead.sync_status == PENDING and "403" in lead.last_error
    page = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert 'data-state="pending"' in page and "may not create deals (403)" in page
    assert "Leadpath tries again by itself" in page and "Ask an amoCRM administrator" in page
    assert [d for d in sandbox.state()["leads"] if d["name"] == TEST_DEAL_NAME] == []


def test_without_a_connection_nothing_is_made(app, owner_client):
    answer = send(owner_client)
    assert answer.status_code == 302
    assert "Connect amoCRM first" in owner_client.get("/settings/amocrm").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Lead)) == 0


def test_members_cannot_send_a_test_lead(app, client, make_user, owner, connected_owner):
    make_user("member@example.com", role="member", workspace_id=connected_owner["workspace_id"])
    assert log_in(client, "member@example.com").status_code == 302
    assert 'action="/settings/amocrm/test-lead"' not in client.get("/settings/amocrm").get_data(as_text=True)
    assert send(client).status_code == 403
    assert marked_test(app, connected_owner["workspace_id"]) == []
