"""The plain amoCRM client library against the sandbox over HTTP: token endpoint, typed errors,
401 refresh-and-replay, pagination, webhooks, and the referer check that keeps secrets at amoCRM."""
import threading

import pytest
import requests
from fixtures.connect import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, query_of, sandbox_fixture, sandbox_server_fixture  # noqa: F401

from portal.amocrm.api import oauth
from portal.amocrm.api.client import AmoCRMClient, CallRecord
from portal.amocrm.api.errors import (
    AccountBlocked,
    OAuthError,
    RateLimited,
    ServerError,
    TokenRevoked,
    TransportError,
    Unauthorized,
    ValidationFailed,
)

DOMAINS = [".amocrm.ru", ".amocrm.com", ".kommo.com"]


class MemoryTokens:
    """The simplest TokenProvider: a pair in memory, refreshed at the sandbox."""

    def __init__(self, base: str, pair: oauth.TokenSet) -> None:
        self.base, self.pair, self.refreshes = base, pair, 0
        self.lock = threading.Lock()

    def access_token(self) -> str:
        return self.pair.access_token

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        with self.lock:
            if self.pair.access_token == rejected_token:
                self.pair = oauth.refresh(self.base, CLIENT_ID, CLIENT_SECRET, self.pair.refresh_token, REDIRECT_URI)
                self.refreshes += 1
            return self.pair.access_token


