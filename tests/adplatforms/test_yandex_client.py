"""The Yandex Direct client against the sandbox over HTTP: accounts of an advertiser and of an agency, cost per
campaign and day, offline reports polled within the call's budget (else RetryLater), limits and faults as
RetryLater, a revoked token as TokenRevoked; and the TSV parser on its own."""
from datetime import date
from decimal import Decimal

import pytest
from fixtures.yandex_direct import grant, make_client

from portal.adplatforms.base import AdAccountInfo, AdPlatformError, RetryLater, TokenRevoked
from portal.adplatforms.yandex_direct.client import parse_report

FIRST, LAST = date(2026, 9, 1), date(2026, 9, 10)


def test_an_advertiser_has_its_own_account(yandex, yandex_client):
    accounts = yandex_client.accounts(grant(yandex, "sandbox-advertiser"))
    assert accounts == [AdAccountInfo("sandbox-advertiser", "sandbox-advertiser (sandbox)", "RUB")]


def test_an_agency_lists_its_clients_reached_through_client_login(yandex, yandex_client):
    tokens = grant(yandex, "sandbox-agency")
    accounts = yandex_client.accounts(tokens)
    assert {(account.external_id, account.currency, account.manager_id) for account in accounts} == {
        ("agency-client-rub", "RUB", "sandbox-agency"), ("agency-client-usd", "USD", "sandbox-agency")}
    days = yandex_client.campaign_days(tokens, accounts[0], FIRST, LAST)
    assert days and all(FIRST <= day.day <= LAST for day in days)
    assert {call["client_login"] for call in yandex.report_calls()} == {accounts[0].external_id}


def test_campaign_days_match_the_report_exactly(yandex, yandex_client):
    tokens = grant(yandex, "sandbox-advertiser")
    account = yandex_client.accounts(tokens)[0]
    days = yandex_client.campaign_days(tokens, account, FIRST, LAST)
    assert len({day.campaign_id for day in days}) == 3
    assert all(day.cost > 0 and day.cost == day.cost.quantize(Decimal("0.01")) for day in days)
    assert all(day.vat_included is False for day in days)
    with_vat = make_client(yandex.url, include_vat=True).campaign_days(tokens, account, FIRST, LAST)
    assert sum(day.cost for day in with_vat) > sum(day.cost for day in days)
    assert all(day.vat_included for day in with_vat)


def test_an_offline_report_is_polled_until_ready_by_resending_the_same_request(yandex, yandex_client):
    yandex.config(YD_ONLINE_MAX_ROWS=5)
    tokens = grant(yandex, "sandbox-advertiser")
    days = yandex_client.campaign_days(tokens, yandex_client.accounts(tokens)[0], FIRST, LAST)
    statuses = [call["status"] for call in yandex.report_calls()]
    assert statuses[0] == 201 and statuses[-1] == 200 and set(statuses) <= {200, 201, 202}
    assert len(days) > 5


def test_a_report_that_stays_202_past_the_budget_raises_retry_later(yandex):
    yandex.config(YD_ONLINE_MAX_ROWS=5, YD_RETRY_IN=1)
    yandex.faults(stay_202=50)
    client = make_client(yandex.url, report_wait_seconds=1.5)
    tokens = grant(yandex, "sandbox-advertiser")
    with pytest.raises(RetryLater) as raised:
        client.campaign_days(tokens, client.accounts(tokens)[0], FIRST, LAST)
    assert raised.value.retry_after == 1


def test_a_report_that_stays_202_a_few_times_is_still_read(yandex, yandex_client):
    yandex.config(YD_ONLINE_MAX_ROWS=5)
    yandex.faults(stay_202=3)
    tokens = grant(yandex, "sandbox-advertiser")
    assert yandex_client.campaign_days(tokens, yandex_client.accounts(tokens)[0], FIRST, LAST)
    assert [call["status"] for call in yandex.report_calls()].count(202) >= 3


@pytest.mark.parametrize("fault", ["http_500", "http_502", "units_exhausted"])
def test_server_faults_and_used_up_points_are_retry_later(yandex, yandex_client, fault):
    tokens = grant(yandex, "sandbox-advertiser")
    account = yandex_client.accounts(tokens)[0]
    yandex.faults(**{fault: 1})
    with pytest.raises(RetryLater) as raised:
        yandex_client.campaign_days(tokens, account, FIRST, LAST) if fault != "units_exhausted" else \
            yandex_client.campaigns(tokens, account)
    assert raised.value.retry_after >= 10


