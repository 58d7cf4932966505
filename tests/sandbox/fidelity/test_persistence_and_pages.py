"""State kept across restarts (the demo) and the deal page links into amoCRM open."""

import requests
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Api, connect, refresh

from portal.sandbox import create_app
from portal.sandbox.control import SandboxControl
from portal.sandbox.server import serve_in_thread

CONFIG = {
    "SANDBOX_INTEGRATIONS": [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT_URI, "name": "T"}
    ],
    "SANDBOX_RATE_LIMIT_PER_SEC": 1000,
}


def test_restart_keeps_tokens_deals_and_id_sequence(tmp_path):
    """A restarted sandbox with a state file is the same amoCRM: old tokens work, deals are there, and a new
    deal never takes an old deal's id."""
    config = dict(CONFIG, SANDBOX_STATE_FILE=str(tmp_path / "sandbox.json"))
    server = serve_in_thread(create_app(config))
    tokens = connect(SandboxControl(server.url), server.url)
    old_id = Api(server.url, tokens["access_token"]).create_lead(name="до перезапуска")
    server.shutdown()

    server = serve_in_thread(create_app(config))
    try:
        api = Api(server.url, tokens["access_token"])
        assert api.get(f"leads/{old_id}").json()["name"] == "до перезапуска"
        assert api.create_lead(name="после") > old_id
        assert refresh(server.url, tokens["refresh_token"]).status_code == 200
    finally:
        server.shutdown()


def test_deal_page_at_the_amocrm_deal_url(api, base_url):
    """amoCRM's deal card lives at ``https://{account host}/leads/detail/{id}``; the sandbox serves it."""
    lead_id = api.create_lead(name="Карточка сделки", price=700)
    page = requests.get(f"{base_url}/leads/detail/{lead_id}", timeout=5)
    assert page.status_code == 200 and "Карточка сделки" in page.text and 'value="142"' in page.text
    assert requests.get(f"{base_url}/leads/detail/999", timeout=5).status_code == 404


def test_restart_registers_integrations_added_to_the_config(tmp_path):
    """A saved state keeps its integrations and gains the ones configured since (the demo derives its keys)."""
    config = dict(CONFIG, SANDBOX_STATE_FILE=str(tmp_path / "sandbox.json"))
    server = serve_in_thread(create_app(config))
    SandboxControl(server.url).create_account(name="kept")
    server.shutdown()
    extra = {"client_id": "new-client", "client_secret": "s", "redirect_uri": REDIRECT_URI, "name": "N"}
    server = serve_in_thread(
        create_app(dict(config, SANDBOX_INTEGRATIONS=CONFIG["SANDBOX_INTEGRATIONS"] + [extra]))
    )
    try:
        state = SandboxControl(server.url).state()
        assert {i["client_id"] for i in state["integrations"]} == {CLIENT_ID, "new-client"}
        assert [a["name"] for a in state["accounts"]][-1] == "kept"
    finally:
        server.shutdown()
