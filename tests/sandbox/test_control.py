"""Control API, the deals page and the app factory."""

import re
import subprocess
import sys

import pytest
import requests
from sandbox_support import CLIENT_ID, REDIRECT_URI, Api, connect

from portal.sandbox import create_app


def test_state_shape(api, control):
    lead_id = api.create_lead(name="Deal", price=10, _embedded={"tags": [{"name": "lp-1"}]})
    state = control.state()
    for key in (
        "accounts",
        "integrations",
        "leads",
        "contacts",
        "webhooks",
        "deliveries",
        "counters",
        "faults",
        "config",
        "jwt_public_key_pem",
    ):
        assert key in state
    lead = state["leads"][0]
    assert lead["id"] == lead_id
    for key in (
        "custom_fields_values",
        "closed_at",
        "price",
        "status_id",
        "pipeline_id",
        "account_id",
        "created_at",
        "updated_at",
    ):
        assert key in lead
    assert lead["_embedded"]["tags"][0]["name"] == "lp-1" and lead["_embedded"]["contacts"] == []
    counters = state["counters"]
    for key in (
        "requests",
        "requests_by_account",
        "http_429",
        "http_403",
        "tokens_issued",
        "tokens_refreshed",
        "refresh_revoked",
        "webhook_deliveries",
        "webhook_failures",
    ):
        assert key in counters
    assert counters["requests"][CLIENT_ID] == 1
    assert counters["requests_by_account"][str(state["accounts"][0]["id"])] == 1
    account = state["accounts"][0]
    assert account["currency"] == "RUB" and account["timezone"] and account["duplicate_control"] is True
    assert len(account["users"]) == 2


def test_reset_and_counter_reset(api, control):
    api.create_lead(name="Deal")
    control.reset_counters()
    assert control.counters()["requests"] == {} and control.counters()["tokens_issued"] == 0
    assert len(control.state()["leads"]) == 1
    control.reset()
    assert control.state()["leads"] == []


def test_ids_repeat_after_reset(control, base_url):
    first = Api(base_url, connect(control, base_url)["access_token"]).create_lead(name="a")
    control.reset()
    second = Api(base_url, connect(control, base_url)["access_token"]).create_lead(name="a")
    assert first == second and isinstance(first, int)


def test_create_integration_and_account(control, base_url):
    integration = control.create_integration("Workspace 3", REDIRECT_URI)
    assert integration["client_id"] and integration["client_secret"]
    account = control.create_account(name="Shop", subdomain="shop", duplicate_control=True)
    assert account["subdomain"] == "shop" and account["duplicate_control"] is True
    tokens = connect(
        control,
        base_url,
        account_id=account["id"],
        client_id=integration["client_id"],
        client_secret=integration["client_secret"],
    )
    assert Api(base_url, tokens["access_token"]).get("account").json()["subdomain"] == "shop"


def test_runtime_config(control):
    assert control.config(rate_limit_per_sec=3)["rate_limit_per_sec"] == 3
    with pytest.raises(requests.HTTPError):
        control.config(nonsense=1)


def test_move_lead_validates(api, control):
    lead_id = api.create_lead(name="Deal")
    with pytest.raises(requests.HTTPError):
        control.move_lead(lead_id, 1)
    with pytest.raises(requests.HTTPError):
        control.move_lead(999, 142)


def test_deals_page_lists_deals_and_moves_them(api, control, base_url):
    assert "Сделок пока нет" in requests.get(f"{base_url}/_sandbox/", timeout=5).text
    won_id = api.create_lead(name="Окна", price=100)
    lost_id = api.create_lead(name="Двери")
    page = requests.get(f"{base_url}/_sandbox/", timeout=5).text
    assert "Окна" in page and "Двери" in page
    forms = re.findall(r'action="(/_sandbox/leads/\d+/status)"', page)
    assert f"/_sandbox/leads/{won_id}/status" in forms
    response = requests.post(
        f"{base_url}/_sandbox/leads/{won_id}/status",
        data={"status_id": "142", "price": "25000"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/_sandbox/")
    requests.post(f"{base_url}/_sandbox/leads/{lost_id}/status", data={"status_id": "143"}, timeout=5)
    won = api.get(f"leads/{won_id}").json()
    lost = api.get(f"leads/{lost_id}").json()
    assert (won["status_id"], won["price"]) == (142, 25000) and won["closed_at"]
    assert lost["status_id"] == 143 and lost["closed_at"]


def test_public_host_override(control, base_url):
    control.config(public_host="sandbox.leadpath.test:5001")
    result = control.authorize(CLIENT_ID, state="s")
    assert "referer=sandbox.leadpath.test%3A5001" in result["redirect_url"]


def test_factory_defaults_register_an_integration():
    app = create_app()
    try:
        state = app.extensions["amocrm_sandbox"].state
        assert "leadpath-sandbox-client" in state.integrations
        assert state.config["SANDBOX_RATE_LIMIT_PER_SEC"] == 7
    finally:
        app.extensions["amocrm_sandbox"].sender.stop()


def test_flask_cli_finds_the_factory():
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "portal.sandbox", "routes"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="..",
    )
    assert result.returncode == 0, result.stderr
    assert "/oauth2/access_token" in result.stdout and "/api/v4/leads/complex" in result.stdout
