"""Tokens that stay alive: refresh before expiry under a lock that holds across threads and processes,
revoked refresh → needs_reauth and the banner, reconnecting restores, disconnect removes the webhook,
idle connections are refreshed on a schedule, long-lived tokens."""
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fixtures.connect import query_of, sandbox_fixture, sandbox_host, sandbox_server_fixture  # noqa: F401
from fixtures.support import DATABASE_URL, REDIS_URL, csrf_from, post_form, workspace_of

from portal.amocrm.api import oauth
from portal.amocrm.api.errors import TokenRevoked, Unauthorized
from portal.amocrm.connection import NotConnected, client_for
from portal.extensions import db
from portal.models import AmoCRMConnection
from portal.models.types import utcnow

pytestmark = pytest.mark.integration
TESTS = Path(__file__).resolve().parents[1]
REDIRECT = "http://localhost/amocrm/callback"  # the test client's host


@pytest.fixture
def keys(app, sandbox):
    keys = sandbox.create_integration("Leadpath (token tests)", REDIRECT)
    app.config.update(AMOCRM_CLIENT_ID=keys["client_id"], AMOCRM_CLIENT_SECRET=keys["client_secret"],
                      AMOCRM_OAUTH_URL=f"{sandbox.base_url}/oauth",
                      AMOCRM_BUTTON_SRC=f"{sandbox.base_url}/auth/button.min.js")
    return keys


def connect_through_callback(client, sandbox, keys):
    """The owner's browser: Settings renders a state, amoCRM redirects to the callback."""
    page = client.get("/settings/amocrm").get_data(as_text=True)
    state = page.split('data-state="', 1)[1].split('"', 1)[0]
    redirect = sandbox.authorize(keys["client_id"], state=state)["redirect_url"]
    answer = client.get(redirect.replace("http://localhost", ""))
    assert answer.status_code == 200, answer.get_data(as_text=True)


def row(app, workspace_id):
    with app.app_context():
        connection = db.session.query(AmoCRMConnection).filter_by(workspace_id=workspace_id).one()
        db.session.expunge(connection)
        return connection


