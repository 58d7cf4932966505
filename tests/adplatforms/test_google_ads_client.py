"""The Google Ads wire client against the Google Ads sandbox over real HTTP: OAuth, refresh, revoked and expired
tokens, accessible customers and managers' clients (login-customer-id), searchStream batches, exact micros,
quotas and errors."""
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
from conftest import REDIRECT_URI, consent, google_client_for

from portal.adplatforms.base import AdAccountInfo, AdPlatformError, RetryLater, TokenRevoked
from portal.adplatforms.google_ads.client import client_from_config
from portal.sandbox.spend_figures import daily_figures


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def expected(campaign_ids, first: date, last: date) -> dict:
    """{(campaign id, day): cost} the sandbox must report (days without impressions have no row)."""
    found = {}
    for campaign_id in campaign_ids:
        day = first
        while day <= last:
            impressions, _, hundredths = daily_figures("google", campaign_id, day)
            if impressions:
                found[(str(campaign_id), day)] = Decimal(hundredths * 10_000) / 1_000_000
            day += timedelta(days=1)
    return found


def api_calls(control) -> list[dict]:
    return control.get("/calls")


def test_oauth_round_trip_asks_for_offline_access_and_gets_a_refresh_token(google_client):
    url = google_client.authorization_url("state-9", REDIRECT_URI)
    for part in ("access_type=offline", "prompt=consent", "response_type=code",
                 "scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fadwords"):
        assert part in url
    back = consent(url, email="owner@sandbox.test")
    assert back["state"] == "state-9"
    tokens = google_client.exchange_code(back["code"], REDIRECT_URI)
    assert tokens.refresh_token and tokens.access_token
    assert timedelta(minutes=55) < tokens.expires_at - datetime.now(tokens.expires_at.tzinfo) <= timedelta(hours=1)
    with pytest.raises(TokenRevoked):  # a code is good once
        google_client.exchange_code(back["code"], REDIRECT_URI)


def test_denied_consent_comes_back_as_access_denied(google_client):
    back = consent(google_client.authorization_url("s", REDIRECT_URI), decision="deny")
    assert back == {"error": "access_denied", "state": "s"}


def test_refresh_keeps_the_refresh_token_and_gives_a_working_access_token(google_client, google_tokens):
    refreshed = google_client.refresh(google_tokens)
    assert refreshed.access_token != google_tokens.access_token
    assert refreshed.refresh_token == google_tokens.refresh_token
    assert google_client.accessible_customer_ids(refreshed)


def test_revoked_grant_is_token_revoked_for_calls_and_for_refresh(google_client, google_tokens, google_control):
    google_control.post("/tokens/revoke", {"email": "owner@sandbox.test"})
    with pytest.raises(TokenRevoked, match="UNAUTHENTICATED"):
        google_client.accounts(google_tokens)
    with pytest.raises(TokenRevoked):
        google_client.refresh(google_tokens)


def test_expired_access_token_is_token_revoked_until_refreshed(google_client, google_tokens, google_control):
    google_control.post("/tokens/expire", {"email": "owner@sandbox.test"})
    with pytest.raises(TokenRevoked, match="OAUTH_TOKEN_EXPIRED"):
        google_client.accessible_customer_ids(google_tokens)
    assert google_client.accessible_customer_ids(google_client.refresh(google_tokens))


def test_accounts_are_direct_customers_and_every_client_below_a_manager(google_client, google_tokens):
    accounts = {account.external_id: account for account in google_client.accounts(google_tokens)}
    assert set(accounts) == {"1111111111", "3333333333", "4444444444", "7777777777"}  # no managers, no closed one
    assert accounts["1111111111"] == AdAccountInfo(external_id="1111111111", name="Direct advertiser",
                                                   currency="USD", timezone="America/New_York", manager_id=None)
    assert (accounts["3333333333"].currency, accounts["3333333333"].timezone, accounts["3333333333"].manager_id) == \
        ("EUR", "Europe/Berlin", "2222222222")
    assert accounts["7777777777"].manager_id == "2222222222"  # under a sub-manager, reached through the top one


