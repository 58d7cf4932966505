"""Values that nothing can store or compute with: dates at the ends of the calendar, ids beyond the id columns, NUL
characters (PostgreSQL text cannot hold them), raw bytes in URLs, NaN amounts, broken hosts and tokens, CSV files
that Python's csv module refuses. Each gets a 4xx with a message (or is read sensibly), never a 5xx."""
import base64
import io

import pytest
from fixtures.support import csrf_from, log_in, post_form

EDGE_DATES = ["0001-01-01", "9999-12-31"]


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("day", EDGE_DATES)
@pytest.mark.parametrize("url", ["/", "/leads", "/leads.csv", "/reports/roi", "/reports/roi.csv"])
def test_a_date_at_the_end_of_the_calendar_falls_back_to_the_default_period(owner_client, url, day):
    response = owner_client.get(f"{url}?from={day}&to={day}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)  # a CSV is streamed: a failure would cut it short after the 200
    assert body.endswith("\n") if url.endswith(".csv") else body.rstrip().endswith("</html>")


@pytest.mark.parametrize("after", [cursor("0001-01-01T00:00:00+00:00|1"),
                                   cursor("2026-01-01T00:00:00+00:00|" + "9" * 30)])
def test_a_page_link_beyond_the_calendar_or_the_ids_is_a_bad_request(owner_client, after):
    assert owner_client.get(f"/leads?q=zz&after={after}").status_code == 400


def test_ids_beyond_the_id_columns_are_not_found(owner_client):
    token = csrf_from(owner_client.get("/leads").get_data(as_text=True))
    for big in (2**31, 2**63, 10**30):
        assert owner_client.get(f"/leads/{big}").status_code == 404
        assert owner_client.post(f"/leads/{big}/spam", data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize("url, fields", [
    ("/settings/", {"name": "Shop\x00", "currency": "RUB", "timezone": "UTC", "country": "RU"}),
    ("/settings/api-tokens", {"name": "token\x00"}),
    ("/reports/spend", {"date": "2026-01-01", "amount": "100", "utm_source": "google\x00"}),
])
def test_a_nul_character_in_a_form_is_refused_with_a_message(owner_client, url, fields):
    response = post_form(owner_client, url, fields, page="/settings/" if "settings" in url else "/reports/spend")
    assert response.status_code == 400
    assert "NUL character" in response.get_data(as_text=True)


def test_a_nul_character_in_the_login_form_is_refused(client, owner):
    response = log_in(client, "owner@example.com\x00")
    assert response.status_code == 400 and "NUL character" in response.get_data(as_text=True)
    assert log_in(client, "owner@example.com").status_code == 302  # nothing else was disturbed


def test_a_nul_or_raw_bytes_in_the_address_are_refused(owner_client):
    assert owner_client.get("/leads?q=a%00b").status_code == 400
    assert owner_client.get("/leads", environ_overrides={"QUERY_STRING": "q=\xff"}).status_code == 400
    assert owner_client.get("/leads?q=%C3%A9t%C3%A9").status_code == 200  # percent-encoded UTF-8 is fine


def test_an_origin_with_a_broken_host_is_a_form_error(owner_client):
    response = post_form(owner_client, "/settings/lead-form", {"allowed_origins": "http://[",
                                                               "duplicate_window_hours": "24"})
    assert response.status_code == 400
    assert "is not an origin like" in response.get_data(as_text=True)


@pytest.mark.parametrize("amount", ["sNaN", "-sNaN", "NaN", "Infinity"])
def test_an_amount_that_is_not_a_number_is_a_form_error(owner_client, amount):
    response = post_form(owner_client, "/reports/spend", {"date": "2026-01-01", "amount": amount})
    assert response.status_code == 400
    assert "Enter an amount like 1500" in response.get_data(as_text=True)


def test_a_settings_country_must_be_one_phone_numbers_know(owner_client):
    fields = {"name": "Shop", "currency": "RUB", "timezone": "UTC"}
    response = post_form(owner_client, "/settings/", {**fields, "country": "ßß"})  # "SSSS" once upper-cased
    assert response.status_code == 400 and "Enter a country code" in response.get_data(as_text=True)
    assert post_form(owner_client, "/settings/", {**fields, "country": "kz"}).status_code == 302


def test_a_long_lived_token_that_is_not_ascii_is_refused_before_any_call(owner_client):
    response = post_form(owner_client, "/settings/amocrm/long-lived-token",
                         {"base_domain": "example.amocrm.ru", "token": "тест.токен"}, page="/settings/amocrm")
    assert response.status_code == 400
    assert "This is not an amoCRM token" in response.get_data(as_text=True)


def test_integration_keys_that_are_not_printable_ascii_are_a_bad_request(client):
    for body in ('{"client_id": "a", "client_secret": "b", "state": "\\ud800"}',
                 '{"client_id": "a\\u0000", "client_secret": "b", "state": "c"}'):
        response = client.post("/amocrm/secrets", data=body, content_type="application/json")
        assert response.status_code == 400 and "printable ASCII" in response.get_json()["message"]


def _preview(owner_client, content: bytes):
    token = csrf_from(owner_client.get("/reports/spend").get_data(as_text=True))
    return owner_client.post("/reports/spend/import", content_type="multipart/form-data",
                             data={"csrf_token": token, "file": (io.BytesIO(content), "spend.csv")})


def test_a_csv_with_old_mac_line_ends_is_read(owner_client):
    response = _preview(owner_client, b"date,utm_source,utm_medium,utm_campaign,amount\r2026-01-01,google,cpc,"
                                      b"spring,1500\r2026-01-02,google,cpc,spring,700\r")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "spring" in page and "1500" in page and "700" in page


def test_a_csv_field_over_the_csv_limit_is_reported_with_its_line(owner_client):
    content = b"date,utm_source,utm_medium,utm_campaign,amount\n2026-01-01," + b"a" * 140_000 + b",cpc,x,1\n"
    response = _preview(owner_client, content)
    assert response.status_code in (200, 400)
    assert "Line 2 cannot be read as CSV" in response.get_data(as_text=True)


def test_a_wrong_method_on_a_page_is_a_405_page_with_allow(owner_client):
    response = owner_client.post("/leads/42")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert "Method not allowed" in response.get_data(as_text=True)
