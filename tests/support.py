"""Plain test helpers and settings shared by the test modules (fixtures live in conftest.py).

Tests run against TEST_DATABASE_URL (PostgreSQL by default; .ci/run also runs a SQLite smoke pass) and
TEST_REDIS_URL (a real Redis, database 15; empty runs on the in-process fakeredis, as the demo does).
"""
import os
import re

from sqlalchemy import text

from config import TestingConfig
from portal import create_app
from portal.extensions import db

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/leadpath_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15") or None
IS_POSTGRES = DATABASE_URL.startswith("postgresql")
PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def make_app(**overrides):
    settings = {"SQLALCHEMY_DATABASE_URI": DATABASE_URL, "REDIS_URL": REDIS_URL, **overrides}
    return create_app(TestingConfig, **settings)


def empty_tables(app) -> None:
    with app.app_context():
        tables = [table.name for table in db.metadata.sorted_tables]
        with db.engine.begin() as connection:
            if IS_POSTGRES:
                names = ", ".join(f'"{table}"' for table in tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    connection.execute(text(f'DELETE FROM "{table}"'))
        db.session.remove()
        db.engine.dispose()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(client, url: str, data: dict, page: str | None = None, **kwargs):
    """POST a form the way a browser does: read the page for its CSRF token first."""
    token = csrf_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def workspace_of(app, user_id: int) -> int:
    from portal.models import User

    with app.app_context():
        return db.session.get(User, user_id).workspace_id


def log_in(client, email: str, password: str = PASSWORD):
    return post_form(client, "/login", {"email": email, "password": password})
