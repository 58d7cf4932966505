"""OAuth: consent page, codes, both grants, rotation, amoCRM's hints, JWT claims, expiry."""

import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from sandbox_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    Api,
    connect,
    exchange_code,
    query_of,
    refresh,
)


def oauth_problem(response, status, hint):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["hint"] == hint
    assert body["title"] == "Некорректный запрос"
    assert body["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
    assert body["status"] == status
    assert body["detail"]


def test_authorize_redirect_carries_code_state_and_sandbox_host_as_referer(control, base_url):
    result = control.authorize(CLIENT_ID, state="xyz")
    url = result["redirect_url"]
    assert url.startswith(REDIRECT_URI + "?")
    params = query_of(url)
    assert params["state"] == "xyz"
    assert params["referer"] == urlsplit(base_url).netloc
    assert params["code"] == result["code"]


@pytest.mark.parametrize("as_form", [False, True])
def test_code_exchange_json_and_form(control, base_url, as_form):
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    response = exchange_code(base_url, code, as_form=as_form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["server_time"], int)
    assert body["refresh_token"].startswith("def502")
    assert control.counters()["tokens_issued"] == 1


def test_access_token_is_rs256_jwt_with_amocrm_claims(control, base_url, account):
    token = connect(control, base_url)["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    public_key = jwt.PyJWKSet.from_dict(control.jwks()).keys[0].key
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience=CLIENT_ID)
    for claim in ("jti", "iat", "nbf", "exp", "sub", "account_id", "scopes", "base_domain", "api_domain"):
        assert claim in claims
    assert claims["account_id"] == account["id"]
    assert isinstance(claims["sub"], str)
    assert claims["base_domain"] == claims["api_domain"] == urlsplit(base_url).netloc
    assert claims["exp"] - claims["iat"] == 86400
    # The PEM in the state verifies too.
    jwt.decode(token, control.state()["jwt_public_key_pem"], algorithms=["RS256"], audience=CLIENT_ID)


def test_code_is_single_use(control, base_url):
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    assert exchange_code(base_url, code).status_code == 200
    oauth_problem(exchange_code(base_url, code), 400, "Authorization code has been revoked")


def test_code_expires(control, base_url):
    control.config(code_ttl=0)
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    time.sleep(0.01)
    oauth_problem(exchange_code(base_url, code), 400, "Authorization code has expired")


@pytest.mark.parametrize(
    "override, hint",
    [
        ({"client_id": "nope"}, "Check the `client_id` parameter"),
        ({"client_secret": "wrong"}, "Check the `client_secret` parameter"),
        ({"redirect_uri": "http://evil.test/cb"}, "Redirect URI is not associated with client"),
        ({"code": "def502garbage"}, "Cannot decrypt the authorization code"),
    ],
)
def test_token_endpoint_hints(control, base_url, override, hint):
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    arguments = {"code": code, **override}
    oauth_problem(exchange_code(base_url, **arguments), 400, hint)


def test_code_of_another_integration_is_rejected(control, base_url):
    code = query_of(control.authorize("other-client", state="s")["redirect_url"])["code"]
    oauth_problem(exchange_code(base_url, code), 400, "Cannot decrypt the authorization code")


def test_refresh_tokens_rotate_and_a_used_one_is_revoked(control, base_url):
    first = connect(control, base_url)
    second = refresh(base_url, first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    oauth_problem(refresh(base_url, first["refresh_token"]), 401, "Token has been revoked")
    assert refresh(base_url, second["refresh_token"]).status_code == 200
    counters = control.counters()
    assert counters["tokens_refreshed"] == 2
    assert counters["refresh_revoked"] == 1
    # Old access tokens stay valid until exp.
    assert Api(base_url, first["access_token"]).get("account").status_code == 200


def test_refresh_form_encoded(control, base_url):
    first = connect(control, base_url)
    response = requests.post(
        f"{base_url}/oauth2/access_token",
        timeout=5,
        data={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert response.status_code == 200


def test_access_token_ttl_is_configurable(control, base_url):
    control.config(access_token_ttl=3)  # long enough for the first call on a loaded machine
    body = connect(control, base_url)
    assert body["expires_in"] == 3
    api = Api(base_url, body["access_token"])
    assert api.get("account").status_code == 200
    time.sleep(4.05)
    response = api.get("account")
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


def test_expire_tokens_rejects_tokens_issued_before(control, base_url):
    old = connect(control, base_url)["access_token"]
    other = connect(control, base_url, client_id="other-client", client_secret="other-secret")["access_token"]
    assert control.expire_tokens(client_id=CLIENT_ID)["expired"] == 1
    response = Api(base_url, old).get("leads")
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json() == {
        "title": "Unauthorized",
        "type": "https://httpstatus.es/401",
        "status": 401,
        "detail": response.json()["detail"],
    }
    assert Api(base_url, other).get("account").status_code == 200
    fresh = connect(control, base_url)["access_token"]
    assert Api(base_url, fresh).get("account").status_code == 200


def test_reset_invalidates_tokens(control, base_url, api):
    control.reset()
    assert api.get("account").status_code == 401


def test_garbage_bearer_is_401(base_url, control):
    assert Api(base_url, "not-a-jwt").get("account").status_code == 401
    assert requests.get(f"{base_url}/api/v4/account", timeout=5).status_code == 401


# -- consent page -----------------------------------------------------------------------------------------


def consent(base_url, **params):
    return requests.get(f"{base_url}/oauth", params=params, timeout=5)


def decide(base_url, decision, **fields):
    return requests.post(
        f"{base_url}/oauth", data={"decision": decision, **fields}, allow_redirects=False, timeout=5
    )


def test_consent_page_is_a_plain_form(control, base_url):
    page = consent(base_url, client_id=CLIENT_ID, state="st", mode="popup")
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    assert 'value="allow"' in page.text and 'value="deny"' in page.text
    assert "<select" not in page.text  # one account: no chooser
    control.create_account(name="Second")
    assert "<select" in consent(base_url, client_id=CLIENT_ID, state="st").text


def test_consent_unknown_client_is_an_error_page(control, base_url):
    assert consent(base_url, client_id="nope").status_code == 400


def test_allow_in_popup_mode_redirects_with_code(control, base_url, account):
    response = decide(
        base_url, "allow", client_id=CLIENT_ID, state="st", mode="popup", account_id=account["id"]
    )
    assert response.status_code == 302
    params = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert params["state"] == "st" and params["referer"] == urlsplit(base_url).netloc
    assert exchange_code(base_url, params["code"]).status_code == 200


def test_allow_chooses_the_account(control, base_url):
    second = control.create_account(name="Second")
    response = decide(base_url, "allow", client_id=CLIENT_ID, state="st", account_id=second["id"])
    body = exchange_code(base_url, query_of(response.headers["Location"])["code"]).json()
    assert Api(base_url, body["access_token"]).get("account").json()["id"] == second["id"]


def test_allow_in_post_message_mode_posts_to_opener(control, base_url):
    response = decide(base_url, "allow", client_id=CLIENT_ID, state="st", mode="post_message")
    assert response.status_code == 200
    assert "window.opener.postMessage" in response.text
    assert '"code": "def502' in response.text and '"state": "st"' in response.text
    assert REDIRECT_URI in response.text  # the no-opener fallback link


def test_deny_posts_access_denied(control, base_url):
    response = decide(base_url, "deny", client_id=CLIENT_ID, state="st")
    assert response.status_code == 200
    assert '"error": "access_denied"' in response.text
    assert '"error_description"' in response.text and f'"client_id": "{CLIENT_ID}"' in response.text


def test_secrets_variant_posts_keys_then_redirects(control, base_url, receiver):
    fields = {
        "name": "Leadpath ws 7",
        "description": "d",
        "redirect_uri": "http://portal.test/cb",
        "secrets_uri": receiver.url + "/secrets",
        "scopes": "crm,notifications",
        "state": "st7",
    }
    page = consent(base_url, mode="popup", **fields)
    assert page.status_code == 200 and "Leadpath ws 7" in page.text
    response = decide(base_url, "allow", mode="popup", **fields)
    assert response.status_code == 302
    posted = receiver.wait_for(1)[0]["json"]
    assert posted["state"] == "st7" and posted["name"] == "Leadpath ws 7"
    assert posted["scopes"] == ["crm", "notifications"]
    params = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith("http://portal.test/cb?")
    token = exchange_code(
        base_url, params["code"], posted["client_id"], posted["client_secret"], "http://portal.test/cb"
    )
    assert token.status_code == 200


def test_secrets_variant_requires_200(control, base_url, receiver):
    receiver.default_status = 204
    fields = {"name": "X", "redirect_uri": "http://portal.test/cb", "secrets_uri": receiver.url, "state": "s"}
    response = decide(base_url, "allow", **fields)
    assert response.status_code == 400
    assert "204" in response.text


def test_control_authorize_sends_secrets_for_secrets_integrations(control, base_url, receiver):
    integration = control.create_integration("WS", "http://portal.test/cb", secrets_uri=receiver.url)
    result = control.authorize(integration["client_id"], state="abc")
    posted = receiver.wait_for(1)[0]["json"]
    assert posted["client_id"] == integration["client_id"] and posted["state"] == "abc"
    token = exchange_code(
        base_url,
        result["code"],
        integration["client_id"],
        integration["client_secret"],
        "http://portal.test/cb",
    )
    assert token.status_code == 200


def test_button_script_is_served(base_url):
    response = requests.get(f"{base_url}/auth/button.min.js", timeout=5)
    assert response.status_code == 200
    assert "javascript" in response.headers["Content-Type"]
    for needle in ("amocrm_oauth", "amocrm_oauth_button", "errorCallback", "secrets_uri", "/oauth?"):
        assert needle in response.text
