"""Secrets at rest are sealed for their row: a ciphertext moved to another workspace's row, or to another column,
does not open; values of the earlier scheme still open and `keys rotate` reseals them."""
import pytest
from fixtures.support import workspace_of
from sqlalchemy import text

from portal.crypto import encrypt
from portal.extensions import db
from portal.models import AmoCRMConnection, Workspace


@pytest.fixture
def two_connections(app, make_user):
    ids = []
    for email in ("a@example.com", "b@example.com"):
        workspace_id = workspace_of(app, make_user(email))
        with app.app_context():
            db.session.add(AmoCRMConnection(workspace_id=workspace_id, status="connected",
                                            access_token=f"access-{email}", refresh_token=f"refresh-{email}"))
            db.session.commit()
        ids.append(workspace_id)
    return ids


def raw(app, column: str, workspace_id: int) -> str:
    with app.app_context():
        return db.session.scalar(text(f"SELECT {column} FROM amocrm_connections WHERE workspace_id = :w"),
                                 {"w": workspace_id})


def connection_of(app, workspace_id: int) -> AmoCRMConnection:
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
        db.session.expunge_all()
        return connection


def test_the_database_holds_no_plaintext_and_each_row_opens_its_own(app, two_connections):
    first, second = two_connections
    assert "refresh-" not in raw(app, "refresh_token", first)
    assert connection_of(app, second).refresh_token == "refresh-b@example.com"


def test_a_ciphertext_copied_into_another_workspaces_row_does_not_open(app, two_connections):
    first, second = two_connections
    with app.app_context():
        db.session.execute(text("UPDATE amocrm_connections SET refresh_token = :t WHERE workspace_id = :w"),
                           {"t": raw(app, "refresh_token", first), "w": second})
        db.session.commit()
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        connection_of(app, second)
    assert connection_of(app, first).refresh_token == "refresh-a@example.com"


def test_a_ciphertext_copied_into_another_column_does_not_open(app, two_connections):
    first, _ = two_connections
    with app.app_context():
        db.session.execute(text("UPDATE amocrm_connections SET access_token = refresh_token WHERE workspace_id = :w"),
                           {"w": first})
        db.session.commit()
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        connection_of(app, first)


def test_values_of_the_earlier_scheme_open_and_rotate_reseals_them(app, two_connections):
    first, _ = two_connections
    with app.app_context():
        db.session.execute(text("UPDATE amocrm_connections SET refresh_token = :t WHERE workspace_id = :w"),
                           {"t": encrypt("legacy-refresh"), "w": first})
        legacy_secret = encrypt("legacy-webhook-secret")
        db.session.execute(text("UPDATE workspaces SET webhook_secret = :t WHERE id = :w"),
                           {"t": legacy_secret, "w": first})
        db.session.commit()
    assert connection_of(app, first).refresh_token == "legacy-refresh"
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "amocrm_connections.refresh_token: 1 re-encrypted" in result.output
    assert "workspaces.webhook_secret: 1 re-encrypted" in result.output
    assert raw(app, "refresh_token", first).startswith("v2.")
    assert connection_of(app, first).refresh_token == "legacy-refresh"
    with app.app_context():
        assert db.session.get(Workspace, first).webhook_secret == "legacy-webhook-secret"
