"""The production kit: /metrics (figures and protection), `flask keys rotate`, ProxyFix when configured,
and the gunicorn configuration module."""
import importlib
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from fixtures.support import make_app
from flask import request

from portal.extensions import db


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


@pytest.fixture
def pipeline_rows(app, make_user):
    """Two workspaces' leads in every sync state, webhook events, a job waiting, amoCRM calls counted."""
    from portal.metrics.services import count_amocrm_call
    from portal.models import Lead, User, WebhookEvent
    from portal.models.types import utcnow

    users = [make_user("metrics-a@example.com"), make_user("metrics-b@example.com")]
    with app.app_context():
        now = utcnow()
        for index, user_id in enumerate(users):
            workspace_id = db.session.get(User, user_id).workspace_id
            for status, age_minutes in (("pending", 30 + index * 60), ("pending", 1), ("synced", 5), ("failed", 5)):
                db.session.add(Lead(workspace_id=workspace_id, name="x", sync_status=status,
                                    created_at=now - timedelta(minutes=age_minutes)))
            db.session.add(WebhookEvent(workspace_id=workspace_id, body_sha256="a" * 64, payload={}, status="received",
                                        received_at=now - timedelta(seconds=120 + index)))
            db.session.add(WebhookEvent(workspace_id=workspace_id, body_sha256="b" * 64, payload={},
                                        status="processed", received_at=now - timedelta(hours=2)))
        db.session.commit()
        for status in (200, 200, 429, None):
            count_amocrm_call(status)
        from portal.jobs.queues import get_queue

        get_queue("webhooks").enqueue("fixtures.jobs.record_workspace_name", 1)
    return users


def test_metrics_report_the_pipeline_in_prometheus_text(app, pipeline_rows):
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    assert "# TYPE leadpath_leads_accepted_total counter" in text
    assert _sample(text, "leadpath_leads_accepted_total") == 8
    assert _sample(text, 'leadpath_leads{status="pending"}') == 4
    assert _sample(text, 'leadpath_leads{status="synced"}') == 2
    assert _sample(text, 'leadpath_leads{status="failed"}') == 2
    assert 90 * 60 - 5 <= _sample(text, "leadpath_leads_pending_oldest_age_seconds") <= 90 * 60 + 60
    assert 121 <= _sample(text, "leadpath_webhook_lag_seconds") <= 180
    assert _sample(text, 'leadpath_webhook_events{status="processed"}') == 2
    assert _sample(text, 'leadpath_webhook_events{status="received"}') == 2
    assert _sample(text, "leadpath_amocrm_calls_total") == 4
    assert _sample(text, "leadpath_amocrm_429_total") == 1
    assert _sample(text, 'leadpath_queue_jobs{queue="webhooks"}') == 1
    assert _sample(text, 'leadpath_queue_jobs{queue="amocrm"}') == 0
    # Totals only: no workspace ids or names in label values.
    assert "workspace" not in text.lower()


def test_metrics_are_zero_on_an_empty_install(app):
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert _sample(text, "leadpath_leads_accepted_total") == 0
    assert _sample(text, "leadpath_leads_pending_oldest_age_seconds") == 0
    assert _sample(text, "leadpath_webhook_lag_seconds") == 0


def test_without_a_token_only_direct_loopback_callers_get_metrics(app):
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 404
    # Through a proxy on the same host the peer is loopback, but the caller is not.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert client.get("/metrics", headers={"X-Real-IP": "203.0.113.7"}).status_code == 404


def test_with_a_token_the_bearer_token_is_required_from_anywhere(app):
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    client = app.test_client()
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", environ_base=remote).status_code == 404
    assert client.get("/metrics").status_code == 404  # loopback is not enough once a token is configured
    assert client.get("/metrics", environ_base=remote,
                      headers={"Authorization": "Bearer wrong-token"}).status_code == 404
    ok = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert ok.status_code == 200 and "leadpath_leads_accepted_total" in ok.get_data(as_text=True)


def test_a_refused_scrape_gets_the_json_404(app):
    """/metrics is a machine endpoint: refusals use the JSON error shape, not an HTML page."""
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert response.status_code == 404 and response.is_json


# --- keys rotate -------------------------------------------------------------------------------------------


