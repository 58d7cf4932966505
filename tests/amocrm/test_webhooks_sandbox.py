"""End to end against the amoCRM sandbox: real webhooks over HTTP, the worker, reconciliation, webhook health
and the spam → lost sync. The connection row is built from tokens the sandbox's OAuth issued (not the UI)."""
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from fixtures.live_services import wait_until
from fixtures.sandbox import sandbox_fixtures
from fixtures.webhooks import deal_pairs, post_webhook, webhook_body
from sqlalchemy import select

from portal.amocrm.api import oauth
from portal.amocrm.connection import client_for, refresh_pipelines
from portal.amocrm.inbox import receive_webhook
from portal.amocrm.reconcile import reconcile_workspace
from portal.amocrm.subscription import check_webhook, webhook_health
from portal.extensions import db
from portal.jobs.queues import AMOCRM, DEFAULT, WEBHOOKS, get_queue
from portal.jobs.worker import build_worker
from portal.leads.spam import mark_lead_spam
from portal.models import AmoCRMConnection, Deal, Lead, SyncLogEntry, WebhookEvent, Workspace

pytestmark = pytest.mark.integration

CLIENT_ID = "webhooks-test-client"
CLIENT_SECRET = "webhooks-test-secret"
REDIRECT_URI = "http://localhost/amocrm/callback"
sandbox_server_fixture, sandbox_fixture = sandbox_fixtures(
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, "Leadpath webhooks tests", scope="module",
    SANDBOX_WEBHOOK_RETRY_DELAYS=[0.2, 0.4], SANDBOX_WEBHOOK_TIMEOUT=2.0)


@pytest.fixture
def workspace_id(app, sandbox, live_server) -> int:
    """A workspace connected to the sandbox's account with real tokens, its pipelines read; no webhook yet."""
    app.config["PUBLIC_BASE_URL"] = live_server
    consent = sandbox.authorize(CLIENT_ID, state="webhooks")
    query = {key: values[0] for key, values in parse_qs(urlsplit(consent["redirect_url"]).query).items()}
    base = oauth.base_url(query["referer"], app.config["AMOCRM_DEV_HOSTS"])
    tokens = oauth.exchange_code(base, CLIENT_ID, CLIENT_SECRET, query["code"], REDIRECT_URI, timeout=5)
    with app.app_context():
        workspace = Workspace(name="Sandbox shop")
        db.session.add(workspace)
        db.session.flush()
        db.session.add(AmoCRMConnection(
            workspace_id=workspace.id, base_domain=query["referer"], amocrm_account_id=consent["account_id"],
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token, expires_at=tokens.expires_at, status="connected"))
        db.session.commit()
        refresh_pipelines(workspace.id)
        return workspace.id


@pytest.fixture
def subscribed(app, workspace_id) -> int:
    """The workspace with its webhook subscribed in the sandbox (through the health check: it was missing)."""
    with app.app_context():
        assert check_webhook(workspace_id)["status"] == "resubscribed"
    return workspace_id


def late_answers(monkeypatch, sandbox) -> None:
    """From now on our endpoint stores each event, then answers later than the sandbox waits: every delivery
    "fails" from amoCRM's side (a timeout) although the event is stored. (A 1 ms timeout instead is not a sure
    failure: a loaded machine may wake the sandbox's wait after the answer has come.)"""
    from portal.ingest import amocrm_webhook

    def store_then_stall(*args):
        receipt = receive_webhook(*args)
        time.sleep(0.5)
        return receipt

    monkeypatch.setattr(amocrm_webhook, "receive_webhook", store_then_stall)
    sandbox.config(webhook_timeout=0.1)


def create_deal(app, workspace_id: int, name: str = "Заявка с сайта", **fields) -> int:
    with app.app_context():
        [created] = client_for(workspace_id).create_leads_complex([{
            "name": name, **fields, "_embedded": {"contacts": [{"first_name": "Иван"}]}}])
        return created["id"]


