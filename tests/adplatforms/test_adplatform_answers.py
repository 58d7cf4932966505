"""The pure functions that read VK Ads' and Google Ads' answers: money, dates, limits and error bodies."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.adplatforms.base import AdPlatformError, RetryLater, TokenRevoked
from portal.adplatforms.google_ads import client as google
from portal.adplatforms.vk_ads import client as vk


@pytest.mark.parametrize("micros, units", [
    ("118400000", Decimal("118.4")), ("1", Decimal("0.000001")), ("0", Decimal(0)),
    ("9223372036854775807", Decimal("9223372036854.775807")), (250000, Decimal("0.25")),
])
def test_google_micros_become_exact_currency_units(micros, units):
    assert google.micros_to_decimal(micros) == units


@pytest.mark.parametrize("bad", ["1.5", "abc", None])
def test_google_micros_that_are_not_whole_numbers_are_refused(bad):
    with pytest.raises(AdPlatformError):
        google.micros_to_decimal(bad)


@pytest.mark.parametrize("text, seconds", [("30s", 30.0), ("1.500s", 1.5), ("0s", 0.0), ("30", None), (None, None)])
def test_google_durations(text, seconds):
    assert google.seconds_of_duration(text) == seconds


def test_google_customer_ids_come_from_resource_names():
    assert google.customer_id_of("customers/1234567890") == "1234567890"
    with pytest.raises(AdPlatformError):
        google.customer_id_of("customers/12345")


def failure(http: int, status: str, error_code: dict, message: str = "m", details: dict | None = None) -> dict:
    entry = {"errorCode": error_code, "message": message, **({"details": details} if details else {})}
    return {"error": {"code": http, "status": status, "message": "top",
                      "details": [{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                                   "errors": [entry]}]}}


def test_google_errors_map_to_the_interface_types():
    assert isinstance(google.error_of(401, failure(401, "UNAUTHENTICATED", {"authenticationError": "X"})),
                      TokenRevoked)
    quota = google.error_of(429, failure(429, "RESOURCE_EXHAUSTED", {"quotaError": "RESOURCE_EXHAUSTED"},
                                         details={"quotaErrorDetails": {"retryDelay": "17s"}}))
    assert isinstance(quota, RetryLater) and quota.retry_after == 17.0
    no_delay = google.error_of(429, failure(429, "RESOURCE_EXHAUSTED", {"quotaError": "RESOURCE_EXHAUSTED"}))
    assert no_delay.retry_after == 60.0
    assert isinstance(google.error_of(503, {"error": {"code": 503, "status": "UNAVAILABLE"}}), RetryLater)
    plain = google.error_of(400, [failure(400, "INVALID_ARGUMENT", {"queryError": "BAD_FIELD_NAME"}, "Bad field")])
    assert type(plain) is AdPlatformError and "queryError=BAD_FIELD_NAME" in str(plain) and "Bad field" in str(plain)


def test_a_stream_that_breaks_after_its_first_batch_raises_the_error():
    rows = google.rows_of_stream([{"results": [{"campaign": {"id": "1"}}]}, {"results": []}])
    assert rows == [{"campaign": {"id": "1"}}]
    with pytest.raises(RetryLater):
        google.rows_of_stream([{"results": [{}]}, {"error": {"code": 500, "status": "INTERNAL"}}])


def test_google_rows_become_campaign_days_without_empty_ones():
    rows = [{"campaign": {"id": "7", "name": "A"}, "segments": {"date": "2026-07-01"},
             "metrics": {"costMicros": "1230000", "impressions": "10", "clicks": "2"}},
            {"campaign": {"id": "8", "name": "B"}, "segments": {"date": "2026-07-01"},
             "metrics": {"costMicros": "0", "impressions": "0", "clicks": "0"}}]
    [day] = google.campaign_days_from_rows(rows)
    assert (day.campaign_id, day.day, day.cost, day.impressions, day.clicks) == \
        ("7", date(2026, 7, 1), Decimal("1.23"), 10, 2)


def test_google_refresh_answers_keep_the_refresh_token_they_lack():
    now = datetime(2026, 7, 1, tzinfo=UTC)
    tokens = google.token_set_from({"access_token": "a", "expires_in": 3599}, now, "r-old")
    assert tokens.refresh_token == "r-old" and tokens.expires_at == now + timedelta(seconds=3599)


@pytest.mark.parametrize("value, amount", [("23328.92", Decimal("23328.92")), ("0", Decimal(0)),
                                           ("86.4", Decimal("86.4")), (12, Decimal(12)), (0.1, Decimal("0.1"))])
def test_vk_money_is_exact(value, amount):
    assert vk.money(value) == amount


@pytest.mark.parametrize("bad", ["NaN", "12,5", "Infinity"])
def test_vk_money_that_is_not_a_number_is_refused(bad):
    with pytest.raises(AdPlatformError):
        vk.money(bad)


def test_vk_statistics_become_campaign_days_with_names_and_without_empty_days():
    body = {"items": [{"id": 11, "rows": [
        {"date": "2026-07-01", "base": {"shows": 5, "clicks": 1, "spent": "10.50"}},
        {"date": "2026-07-02", "base": {"shows": 0, "clicks": 0, "spent": "0"}}]}]}
    [day] = vk.campaign_days_from_statistics(body, {"11": "Spring"})
    assert (day.campaign_id, day.campaign_name, day.day, day.cost, day.vat_included) == \
        ("11", "Spring", date(2026, 7, 1), Decimal("10.50"), False)
    with pytest.raises(AdPlatformError):
        vk.campaign_days_from_statistics({"error": {}}, {})


def test_vk_token_lifetime_comes_as_a_string_or_a_number():
    now = datetime(2026, 7, 1, tzinfo=UTC)
    assert vk.token_set_from({"access_token": "a", "expires_in": "86400"}, now).expires_at == now + timedelta(days=1)
    assert vk.token_set_from({"access_token": "a", "expires_in": 86400}, now).expires_at == now + timedelta(days=1)
    with pytest.raises(AdPlatformError):
        vk.token_set_from({"token_type": "bearer"}, now)


def test_vk_limits_reset_at_the_next_calendar_hour_or_moscow_midnight():
    now = datetime(2026, 7, 1, 20, 59, 30, tzinfo=UTC)  # 23:59:30 in Moscow
    assert vk.seconds_until_limit_resets({"X-RateLimit-Daily-Remaining": "0"}, now) == 30.0
    assert vk.seconds_until_limit_resets({"X-RateLimit-Hourly-Remaining": "0",
                                          "X-RateLimit-Daily-Remaining": "5"}, now) == 30.0
    assert vk.seconds_until_limit_resets({"X-RateLimit-RPS-Remaining": "0"}, now) == 1.0


def test_vk_date_windows_cover_the_period_without_overlap():
    windows = list(vk.date_windows(date(2026, 1, 1), date(2026, 4, 10), 30))
    assert windows[0] == (date(2026, 1, 1), date(2026, 1, 30)) and windows[-1][1] == date(2026, 4, 10)
    assert all(later[0] == earlier[1] + timedelta(days=1) for earlier, later in zip(windows, windows[1:], strict=False))


@pytest.mark.parametrize("body, expected", [
    ({"error": {"code": "ERR_WRONG_DATE", "message": "bad date"}}, ("ERR_WRONG_DATE", "bad date")),
    ({"code": "invalid_token", "message": "Unknown access token"}, ("invalid_token", "Unknown access token")),
    ({"error": "invalid_grant", "error_description": "used"}, ("invalid_grant", "used")),
    ({"error": {"fields": {"limit": {"code": "max_value", "message": "too big"}}, "code": "validation_failed"}},
     ("validation_failed", "limit: too big")),
    ("<html>", (None, None)),
])
def test_vk_error_bodies_of_every_shape(body, expected):
    assert vk.error_message(body) == expected
