"""The VK Ads and Google Ads sandboxes answer wrong requests as the vendors document: the documented error bodies
and statuses, never a 500."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests


@pytest.fixture
def vk_get(vk_server, vk_connect):
    tokens = vk_connect(1001)

    def get(path: str, **params):
        return requests.get(f"{vk_server.url}{path}", params=params, timeout=10,
                            headers={"Authorization": f"Bearer {tokens.access_token}"})
    return get


def moscow_today() -> date:
    return datetime.now(ZoneInfo("Europe/Moscow")).date()


def test_vk_rejects_an_unknown_token_with_the_documented_401(vk_server):
    answer = requests.get(f"{vk_server.url}/api/v2/ad_plans.json", headers={"Authorization": "Bearer nope"},
                          timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"code": "invalid_token", "message": "Unknown access token"}
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_vk_lists_answer_at_most_fifty(vk_get):
    answer = vk_get("/api/v2/ad_plans.json", limit=51)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "validation_failed"
    assert answer.json()["error"]["fields"]["limit"]["code"] == "max_value"
    assert vk_get("/api/v2/ad_plans.json", limit="x").status_code == 400
    assert vk_get("/api/v2/agency/clients.json").status_code == 403  # an advertiser is no agency


def test_vk_every_answer_carries_the_rate_limit_headers(vk_get):
    headers = vk_get("/api/v3/user.json").headers
    for period in ("RPS", "Hourly", "Daily"):
        assert int(headers[f"X-RateLimit-{period}-Limit"]) >= int(headers[f"X-RateLimit-{period}-Remaining"]) >= 0


@pytest.mark.parametrize("params, status, code", [
    ({"date_from": "2026-01-01", "date_to": "2026-01-02"}, 400, "ERR_WRONG_PARAMETER"),
    ({"id": "1,x", "date_from": "2026-01-01", "date_to": "2026-01-02"}, 400, "ERR_WRONG_PARAMETER"),
    ({"id": "5000001", "date_from": "2026-13-01", "date_to": "2026-01-02"}, 400, "ERR_WRONG_DATE"),
    ({"id": "5000001", "date_from": "2026-01-05", "date_to": "2026-01-02"}, 400, "ERR_WRONG_DATE"),
    ({"id": "999", "date_from": "TODAY", "date_to": "TODAY"}, 400, "ERR_WRONG_CAMPAIGNS"),
    ({"id": ",".join(str(number) for number in range(1, 202)), "date_from": "TODAY", "date_to": "TODAY"}, 400,
     "ERR_LIMIT_EXCEEDED"),
    ({"id": "5000001", "date_from": "OLD", "date_to": "TODAY"}, 400, "ERR_LIMIT_EXCEEDED"),
    ({"id": "5000001", "date_from": "TODAY", "date_to": "TODAY", "metrics": "nonsense"}, 400, "ERR_WRONG_PARAMETER"),
])
def test_vk_statistics_refuse_what_the_docs_refuse(vk_get, params, status, code):
    today = moscow_today()
    dates = {"TODAY": today.isoformat(), "OLD": (today - timedelta(days=366)).isoformat()}
    params = {key: dates.get(value, value) for key, value in params.items()}
    answer = vk_get("/api/v2/statistics/ad_plans/day.json", **params)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_vk_statistics_of_other_objects_are_not_served(vk_get):
    answer = vk_get("/api/v2/statistics/nonsense/day.json", id="1", date_from="2026-01-01", date_to="2026-01-01")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "ERR_WRONG_RESOURCE"


def test_vk_token_endpoint_wants_a_form_and_a_known_grant(vk_server):
    url = f"{vk_server.url}/api/v2/oauth2/token.json"
    assert requests.post(url, json={"grant_type": "client_credentials"}, timeout=10).status_code == 400
    answer = requests.post(url, data={"grant_type": "password", "client_id": "vk-test-client",
                                      "client_secret": "vk-test-secret"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"
    answer = requests.post(url, data={"grant_type": "client_credentials", "client_id": "vk-test-client",
                                      "client_secret": "wrong"}, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_vk_consent_page_refuses_an_unregistered_redirect(vk_server):
    answer = requests.get(f"{vk_server.url}/hq/settings/access", timeout=10, params={
        "action": "oauth2", "response_type": "code", "client_id": "vk-test-client",
        "redirect_uri": "https://evil.example/cb"})
    assert answer.status_code == 400 and "redirect_uri" in answer.text


@pytest.fixture
def google_post(google_server, google_tokens):
    def post(customer_id: str, body, method: str = "searchStream", **headers):
        return requests.post(f"{google_server.url}/v26/customers/{customer_id}/googleAds:{method}", json=body,
                             timeout=10, headers={"Authorization": f"Bearer {google_tokens.access_token}", **headers})
    return post


@pytest.mark.parametrize("query, reason", [
    ("SELECT campaign.id FROM nonsense", "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE"),
    ("SELECT campaign.id FROM", "UNEXPECTED_END_OF_QUERY"),
    ("SELECT customer_client.id FROM campaign", "PROHIBITED_FIELD_IN_SELECT_CLAUSE"),
    ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-01-02' '2026-01-03'", "EXPECTED_AND"),
    ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-01-05' AND '2026-01-03'",
     "DATE_RANGE_TOO_NARROW"),
    ("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN 'soon' AND '2026-01-03'", "BAD_VALUE"),
    ("SELECT campaign.id FROM campaign LIMIT 0", "BAD_LIMIT_VALUE"),
    ("", "UNEXPECTED_END_OF_QUERY"),
])
def test_google_refuses_bad_gaql_with_the_query_error(google_post, query, reason):
    answer = google_post("1111111111", {"query": query})
    assert answer.status_code == 400
    [batch] = answer.json()
    assert batch["error"]["status"] == "INVALID_ARGUMENT"
    assert batch["error"]["details"][0]["errors"][0]["errorCode"] == {"queryError": reason}


def test_google_refuses_unknown_body_fields_bad_ids_and_closed_accounts(google_post):
    assert google_post("1111111111", {"query": "SELECT campaign.id FROM campaign", "pageSize": 5},
                       method="search").status_code == 400
    answer = google_post("111-111-1111", {"query": "SELECT campaign.id FROM campaign"})
    assert answer.status_code == 400
    assert answer.json()[0]["error"]["details"][0]["errors"][0]["errorCode"] == {"requestError": "INVALID_CUSTOMER_ID"}
    answer = google_post("5555555555", {"query": "SELECT customer.id FROM customer"})
    assert answer.status_code == 403
    assert answer.json()[0]["error"]["details"][0]["errors"][0]["errorCode"] == \
        {"authorizationError": "CUSTOMER_NOT_ENABLED"}


def test_google_search_pages_hold_10000_rows_with_a_next_page_token(google_post, google_control):
    google_control.post("/customers/1111111111/campaigns", {"count": 400})
    today = datetime.now(ZoneInfo("America/New_York")).date()
    query = ("SELECT segments.date, campaign.id, metrics.cost_micros FROM campaign WHERE segments.date "
             f"BETWEEN '{today - timedelta(days=29)}' AND '{today}'")
    first = google_post("1111111111", {"query": query, "returnTotalResultsCount": True}, method="search").json()
    assert len(first["results"]) == 10_000 and first["nextPageToken"]
    second = google_post("1111111111", {"query": query, "pageToken": first["nextPageToken"]}, method="search").json()
    assert len(second["results"]) == int(first["totalResultsCount"]) - 10_000 and "nextPageToken" not in second


def test_google_customer_clients_of_a_manager_carry_their_levels(google_post):
    answer = google_post("2222222222", {"query": "SELECT customer_client.id, customer_client.level, "
                                                 "customer_client.manager FROM customer_client"},
                         **{"login-customer-id": "2222222222"})
    levels = {row["customerClient"]["id"]: row["customerClient"]["level"] for batch in answer.json()
              for row in batch.get("results", [])}
    assert levels == {"2222222222": "0", "3333333333": "1", "4444444444": "1", "6666666666": "1", "7777777777": "2"}


HOSTILE_VALUES = ["", "x", "-1", "0", "99999999999999999999", "1,,2", "' OR 1=1 --", "%00", "\u0000", "日本", "[]",
                  "{}", "2026-02-30", "9" * 5000]


def test_vk_sandbox_answers_hostile_input_with_4xx_never_500(vk_server, vk_get):
    for value in HOSTILE_VALUES:
        for path, name in (("/api/v2/ad_plans.json", "limit"), ("/api/v2/ad_plans.json", "offset"),
                           ("/api/v2/ad_plans.json", "fields"), ("/api/v2/ad_plans.json", "_status__in"),
                           ("/api/v2/ad_plans.json", "_id__in"), ("/api/v2/statistics/ad_plans/day.json", "id"),
                           ("/api/v2/statistics/ad_plans/day.json", "date_from")):
            assert vk_get(path, **{name: value}).status_code < 500, (path, name, value)
        for grant in ("authorization_code", "refresh_token", "agency_client_credentials", value):
            answer = requests.post(f"{vk_server.url}/api/v2/oauth2/token.json", timeout=10, data={
                "grant_type": grant, "client_id": "vk-test-client", "client_secret": "vk-test-secret", "code": value,
                "refresh_token": value, "agency_client_id": value, "access_token": value})
            assert 400 <= answer.status_code < 500, (grant, value)
        answer = requests.post(f"{vk_server.url}/api/v2/oauth2/token/delete.json", timeout=10, data={
            "client_id": "vk-test-client", "client_secret": "vk-test-secret", "user_id": value})
        assert answer.status_code < 500
        answer = requests.post(f"{vk_server.url}/_sandbox/users", json={"username": value, "agency_id": value},
                               timeout=10)
        assert answer.status_code < 500
    big = requests.post(f"{vk_server.url}/api/v2/oauth2/token.json", data={"code": "x" * (2 * 1024 * 1024)},
                        timeout=10)
    assert big.status_code == 413


def test_google_sandbox_answers_hostile_input_with_4xx_never_500(google_server, google_post):
    for value in HOSTILE_VALUES:
        for query in (value, f"SELECT campaign.id FROM campaign WHERE campaign.id = {value}",
                      f"SELECT campaign.id FROM campaign WHERE campaign.id BETWEEN '{value}' AND 'b'",
                      f"SELECT campaign.id FROM campaign WHERE campaign.name > {value}",
                      f"SELECT campaign.id FROM campaign WHERE segments.date >= '{value}'",
                      f"SELECT campaign.id FROM campaign WHERE campaign.status IN ({value})"):
            answer = google_post("1111111111", {"query": query})
            assert answer.status_code < 500, (query, answer.text[:200])
        assert google_post(value or "x", {"query": "SELECT customer.id FROM customer"}).status_code < 500
        assert google_post("1111111111", {"query": "SELECT campaign.id FROM campaign", "pageToken": value},
                           method="search").status_code < 500
        answer = requests.post(f"{google_server.url}/token", timeout=10, data={
            "grant_type": value, "client_id": "google-test-client.apps.googleusercontent.com",
            "client_secret": "google-test-secret", "code": value, "refresh_token": value})
        assert 400 <= answer.status_code < 500
    assert google_post("1111111111", ["not", "an", "object"]).status_code == 400
