"""The VK Ads wire client against the VK Ads sandbox over real HTTP: OAuth, the token cap, refresh, agencies,
pagination, statistics split into requests of at most 200 ids, exact money, limits and errors."""
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
from conftest import REDIRECT_URI, consent

from portal.adplatforms.base import AdPlatformError, RetryLater, TokenRevoked, TokenSet
from portal.adplatforms.vk_ads.client import AccessTokenExpired, VKAdsClient, client_from_config
from portal.sandbox.spend_figures import daily_figures

MOSCOW = ZoneInfo("Europe/Moscow")


def moscow_today() -> date:
    return datetime.now(MOSCOW).date()


def expected_cost(plan_ids, first: date, last: date) -> Decimal:
    total = Decimal(0)
    for plan_id in plan_ids:
        day = first
        while day <= last:
            total += Decimal(daily_figures("vk", plan_id, day)[2]) / 100
            day += timedelta(days=1)
    return total


def statistics_calls(control) -> list[dict]:
    return [call for call in control.get("/calls") if call["path"].startswith("/api/v2/statistics/")]


def test_oauth_round_trip_gives_a_day_long_token_for_the_advertiser(vk_client):
    url = vk_client.authorization_url("state-42", REDIRECT_URI)
    assert "action=oauth2" in url and "response_type=code" in url and "scope=read_ads" in url
    back = consent(url, user_id="1001")
    assert back["state"] == "state-42" and back["user_id"] == "1001"
    tokens = vk_client.exchange_code(back["code"], REDIRECT_URI)
    assert tokens.refresh_token
    assert timedelta(hours=23) < tokens.expires_at - datetime.now(tokens.expires_at.tzinfo) <= timedelta(days=1)
    [account] = vk_client.accounts(tokens)
    assert (account.external_id, account.currency, account.timezone, account.manager_id) == \
        ("1001", "RUB", "Europe/Moscow", None)


def test_denied_consent_sends_the_user_back_with_access_denied(vk_client):
    back = consent(vk_client.authorization_url("state-7", REDIRECT_URI), decision="deny")
    assert back == {"error": "access_denied", "state": "state-7"}


def test_a_code_is_used_once(vk_client):
    back = consent(vk_client.authorization_url("s", REDIRECT_URI), user_id="1001")
    vk_client.exchange_code(back["code"], REDIRECT_URI)
    with pytest.raises(TokenRevoked):
        vk_client.exchange_code(back["code"], REDIRECT_URI)


def test_refresh_kills_the_old_access_token_at_once(vk_client, vk_connect):
    old = vk_connect(1001)
    new = vk_client.refresh(old)
    assert new.access_token != old.access_token and new.refresh_token == old.refresh_token
    assert vk_client.accounts(new)[0].external_id == "1001"
    with pytest.raises(TokenRevoked) as failure:
        vk_client.accounts(old)
    assert not isinstance(failure.value, AccessTokenExpired)  # unknown now, not merely expired


def test_revoked_token_is_token_revoked_and_refresh_cannot_cure_it(vk_client, vk_connect, vk_control):
    tokens = vk_connect(1001)
    vk_control.post("/tokens/revoke", {"user_id": 1001})
    with pytest.raises(TokenRevoked) as failure:
        vk_client.accounts(tokens)
    assert not isinstance(failure.value, AccessTokenExpired)
    with pytest.raises(TokenRevoked):
        vk_client.refresh(tokens)


def test_expired_token_is_access_token_expired_and_a_refresh_cures_it(vk_client, vk_connect, vk_control):
    tokens = vk_connect(1001)
    vk_control.post("/tokens/expire", {"user_id": 1001})
    with pytest.raises(AccessTokenExpired):
        vk_client.accounts(tokens)
    assert vk_client.accounts(vk_client.refresh(tokens))[0].external_id == "1001"


def test_the_sixth_token_is_refused_with_what_to_do_and_deleting_frees_the_slots(vk_client, vk_connect):
    for _ in range(5):
        vk_connect(1001)
    with pytest.raises(AdPlatformError) as failure:
        vk_connect(1001)
    assert not isinstance(failure.value, (TokenRevoked, RetryLater))
    assert "five tokens" in str(failure.value)
    vk_client.delete_user_tokens("1001")
    assert vk_connect(1001).access_token


