"""Shared pieces of the connect tests: a live sandbox for the whole run, and its integrations.

Import `sandbox_fixture, sandbox_server_fixture` into a test module to get the `sandbox` and `sandbox_server`
fixtures (named so that the import does not shadow the fixture arguments)."""
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.sandbox import create_app as create_sandbox
from portal.sandbox.control import SandboxControl
from portal.sandbox.server import serve_in_thread

CLIENT_ID = "connect-test-client"
CLIENT_SECRET = "connect-test-secret"
# The portal under test is served by Flask's test client as http://localhost/.
REDIRECT_URI = "http://localhost/amocrm/callback"

SANDBOX_CONFIG = {
    "SANDBOX_INTEGRATIONS": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "redirect_uri": REDIRECT_URI, "name": "Leadpath (tests)"}],
    # Generous limits: these tests are about tokens, not rate limits (the race test fires 20 calls at once).
    "SANDBOX_RATE_LIMIT_PER_SEC": 1000,
    "SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC": 1000,
    "SANDBOX_WEBHOOK_RETRY_DELAYS": [0.1],
    "SANDBOX_WEBHOOK_TIMEOUT": 0.5,
}


@pytest.fixture(scope="session", name="sandbox_server")
def sandbox_server_fixture():
    server = serve_in_thread(create_sandbox(SANDBOX_CONFIG))
    yield server
    server.shutdown()


@pytest.fixture(name="sandbox")
def sandbox_fixture(sandbox_server) -> SandboxControl:
    """The sandbox's control client, reset to its start state."""
    control = SandboxControl(sandbox_server.url)
    control.reset()
    return control


def sandbox_host(control: SandboxControl) -> str:
    return urlsplit(control.base_url).netloc


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
