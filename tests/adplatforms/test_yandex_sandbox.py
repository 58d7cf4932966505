"""The Yandex Direct sandbox holds to Yandex's documentation: OAuth, strict report definitions, the TSV layout and
its skip* headers, money in micros or decimals, offline reports (201, 202 with retryIn and reportsInQueue), the
limits (20 requests per 10 s, 5 offline reports queued, Units points) and the documented error bodies."""
import time

import pytest
import requests
from fixtures.yandex_direct import CLIENT_ID, CLIENT_SECRET, grant


def report_body(first="2026-09-01", last="2026-09-03", **overrides):
    params = {"SelectionCriteria": {"DateFrom": first, "DateTo": last},
              "FieldNames": ["Date", "CampaignId", "CampaignName", "Impressions", "Clicks", "Cost"],
              "ReportName": "test report", "ReportType": "CAMPAIGN_PERFORMANCE_REPORT",
              "DateRangeType": "CUSTOM_DATE", "Format": "TSV", "IncludeVAT": "NO", **overrides}
    return {"params": {key: value for key, value in params.items() if value is not None}}


def post_report(yandex, token, body, **headers):
    return requests.post(f"{yandex.url}/json/v5/reports", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {token}", **headers})


@pytest.fixture
def token(yandex):
    return grant(yandex, "sandbox-advertiser").access_token


def test_authorize_page_offers_allow_and_deny_and_deny_returns_access_denied(yandex):
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1/cb", "state": "s1"}
    page = requests.get(f"{yandex.url}/authorize", params=query, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text and "Deny" in page.text
    denied = requests.post(f"{yandex.url}/authorize", params=query, data={"decision": "deny"},
                           allow_redirects=False, timeout=10)
    assert denied.status_code == 302
    assert "error=access_denied" in denied.headers["Location"] and "state=s1" in denied.headers["Location"]


def test_token_endpoint_exchanges_a_code_once_and_refreshes(yandex):
    code = yandex.code("sandbox-advertiser")["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    first = requests.post(f"{yandex.url}/token", data=form, timeout=10)
    assert first.status_code == 200 and first.json()["expires_in"] > 0
    again = requests.post(f"{yandex.url}/token", data=form, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    refreshed = requests.post(f"{yandex.url}/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
                              data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != first.json()["refresh_token"]
    wrong_secret = requests.post(f"{yandex.url}/token", timeout=10, data={**form, "client_secret": "nope"})
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


@pytest.mark.parametrize("missing", ["SelectionCriteria", "FieldNames", "ReportName", "ReportType",
                                     "DateRangeType", "Format", "IncludeVAT"])
def test_a_report_without_a_required_field_is_refused_with_error_8000(yandex, token, missing):
    response = post_report(yandex, token, report_body(**{missing: None}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["error_code"] == 8000 and missing in error["error_detail"] and error["request_id"]


def test_bad_values_are_refused_with_error_4000(yandex, token):
    assert post_report(yandex, token, report_body(Format="CSV")).json()["error"]["error_code"] == 4000
    no_dates = report_body()
    no_dates["params"]["SelectionCriteria"] = {}
    assert post_report(yandex, token, no_dates).json()["error"]["error_code"] == 4000
    assert post_report(yandex, token, {"params": "x"}).status_code == 400
    garbage = requests.post(f"{yandex.url}/json/v5/reports", data=b"\xff{", timeout=10,
                            headers={"Authorization": f"Bearer {token}"})
    assert garbage.status_code == 400 and garbage.json()["error"]["error_code"] == 8000


def test_tsv_has_the_report_header_column_header_and_summary_unless_skipped(yandex, token):
    full = post_report(yandex, token, report_body()).text.splitlines()
    assert full[0] == '"test report (2026-09-01 - 2026-09-03)"'
    assert full[1] == "Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost"
    assert full[-1] == f"Total rows: {len(full) - 3}"
    data = full[2:-1]
    assert data and all(int(line.split("\t")[5]) % 10_000 == 0 for line in data)  # micros, rounded to 10 000
    bare = post_report(yandex, token, report_body(ReportName="bare"), skipReportHeader="true",
                       skipColumnHeader="true", skipReportSummary="true").text.splitlines()
    assert [line.split("\t")[:5] for line in bare] == [line.split("\t")[:5] for line in data]
    decimals = post_report(yandex, token, report_body(ReportName="decimals"), returnMoneyInMicros="false")
    cost = decimals.text.splitlines()[2].split("\t")[5]
    assert "." in cost and len(cost.split(".")[1]) == 2


def test_include_vat_raises_the_cost(yandex, token):
    without = post_report(yandex, token, report_body(ReportName="a"), skipReportHeader="true").text.splitlines()[1]
    with_vat = post_report(yandex, token, report_body(ReportName="b", IncludeVAT="YES"),
                           skipReportHeader="true").text.splitlines()[1]
    assert int(with_vat.split("\t")[5]) > int(without.split("\t")[5])


def test_an_offline_report_answers_201_then_202_with_retry_in_then_200(yandex, token):
    first = post_report(yandex, token, report_body(), processingMode="offline")
    assert first.status_code == 201 and first.headers["retryIn"] and first.headers["reportsInQueue"] == "1"
    assert first.text == ""
    building = post_report(yandex, token, report_body(), processingMode="offline")
    assert building.status_code == 202 and "retryIn" in building.headers
    time.sleep(0.35)
    ready = post_report(yandex, token, report_body(), processingMode="offline")
    assert ready.status_code == 200 and ready.text.startswith('"test report')


def test_the_same_report_name_with_other_parameters_is_refused(yandex, token):
    post_report(yandex, token, report_body(), processingMode="offline")
    other = post_report(yandex, token, report_body(last="2026-09-04"), processingMode="offline")
    assert other.status_code == 400 and other.json()["error"]["error_code"] == 4000


def test_no_more_than_five_offline_reports_wait_in_the_queue(yandex, token):
    for index in range(5):
        assert post_report(yandex, token, report_body(ReportName=f"r{index}"),
                           processingMode="offline").status_code == 201
    sixth = post_report(yandex, token, report_body(ReportName="r5"), processingMode="offline")
    assert sixth.status_code == 400 and sixth.json()["error"]["error_code"] == 9000


def test_no_more_than_twenty_report_requests_in_ten_seconds(yandex, token):
    statuses = [post_report(yandex, token, report_body(ReportName=f"n{index}")).status_code for index in range(20)]
    assert set(statuses) == {200}
    limited = post_report(yandex, token, report_body(ReportName="n20"))
    assert limited.status_code == 400 and limited.json()["error"]["error_code"] == 56


def test_units_header_and_exhausted_points(yandex, token):
    response = requests.post(f"{yandex.url}/json/v5/campaigns", timeout=10,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"method": "get", "params": {"SelectionCriteria": {}, "FieldNames": ["Id", "Name"]}})
    spent, remaining, daily = (int(part) for part in response.headers["Units"].split("/"))
    assert spent == 10 and remaining == daily - 10 and len(response.json()["result"]["Campaigns"]) == 3
    yandex.faults(units_exhausted=1)
    exhausted = requests.post(f"{yandex.url}/json/v5/campaigns", timeout=10,
                              headers={"Authorization": f"Bearer {token}"},
                              json={"method": "get", "params": {"SelectionCriteria": {}, "FieldNames": ["Id"]}})
    assert exhausted.json()["error"]["error_code"] == 152


def test_an_agency_names_its_client_in_client_login(yandex):
    agency_token = grant(yandex, "sandbox-agency").access_token
    listing = requests.post(f"{yandex.url}/json/v5/agencyclients", timeout=10,
                            headers={"Authorization": f"Bearer {agency_token}"},
                            json={"method": "get",
                                  "params": {"SelectionCriteria": {}, "FieldNames": ["Login", "Currency"]}})
    assert {client["Login"] for client in listing.json()["result"]["Clients"]} == {"agency-client-rub",
                                                                                   "agency-client-usd"}
    assert post_report(yandex, agency_token, report_body()).json()["error"]["error_code"] == 8000
    assert post_report(yandex, agency_token, report_body(),
                       **{"Client-Login": "sandbox-advertiser"}).json()["error"]["error_code"] == 54
    assert post_report(yandex, agency_token, report_body(), **{"Client-Login": "agency-client-rub"}).status_code == 200


def test_a_revoked_or_missing_token_is_error_53(yandex, token):
    yandex.revoke("sandbox-advertiser")
    assert post_report(yandex, token, report_body()).json()["error"]["error_code"] == 53
    assert requests.post(f"{yandex.url}/json/v5/reports", json=report_body(),
                         timeout=10).json()["error"]["error_code"] == 53


def test_injected_server_faults_answer_500_and_502_with_error_bodies(yandex, token):
    yandex.faults(http_500=1, http_502=1)
    statuses = {post_report(yandex, token, report_body()).status_code for _ in range(2)}
    assert statuses == {500, 502}
    assert post_report(yandex, token, report_body()).status_code == 200


def test_statistics_are_the_same_on_every_request(yandex, token):
    first = post_report(yandex, token, report_body(ReportName="x")).text.splitlines()[2:]
    yandex.reset()
    second_token = grant(yandex, "sandbox-advertiser").access_token
    assert post_report(yandex, second_token, report_body(ReportName="y")).text.splitlines()[2:] == first


def test_hostile_input_gets_a_4xx_with_a_message(yandex, token):
    huge = requests.post(f"{yandex.url}/json/v5/reports", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", timeout=10,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert huge.status_code == 400 and huge.json()["error"]["error_code"] == 8000
    assert requests.post(f"{yandex.url}/json/v5/nothing", json={}, timeout=10).status_code == 404
    for body in ({"login": "x", "campaigns": "many"}, {"login": "y", "names": [1]}, {"login": ""}, []):
        response = requests.post(f"{yandex.url}/_sandbox/clients", json=body, timeout=10)
        assert 400 <= response.status_code < 500 and response.json()["message"]
    assert requests.post(f"{yandex.url}/_sandbox/faults", json={"http_500": "x"}, timeout=10).status_code == 400
    no_client = requests.post(f"{yandex.url}/authorize", data={"decision": "allow"}, timeout=10)
    assert no_client.status_code == 400 and no_client.json()["error"] == "invalid_request"
    bad_grant = requests.post(f"{yandex.url}/token", timeout=10, data={
        "grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "unsupported_grant_type"