def test_a_cancelled_client_of_a_manager_is_not_listed(google_client, google_tokens, google_control):
    google_control.post("/customers", {"id": "8888888888", "name": "Gone", "currency": "USD", "time_zone": "UTC",
                                       "parent": "2222222222", "status": "CANCELED"})
    listed = {account.external_id for account in google_client.accounts(google_tokens)}
    assert "8888888888" not in listed and "3333333333" in listed
    assert google_client.account_tokens(google_tokens, google_client.accounts(google_tokens)[0]) is None


def test_an_account_reached_directly_and_through_a_manager_is_listed_once_directly(
        google_client, google_tokens, google_control):
    google_control.post("/users", {"email": "owner@sandbox.test",
                                   "customers": ["1111111111", "2222222222", "3333333333"]})
    accounts = [account for account in google_client.accounts(google_tokens) if account.external_id == "3333333333"]
    assert len(accounts) == 1 and accounts[0].manager_id is None


def test_a_managed_client_needs_login_customer_id_which_the_client_sends(
        google_server, google_client, google_tokens, google_control):
    first = last = today_in("Europe/Berlin")
    answer = requests.post(f"{google_server.url}/v26/customers/3333333333/googleAds:searchStream",
                           json={"query": "SELECT campaign.id FROM campaign"},
                           headers={"Authorization": f"Bearer {google_tokens.access_token}"}, timeout=10)
    assert answer.status_code == 403
    [failure] = answer.json()[0]["error"]["details"][0]["errors"]
    assert failure["errorCode"] == {"authorizationError": "USER_PERMISSION_DENIED"}
    assert "login-customer-id" in failure["message"]
    berlin = AdAccountInfo(external_id="3333333333", name="Client Berlin", currency="EUR", manager_id="2222222222")
    google_client.campaign_days(google_tokens, berlin, first, last)
    assert api_calls(google_control)[-1]["login_customer_id"] == "2222222222"
    with pytest.raises(AdPlatformError, match="USER_PERMISSION_DENIED"):
        google_client.campaign_days(google_tokens, AdAccountInfo("3333333333", "Client Berlin", "EUR"), first, last)


def test_cost_of_500_campaigns_comes_in_batches_of_10000_rows_with_exact_micros(
        google_server, google_client, google_tokens, google_control):
    ids = google_control.post("/customers/1111111111/campaigns", {"count": 498})["ids"]
    campaign_ids = [20_000_000_001, 20_000_000_002] + [int(campaign_id) for campaign_id in ids]
    last = today_in("America/New_York")
    first = last - timedelta(days=29)
    account = AdAccountInfo("1111111111", "Direct advertiser", "USD", "America/New_York")
    days = google_client.campaign_days(google_tokens, account, first, last)
    want = expected(campaign_ids, first, last)
    assert {(day.campaign_id, day.day): day.cost for day in days} == want
    assert len(days) > 10_000 and {day.vat_included for day in days} == {False}
    raw = requests.post(f"{google_server.url}/v26/customers/1111111111/googleAds:searchStream",
                        json={"query": f"SELECT segments.date, campaign.id, metrics.cost_micros FROM campaign "
                                       f"WHERE segments.date BETWEEN '{first}' AND '{last}'"},
                        headers={"Authorization": f"Bearer {google_tokens.access_token}"}, timeout=30).json()
    assert [len(batch["results"]) for batch in raw[:-1]] == [10_000] * (len(raw) - 1)
    assert "queryResourceConsumption" in raw[-1] and "queryResourceConsumption" not in raw[0]
    sample = raw[0]["results"][0]
    assert isinstance(sample["campaign"]["id"], str) and isinstance(sample["metrics"]["costMicros"], str)