def main_contact(app, workspace_id: int, deal_id: int) -> int:
    with app.app_context():
        contacts = client_for(workspace_id).get_lead(deal_id, with_=("contacts",))["_embedded"]["contacts"]
        return next(contact["id"] for contact in contacts if contact["is_main"])


def make_lead(app, workspace_id: int, deal_id: int) -> int:
    with app.app_context():
        lead = Lead(workspace_id=workspace_id, name="Иван", utm_source="google", utm_medium="cpc",
                    utm_campaign="spring-sale", amocrm_lead_id=deal_id, sync_status="synced")
        db.session.add(lead)
        db.session.commit()
        return lead.id


def delivered(sandbox, count: int = 1, **match):
    def check():
        found = [d for d in sandbox.deliveries() if all(d.get(k) == v for k, v in match.items())]
        return found if len(found) >= count else None
    return wait_until(check, message=f"{count} deliveries like {match}")


def run_worker(app, *queues):
    build_worker(app, queues or (WEBHOOKS,)).work(burst=True)


def sale_of(app, workspace_id: int, deal_id: int) -> Deal | None:
    with app.app_context():
        sale = db.session.scalar(select(Deal).where(Deal.workspace_id == workspace_id,
                                                    Deal.amocrm_lead_id == deal_id))
        db.session.expunge_all()
        return sale


def test_a_deal_moved_to_won_becomes_a_sale_of_the_lead_and_its_campaign(app, sandbox, subscribed):
    deal_id = create_deal(app, subscribed)
    lead_id = make_lead(app, subscribed, deal_id)
    sandbox.move_lead(deal_id, 142, price=50000)
    delivered(sandbox, actions=["status", "update"], status=200)
    run_worker(app)
    sale = sale_of(app, subscribed, deal_id)
    assert (sale.state, sale.amount, sale.status_id, sale.lead_id) == ("won", Decimal(50000), 142, lead_id)
    assert sale.amocrm_contact_id == main_contact(app, subscribed, deal_id)  # whose sale: new or repeat
    assert sale.closed_at is not None
    with app.app_context():
        campaign = db.session.scalar(select(Lead.utm_campaign).join(Deal, Deal.lead_id == Lead.id)
                                     .where(Deal.id == sale.id))
        assert campaign == "spring-sale"
        assert webhook_health(subscribed)["last_webhook_at"] is not None


def test_failing_deliveries_are_retried_and_end_in_exactly_one_sale(app, sandbox, subscribed, monkeypatch):
    deal_id = create_deal(app, subscribed)
    run_worker(app)
    # Our endpoint stores the event and answers, but later than the sandbox waits: every attempt "fails"
    # from amoCRM's side and is retried with the same body.
    late_answers(monkeypatch, sandbox)
    sandbox.move_lead(deal_id, 142, price=1200)
    attempts = delivered(sandbox, count=3, actions=["status", "update"])
    assert [a["status"] for a in attempts] == ["timeout"] * 3 and len({str(a["body"]) for a in attempts}) == 1
    run_worker(app)
    with app.app_context():
        events = db.session.scalars(select(WebhookEvent).where(WebhookEvent.workspace_id == subscribed)).all()
        assert sum(1 for e in events if "status" in e.payload.get("leads", {})) == 1
        assert db.session.scalar(select(db.func.count(Deal.id)).where(Deal.amocrm_lead_id == deal_id)) == 1
    assert sale_of(app, subscribed, deal_id).amount == Decimal(1200)


def test_a_forged_won_body_cannot_write_revenue_the_deal_is_read_from_amocrm(app, client, sandbox, subscribed):
    deal_id = create_deal(app, subscribed, price=0)
    run_worker(app)
    with app.app_context():
        workspace = db.session.get(Workspace, subscribed)
        url = f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"
        account_id = db.session.scalar(select(AmoCRMConnection.amocrm_account_id))
    forged = webhook_body(deal_pairs("status", deal_id, status_id=142, price=1_000_000_000,
                                     updated_at=int(time.time()) + 3600), account_id=account_id)
    assert post_webhook(client, url, forged).status_code == 200
    run_worker(app)
    sale = sale_of(app, subscribed, deal_id)
    in_amocrm = next(lead for lead in sandbox.leads() if lead["id"] == deal_id)
    assert (sale.state, sale.amount, sale.status_id) == ("open", Decimal(0), in_amocrm["status_id"])
    assert in_amocrm["status_id"] != 142


