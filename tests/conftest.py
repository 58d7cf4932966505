"""Fixtures: app, client, runner, workspaces and users, logged-in clients, live server, Chromium.

The schema is built once per run with the real migrations; every test starts from empty tables and an empty
Redis database. Plain helpers (make_app, post_form, log_in, …) are in fixtures/support.py.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DATABASE_URL,
    IS_POSTGRES,
    PASSWORD,
    REDIS_URL,
    empty_tables,
    log_in,
    make_app,
)
from sqlalchemy import create_engine, text

from portal.extensions import db

pytest_plugins = ["fixtures.sync"]


# The folders that hold only browser or long-running tests mark them, so `-m "not browser and not slow"` (the fast
# suite) leaves them out without each test repeating the marker.
FOLDER_MARKS = {"browser": pytest.mark.browser, "chaos": pytest.mark.slow}


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = item.path.parent.name
        if folder in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[folder])
    if IS_POSTGRES and REDIS_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL and Redis (this is the SQLite smoke pass)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_schema():
    """Drop everything, then build the schema with the migrations (as a deploy would)."""
    from flask_migrate import upgrade

    engine = create_engine(DATABASE_URL)
    with engine.begin() as connection:
        if IS_POSTGRES:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            for (name,) in connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).all():
                connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    engine.dispose()
    app = make_app()
    with app.app_context():
        upgrade()
    return DATABASE_URL


@pytest.fixture
def app(database_schema):
    app = make_app()
    app.extensions["leadpath_redis"].flushdb()
    yield app
    app.extensions["leadpath_redis"].flushdb()
    empty_tables(app)


@pytest.fixture
def redis_client(app):
    """The Redis the app talks to (a real one except in the smoke pass)."""
    return app.extensions["leadpath_redis"]


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """make_user(email, role="owner", workspace=None) → user id (a new workspace unless one is given)."""
    from portal.models import User, Workspace

    def make(email: str, role: str = "owner", workspace_id: int | None = None) -> int:
        with app.app_context():
            if workspace_id is None:
                workspace = Workspace(name=f"Workspace of {email}")
                db.session.add(workspace)
                db.session.flush()
                workspace_id = workspace.id
            user = User(workspace_id=workspace_id, email=email, name=email.split("@")[0], role=role)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com")


@pytest.fixture
def owner_client(app, owner):
    client = app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    return client


@pytest.fixture
def live_server(app):
    """The app served over real HTTP from a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def other_origin_site():
    """Serves the pages of `pages` (a dict the test fills in: path → HTML bytes) from another origin than
    Leadpath's: a customer's landing site. Yields (its base URL, pages)."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            body = pages.get(self.path.split("?")[0])
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", pages
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()