def connect(sandbox) -> oauth.TokenSet:
    code = query_of(sandbox.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    return oauth.exchange_code(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI)


@pytest.fixture
def tokens(sandbox):
    return MemoryTokens(sandbox.base_url, connect(sandbox))


@pytest.fixture
def calls():
    return []


@pytest.fixture
def api(sandbox, tokens, calls):
    return AmoCRMClient(sandbox.base_url, tokens, timeout=5, on_call=calls.append)


# -- referer and base URL ------------------------------------------------------------------------------

@pytest.mark.parametrize("referer", ["example.amocrm.ru", "Shop.Kommo.com", "a-b.amocrm.com"])
def test_amocrm_account_hosts_are_accepted(referer):
    assert oauth.account_host(referer, DOMAINS) == referer.lower()
    assert oauth.base_url(referer.lower()) == f"https://{referer.lower()}"


@pytest.mark.parametrize("referer", [
    "evil.example", "amocrm.ru", "example.amocrm.ru.evil.example", "evilamocrm.ru", "example.amocrm.ru:8443",
    "https://example.amocrm.ru", "example.amocrm.ru/path", "user@example.amocrm.ru", "", None,
    "example.amocrm.ru\r\nX: y", "127.0.0.1:5001",
])
def test_other_hosts_are_refused(referer):
    with pytest.raises(oauth.InvalidReferer):
        oauth.account_host(referer, DOMAINS)


def test_dev_hosts_match_host_and_port_or_any_port_for_a_bare_host():
    assert oauth.account_host("127.0.0.1:5001", DOMAINS, ["127.0.0.1:5001"]) == "127.0.0.1:5001"
    assert oauth.account_host("localhost:39999", DOMAINS, ["localhost"]) == "localhost:39999"
    with pytest.raises(oauth.InvalidReferer):
        oauth.account_host("127.0.0.1:5002", DOMAINS, ["127.0.0.1:5001"])
    assert oauth.base_url("127.0.0.1:5001", ["127.0.0.1:5001"]) == "http://127.0.0.1:5001"
    assert oauth.base_url("127.0.0.1:5001", []) == "https://127.0.0.1:5001"


# -- token endpoint ---------------------------------------------------------------------------------

def test_code_exchange_returns_a_pair_that_expires_in_a_day(sandbox):
    pair = connect(sandbox)
    assert pair.access_token.count(".") == 2 and pair.refresh_token.startswith("def502")
    assert "def502" not in repr(pair)
    assert sandbox.counters()["tokens_issued"] == 1


def test_a_reused_code_is_an_oauth_error_with_amocrms_hint(sandbox):
    code = query_of(sandbox.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    oauth.exchange_code(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI)
    with pytest.raises(OAuthError) as caught:
        oauth.exchange_code(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI)
    assert caught.value.hint == "Authorization code has been revoked" and caught.value.status == 400
    assert not isinstance(caught.value, TokenRevoked)


def test_a_wrong_secret_is_an_oauth_error(sandbox):
    code = query_of(sandbox.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    with pytest.raises(OAuthError) as caught:
        oauth.exchange_code(sandbox.base_url, CLIENT_ID, "wrong", code, REDIRECT_URI)
    assert "client_secret" in caught.value.hint


def test_refresh_rotates_and_a_reused_refresh_token_is_revoked(sandbox):
    pair = connect(sandbox)
    fresh = oauth.refresh(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, pair.refresh_token, REDIRECT_URI)
    assert fresh.refresh_token != pair.refresh_token
    with pytest.raises(TokenRevoked) as caught:
        oauth.refresh(sandbox.base_url, CLIENT_ID, CLIENT_SECRET, pair.refresh_token, REDIRECT_URI)
    assert caught.value.status == 401
    assert "refresh_token" not in (caught.value.body or {})


def test_an_unreachable_token_endpoint_is_a_transport_error():
    with pytest.raises(TransportError):
        oauth.exchange_code("http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET, "code", REDIRECT_URI, timeout=1)


# -- API calls ----------------------------------------------------------------------------------------

def test_account_and_pipelines(api, calls):
    account = api.get_account()
    assert account["subdomain"] == "sandbox" and "datetime_settings" in account["_embedded"]
    pipelines = api.get_pipelines()
    assert any(p["is_main"] for p in pipelines) and all(p["_embedded"]["statuses"] for p in pipelines)
    assert [(c.method, c.status) for c in calls] == [("GET", 200), ("GET", 200)]
    assert isinstance(calls[0], CallRecord) and calls[0].path.startswith("/api/v4/account")


def test_an_expired_access_token_is_refreshed_once_and_the_call_replayed(sandbox, api, tokens, calls):
    sandbox.expire_tokens()
    assert api.get_account()["subdomain"] == "sandbox"
    assert tokens.refreshes == 1
    assert [c.status for c in calls] == [401, 200]


def test_a_401_after_the_refresh_is_unauthorized(sandbox, tokens):
    class Stale(MemoryTokens):
        def refresh_after_unauthorized(self, rejected_token):
            return rejected_token

    api = AmoCRMClient(sandbox.base_url, Stale(sandbox.base_url, tokens.pair))
    sandbox.expire_tokens()
    with pytest.raises(Unauthorized) as caught:
        api.get_account()
    assert caught.value.status == 401


@pytest.mark.parametrize("list_filters", ["ignored", "applied"])  # accounts without / with the filtering feature
def test_leads_are_created_read_listed_across_pages_and_updated(sandbox, api, list_filters):
    sandbox.set_account(sandbox.main_account()["id"], list_filters=list_filters)
    created = api.create_leads_complex([{"name": f"Lead {n}", "request_id": str(n)} for n in range(5)])
    ids = [item["id"] for item in created]
    assert len(ids) == 5
    assert api.get_lead(ids[0])["name"] == "Lead 0"
    assert api.get_lead(999999999) is None
    assert sorted(lead["id"] for lead in api.iter_leads(limit=2)) == sorted(ids)
    updated = api.update_leads([{"id": ids[0], "price": 700}])
    assert updated[0]["id"] == ids[0] and api.get_lead(ids[0])["price"] == 700
    assert list(api.iter_leads(updated_from=2_000_000_000)) == []
    with pytest.raises(ValueError):
        api.create_leads_complex([{"name": "x"}] * 51)


def test_leads_are_read_by_id_in_one_call_and_a_missing_one_is_none(api, calls):
    """The sandbox's default account ignores list filters: its unfiltered answer, short of a page, is the whole
    list, so nothing is paged and only the id it lacks is read alone."""
    ids = [item["id"] for item in api.create_leads_complex([{"name": f"Lead {n}", "price": n} for n in range(3)])]
    del calls[:]
    found = api.get_leads_by_id([ids[0], ids[2], 999999999]).leads
    assert {lead_id: lead and lead["price"] for lead_id, lead in found.items()} == {ids[0]: 0, ids[2]: 2,
                                                                                    999999999: None}
    assert [call.path.split("?")[0] for call in calls] == ["/api/v4/leads", "/api/v4/leads/999999999"]


class RequestLines(requests.Session):
    """Records each request line as it goes out."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def send(self, prepared, **kwargs):
        self.lines.append(f"{prepared.method} {prepared.path_url} HTTP/1.1")
        return super().send(prepared, **kwargs)


def test_many_leads_are_read_by_id_in_request_lines_a_front_server_accepts(sandbox, tokens):
    """250 ids in one `filter[id][]` query make a ~7.5 KB request line: gunicorn (4 KB) and nginx (8 KB by
    default) answer 414 to such lines, and webhook processing would never read its deals."""
    sandbox.set_account(sandbox.main_account()["id"], list_filters="applied")
    session = RequestLines()
    api = AmoCRMClient(sandbox.base_url, tokens, timeout=5, session=session)
    ids = [item["id"] for start in range(0, 260, 50)
           for item in api.create_leads_complex([{"name": f"Lead {start + n}"} for n in range(50)])]
    del session.lines[:]
    found = api.get_leads_by_id(ids).leads
    assert sorted(lead["id"] for lead in found.values()) == sorted(ids)
    assert len(session.lines) == 3 and all(line.startswith("GET /api/v4/leads?") for line in session.lines)
    assert max(len(line) for line in session.lines) <= 4094  # gunicorn's limit_request_line


class WithoutApiFiltering(requests.Session):
    """An account where API filtering is not enabled: amoCRM ignores `filter[…]` and answers an unfiltered list."""

    def request(self, method, url, params=None, **kwargs):
        params = {key: value for key, value in (params or {}).items() if not key.startswith("filter[")}
        return super().request(method, url, params=params, **kwargs)


def test_without_api_filtering_only_the_leads_asked_for_are_returned(sandbox, tokens, calls):
    api = AmoCRMClient(sandbox.base_url, tokens, timeout=5, session=WithoutApiFiltering(), on_call=calls.append)
    ids = [item["id"] for item in api.create_leads_complex([{"name": f"Lead {n}"} for n in range(4)])]
    found = api.get_leads_by_id([ids[1]]).leads
    assert list(found) == [ids[1]] and found[ids[1]]["name"] == "Lead 1"


def test_validation_errors_are_flattened(api):
    with pytest.raises(ValidationFailed) as caught:
        api.create_leads_complex([{"name": "ok"}, {"price": "not a number"}])
    assert caught.value.status == 400
    assert caught.value.errors and {"request_id", "code", "path", "detail"} <= set(caught.value.errors[0])


def test_contacts_search_empty_is_an_empty_list(api):
    assert api.search_contacts("nobody-like-this") == []


def test_webhooks_subscribe_list_and_unsubscribe(api):
    hook = api.subscribe_webhook("http://127.0.0.1:1/hook", ["add_lead", "status_lead"])
    assert hook["destination"] == "http://127.0.0.1:1/hook"
    assert [h["destination"] for h in api.list_webhooks()] == ["http://127.0.0.1:1/hook"]
    api.unsubscribe_webhook("http://127.0.0.1:1/hook")
    assert api.list_webhooks() == []


@pytest.mark.parametrize("html", [False, True])
def test_429_is_rate_limited_with_retry_after_even_when_the_body_is_html(sandbox, api, html):
    sandbox.faults(rate_limit_per_sec=1, html_429=html)
    with pytest.raises(RateLimited) as caught:
        for _ in range(5):
            api.get_account()
    assert caught.value.status == 429
    if not html:
        assert caught.value.retry_after == 1


def test_403_is_account_blocked(sandbox, api):
    sandbox.faults(block=True)
    with pytest.raises(AccountBlocked):
        api.get_account()


def test_500_is_a_server_error(sandbox, api):
    sandbox.faults(http_500_rate=1.0)
    with pytest.raises(ServerError) as caught:
        api.get_account()
    assert caught.value.status == 500


def test_a_timeout_on_a_write_is_an_ambiguous_transport_error(sandbox, tokens, calls):
    sandbox.faults(timeout_rate=1.0, timeout_seconds=2)
    api = AmoCRMClient(sandbox.base_url, tokens, timeout=0.5, on_call=calls.append)
    with pytest.raises(TransportError) as caught:
        api.create_leads_complex([{"name": "x"}])
    assert caught.value.ambiguous is True
    with pytest.raises(TransportError) as caught:
        api.get_account()
    assert caught.value.ambiguous is False
    assert calls[-1].status is None and calls[-1].error


def test_a_refused_connection_is_not_ambiguous(tokens):
    api = AmoCRMClient("http://127.0.0.1:9", tokens, timeout=1)
    with pytest.raises(TransportError) as caught:
        api.create_leads_complex([{"name": "x"}])
    assert caught.value.ambiguous is False


def test_links_never_take_the_token_to_another_host(tokens, monkeypatch):
    seen = []

    class Recorder(requests.Session):
        def request(self, method, url, **kwargs):
            seen.append(url)
            response = requests.Response()
            response.status_code = 204
            return response

    api = AmoCRMClient("http://127.0.0.1:1", tokens, session=Recorder())
    api.request("GET", "https://evil.example/api/v4/leads?page=2")
    assert seen == ["http://127.0.0.1:1/api/v4/leads?page=2"]


@pytest.mark.parametrize("host, subdomain", [("example.amocrm.ru", "example"), ("shop.kommo.com", "shop"),
                                             ("127.0.0.1:5001", None), ("localhost:5001", None), (None, None)])
def test_status_names_the_amocrm_subdomain(host, subdomain):
    from portal.amocrm.connection import _subdomain

    assert _subdomain(host) == subdomain