def expire_everything(app, sandbox, workspace_id):
    """The stored access token is past its expiry for us and for amoCRM."""
    with app.app_context():
        db.session.execute(db.update(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    sandbox.expire_tokens()
    sandbox.reset_counters()


def test_the_token_is_refreshed_five_minutes_before_expiry(app, owner_client, owner, sandbox, keys):
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    before = row(app, workspace_id)
    with app.app_context():
        db.session.execute(db.update(AmoCRMConnection).values(expires_at=utcnow() + timedelta(minutes=4)))
        db.session.commit()
    sandbox.reset_counters()
    with app.app_context():
        assert client_for(workspace_id).get_account()["subdomain"] == "sandbox"
    after = row(app, workspace_id)
    assert sandbox.counters()["tokens_refreshed"] == 1
    assert after.refresh_token != before.refresh_token and after.expires_at > utcnow() + timedelta(hours=23)
    assert after.last_refresh_at > before.last_refresh_at


def test_refresh_race_threads_and_processes_refresh_exactly_once(app, owner_client, owner, sandbox, keys):
    """20 calls at once (6 threads here, 7 in each of two other processes) with an expired token."""
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    expire_everything(app, sandbox, workspace_id)
    spec = {"database_url": DATABASE_URL, "redis_url": REDIS_URL, "client_id": keys["client_id"],
            "client_secret": keys["client_secret"], "workspace_id": workspace_id, "threads": 7}
    workers = [subprocess.Popen([sys.executable, str(TESTS / "fixtures" / "connect_race_worker.py"), json.dumps(spec)],
                                cwd=TESTS.parent, env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        results, start = [], threading.Barrier(7)

        def call():
            with app.app_context():
                start.wait()
                try:
                    results.append(client_for(workspace_id).get_account()["id"])
                except Exception as exc:  # noqa: BLE001  (any error fails the test below)
                    results.append(repr(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        start.wait()
        for thread in threads:
            thread.join(60)
        outcomes = [json.loads(worker.communicate(timeout=60)[0].strip().splitlines()[-1]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [r for r in results if not isinstance(r, int)] == [] and len(results) == 6
    assert [o["errors"] for o in outcomes] == [[], []] and sum(o["ok"] for o in outcomes) == 14
    counters = sandbox.counters()
    assert counters["tokens_refreshed"] == 1 and counters["refresh_revoked"] == 0
    connection = row(app, workspace_id)
    assert connection.status == "connected" and connection.last_error is None
    # Still alive: the stored refresh token is the current one.
    expire_everything(app, sandbox, workspace_id)
    with app.app_context():
        assert client_for(workspace_id).get_account()["subdomain"] == "sandbox"
    assert sandbox.counters()["tokens_refreshed"] == 1


def test_a_401_refreshes_once_and_replays(app, owner_client, owner, sandbox, keys):
    connect_through_callback(owner_client, sandbox, keys)
    sandbox.expire_tokens()  # amoCRM forgets the token although we think it is fresh
    sandbox.reset_counters()
    with app.app_context():
        assert client_for(workspace_of(app, owner)).get_pipelines()
    assert sandbox.counters()["tokens_refreshed"] == 1


def test_a_revoked_refresh_token_needs_reauth_shows_the_banner_and_reconnecting_restores(
        app, owner_client, owner, sandbox, keys):
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    stolen = row(app, workspace_id).refresh_token
    oauth.refresh(sandbox.base_url, keys["client_id"], keys["client_secret"], stolen)  # burnt elsewhere
    expire_everything(app, sandbox, workspace_id)
    with app.app_context(), pytest.raises(TokenRevoked):
        client_for(workspace_id).get_account()
    connection = row(app, workspace_id)
    assert connection.status == "needs_reauth" and "Token has been revoked" in connection.last_error
    with app.app_context(), pytest.raises(NotConnected):
        client_for(workspace_id)
    dashboard = owner_client.get("/").get_data(as_text=True)
    assert "Reconnect amoCRM" in dashboard and 'href="/settings/amocrm"' in dashboard
    assert owner_client.get("/amocrm/status").get_json()["status"] == "needs_reauth"

    connect_through_callback(owner_client, sandbox, keys)
    assert row(app, workspace_id).status == "connected"
    assert "Reconnect amoCRM" not in owner_client.get("/").get_data(as_text=True)
    with app.app_context():
        assert client_for(workspace_id).get_account()["subdomain"] == "sandbox"


def test_members_do_not_see_the_banner(app, owner_client, owner, make_user, client, sandbox, keys):
    from fixtures.support import log_in

    connect_through_callback(owner_client, sandbox, keys)
    with app.app_context():
        db.session.execute(db.update(AmoCRMConnection).values(status="needs_reauth"))
        db.session.commit()
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    log_in(client, "member@example.com")
    assert "Reconnect amoCRM" not in client.get("/").get_data(as_text=True)


def test_disconnect_removes_the_webhook_and_wipes_the_tokens(app, owner_client, owner, sandbox, keys):
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    destination = row(app, workspace_id).webhook_destination
    assert [h["destination"] for h in sandbox.state()["webhooks"]] == [destination]
    answer = post_form(owner_client, "/amocrm/disconnect", {}, page="/settings/amocrm")
    assert answer.status_code == 302
    assert sandbox.state()["webhooks"] == []
    connection = row(app, workspace_id)
    assert connection.status == "disconnected" and connection.access_token is None
    assert connection.refresh_token is None and connection.amocrm_account_id  # history kept
    assert owner_client.get("/amocrm/status").get_json()["connected"] is False
    with app.app_context(), pytest.raises(NotConnected):
        client_for(workspace_id)


def test_members_cannot_disconnect(app, owner_client, owner, make_user, client, sandbox, keys):
    from fixtures.support import log_in

    connect_through_callback(owner_client, sandbox, keys)
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    log_in(client, "member@example.com")
    token = csrf_from(client.get("/settings/amocrm").get_data(as_text=True))
    assert client.post("/amocrm/disconnect", data={"csrf_token": token}).status_code == 403
    assert row(app, workspace_of(app, owner)).status == "connected"


def test_the_pipeline_chooser_stores_the_choice(app, owner_client, owner, sandbox, keys):
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    other = next(p for p in sandbox.state()["accounts"][0]["pipelines"] if not p["is_main"])
    status = next(s for s in other["statuses"] if s["id"] not in (142, 143))
    page = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert f'value="{other["id"]}:{status["id"]}"' in page
    answer = post_form(owner_client, "/settings/amocrm/pipeline", {"target": f"{other['id']}:{status['id']}"},
                       page="/settings/amocrm")
    assert answer.status_code == 302
    connection = row(app, workspace_id)
    assert (connection.pipeline_id, connection.status_id) == (other["id"], status["id"])
    refused = post_form(owner_client, "/settings/amocrm/pipeline", {"target": "1:142"}, page="/settings/amocrm")
    assert refused.status_code == 400
    assert post_form(owner_client, "/settings/amocrm/pipelines/refresh", {}, page="/settings/amocrm").status_code == 302
    assert (row(app, workspace_id).pipeline_id, row(app, workspace_id).status_id) == (other["id"], status["id"])


def test_idle_connections_are_refreshed_by_the_scheduled_job(app, owner_client, owner, sandbox, keys):
    from portal.amocrm.token_provider import refresh_idle_connections
    from portal.periodic_jobs import PERIODIC_JOBS

    assert any(job.func == "portal.amocrm.jobs.refresh_idle_connections" for job in PERIODIC_JOBS)
    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    sandbox.reset_counters()
    with app.app_context():
        assert refresh_idle_connections() == {"refreshed": 0, "failed": 0}  # refreshed just now
        db.session.execute(db.update(AmoCRMConnection).values(last_refresh_at=utcnow() - timedelta(days=8)))
        db.session.commit()
        assert refresh_idle_connections() == {"refreshed": 1, "failed": 0}
    assert sandbox.counters()["tokens_refreshed"] == 1
    assert row(app, workspace_id).last_refresh_at > utcnow() - timedelta(minutes=1)


def test_a_long_lived_token_can_be_pasted(app, owner_client, owner, sandbox, keys):
    code = query_of(sandbox.authorize(keys["client_id"], state="x")["redirect_url"])["code"]
    pair = oauth.exchange_code(sandbox.base_url, keys["client_id"], keys["client_secret"], code, REDIRECT)
    refused = post_form(owner_client, "/settings/amocrm/long-lived-token",
                        {"base_domain": "evil.example", "token": pair.access_token}, page="/settings/amocrm")
    assert refused.status_code == 400 and "amoCRM address" in refused.get_data(as_text=True)
    answer = post_form(owner_client, "/settings/amocrm/long-lived-token",
                       {"base_domain": f"http://{sandbox_host(sandbox)}/", "token": pair.access_token},
                       page="/settings/amocrm")
    assert answer.status_code == 302
    workspace_id = workspace_of(app, owner)
    connection = row(app, workspace_id)
    assert connection.auth_type == "long_lived" and connection.status == "connected" and connection.expires_at
    assert connection.webhook_destination and connection.pipeline_id
    with app.app_context():
        assert client_for(workspace_id).get_account()["subdomain"] == "sandbox"
    sandbox.expire_tokens()
    with app.app_context(), pytest.raises(Unauthorized):
        client_for(workspace_id).get_account()
    assert row(app, workspace_id).status == "needs_reauth"


def test_reconnecting_to_another_account_forgets_the_contact_ids_of_the_first(app, owner):
    from portal.amocrm.connection import store_connection
    from portal.models import AmoCRMContact

    workspace_id = workspace_of(app, owner)
    with app.app_context():
        connection = AmoCRMConnection(workspace_id=workspace_id, base_domain="one.amocrm.ru", amocrm_account_id=1)
        db.session.add_all([connection, AmoCRMContact(workspace_id=workspace_id, key="+79990001122",
                                                      amocrm_contact_id=501)])
        db.session.commit()
        tokens = {"auth_type": "oauth", "client_id": "c", "client_secret": "s", "access_token": "a",
                  "refresh_token": "r", "expires_at": None}
        store_connection(connection, host="one.amocrm.ru", account={"id": 1}, **tokens)  # the same account again
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(AmoCRMContact.id))) == 1
        store_connection(connection, host="two.amocrm.ru", account={"id": 2}, **tokens)
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(AmoCRMContact.id))) == 0


def test_a_refusal_after_another_process_rotated_the_pair_uses_the_new_pair(app, owner_client, owner, sandbox, keys,
                                                                             monkeypatch):
    """Before declaring the connection revoked, the refresh path compares the stored refresh token with the one
    it sent: another process that rotated it meanwhile stored a pair that works."""
    from portal.amocrm import token_provider as tokens

    connect_through_callback(owner_client, sandbox, keys)
    workspace_id = workspace_of(app, owner)
    expire_everything(app, sandbox, workspace_id)
    real_refresh = oauth.refresh
    writers = []

    def rotated_elsewhere(base, client_id, client_secret, refresh_token, redirect_uri=None, **kwargs):
        pair = real_refresh(base, client_id, client_secret, refresh_token, redirect_uri, **kwargs)

        def store_their_pair():  # the other process, waiting for our lock to store the pair it won
            with app.app_context():
                connection = db.session.scalar(db.select(AmoCRMConnection).with_for_update()
                                               .where(AmoCRMConnection.workspace_id == workspace_id))
                connection.access_token, connection.refresh_token = pair.access_token, pair.refresh_token
                connection.expires_at = pair.expires_at
                db.session.commit()
                db.session.remove()

        writer = threading.Thread(target=store_their_pair)
        writer.start()
        writers.append(writer)
        raise TokenRevoked("Token has been revoked", hint="Token has been revoked", status=401)

    real_after_refusal = tokens.ConnectionTokens._after_refusal

    def after_their_commit(self, refusal, sent):
        # Our refresh's transaction has ended: the other process, blocked on our row lock until now, stores its
        # pair before we look again (joined here, so a busy machine cannot reorder the two).
        for writer in writers:
            writer.join()
        return real_after_refusal(self, refusal, sent)

    monkeypatch.setattr(tokens.oauth, "refresh", rotated_elsewhere)
    monkeypatch.setattr(tokens.ConnectionTokens, "_after_refusal", after_their_commit)
    with app.app_context():
        assert client_for(workspace_id).get_account()["subdomain"] == "sandbox"
    for writer in writers:
        writer.join()
    assert row(app, workspace_id).status == "connected"
