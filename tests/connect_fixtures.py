"""Shared pieces of the connect tests: a live sandbox for the whole run, and its integrations.

Import `sandbox_fixture, sandbox_server_fixture` into a test module to get the `sandbox` and `sandbox_server`
fixtures (named so that the import does not shadow the fixture arguments)."""
from urllib.parse import parse_qs, urlsplit

from sandbox_fixtures import sandbox_fixtures

from portal.sandbox.control import SandboxControl

CLIENT_ID = "connect-test-client"
CLIENT_SECRET = "connect-test-secret"
# The portal under test is served by Flask's test client as http://localhost/.
REDIRECT_URI = "http://localhost/amocrm/callback"

# Quick webhook retries; the race test fires 20 calls at once (the limits are generous).
sandbox_server_fixture, sandbox_fixture = sandbox_fixtures(
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, "Leadpath (tests)",
    SANDBOX_WEBHOOK_RETRY_DELAYS=[0.1], SANDBOX_WEBHOOK_TIMEOUT=0.5)


def sandbox_host(control: SandboxControl) -> str:
    return urlsplit(control.base_url).netloc


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