def test_a_forged_delete_leaves_a_deal_that_amocrm_still_has(app, client, sandbox, subscribed):
    deal_id = create_deal(app, subscribed, price=500)
    run_worker(app)
    with app.app_context():
        workspace = db.session.get(Workspace, subscribed)
        url = f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"
        account_id = db.session.scalar(select(AmoCRMConnection.amocrm_account_id))
    assert post_webhook(client, url, webhook_body(deal_pairs("delete", deal_id), account_id=account_id)).status_code \
        == 200
    run_worker(app)
    sale = sale_of(app, subscribed, deal_id)
    assert (sale.deleted, sale.amount) == (False, Decimal(500))


def test_a_server_error_is_retried_until_stored_once(app, sandbox, subscribed, monkeypatch):
    from portal.amocrm import inbox as services

    deal_id = create_deal(app, subscribed)
    real = services.receive_webhook
    calls = []

    def flaky(public_id, secret, body):
        # Only the status change fails once: the deal's own `add` delivery may still be on its way.
        if b"leads%5Bstatus%5D" in body or b"leads[status]" in body:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database went away")
        return real(public_id, secret, body)

    monkeypatch.setattr("portal.ingest.amocrm_webhook.receive_webhook", flaky)
    sandbox.move_lead(deal_id, 143)
    delivered(sandbox, actions=["status", "update"], status=200)
    attempts = [a["status"] for a in sandbox.deliveries() if a["actions"] == ["status", "update"]]
    assert attempts[0] == 500 and attempts[-1] == 200
    run_worker(app)
    assert sale_of(app, subscribed, deal_id).state == "lost"


def test_reconciliation_finds_a_deal_whose_webhook_never_came(app, sandbox, workspace_id):
    deal_id = create_deal(app, workspace_id, price=7000)  # no webhook subscribed: nothing is delivered
    sandbox.move_lead(deal_id, 142, price=9000)
    assert sale_of(app, workspace_id, deal_id) is None
    with app.app_context():
        counts = reconcile_workspace(workspace_id)
        assert counts["read"] >= 1
        connection = db.session.scalar(select(AmoCRMConnection))
        assert connection.reconciled_until is not None
    sale = sale_of(app, workspace_id, deal_id)
    assert (sale.state, sale.amount) == ("won", Decimal(9000))
    assert sale.amocrm_contact_id == main_contact(app, workspace_id, deal_id)
    with app.app_context():  # amoCRM's creation time orders the customer's deals
        made = client_for(workspace_id).get_lead(deal_id)["created_at"]
    assert int(sale.created_at.timestamp()) == made


def test_a_reconcile_run_that_meets_a_500_is_retried_with_backoff(app, sandbox, workspace_id):
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    from portal.amocrm.jobs import reconcile_connected_workspaces

    with app.app_context():
        assert reconcile_connected_workspaces() == 1
    sandbox.faults(http_500_rate=1.0)
    run_worker(app, DEFAULT)
    sandbox.faults()
    with app.app_context():
        queue = get_queue(DEFAULT)
        scheduled = ScheduledJobRegistry(queue=queue)
        assert scheduled.get_job_ids() == [f"reconcile-{workspace_id}"]
        assert FailedJobRegistry(queue=queue).get_job_ids() == []
        job = queue.fetch_job(f"reconcile-{workspace_id}")
        assert job.retries_left == 3 and job.retry_intervals == [30, 120, 600, 1800]


