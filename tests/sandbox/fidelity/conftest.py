"""The fidelity suite: amoCRM's documented behaviour, one test per fact, over real HTTP against the sandbox.

Each test is written from amoCRM's documentation (or, where that is silent, from the public record collected in
docs/amocrm.md) and names its source in its docstring, so the sandbox cannot drift into agreeing with our
client. Fixtures come from tests/sandbox/conftest.py and below; helpers from fidelity_support.py."""

import pytest


@pytest.fixture
def instant_search(control, account):
    """The main account with no indexing delay, for tests about what search matches (not when)."""
    control.set_account(account["id"], search_index_delay=0)


@pytest.fixture
def filtering(control, account):
    """The main account with API list filtering enabled."""
    control.set_account(account["id"], list_filters="applied")