def test_quota_exhaustion_is_retry_later_with_the_delay_google_names(google_client, google_tokens, google_control):
    google_control.post("/faults", {"status": 429, "count": 1, "retry_delay": 42})
    with pytest.raises(RetryLater) as failure:
        google_client.accessible_customer_ids(google_tokens)
    assert failure.value.retry_after == 42.0
    google_control.post("/config", {"GOOGLE_SANDBOX_DAILY_OPERATIONS": 1})
    google_client.accessible_customer_ids(google_tokens)
    with pytest.raises(RetryLater, match="RESOURCE_EXHAUSTED") as failure:
        google_client.accessible_customer_ids(google_tokens)
    assert 86_000 < failure.value.retry_after <= 86_400


def test_server_errors_are_retry_later_and_bad_queries_say_what_is_wrong(google_client, google_tokens, google_control):
    google_control.post("/faults", {"status": 500, "count": 1})
    with pytest.raises(RetryLater):
        google_client.accessible_customer_ids(google_tokens)
    with pytest.raises(AdPlatformError, match="UNRECOGNIZED_FIELD") as failure:
        google_client.search_stream(google_tokens, "1111111111", "SELECT campaign.budget FROM campaign")
    assert not isinstance(failure.value, (RetryLater, TokenRevoked))
    with pytest.raises(AdPlatformError, match="EXPECTED_FILTERS_ON_DATE_RANGE"):
        google_client.search_stream(google_tokens, "1111111111", "SELECT segments.date, campaign.id FROM campaign")


def test_developer_token_is_sent_only_when_configured(google_server, google_tokens, google_control):
    google_client_for(google_server).accessible_customer_ids(google_tokens)
    google_client_for(google_server, developer_token="dev-123").accessible_customer_ids(google_tokens)
    assert [call["developer_token"] for call in api_calls(google_control)[-2:]] == [None, "dev-123"]


def test_a_sunset_api_version_is_a_clear_error(google_server, google_tokens):
    with pytest.raises(AdPlatformError, match="404"):
        google_client_for(google_server, api_version="v21").accessible_customer_ids(google_tokens)


def test_a_short_term_limit_per_customer_is_retry_later(google_client, google_tokens, google_control):
    google_control.post("/config", {"GOOGLE_SANDBOX_REQUESTS_PER_SECOND": 1})
    with pytest.raises(RetryLater, match="RESOURCE_TEMPORARILY_EXHAUSTED") as failure:
        for _ in range(3):  # at least two of them fall within one second
            google_client.search_stream(google_tokens, "1111111111", "SELECT customer.id FROM customer")
    assert failure.value.retry_after == 30.0


def test_client_from_config_reads_the_google_settings():
    client = client_from_config({"GOOGLE_ADS_CLIENT_ID": "id", "GOOGLE_ADS_CLIENT_SECRET": "secret",
                                 "GOOGLE_ADS_API_URL": "https://ads.example", "GOOGLE_ADS_OAUTH_URL": "https://o.example",
                                 "GOOGLE_ADS_TOKEN_URL": "https://t.example", "GOOGLE_ADS_API_VERSION": "v25",
                                 "GOOGLE_ADS_DEVELOPER_TOKEN": "", "GOOGLE_ADS_TIMEOUT_SECONDS": 7}, requests.Session())
    assert (client.api_url, client.token_url, client.api_version, client.developer_token, client.timeout) == \
        ("https://ads.example", "https://t.example", "v25", None, 7.0)
    defaults = client_from_config({})
    assert (defaults.api_url, defaults.api_version) == ("https://googleads.googleapis.com", "v26")


def test_when_every_customer_refuses_the_refusal_is_raised_not_an_empty_list(
        google_client, google_tokens, google_control):
    google_control.post("/users", {"email": "owner@sandbox.test", "customers": ["5555555555"]})
    with pytest.raises(AdPlatformError, match="CUSTOMER_NOT_ENABLED"):
        google_client.accounts(google_tokens)