def test_the_cli_reconciles_a_workspace_since_a_date(app, sandbox, workspace_id):
    deal_id = create_deal(app, workspace_id, price=300)
    with app.app_context():
        public_id = db.session.get(Workspace, workspace_id).public_id
    result = app.test_cli_runner().invoke(args=["amocrm", "reconcile", public_id, "--since", "2020-01-01"])
    assert result.exit_code == 0, result.output
    assert "read=" in result.output
    assert sale_of(app, workspace_id, deal_id).amount == Decimal(300)
    bad = app.test_cli_runner().invoke(args=["amocrm", "reconcile", public_id, "--since", "yesterday"])
    assert bad.exit_code != 0


def test_a_disabled_webhook_is_re_created(app, sandbox, subscribed, monkeypatch):
    late_answers(monkeypatch, sandbox)
    sandbox.config(webhook_disable_after=1)
    deal_id = create_deal(app, subscribed)
    wait_until(lambda: any(hook["disabled"] for hook in sandbox.state()["webhooks"]))
    monkeypatch.undo()
    sandbox.config(webhook_disable_after=100, webhook_timeout=2.0)
    with app.app_context():
        result = check_webhook(subscribed)
        assert (result["status"], result["was"]) == ("resubscribed", "disabled")
        health = webhook_health(subscribed)
        assert health["disabled"] is False and health["checked_at"] is not None
        assert health["last_resubscribed_at"] is not None
    assert not any(hook["disabled"] for hook in sandbox.state()["webhooks"])
    sandbox.move_lead(deal_id, 142, price=10)
    delivered(sandbox, actions=["status", "update"], status=200)


def test_a_rotated_secret_moves_the_subscription(app, sandbox, subscribed):
    from portal.amocrm.subscription import rotate_webhook_secret

    with app.app_context():
        old = db.session.scalar(select(AmoCRMConnection)).webhook_destination
        rotate_webhook_secret(subscribed)
    run_worker(app, AMOCRM)
    with app.app_context():
        workspace = db.session.get(Workspace, subscribed)
        new = db.session.scalar(select(AmoCRMConnection)).webhook_destination
    assert new != old and new.endswith(workspace.webhook_secret)
    assert [hook["destination"] for hook in sandbox.state()["webhooks"]] == [new]


def test_marking_a_lead_as_spam_closes_its_deal_as_lost(app, sandbox, subscribed):
    deal_id = create_deal(app, subscribed)
    lead_id = make_lead(app, subscribed, deal_id)
    with app.app_context():
        mark_lead_spam(subscribed, lead_id)
        assert db.session.get(Lead, lead_id).is_spam
    run_worker(app, AMOCRM)
    deal = next(lead for lead in sandbox.leads() if lead["id"] == deal_id)
    assert deal["status_id"] == 143
    assert sale_of(app, subscribed, deal_id).state == "lost"
    with app.app_context():
        entry = db.session.scalar(select(SyncLogEntry).where(SyncLogEntry.operation == "PATCH /api/v4/leads"))
        assert entry.outcome == "ok" and entry.lead_ids == [lead_id]


def test_a_won_deal_is_not_closed_because_of_a_spam_flag(app, sandbox, subscribed):
    deal_id = create_deal(app, subscribed)
    lead_id = make_lead(app, subscribed, deal_id)
    sandbox.move_lead(deal_id, 142, price=500)
    delivered(sandbox, actions=["status", "update"], status=200)
    run_worker(app)
    with app.app_context():
        mark_lead_spam(subscribed, lead_id)
    run_worker(app, AMOCRM)
    assert next(lead for lead in sandbox.leads() if lead["id"] == deal_id)["status_id"] == 142


def test_connecting_enqueues_the_backfill_by_the_agreed_name(app, workspace_id):
    from portal.amocrm.jobs import reconcile_connected_workspaces

    with app.app_context():
        assert reconcile_connected_workspaces() == 1
        [job] = get_queue(DEFAULT).get_jobs()
        assert (job.func_name, job.args, job.id) == ("portal.amocrm.jobs.reconcile_workspace", (workspace_id,),
                                                     f"reconcile-{workspace_id}")
