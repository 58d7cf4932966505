"""Accounts on hosts of their own, subdomain renames, the subdomain lookup, the account's with= values."""

import jwt
import requests
from sandbox_support import Api, exchange_code, query_of, refresh


def connect_at(control, account):
    redirect = control.authorize("test-client", state="s", account_id=account["id"])["redirect_url"]
    query = query_of(redirect)
    host = query["referer"]
    tokens = exchange_code(f"http://{host}", query["code"]).json()
    return host, tokens


def test_own_host_is_the_referer_and_the_api_address(control, base_url):
    """The redirect's ``referer`` is the account's host and the API lives there (AMOCRM.md: OAuth)."""
    account = control.create_account(own_host=True)
    host, tokens = connect_at(control, account)
    assert host == account["host"] and f"http://{host}" != base_url
    api = Api(f"http://{host}", tokens["access_token"])
    assert api.get("account").json()["id"] == account["id"]
    elsewhere = Api(base_url, tokens["access_token"]).get("account")
    assert elsewhere.status_code == 401


def test_rename_moves_the_account_and_the_lookup_finds_it(control, base_url):
    """PHP SDK #572: after a rename the old domain answers 404/401 on refresh; ``GET
    {api_domain}/oauth2/account/current/subdomain`` with ``X-Refresh-Token`` names the new domain without using the
    token. ``api_domain`` is the token's claim: amoCRM's API host (``api-a.amocrm.ru``), the sandbox's shared
    address, the same before and after the rename; the old account address answers 404 to everything."""
    account = control.create_account(own_host=True, subdomain="old")
    old_host, tokens = connect_at(control, account)
    api_domain = jwt.decode(tokens["access_token"], options={"verify_signature": False})["api_domain"]
    assert f"http://{api_domain}" == base_url and api_domain != old_host
    renamed = control.set_account(account["id"], subdomain="new")
    assert renamed["host"] != old_host
    assert refresh(f"http://{old_host}", tokens["refresh_token"]).status_code == 404
    at_old_host = requests.get(
        f"http://{old_host}/oauth2/account/current/subdomain",
        headers={"X-Refresh-Token": tokens["refresh_token"]},
        timeout=5,
    )
    assert at_old_host.status_code == 404
    lookup = requests.get(
        f"http://{api_domain}/oauth2/account/current/subdomain",
        headers={"X-Refresh-Token": tokens["refresh_token"]},
        timeout=5,
    )
    assert lookup.status_code == 200
    assert lookup.json() == {
        "id": account["id"],
        "subdomain": "new",
        "domain": renamed["host"],
        "top_level_domain": "ru",
    }
    assert refresh(f"http://{renamed['host']}", tokens["refresh_token"]).status_code == 200
    used = requests.get(
        f"http://{api_domain}/oauth2/account/current/subdomain",
        headers={"X-Refresh-Token": tokens["refresh_token"]},
        timeout=5,
    )
    assert used.status_code == 401 and used.json()["hint"] == "Token has been revoked"


def test_kommo_account_lookup_says_com(control, base_url, tokens, account):
    """Kommo accounts live under kommo.com (Kommo limitations); the lookup's top_level_domain says so."""
    control.set_account(account["id"], platform="kommo")
    lookup = requests.get(
        f"{base_url}/oauth2/account/current/subdomain",
        headers={"X-Refresh-Token": tokens["refresh_token"]},
        timeout=5,
    )
    assert lookup.json()["top_level_domain"] == "com"


def test_account_with_values(api):
    """Kommo account API ``with=``: amojo_id, users_groups, task_types, version, datetime_settings …"""
    body = api.get(
        "account", params={"with": "amojo_id,task_types,version,datetime_settings,users_groups"}
    ).json()
    assert body["amojo_id"] and body["version"] == 1
    assert {"task_types", "datetime_settings", "users_groups"} <= set(body["_embedded"])
    assert "_embedded" not in api.get("account").json()


def test_custom_fields_page_by_50_with_totals_and_type_filter(api):
    """amoCRM custom-fields API: ≤50 per page, ``_total_items`` / ``_page_count``; ``filter[type][]``."""
    body = api.get("leads/custom_fields").json()
    assert body["_total_items"] == len(body["_embedded"]["custom_fields"]) and body["_page_count"] == 1
    tracking = api.get("leads/custom_fields", params={"filter[type][]": "tracking_data"}).json()
    assert {f["type"] for f in tracking["_embedded"]["custom_fields"]} == {"tracking_data"}


def test_consent_page_knows_amocrm_and_kommo(control, base_url):
    """amoCRM's consent lives at www.amocrm.ru/oauth, Kommo's at www.kommo.com/oauth; the user picks an account
    (AMOCRM.md: OAuth). Accounts are named by their platform's domain."""
    kommo = control.create_account(subdomain="acme", platform="kommo")
    page = requests.get(f"{base_url}/oauth", params={"client_id": "test-client", "state": "s"}, timeout=5).text
    assert "sandbox.amocrm.ru" in page and "acme.kommo.com" in page and str(kommo["id"]) in page
    control.reset()
    main = control.state()["accounts"][0]
    control.set_account(main["id"], platform="kommo")
    page = requests.get(f"{base_url}/oauth", params={"client_id": "test-client"}, timeout=5).text
    assert '<p class="brand" id="brand">Kommo</p>' in page
    assert requests.get(f"{base_url}/auth/button.js", timeout=5).status_code == 200
