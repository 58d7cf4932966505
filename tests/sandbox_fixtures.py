"""A live amoCRM sandbox for the portal's integration tests: `sandbox_fixtures(...)` makes the `sandbox_server`
fixture (the sandbox on a real port, with one integration) and the `sandbox` fixture (its control client, reset
before each test, faults cleared after). A module binds the pair to names of its own; pytest finds them by the
fixture names."""
import pytest

from portal.sandbox import create_app as create_sandbox
from portal.sandbox.control import SandboxControl
from portal.sandbox.server import serve_in_thread


def sandbox_fixtures(client_id: str, client_secret: str, redirect_uri: str, name: str, scope: str = "session",
                     **settings):
    """The two fixtures for a sandbox whose one integration is (client_id, client_secret, redirect_uri).
    Rate limits are generous unless `settings` (SANDBOX_* keys) say otherwise: most tests are not about them.
    Everything else is amoCRM as documented (docs/amocrm.md): search lags writes by SANDBOX_SEARCH_INDEX_DELAY
    (3 s) and never matches tags, list filters are ignored unless SANDBOX_LIST_FILTERS="applied" — or per account
    through `sandbox.set_account(account_id, list_filters=..., search_index_delay=...)`, so a test can run the
    client against both kinds of account."""
    config = {"SANDBOX_INTEGRATIONS": [{"client_id": client_id, "client_secret": client_secret,
                                        "redirect_uri": redirect_uri, "name": name}],
              "SANDBOX_RATE_LIMIT_PER_SEC": 1000, "SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC": 1000, **settings}

    @pytest.fixture(scope=scope, name="sandbox_server")
    def server_fixture():
        server = serve_in_thread(create_sandbox(config))
        yield server
        server.shutdown()

    @pytest.fixture(name="sandbox")
    def control_fixture(sandbox_server) -> SandboxControl:
        control = SandboxControl(sandbox_server.url)
        control.reset()
        yield control
        control.faults()

    return server_fixture, control_fixture
