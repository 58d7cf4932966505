"""Rate limits (per integration and per account), block mode and injected faults on /api/v4."""

import time

import pytest
import requests
from sandbox_support import CLIENT_ID, Api, connect, exchange_code, query_of


def burst(api, count):
    return [api.get("account") for _ in range(count)]


def test_burst_over_the_integration_limit_gets_json_429(api, control):
    control.faults(rate_limit_per_sec=7)
    statuses = [response.status_code for response in burst(api, 20)]
    assert statuses[:7] == [200] * 7
    assert 429 in statuses
    response = next(r for r in burst(api, 10) if r.status_code == 429)
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 429 and response.json()["retry_after"] >= 1
    counters = control.counters()
    assert counters["http_429"] >= 1
    assert counters["requests"]["test-client"] >= 25


def test_bucket_refills(api, control):
    control.faults(rate_limit_per_sec=5)
    assert 429 in [r.status_code for r in burst(api, 8)]
    time.sleep(0.5)
    assert api.get("account").status_code == 200


def test_html_429(api, control):
    control.faults(rate_limit_per_sec=1, html_429=True)
    response = next(r for r in burst(api, 6) if r.status_code == 429)
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text and "429 Too Many Requests" in response.text


def test_limit_is_per_integration(api, control, base_url):
    control.faults(rate_limit_per_sec=2)
    other = Api(
        base_url,
        connect(control, base_url, client_id="other-client", client_secret="other-secret")["access_token"],
    )
    assert 429 in [r.status_code for r in burst(api, 10)]
    assert other.get("account").status_code == 200


def test_account_limit_across_integrations(api, control, base_url):
    control.config(account_rate_limit_per_sec=3)
    other = Api(
        base_url,
        connect(control, base_url, client_id="other-client", client_secret="other-secret")["access_token"],
    )
    # The integration limit is 1000/s here, so any 429 comes from the account's bucket of 3.
    statuses = [client.get("account").status_code for _ in range(5) for client in (api, other)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses


def test_block_answers_403_html_to_every_call(api, control, base_url):
    control.faults(block=True)
    for response in (
        api.get("leads"),
        api.post("leads", [{"name": "x"}]),
        requests.get(f"{base_url}/api/v4/account", timeout=5),
    ):
        assert response.status_code == 403
        assert response.headers["Content-Type"].startswith("text/html")
        assert "403 Forbidden" in response.text
    assert control.counters()["http_403"] == 3
    # The token endpoint is blocked too (PHP SDK #563); the control API is not.
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    blocked = exchange_code(base_url, code)
    assert blocked.status_code == 403 and blocked.headers["Content-Type"].startswith("text/html")
    control.faults()
    assert api.get("account").status_code == 200


def test_http_500_rate(api, control):
    control.faults(http_500_rate=1.0)
    response = api.get("account")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert control.counters()["http_500"] == 1


def test_drop_after_commit_writes_then_answers_502(api, control):
    control.faults(drop_after_commit_rate=1.0)
    response = api.post("leads", [{"name": "lost response", "_embedded": {"tags": [{"name": "lp-42"}]}}])
    assert response.status_code == 502
    assert api.get("account").status_code == 200  # reads are not dropped
    control.faults()
    found = api.get("leads", params={"order[created_at]": "desc", "limit": 1}).json()["_embedded"]["leads"]
    assert [lead["name"] for lead in found] == ["lost response"]
    assert control.counters()["drops_after_commit"] == 1


def test_latency(api, control):
    control.faults(latency_ms=300)
    started = time.monotonic()
    assert api.get("account").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout(api, control):
    control.faults(timeout_rate=1.0, timeout_seconds=0.5)
    with pytest.raises(requests.Timeout):
        api.get("account", timeout=0.2)
    assert control.counters()["timeouts"] == 1


def test_empty_faults_reset_everything(api, control):
    assert control.faults(http_500_rate=1.0, block=True)["block"] is True
    cleared = control.faults()
    assert cleared["block"] is False and cleared["http_500_rate"] == 0
    assert api.get("account").status_code == 200


def test_unknown_fault_is_rejected(control):
    with pytest.raises(requests.HTTPError):
        control.faults(explode=True)