def test_agency_lists_its_clients_and_reads_each_with_the_clients_own_token(vk_client, vk_connect):
    agency_tokens = vk_connect(2001)
    accounts = vk_client.accounts(agency_tokens)
    assert [(account.external_id, account.name, account.manager_id) for account in accounts] == \
        [("2101", "Client One", "2001"), ("2102", "Client Two", "2001")]
    last = moscow_today()
    first = last - timedelta(days=6)
    with pytest.raises(AdPlatformError, match="client's own tokens"):  # never an empty import without a word
        vk_client.campaign_days(agency_tokens, accounts[0], first, last)
    client_tokens = vk_client.account_tokens(agency_tokens, accounts[0])
    days = vk_client.campaign_days(client_tokens, accounts[0], first, last)
    assert {day.campaign_name for day in days} == {"Client one — spring", "Client one — summer"}
    plan_ids = {int(day.campaign_id) for day in days}
    assert sum(day.cost for day in days) == expected_cost(plan_ids, first, last)


def test_a_manager_lists_its_clients_through_manager_clients(vk_client, vk_connect, vk_control):
    manager_tokens = vk_connect(4001)
    [account] = vk_client.accounts(manager_tokens)
    assert (account.external_id, account.name, account.manager_id) == ("4101", "Managed client", "4001")
    assert any(call["path"] == "/api/v3/manager/clients.json" for call in vk_control.get("/calls"))
    client_tokens = vk_client.account_tokens(manager_tokens, account)
    days = vk_client.campaign_days(client_tokens, account, moscow_today(), moscow_today())
    assert {day.campaign_name for day in days} <= {"Managed — search"}


def test_an_advertiser_needs_no_tokens_of_its_own(vk_client, vk_connect):
    tokens = vk_connect(1001)
    assert vk_client.account_tokens(tokens, vk_client.accounts(tokens)[0]) is None


def test_agency_client_tokens_count_against_the_clients_five(vk_client, vk_connect):
    agency_tokens = vk_connect(2001)
    client = vk_client.accounts(agency_tokens)[0]
    for _ in range(5):
        vk_client.agency_client_tokens(agency_tokens, client)
    with pytest.raises(AdPlatformError, match="five tokens"):
        vk_client.agency_client_tokens(agency_tokens, client)


def test_campaigns_are_read_page_by_page_of_fifty_deleted_ones_included(vk_client, vk_connect, vk_control):
    vk_control.post("/users/1001/ad_plans", {"count": 110, "prefix": "Bulk"})
    vk_control.post("/users/1001/ad_plans", {"names": ["Old and deleted"], "status": "deleted"})
    campaigns = vk_client.campaigns(vk_connect(1001))
    assert len(campaigns) == 3 + 110 + 1 and "Old and deleted" in campaigns.values()
    pages = [call["query"] for call in vk_control.get("/calls") if call["path"] == "/api/v2/ad_plans.json"]
    assert [(page["limit"], page["offset"]) for page in pages] == [("50", "0"), ("50", "50"), ("50", "100")]


def test_statistics_of_450_campaigns_go_in_requests_of_at_most_200_ids_with_exact_money(
        vk_client, vk_connect, vk_control):
    vk_control.post("/users/1001/ad_plans", {"count": 447})
    tokens = vk_connect(1001)
    [account] = vk_client.accounts(tokens)
    last = moscow_today()
    first = last - timedelta(days=9)
    days = vk_client.campaign_days(tokens, account, first, last)
    id_counts = [len(call["query"]["id"].split(",")) for call in statistics_calls(vk_control)]
    assert id_counts == [200, 200, 50]
    assert {day.vat_included for day in days} == {False}
    for day in days[:50]:
        impressions, clicks, hundredths = daily_figures("vk", int(day.campaign_id), day.day)
        assert (day.cost, day.impressions, day.clicks) == (Decimal(hundredths) / 100, impressions, clicks)
    plan_ids = {int(campaign_id) for campaign_id in vk_client.campaigns(tokens)}
    assert sum(day.cost for day in days) == expected_cost(plan_ids, first, last)