def test_the_request_limit_is_retry_later(yandex, yandex_client):
    yandex.config(YD_REPORTS_PER_WINDOW=2)
    tokens = grant(yandex, "sandbox-advertiser")
    account = yandex_client.accounts(tokens)[0]
    yandex_client.campaign_days(tokens, account, FIRST, LAST)
    yandex_client.campaign_days(tokens, account, FIRST, FIRST)
    with pytest.raises(RetryLater):
        yandex_client.campaign_days(tokens, account, LAST, LAST)


def test_a_full_offline_queue_is_retry_later(yandex):
    yandex.config(YD_ONLINE_MAX_ROWS=1, YD_REPORT_BUILD_SECONDS=60)
    client = make_client(yandex.url, report_wait_seconds=0)
    tokens = grant(yandex, "sandbox-advertiser")
    account = client.accounts(tokens)[0]
    for offset in range(5):
        with pytest.raises(RetryLater):
            client.campaign_days(tokens, account, date(2026, 8, 1 + offset), date(2026, 8, 20))
    with pytest.raises(RetryLater) as raised:
        client.campaign_days(tokens, account, FIRST, LAST)
    assert "queue" in str(raised.value)


def test_a_revoked_token_is_token_revoked_and_so_is_its_refresh(yandex, yandex_client):
    tokens = grant(yandex, "sandbox-advertiser")
    account = yandex_client.accounts(tokens)[0]
    yandex.revoke("sandbox-advertiser")
    with pytest.raises(TokenRevoked):
        yandex_client.campaign_days(tokens, account, FIRST, LAST)
    with pytest.raises(TokenRevoked):
        yandex_client.refresh(tokens)


def test_a_wrong_app_secret_is_an_error_not_a_revocation(yandex):
    code = yandex.code("sandbox-advertiser")["code"]
    client = make_client(yandex.url)
    client.client_secret = "wrong"
    with pytest.raises(AdPlatformError) as raised:
        client.exchange_code(code, "http://127.0.0.1/cb")
    assert not isinstance(raised.value, TokenRevoked) and "YANDEX_DIRECT_CLIENT_ID" in str(raised.value)


def test_parse_report_reads_micros_and_empty_cells():
    text = ("Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost\n"
            "2026-09-01\t1\tBrand\t100\t3\t1230000\n2026-09-02\t1\tBrand\t--\t--\t--\n")
    days = parse_report(text, vat_included=True)
    assert [(day.day, day.cost, day.clicks) for day in days] == [(date(2026, 9, 1), Decimal("1.23"), 3),
                                                                  (date(2026, 9, 2), Decimal(0), 0)]


@pytest.mark.parametrize("text", ["Date\tCost\n2026-09-01\t1\n",
                                  "Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost\nbad\t1\tx\t1\t1\t1\n",
                                  "Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost\n2026-09-01\t1\n"])
def test_parse_report_refuses_what_it_cannot_read(text):
    with pytest.raises(AdPlatformError):
        parse_report(text, vat_included=False)


def test_exchange_rates_are_read_both_ways_and_a_missing_or_garbled_one_says_what_to_set():
    from portal.adplatforms.money import MissingRate, UnreadableRates, convert, parse_rates, rate_between

    rates = parse_rates(" usd:rub=90 ; EUR:RUB=100.5")
    assert convert(Decimal("10.005"), rate_between("USD", "RUB", rates)) == Decimal("900.45")
    assert convert(Decimal("180"), rate_between("RUB", "USD", rates)) == Decimal("2.00")
    assert rate_between("KZT", "KZT", rates) == 1
    with pytest.raises(MissingRate, match="KZT:RUB=<rate>"):
        rate_between("KZT", "RUB", rates)
    for garbled in ("USD=90", "USD:RUB=abc", "USD:RUB=-1", "DOLLAR:RUB=1"):
        with pytest.raises(UnreadableRates, match="AD_SPEND_RATES"):
            parse_rates(garbled)
