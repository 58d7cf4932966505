"""Deals read back for webhook processing, over real HTTP against the amoCRM sandbox, on accounts without the
filtering feature (amoCRM ignores `filter[id][]` and answers its unfiltered list) and with it: every deal's state
and price read right, none missed, and few calls."""
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import select

from portal.amocrm.deal_reads import FILTERS_IGNORED_TTL, read_deals
from portal.amocrm.inbox import process_workspace_events, receive_webhook
from portal.extensions import db
from portal.models import Deal, WebhookEvent, Workspace

pytestmark = pytest.mark.integration

UNKNOWN_DEAL = 999_999_999
WON = 142


def make_deals(sandbox, connected, count: int, **fields) -> list[int]:
    """`count` deals made through amoCRM's API (`POST /api/v4/leads`, 250 per call), priced 1000 + n."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {connected.tokens['access_token']}"
    ids: list[int] = []
    while len(ids) < count:
        batch = [{"name": f"Deal {len(ids) + n}", "price": 1000 + len(ids) + n, "pipeline_id": connected.pipeline_id,
                  "status_id": connected.status_id, **fields} for n in range(min(250, count - len(ids)))]
        response = session.post(f"{sandbox.base_url}/api/v4/leads", json=batch, timeout=30)
        response.raise_for_status()
        ids += [lead["id"] for lead in response.json()["_embedded"]["leads"]]
    return ids


@pytest.fixture
def calls(monkeypatch, sandbox):
    """Every amoCRM API read made, as (path, query), taken from the request lines as they go out."""
    made = []
    send = requests.Session.send

    def recording_send(session, prepared, **kwargs):
        url = urlsplit(prepared.url)
        if prepared.method == "GET" and prepared.url.startswith(sandbox.base_url) and url.path.startswith("/api/"):
            made.append((url.path, parse_qs(url.query)))
        return send(session, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    return made


def single_reads(calls) -> list[int]:
    return sorted(int(path.rsplit("/", 1)[1]) for path, _query in calls if path != "/api/v4/leads")


def list_reads(calls) -> list[dict]:
    return [query for path, query in calls if path == "/api/v4/leads"]


def assert_read_as_amocrm_holds(sandbox, snapshots: dict, ids: list[int]) -> None:
    held = {lead["id"]: lead for lead in sandbox.leads()}
    for deal_id in ids:
        lead, snapshot = held[deal_id], snapshots[deal_id]
        assert (snapshot.price, snapshot.status_id, snapshot.pipeline_id, snapshot.is_deleted) == \
               (lead["price"], lead["status_id"], lead["pipeline_id"], False), deal_id


@pytest.mark.parametrize("list_filters", ["ignored", "applied"])
def test_every_deal_is_read_right_and_none_missed(app, sandbox, connected, calls, list_filters):
    """Recent deals, deals older than the window looked through, a deleted one and one amoCRM never had: each is
    read as amoCRM holds it, whether the account applies `filter[id][]` or not."""
    sandbox.set_account(connected.account["id"], list_filters=list_filters)
    recent = make_deals(sandbox, connected, 320)
    make_deals(sandbox, connected, 300, updated_at=int(time.time()) - 20 * 86400)  # ends the look at page 2
    old = make_deals(sandbox, connected, 3, updated_at=int(time.time()) - 30 * 86400)
    for deal_id in recent[::40]:
        sandbox.move_lead(deal_id, WON, connected.pipeline_id, price=77_000)
    deleted = recent.pop()
    sandbox.delete_lead(deleted)
    asked = old + recent + [deleted, UNKNOWN_DEAL]
    with app.app_context():
        snapshots = read_deals(connected.id, asked, changed_since=int(time.time()) - 300)
    assert set(snapshots) == set(asked)
    assert_read_as_amocrm_holds(sandbox, snapshots, old + recent)
    assert sum(snapshots[deal_id].status_id == WON and snapshots[deal_id].price == 77_000
               for deal_id in recent) == 8
    assert snapshots[deleted].is_deleted and snapshots[UNKNOWN_DEAL].is_deleted
    if list_filters == "applied":  # 325 ids, 100 per filtered read; only the two amoCRM lacks read alone
        assert len(list_reads(calls)) == 4 and all("filter[id][]" in query for query in list_reads(calls))
        assert single_reads(calls) == sorted([deleted, UNKNOWN_DEAL])
    else:  # one filtered read shows the filter ignored; the recent deals in 2 pages; the old ones read alone
        first, *pages = list_reads(calls)
        assert "filter[id][]" in first
        assert [query["order[updated_at]"] for query in pages] == [["desc"], ["desc"]]
        assert single_reads(calls) == sorted(old + [deleted, UNKNOWN_DEAL])


def test_an_account_ignoring_filters_is_remembered_and_forgotten_after_its_expiry(app, sandbox, connected, calls,
                                                                                   redis_client):
    ids = make_deals(sandbox, connected, 30)
    since = int(time.time()) - 300
    with app.app_context():
        read_deals(connected.id, ids[:10], changed_since=since)
        assert "filter[id][]" in list_reads(calls)[0]
        [key] = redis_client.keys("leadpath:amocrm-list-filters-ignored:*")
        assert 0 < redis_client.ttl(key) <= FILTERS_IGNORED_TTL
        del calls[:]
        snapshots = read_deals(connected.id, ids[10:20], changed_since=since)
        assert [query.get("order[updated_at]") for query in list_reads(calls)] == [["desc"]]  # no filtered call
        assert single_reads(calls) == []
        assert_read_as_amocrm_holds(sandbox, snapshots, ids[10:20])
        redis_client.delete(key)  # expired: the account may have gained the feature
        sandbox.set_account(connected.account["id"], list_filters="applied")
        del calls[:]
        snapshots = read_deals(connected.id, ids[20:], changed_since=since)
        assert len(list_reads(calls)) == 1 and "filter[id][]" in list_reads(calls)[0] and single_reads(calls) == []
        assert_read_as_amocrm_holds(sandbox, snapshots, ids[20:])
        assert redis_client.keys("leadpath:amocrm-list-filters-ignored:*") == []


def test_an_ancient_window_costs_no_more_pages_than_the_single_reads_they_save(app, sandbox, connected, calls):
    """A forged body's last_modified can claim any age: the look through recent deals still stops (here at 3
    pages for 3 missing deals) and the rest is read alone."""
    make_deals(sandbox, connected, 1000)
    old = make_deals(sandbox, connected, 3, updated_at=int(time.time()) - 30 * 86400)
    with app.app_context():
        snapshots = read_deals(connected.id, old, changed_since=0)
    assert_read_as_amocrm_holds(sandbox, snapshots, old)
    assert len(list_reads(calls)) == 1 + 3 and single_reads(calls) == sorted(old)


def test_600_webhook_events_on_an_account_ignoring_filters_take_a_few_calls(app, sandbox, connected):
    """The inbox's path: 600 stored status events, processed in batches of 200. Before, each deal the unfiltered
    answer left out was read on its own (~350 calls); now a batch pages the recently updated deals."""
    ids = make_deals(sandbox, connected, 600)
    for deal_id in ids[::7]:
        sandbox.move_lead(deal_id, WON, connected.pipeline_id, price=55_000)
    held = {lead["id"]: lead for lead in sandbox.leads()}
    with app.app_context():
        workspace = db.session.get(Workspace, connected.id)
        public_id, secret = workspace.public_id, workspace.webhook_secret
        for deal_id in ids:
            body = urlencode([(f"leads[status][0][{key}]", str(value)) for key, value in (
                ("id", deal_id), ("status_id", WON), ("pipeline_id", connected.pipeline_id), ("price", 1),
                ("last_modified", held[deal_id]["updated_at"]))]
                + [("account[subdomain]", connected.account["subdomain"]),
                   ("account[id]", str(connected.account["id"]))])
            receive_webhook(public_id, secret, body.encode())
        before = sum(sandbox.counters()["requests_by_account"].values())
        processed, _stopped = process_workspace_events(connected.id)
        made = sum(sandbox.counters()["requests_by_account"].values()) - before
        assert processed == 600
        assert db.session.scalar(select(db.func.count()).select_from(WebhookEvent)
                                 .where(WebhookEvent.status != "processed")) == 0
        deals = {deal.amocrm_lead_id: deal for deal in db.session.scalars(
            select(Deal).where(Deal.workspace_id == connected.id))}
        assert {deal_id: (int(deals[deal_id].amount), deals[deal_id].status_id) for deal_id in ids} == \
               {deal_id: (held[deal_id]["price"], held[deal_id]["status_id"]) for deal_id in ids}
    assert made <= 12, made  # 3 batches: ≤ 1 filtered read + 3 pages of 250 each, and no single read
