"""Sync health in Settings → amoCRM, and the buttons that act on it: retry failed leads, resume a paused sync,
change the webhook secret."""
import re

import pytest
from fixtures.support import log_in, post_form
from fixtures.sync import add_leads

from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, Workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def owner_of_connected(app, connected, make_user):
    make_user("boss@example.com", workspace_id=connected.id)
    client = app.test_client()
    log_in(client, "boss@example.com")
    return client


def set_leads(app, **values):
    with app.app_context():
        db.session.execute(db.update(Lead).values(**values))
        db.session.commit()


def test_settings_show_the_sync_figures(app, connected, owner_of_connected):
    add_leads(app, connected.id, 3)
    set_leads(app, sync_status="failed", last_error="amoCRM refused this lead")
    add_leads(app, connected.id, 2)
    page = owner_of_connected.get("/settings/amocrm").get_data(as_text=True)
    section = page[page.index('id="amocrm-sync"'):page.index('id="amocrm-webhook"')]
    assert re.search(r"Waiting to be sent</dt><dd>2\b", section)
    assert re.search(r"Failed</dt><dd><span class=\"badge bad\">3</span>", section)
    assert "Retry all failed leads" in section


def test_retry_all_failed_leads_puts_them_back_in_line(app, connected, owner_of_connected, redis_client):
    add_leads(app, connected.id, 3)
    set_leads(app, sync_status="failed", sync_attempts=10, last_error="boom")
    response = post_form(owner_of_connected, "/sync/leads/retry-failed?next=/settings/amocrm", {},
                         page="/settings/amocrm")
    assert response.headers["Location"] == "/settings/amocrm"
    with app.app_context():
        assert {(lead.sync_status, lead.sync_attempts, lead.last_error) for lead in db.session.scalars(
            db.select(Lead))} == {("pending", 0, None)}
    assert redis_client.exists(f"rq:job:push-leads-{connected.id}")


def test_retry_one_failed_lead(app, connected, owner_of_connected):
    first, second = add_leads(app, connected.id, 2)
    set_leads(app, sync_status="failed")
    post_form(owner_of_connected, f"/sync/leads/{first}/retry", {}, page="/settings/amocrm")
    with app.app_context():
        assert db.session.get(Lead, first).sync_status == "pending"
        assert db.session.get(Lead, second).sync_status == "failed"


def test_a_blocked_sync_is_resumed_by_the_owner_only(app, connected, owner_of_connected, make_user):
    with app.app_context():
        db.session.execute(db.update(AmoCRMConnection).values(status="blocked", last_error="403"))
        db.session.commit()
    make_user("member@example.com", role="member", workspace_id=connected.id)
    member = app.test_client()
    log_in(member, "member@example.com")
    assert "Resume sync" not in member.get("/settings/amocrm").get_data(as_text=True)
    assert post_form(member, "/sync/resume", {}, page="/settings/amocrm").status_code == 403
    assert "Resume sync" in owner_of_connected.get("/settings/amocrm").get_data(as_text=True)
    post_form(owner_of_connected, "/sync/resume", {}, page="/settings/amocrm")
    with app.app_context():
        assert db.session.scalar(db.select(AmoCRMConnection.status)) == "connected"


def test_changing_the_webhook_secret_changes_the_url(app, connected, owner_of_connected):
    with app.app_context():
        before = db.session.get(Workspace, connected.id).webhook_secret
    page = owner_of_connected.get("/settings/amocrm").get_data(as_text=True)
    assert before in page
    post_form(owner_of_connected, "/settings/amocrm/webhook/rotate", {}, page="/settings/amocrm")
    with app.app_context():
        after = db.session.get(Workspace, connected.id).webhook_secret
    assert after != before and after in owner_of_connected.get("/settings/amocrm").get_data(as_text=True)
