"""The lead page's actions: retry a failed lead; mark a lead as spam and take it back."""
import pytest
from fixtures.support import log_in, post_form
from fixtures.sync import add_leads

from portal.extensions import db
from portal.models import Lead


@pytest.fixture
def owner_client_of(app, make_user):
    def client_for_workspace(workspace_id):
        make_user("lead-owner@example.com", workspace_id=workspace_id)
        client = app.test_client()
        log_in(client, "lead-owner@example.com")
        return client

    return client_for_workspace


@pytest.fixture
def workspace_id(app):
    from portal.models import Workspace

    with app.app_context():
        workspace = Workspace(name="Lead actions")
        db.session.add(workspace)
        db.session.commit()
        return workspace.id


def lead(app, lead_id):
    with app.app_context():
        return db.session.get(Lead, lead_id)


def test_a_failed_lead_is_retried_from_its_page(app, workspace_id, owner_client_of):
    [lead_id] = add_leads(app, workspace_id, 1, sync_status="failed", last_error="amoCRM refused this lead")
    client = owner_client_of(workspace_id)
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    assert "Retry sending to amoCRM" in page and "amoCRM refused this lead" in page
    response = post_form(client, f"/sync/leads/{lead_id}/retry?next=/leads/{lead_id}", {}, page=f"/leads/{lead_id}")
    assert response.headers["Location"] == f"/leads/{lead_id}"
    assert (lead(app, lead_id).sync_status, lead(app, lead_id).last_error) == ("pending", None)
    assert "Retry sending to amoCRM" not in client.get(f"/leads/{lead_id}").get_data(as_text=True)


def test_the_failed_list_offers_to_retry_them_all(app, workspace_id, owner_client_of):
    add_leads(app, workspace_id, 2, sync_status="failed")
    client = owner_client_of(workspace_id)
    assert "Retry all failed leads" in client.get("/leads?sync=failed").get_data(as_text=True)
    post_form(client, "/sync/leads/retry-failed?next=/leads", {}, page="/leads?sync=failed")
    with app.app_context():
        assert set(db.session.scalars(db.select(Lead.sync_status))) == {"pending"}


def test_spam_before_the_push_is_never_sent_and_not_spam_sends_it(app, workspace_id, owner_client_of, redis_client):
    [lead_id] = add_leads(app, workspace_id, 1)
    client = owner_client_of(workspace_id)
    post_form(client, f"/leads/{lead_id}/spam", {"spam": "1"}, page=f"/leads/{lead_id}")
    assert (lead(app, lead_id).is_spam, lead(app, lead_id).sync_status) == (True, "skipped")
    assert "Not spam" in client.get(f"/leads/{lead_id}").get_data(as_text=True)
    post_form(client, f"/leads/{lead_id}/spam", {"spam": "0"}, page=f"/leads/{lead_id}")
    assert (lead(app, lead_id).is_spam, lead(app, lead_id).sync_status) == (False, "pending")
    assert redis_client.exists(f"rq:job:push-leads-{workspace_id}")


def test_spam_with_a_deal_queues_closing_it_as_lost(app, workspace_id, owner_client_of, redis_client):
    [lead_id] = add_leads(app, workspace_id, 1, sync_status="synced", amocrm_lead_id=777)
    client = owner_client_of(workspace_id)
    post_form(client, f"/leads/{lead_id}/spam", {"spam": "1"}, page=f"/leads/{lead_id}")
    assert lead(app, lead_id).is_spam
    assert redis_client.exists(f"rq:job:close-deal-{lead_id}")


def test_prune_log_keeps_the_retention_period_and_events_still_to_be_handled(app, runner, workspace_id):
    from datetime import timedelta

    from portal.models import SyncLogEntry, WebhookEvent
    from portal.models.types import utcnow

    old, recent = utcnow() - timedelta(days=31), utcnow() - timedelta(days=29)
    with app.app_context():
        for when in (old, recent):
            db.session.add(SyncLogEntry(workspace_id=workspace_id, created_at=when, direction="outbound",
                                        operation="POST /api/v4/leads/complex", outcome="ok"))
        for when, status in ((old, "processed"), (old, "ignored"), (old, "received"), (old, "failed"),
                             (recent, "processed")):
            db.session.add(WebhookEvent(workspace_id=workspace_id, received_at=when, status=status,
                                        body_sha256=f"{status}-{when:%d}", payload={"leads": {"add": [{"id": "1"}]}}))
        db.session.commit()
    result = runner.invoke(args=["sync", "prune-log", "--days", "30"])
    assert result.exit_code == 0 and "removed 1 sync log rows and 2 webhook events" in result.output
    with app.app_context():
        assert db.session.scalars(db.select(SyncLogEntry.created_at)).all() == [recent]
        kept = db.session.execute(db.select(WebhookEvent.status, WebhookEvent.received_at)
                                  .order_by(WebhookEvent.id)).all()
        assert kept == [("received", old), ("failed", old), ("processed", recent)]
