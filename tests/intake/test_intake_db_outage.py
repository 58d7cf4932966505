"""PostgreSQL unreachable or restarted: the hot endpoints answer 503 (not 500), stale pooled connections heal."""
import socket
import time

import pytest
from fixtures.support import IS_POSTGRES, make_app
from sqlalchemy import text

from portal.extensions import db


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere"


@pytest.mark.integration
def test_intake_and_webhooks_answer_503_when_postgresql_is_unreachable():
    app = make_app(SQLALCHEMY_DATABASE_URI=_closed_port_url(),
                   SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 1}})
    client = app.test_client()
    lead = client.post("/api/leads", json={"userAccountId": "ws-1", "phone": "+79991234567"})
    assert lead.status_code == 503 and lead.get_json()["success"] is False
    assert lead.headers["Retry-After"] == "5"
    hook = client.post("/webhooks/amocrm/00000000-0000-4000-8000-000000000000/secret", data="a=1",
                       content_type="application/x-www-form-urlencoded")
    assert hook.status_code == 503 and hook.headers["Retry-After"] == "5"


@pytest.mark.integration
def test_the_first_lead_after_an_idle_spell_is_accepted(database_schema, monkeypatch):
    """The idle ping leaves no transaction open: the intake's AUTOCOMMIT INSERT could not switch such a connection
    and answered 500."""
    import portal.extensions as extensions
    from portal.models import Workspace

    app = make_app()
    with app.app_context():
        workspace = Workspace(name="Idle")
        db.session.add(workspace)
        db.session.commit()
        public_id = workspace.public_id
    client = app.test_client()
    assert client.post("/api/leads", json={"userAccountId": public_id, "email": "a@example.com"}).status_code == 201
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", -1.0)  # every checked-in connection counts as idle
    assert client.post("/api/leads", json={"userAccountId": public_id, "email": "b@example.com"}).status_code == 201
    with app.app_context():
        db.engine.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_on_checkout(database_schema, monkeypatch):
    if not IS_POSTGRES:
        pytest.skip("PostgreSQL only")
    import portal.extensions as extensions

    app = make_app()
    with app.app_context():
        first, other = db.engine.connect(), db.engine.connect()
        first_pid = first.scalar(text("SELECT pg_backend_pid()"))
        first.commit()
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})  # as a server restart would
        other.commit()
        time.sleep(0.3)
        first.close()  # back in the pool first, so checked out first
        other.close()
        monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", -1.0)  # every checked-in connection counts as idle
        with db.engine.connect() as connection:
            assert connection.scalar(text("SELECT pg_backend_pid()")) != first_pid
            assert connection.scalar(text("SELECT 1")) == 1
        db.engine.dispose()
