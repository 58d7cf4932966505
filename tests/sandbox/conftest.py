"""Fixtures for the sandbox contract suite: one live sandbox per session (reset before each test),
a bearer-token API client, and a tiny receiver server for webhooks and ``secrets_uri``."""

import pytest
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Api, Receiver, connect

from portal.sandbox import create_app
from portal.sandbox.control import SandboxControl
from portal.sandbox.server import serve_in_thread

SANDBOX_CONFIG = {
    "SANDBOX_INTEGRATIONS": [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT_URI,
            "name": "Test",
        },
        {
            "client_id": "other-client",
            "client_secret": "other-secret",
            "redirect_uri": REDIRECT_URI,
            "name": "Other",
        },
    ],
    # Generous limits so ordinary tests never meet a 429; the limit tests lower them.
    "SANDBOX_RATE_LIMIT_PER_SEC": 1000,
    "SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC": 1000,
    "SANDBOX_WEBHOOK_RETRY_DELAYS": [0.1, 0.2],
    "SANDBOX_WEBHOOK_DISABLE_AFTER": 3,
    "SANDBOX_WEBHOOK_TIMEOUT": 0.5,
}


@pytest.fixture(scope="session")
def sandbox_server():
    server = serve_in_thread(create_app(SANDBOX_CONFIG))
    yield server
    server.shutdown()


@pytest.fixture
def base_url(sandbox_server):
    return sandbox_server.url


@pytest.fixture
def control(sandbox_server):
    control = SandboxControl(sandbox_server.url)
    control.reset()
    return control


@pytest.fixture
def tokens(control, base_url):
    return connect(control, base_url)


@pytest.fixture
def api(tokens, base_url):
    return Api(base_url, tokens["access_token"])


@pytest.fixture
def account(control):
    return control.state()["accounts"][0]


@pytest.fixture
def main_pipeline(account):
    return next(p for p in account["pipelines"] if p["is_main"])


@pytest.fixture
def receiver():
    receiver = Receiver()
    server = serve_in_thread(receiver)
    receiver.url = server.url
    yield receiver
    server.shutdown()