def test_keys_rotate_reencrypts_every_secret_so_the_old_key_can_go(app, make_user):
    from portal.models import AmoCRMConnection, User, Workspace

    old_key = app.config["ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()
    user_id = make_user("keys@example.com")
    with app.app_context():
        workspace = db.session.get(User, user_id).workspace
        webhook_secret = workspace.webhook_secret
        db.session.add(AmoCRMConnection(workspace_id=workspace.id, client_secret="client-secret-1",
                                        access_token="access-1", refresh_token="refresh-1", status="connected"))
        db.session.commit()
        workspace_id = workspace.id

    both = make_app(ENCRYPTION_KEYS=[new_key, old_key])
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "workspaces.webhook_secret: 1 re-encrypted" in result.output
    assert "amocrm_connections.access_token: 1 re-encrypted" in result.output
    # Idempotent: a second run finds everything under the primary key.
    again = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert "done: 0 value(s)" in again.output

    new_only = make_app(ENCRYPTION_KEYS=[new_key])
    with new_only.app_context():
        assert db.session.get(Workspace, workspace_id).webhook_secret == webhook_secret
        connection = db.session.scalar(db.select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
        assert (connection.client_secret, connection.access_token, connection.refresh_token) == (
            "client-secret-1", "access-1", "refresh-1")
        db.session.remove()
    # And the old key alone no longer reads them.
    old_only = make_app(ENCRYPTION_KEYS=[old_key])
    with old_only.app_context(), pytest.raises(RuntimeError, match="cannot be decrypted"):
        db.session.get(Workspace, workspace_id).webhook_secret  # noqa: B018
    with old_only.app_context():
        db.session.remove()


def test_keys_rotate_refuses_when_a_value_fits_no_key_and_changes_nothing(app, make_user):
    from portal.models import User, Workspace

    user_id = make_user("keys2@example.com")
    with app.app_context():
        workspace_id = db.session.get(User, user_id).workspace_id
        secret = db.session.get(Workspace, workspace_id).webhook_secret
    stranger = make_app(ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    result = stranger.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code != 0 and "cannot be decrypted with any configured key" in result.output
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(Workspace, workspace_id).webhook_secret == secret


# --- proxy fix and gunicorn --------------------------------------------------------------------------------


def _remote_addr_app(**overrides):
    proxied = make_app(**overrides)
    proxied.add_url_rule("/_test/remote-addr", "remote_addr", lambda: f"{request.remote_addr} {request.scheme}")
    return proxied


def test_forwarded_headers_are_ignored_unless_proxy_fix_is_configured(database_schema):
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    plain = _remote_addr_app().test_client().get("/_test/remote-addr", headers=headers)
    assert plain.get_data(as_text=True) == "127.0.0.1 http"
    proxied = _remote_addr_app(PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1).test_client()
    assert proxied.get("/_test/remote-addr", headers=headers).get_data(as_text=True) == "203.0.113.9 https"
    # One trusted hop: a client-supplied X-Forwarded-For before nginx's own entry is not believed.
    spoofed = proxied.get("/_test/remote-addr", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    assert spoofed.get_data(as_text=True).split()[0] == "203.0.113.9"


def test_gunicorn_config_reads_its_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "6")
    module = importlib.reload(importlib.import_module("portal.deploy.gunicorn"))
    assert (module.workers, module.threads, module.worker_class) == (3, 6, "gthread")
    monkeypatch.delenv("GUNICORN_THREADS")
    module = importlib.reload(module)
    assert (module.threads, module.worker_class) == (1, "sync")
    assert module.preload_app is True and module.bind.startswith("127.0.0.1:")
    assert "%(U)s" in module.access_log_format and "%(r)s" not in module.access_log_format
    assert "%(q)s" not in module.access_log_format


@pytest.mark.parametrize("path, logged", [
    ("/webhooks/amocrm/ws-public-id/0123456789abcdefSECRET", "/webhooks/amocrm/ws-public-id/0123…"),
    ("/webhooks/amocrm/ws-public-id/0123456789abcdefSECRET/", "/webhooks/amocrm/ws-public-id/0123…/"),  # a 404
    ("/invite/TOKEN0123456789abcdef", "/invite/TOKE…"),
    ("/leads/42", "/leads/42"),
])
def test_the_access_log_and_the_request_log_mask_secrets_in_paths(path, logged, caplog):
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from portal.deploy.gunicorn import AccessLogger

    environ = {"REQUEST_METHOD": "POST", "RAW_URI": path, "PATH_INFO": path, "SERVER_PROTOCOL": "HTTP/1.1"}
    atoms = AccessLogger(Config()).atoms(SimpleNamespace(status="200 OK", headers=[], sent=2),
                                         SimpleNamespace(headers=[]), environ, timedelta(milliseconds=3))
    assert atoms["U"] == logged
    app = make_app(LOG_LEVEL="INFO")
    with caplog.at_level("INFO", logger="portal.request"):
        app.test_client().post(path)
    [line] = [record.getMessage() for record in caplog.records if record.name == "portal.request"]
    assert line.startswith(f"POST {logged} ") and "SECRET" not in line and "0123456789abcdef" not in line


def test_a_failed_statement_names_no_bound_values(app):
    """Its message is logged, kept by RQ with a failed job and stored as an event's error: no lead data in it."""
    from sqlalchemy.exc import DBAPIError

    from portal.extensions import db

    with app.app_context(), pytest.raises(DBAPIError) as caught:
        db.session.execute(db.text("SELECT phone FROM no_such_table WHERE phone = :phone"), {"phone": "+79161234567"})
    assert "+79161234567" not in str(caught.value) and "hidden" in str(caught.value)
