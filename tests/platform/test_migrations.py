"""Migrations: one head, upgrade on empty PostgreSQL and SQLite, and no drift from the models."""
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fixtures.support import make_app
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from portal.extensions import db


def script_directory(app):
    with app.app_context():
        return ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())


def test_alembic_has_exactly_one_head(app):
    assert len(script_directory(app).get_heads()) == 1


def test_every_revision_has_a_message(app):
    for revision in script_directory(app).walk_revisions():
        assert revision.doc and revision.doc.strip(), f"revision {revision.revision} has no message"


def _assert_no_drift(app):
    with app.app_context():
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_upgrade_on_empty_sqlite_matches_the_models(tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'empty.db'}")
    with app.app_context():
        upgrade()
        assert "leads" in inspect(db.engine).get_table_names()
    _assert_no_drift(app)


@pytest.mark.integration
def test_upgrade_on_empty_postgresql_matches_the_models():
    from fixtures.support import DATABASE_URL

    name = f"leadpath_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = DATABASE_URL.rsplit("/", 1)[0] + "/" + name
        app = make_app(SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            upgrade()
            assert "leads" in inspect(db.engine).get_table_names()
        _assert_no_drift(app)
        with app.app_context():
            db.engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()




def test_the_webhook_url_is_encrypted_by_its_migration_and_decrypted_by_the_way_back(tmp_path):
    from flask_migrate import downgrade

    from portal.models import AmoCRMConnection, Workspace

    url = "https://leadpath.example/webhooks/amocrm/ws-public/the-webhook-secret"
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'webhook-url.db'}")
    raw = text("SELECT webhook_destination FROM amocrm_connections")
    with app.app_context():
        upgrade()
        workspace = Workspace(name="Shop")
        db.session.add(workspace)
        db.session.flush()
        db.session.add(AmoCRMConnection(workspace_id=workspace.id, base_domain="shop.amocrm.ru",
                                        webhook_destination=url))
        db.session.commit()
        assert "the-webhook-secret" not in db.session.scalar(raw)
        db.session.remove()
        downgrade(revision="9b3f6c2e8a41")
        assert db.session.scalar(raw) == url  # the URL as the earlier code stored it
        db.session.remove()
        upgrade()
        assert "the-webhook-secret" not in db.session.scalar(raw)
        assert db.session.scalar(db.select(AmoCRMConnection)).webhook_destination == url
