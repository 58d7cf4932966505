"""Exactly once against amoCRM as documented: after a request with an unknown outcome, the deals it made are found
in the deals list (newest first, by their tags) — whether search ignores tags and lags, the account ignores list
filters or even the order, and however many other deals the account has."""
import pytest
from fixtures.strict_amocrm import order_ignored
from fixtures.sync import StaticTokens, add_leads
from test_sync_push import deals, leads_of, make_due, run_push, sandbox_base

from portal.amocrm.api.client import AmoCRMClient
from portal.extensions import db
from portal.models import SyncLogEntry
from portal.models.types import utcnow

pytestmark = pytest.mark.integration

FAULTS = [{"drop_after_commit_rate": 1.0}, {"http_500_rate": 1.0}, {"timeout_rate": 1.0, "timeout_seconds": 2}]


def managers_deals(sandbox, app, connected, count: int, days_ago: int = 2) -> None:
    """Deals made in amoCRM by people over the days before any push (as an established account has thousands)."""
    created_at = int(utcnow().timestamp()) - days_ago * 86400
    with app.app_context():
        api = AmoCRMClient(sandbox_base(app, connected), StaticTokens(connected.tokens["access_token"]))
        for start in range(0, count, 250):
            api.request("POST", "/api/v4/leads", json=[{"name": f"Call {n}", "created_at": created_at + 60 * n,
                                                         "updated_at": created_at + 60 * n}
                                                        for n in range(start, min(count, start + 250))])


def list_reads(app, connected) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(SyncLogEntry.id)).where(
            SyncLogEntry.workspace_id == connected.id, SyncLogEntry.operation.like("GET /api/v4/leads%")))


def push_through_an_unknown_outcome(app, sandbox, connected, fault) -> tuple:
    sandbox.faults(**fault)
    first = run_push(app, connected, timeout=0.5)
    assert first.pushed == 0 and first.retried == 5
    made_by_the_failed_call = len(deals(sandbox)) - 300
    sandbox.faults()
    make_due(app, connected.id)
    return made_by_the_failed_call, run_push(app, connected)


def assert_exactly_once(app, sandbox, connected) -> None:
    ours = [d for d in deals(sandbox) if any(t["name"].startswith("lp-") for t in d["_embedded"]["tags"])]
    synced = leads_of(app, connected.id)
    assert len(ours) == 5, "a deal was doubled or lost"
    assert {lead.sync_status for lead in synced} == {"synced"}
    assert {d["id"] for d in ours} == {lead.amocrm_lead_id for lead in synced}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_search_blind_to_tags_and_lagging_never_leads_to_a_second_deal(app, sandbox, connected, fault):
    sandbox.set_account(connected.account["id"], search_index_delay=30, list_filters="applied")
    managers_deals(sandbox, app, connected, 300)
    add_leads(app, connected.id, 5)
    made, second = push_through_an_unknown_outcome(app, sandbox, connected, fault)
    assert (second.adopted, second.adopted + second.pushed) == (made, 5)
    assert_exactly_once(app, sandbox, connected)


@pytest.mark.parametrize("fault", FAULTS)
def test_the_read_stops_at_the_window_when_nothing_or_everything_is_found(app, sandbox, connected, fault):
    managers_deals(sandbox, app, connected, 300)
    add_leads(app, connected.id, 5)
    before = list_reads(app, connected)
    push_through_an_unknown_outcome(app, sandbox, connected, fault)
    assert list_reads(app, connected) - before == 1  # one page: the managers' deals are older than the window
    assert_exactly_once(app, sandbox, connected)


@pytest.mark.parametrize("fault", FAULTS)
def test_an_account_without_the_filtering_feature_still_gets_exactly_once(app, sandbox, connected, fault):
    sandbox.set_account(connected.account["id"], search_index_delay=30, list_filters="ignored")
    managers_deals(sandbox, app, connected, 300)
    add_leads(app, connected.id, 5)
    made, second = push_through_an_unknown_outcome(app, sandbox, connected, fault)
    assert (second.adopted, second.adopted + second.pushed) == (made, 5)
    assert_exactly_once(app, sandbox, connected)


def test_an_account_that_ignores_the_order_is_read_to_the_end(app, sandbox, connected, monkeypatch):
    sandbox.set_account(connected.account["id"], list_filters="ignored")
    order_ignored(monkeypatch)
    managers_deals(sandbox, app, connected, 300)
    add_leads(app, connected.id, 5)
    made, second = push_through_an_unknown_outcome(app, sandbox, connected, {"drop_after_commit_rate": 1.0})
    assert made == 5 and second.adopted == 5 and second.pushed == 0
    assert_exactly_once(app, sandbox, connected)