def test_long_periods_are_split_into_windows_and_clipped_to_the_last_365_days(vk_client, vk_connect, vk_control):
    vk_control.post("/config", {"VK_SANDBOX_STATISTICS_DAYS_PER_REQUEST": 92})
    tokens = vk_connect(1001)
    [account] = vk_client.accounts(tokens)
    today = moscow_today()
    days = vk_client.campaign_days(tokens, account, today - timedelta(days=500), today)
    windows = [(call["query"]["date_from"], call["query"]["date_to"]) for call in statistics_calls(vk_control)]
    assert windows[0][0] == (today - timedelta(days=365)).isoformat() and windows[-1][1] == today.isoformat()
    assert len(windows) == 4  # 366 days in windows of 92
    assert min(day.day for day in days) >= today - timedelta(days=365)


def test_per_second_limit_is_waited_out_and_an_exhausted_hour_is_retry_later(vk_server, vk_connect, vk_control):
    pauses = []
    client = VKAdsClient(client_id="vk-test-client", client_secret="vk-test-secret", api_url=vk_server.url,
                         session=requests.Session(), sleep=pauses.append)
    tokens = vk_connect(1001)
    vk_control.post("/faults", {"status": 429, "count": 2})
    assert client.accounts(tokens)[0].external_id == "1001"
    assert pauses == [1.0, 1.0]
    vk_control.post("/config", {"VK_SANDBOX_LIMIT_HOURLY": 1})
    with pytest.raises(RetryLater) as failure:
        client.accounts(tokens)
    assert 1.0 < failure.value.retry_after <= 3600


def test_a_server_error_is_retry_later(vk_client, vk_connect, vk_control):
    tokens = vk_connect(1001)
    vk_control.post("/faults", {"status": 500, "count": 1})
    with pytest.raises(RetryLater):
        vk_client.accounts(tokens)
    assert vk_client.accounts(tokens)


def test_an_unreachable_platform_is_retry_later():
    client = VKAdsClient(client_id="a", client_secret="b", api_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(RetryLater):
        client.refresh(TokenSet(access_token="a", refresh_token="r"))


def test_a_wrong_app_secret_is_a_settings_problem_not_a_dead_connection(vk_server, vk_connect):
    tokens = vk_connect(1001)
    client = VKAdsClient(client_id="vk-test-client", client_secret="wrong", api_url=vk_server.url)
    with pytest.raises(AdPlatformError, match="VK_ADS_CLIENT_SECRET") as failure:
        client.refresh(tokens)
    assert not isinstance(failure.value, TokenRevoked)


def test_the_per_second_limit_is_kept_by_waiting_not_by_failing(vk_server, vk_connect, vk_control):
    vk_control.post("/users/1001/ad_plans", {"count": 130})
    vk_control.post("/config", {"VK_SANDBOX_LIMIT_RPS": 3})
    client = VKAdsClient(client_id="vk-test-client", client_secret="vk-test-secret", api_url=vk_server.url)
    tokens = vk_connect(1001)
    [account] = client.accounts(tokens)
    days = client.campaign_days(tokens, account, moscow_today(), moscow_today())
    assert {int(day.campaign_id) for day in days} <= set(map(int, client.campaigns(tokens)))
    paths = [call["path"] for call in vk_control.get("/calls")]
    assert paths.count("/api/v2/ad_plans.json") > 6  # 3 pages twice, plus at least one answered 429 and repeated


def test_client_from_config_reads_the_vk_settings():
    client = client_from_config({"VK_ADS_CLIENT_ID": "id", "VK_ADS_CLIENT_SECRET": "secret",
                                 "VK_ADS_API_URL": "https://vk.example/", "VK_ADS_OAUTH_URL": "https://vk.example/ok",
                                 "VK_ADS_TIMEOUT_SECONDS": 5}, requests.Session())
    assert (client.client_id, client.client_secret, client.api_url, client.timeout) == \
        ("id", "secret", "https://vk.example", 5.0)
    assert client.authorization_url("s", "https://app.example/cb").startswith("https://vk.example/ok?action=oauth2&")
