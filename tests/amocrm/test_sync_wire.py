"""The amoCRM client as amoCRM documents it may answer, with a recorded fake transport: next links that leave out
the caller's parameters, accounts that ignore list filters or the order, 403 for missing rights beside the 403
block page (on the token endpoint too), the latter two from the sandbox."""
import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from fixtures.sync import CLIENT_ID, CLIENT_SECRET, StaticTokens

from portal.amocrm.adoption import find_created_deals
from portal.amocrm.api import oauth
from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.api.errors import AccountBlocked, Forbidden, OAuthError

BASE = "https://example.amocrm.ru"


class FakeSession:
    """Answers each call with the next of `answers` ((status, body) pairs) and records what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked: list[tuple[str, str, dict]] = []

    def request(self, method, url, params=None, json=None, headers=None, timeout=None):
        prepared = requests.Request(method, url, params=params).prepare()
        parts = urlsplit(prepared.url)
        self.asked.append((method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True))))
        return self._answer(prepared.url)

    def post(self, url, json=None, timeout=None, headers=None):
        self.asked.append(("POST", urlsplit(url).path, {}))
        return self._answer(url)

    def _answer(self, url):
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code, response.url = status, url
        if body is not None:
            response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
        else:
            response._content = b""
        return response


def page(items, next_href=None):
    links = {"self": {"href": f"{BASE}/api/v4/leads?page=1"}}
    if next_href:
        links["next"] = {"href": next_href}
    return {"_page": 1, "_links": links, "_embedded": {"leads": items}}


def deal(deal_id, created_at, tags=(), updated_at=None):
    return {"id": deal_id, "created_at": created_at, "updated_at": updated_at or created_at,
            "_embedded": {"tags": [{"id": n, "name": name} for n, name in enumerate(tags)]}}


def client(session):
    return AmoCRMClient(BASE, StaticTokens("t"), session=session)


def test_a_next_link_that_omits_the_callers_parameters_gets_them_back():
    session = FakeSession((200, page([deal(2, 200)], f"{BASE}/api/v4/leads?page=2")), (200, page([deal(1, 100)])))
    found = list(client(session).iter_leads(updated_from=50, with_=("contacts",), limit=100))
    assert [lead["id"] for lead in found] == [2, 1]
    _, path, second = session.asked[1]
    assert path == "/api/v4/leads"
    assert second == {"page": "2", "limit": "100", "with": "contacts", "filter[updated_at][from]": "50"}


def test_what_a_next_link_says_wins_over_the_callers_value():
    session = FakeSession((200, page([deal(2, 200)], f"{BASE}/api/v4/leads?page=2&limit=50")), (204, None))
    list(client(session).iter_leads(limit=250))
    assert session.asked[1][2] == {"page": "2", "limit": "50"}


def test_a_next_link_never_takes_the_token_to_another_host():
    session = FakeSession((200, page([deal(2, 200)], "https://evil.example/api/v4/leads?page=2")), (204, None))
    list(client(session).iter_leads())
    assert session.asked[1][1] == "/api/v4/leads"  # the path only, on the account's host


def test_an_account_that_ignores_filters_gets_its_items_checked_here():
    unfiltered = [deal(5, 500, updated_at=500), deal(4, 400, updated_at=90), deal(3, 300, updated_at=150)]
    session = FakeSession((200, page(unfiltered)))
    found = list(client(session).iter_leads(updated_from=100, updated_to=450))
    assert [lead["id"] for lead in found] == [3]


def test_a_newest_first_read_stops_at_the_window():
    session = FakeSession((200, page([deal(9, 900), deal(8, 800), deal(7, 100)], f"{BASE}/api/v4/leads?page=2")))
    found = list(client(session).iter_leads(created_from=500, newest_first_by="created_at"))
    assert [lead["id"] for lead in found] == [9, 8] and len(session.asked) == 1
    assert session.asked[0][2]["order[created_at]"] == "desc"


def test_a_page_that_cannot_show_its_order_does_not_stop_the_read():
    session = FakeSession((200, page([deal(1, 100), deal(2, 100)], f"{BASE}/api/v4/leads?page=2")),
                          (200, page([deal(3, 900)])))
    found = list(client(session).iter_leads(created_from=500, newest_first_by="created_at"))
    assert [lead["id"] for lead in found] == [3] and len(session.asked) == 2


def test_a_read_the_account_did_not_order_goes_on_to_the_end():
    session = FakeSession((200, page([deal(1, 100), deal(2, 200)], f"{BASE}/api/v4/leads?page=2")),
                          (200, page([deal(3, 900)])))
    found = list(client(session).iter_leads(created_from=500, newest_first_by="created_at"))
    assert [lead["id"] for lead in found] == [3] and len(session.asked) == 2


def test_adoption_needs_both_tags_and_ignores_what_search_would_say():
    deals = [deal(30, 1000, ["leadpath", "lp-7", "lpb-other"]),  # another request's deal for lead 7
             deal(20, 990, ["leadpath", "lp-7", "lpb-abc"]),
             deal(10, 980, ["lp-8"]),  # a manager's deal tagged by hand
             deal(5, 10, ["leadpath", "lp-8", "lpb-abc"])]  # long before the window
    session = FakeSession((200, page(deals)))
    found = find_created_deals(client(session), {7: "abc", 8: "abc"}, since=900)
    assert {lead_id: created.deal_id for lead_id, created in found.items()} == {7: 20}
    assert "query" not in session.asked[0][2]


def sandbox_client(app, sandbox, connected) -> AmoCRMClient:
    return AmoCRMClient(sandbox.base_url, StaticTokens(connected.tokens["access_token"]))


@pytest.mark.integration
def test_403_for_missing_rights_is_not_a_block(app, sandbox, connected):
    """The connected user may not read deals (the account's `denied` rights, set through the sandbox's control API):
    amoCRM refuses that kind of call with a problem JSON 403, and only that kind."""
    sandbox.set_account(connected.account["id"], denied=["leads:read"])
    api = sandbox_client(app, sandbox, connected)
    with pytest.raises(Forbidden) as raised:
        api.get_pipelines()
    assert type(raised.value) is Forbidden and raised.value.body["status"] == 403
    assert api.get_account()["id"] == connected.account["id"]  # other kinds of call still work
    assert sandbox.counters()["http_403_rights"] == 1


@pytest.mark.integration
def test_403_is_a_block_as_amocrms_html_page(app, sandbox, connected):
    """amoCRM's block (after repeated limit violations) is its nginx HTML page on every call."""
    sandbox.faults(block=True)
    with pytest.raises(AccountBlocked) as raised:
        sandbox_client(app, sandbox, connected).get_pipelines()
    assert type(raised.value) is AccountBlocked and "<html" in raised.value.body.lower()


@pytest.mark.integration
def test_the_block_page_on_the_token_endpoint_is_not_a_revoked_token(app, sandbox, connected):
    sandbox.faults(block=True)
    with pytest.raises(AccountBlocked) as raised:
        oauth.refresh(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, connected.tokens["refresh_token"], timeout=5)
    assert not isinstance(raised.value, OAuthError)  # the token provider marks only OAuthError "needs reconnecting"

