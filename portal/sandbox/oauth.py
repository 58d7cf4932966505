"""OAuth 2.0 as amoCRM does it: consent page, single-use codes, rotating refresh tokens, RS256 access tokens.

- ``GET /oauth?client_id&state&mode=popup|post_message`` (or the secrets variant: ``name, description,
  redirect_uri, secrets_uri, logo, scopes`` instead of ``client_id``) shows the consent page: an account
  chooser and a plain HTML form with "Allow" / "Deny" (works without JavaScript).
- ``POST /oauth`` decides. Allow + ``popup``: 302 to ``redirect_uri?code&state&referer&client_id``.
  Allow + ``post_message``: a page that posts ``{code, state, referer, client_id}`` to ``window.opener`` and
  closes (with a "Continue" link to the same redirect URL when there is no opener). Deny: a page that posts
  ``{client_id, error: "access_denied", error_description}`` to the opener and closes.
  Secrets variant: on Allow the server creates the integration and POSTs JSON
  ``{client_id, client_secret, state, name, description, scopes, redirect_uri}`` to ``secrets_uri``;
  anything but 200 shows an error page and issues no code.
- ``POST /oauth2/access_token`` (JSON or form), grants ``authorization_code`` and ``refresh_token``. Errors
  are amoCRM's problem JSON with a ``hint``. Codes are single-use and expire (``SANDBOX_CODE_TTL``); refresh
  tokens rotate, a used one answers 401 ``Token has been revoked``.
  Old access tokens stay valid until ``exp``.
- ``referer`` and the JWT ``base_domain`` are the account's host: its own (``hosts``) or the
  sandbox's shared one (``SANDBOX_PUBLIC_HOST`` or the host the request reached), where the token's
  ``account_id`` selects the account. The token endpoint of a renamed account's old host answers 404.
- ``GET /oauth2/account/current/subdomain`` with ``X-Refresh-Token``: ``{id, subdomain, domain,
  top_level_domain}`` of the token's account, without using the token. amoCRM documents it at the token's
  ``api_domain`` (``https://api-a.amocrm.ru/oauth2/account/current/subdomain``, PHP SDK examples), which is the
  sandbox's shared address (``api_host``); any account host, the old address of a renamed account included,
  answers 404 there.
- Sustained excess blocks the token endpoint too (see ``faults``).
"""

import secrets
import time
import uuid
from urllib.parse import urlencode, urlsplit

import requests
from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from . import faults
from .hosts import account_at
from .state import now

bp = Blueprint("sandbox_oauth", __name__)

# The account domains of each platform, as the consent page names accounts.
PLATFORM_DOMAINS = {"amocrm": "amocrm.ru", "kommo": "kommo.com"}
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def sandbox():
    return current_app.extensions["amocrm_sandbox"]


def public_host() -> str:
    return sandbox().state.config["SANDBOX_PUBLIC_HOST"] or request.host


def api_host() -> str:
    """amoCRM's API host (the JWT ``api_domain``): the sandbox's shared address, the same across renames."""
    return sandbox().state.config["SANDBOX_PUBLIC_HOST"] or sandbox().hosts.shared_host or request.host


def account_host(account: dict) -> str:
    """Where the account answers: its own host, or the sandbox's shared one."""
    return account["host"] or public_host()


def issue_code(client_id: str, account_id: int, redirect_uri: str) -> str:
    state = sandbox().state
    code = "def502" + secrets.token_hex(200)
    with state.lock:
        state.codes[code] = {
            "client_id": client_id,
            "account_id": account_id,
            "redirect_uri": redirect_uri,
            "expires_at": time.time() + state.config["SANDBOX_CODE_TTL"],
            "used": False,
        }
    return code


def redirect_url(integration: dict, code: str, state_param: str | None, referer: str) -> str:
    params = {
        "code": code,
        "state": state_param or "",
        "referer": referer,
        "client_id": integration["client_id"],
    }
    separator = "&" if urlsplit(integration["redirect_uri"]).query else "?"
    return integration["redirect_uri"] + separator + urlencode(params)


def send_secrets(integration: dict, state_param: str | None) -> str | None:
    """POST the integration's keys to its ``secrets_uri`` server-to-server; return an error text or None."""
    payload = {
        "client_id": integration["client_id"],
        "client_secret": integration["client_secret"],
        "state": state_param or "",
        "name": integration["name"],
        "description": integration["description"],
        "scopes": integration["scopes"],
        "redirect_uri": integration["redirect_uri"],
    }
    try:
        response = requests.post(
            integration["secrets_uri"],
            json=payload,
            timeout=sandbox().state.config["SANDBOX_SECRETS_TIMEOUT"],
        )
    except requests.RequestException as error:
        return f"secrets_uri is unreachable: {error.__class__.__name__}"
    if response.status_code != 200:
        return f"secrets_uri answered {response.status_code}, expected 200"
    return None


def authorize(
    client_id: str | None,
    account_id: int | None,
    state_param: str | None,
    secrets_request: dict | None = None,
    send_to_secrets_uri: bool = True,
) -> dict:
    """Consent granted: returns ``{redirect_url, code, integration, referer}`` or ``{error}``.

    With ``secrets_request`` (the button's secrets variant) a new integration is created first and its keys
    are sent to ``secrets_uri``.
    A pre-registered integration that has a ``secrets_uri`` gets its keys sent too.
    """
    state = sandbox().state
    with state.lock:
        account = state.account(account_id) if account_id else next(iter(state.accounts.values()))
        if account is None:
            return {"error": "Invalid account"}
        if secrets_request:
            integration = state.create_integration(account_id=account["id"], **secrets_request)
        else:
            integration = state.integrations.get(client_id or "")
            if integration is None:
                return {"error": "Integration not found"}
    if integration["secrets_uri"] and send_to_secrets_uri:
        error = send_secrets(integration, state_param)
        if error:
            return {"error": error}
    code = issue_code(integration["client_id"], account["id"], integration["redirect_uri"])
    referer = account_host(account)
    return {
        "redirect_url": redirect_url(integration, code, state_param, referer),
        "code": code,
        "referer": referer,
        "integration": integration,
        "account_id": account["id"],
    }


# -- consent page --------------------------------------------------------------------------------

SECRETS_FIELDS = ("name", "description", "redirect_uri", "secrets_uri", "logo", "scopes")


def _consent_params(source) -> dict:
    params = {key: source.get(key, "") for key in ("client_id", "state", "mode") + SECRETS_FIELDS}
    params["mode"] = params["mode"] if params["mode"] in ("popup", "post_message") else "popup"
    return params


@bp.get("/oauth")
def consent():
    params = _consent_params(request.args)
    state = sandbox().state
    with state.lock:
        integration = state.integrations.get(params["client_id"]) if params["client_id"] else None
        accounts = [
            {
                "id": a["id"],
                "name": a["name"],
                "subdomain": a["subdomain"],
                "platform": a["settings"]["platform"],
                "domain": f"{a['subdomain']}.{PLATFORM_DOMAINS[a['settings']['platform']]}",
            }
            for a in state.accounts.values()
        ]
    if integration is None and not (params["secrets_uri"] and params["redirect_uri"] and params["name"]):
        return render_template(
            "sandbox/oauth_error.html", message="Integration not found", params=params
        ), 400
    title = integration["name"] if integration else params["name"]
    # amoCRM (www.amocrm.ru/oauth) and Kommo (www.kommo.com/oauth) show the same consent under their own brand.
    brand = "Kommo" if accounts and all(a["platform"] == "kommo" for a in accounts) else "amoCRM"
    return render_template("sandbox/consent.html", params=params, accounts=accounts, title=title, brand=brand)


@bp.post("/oauth")
def decide():
    params = _consent_params(request.form)
    if request.form.get("decision") != "allow":
        message = {
            "client_id": params["client_id"],
            "error": "access_denied",
            "error_description": "The user denied access to the account",
        }
        return render_template("sandbox/oauth_result.html", message=message, continue_url=None)
    secrets_request = None
    if not params["client_id"]:
        secrets_request = {key: params[key] for key in ("name", "description", "redirect_uri", "secrets_uri")}
        secrets_request["scopes"] = [s for s in params["scopes"].split(",") if s] or None
    try:
        account_id = int(request.form.get("account_id", ""))
    except ValueError:
        account_id = None
    result = authorize(params["client_id"] or None, account_id, params["state"], secrets_request)
    if "error" in result:
        return render_template("sandbox/oauth_error.html", message=result["error"], params=params), 400
    if params["mode"] == "popup":
        return redirect(result["redirect_url"])
    message = {
        "code": result["code"],
        "state": params["state"],
        "referer": result["referer"],
        "client_id": result["integration"]["client_id"],
    }
    return render_template("sandbox/oauth_result.html", message=message, continue_url=result["redirect_url"])


@bp.get("/auth/button.min.js")
@bp.get("/auth/button.js")
def button_script():
    """amoCRM's button script; Kommo documents the same button at ``/auth/button.js`` (Kommo oauth/button)."""
    response = current_app.send_static_file("button.js")
    response.headers["Content-Type"] = "application/javascript; charset=utf-8"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- token endpoint ------------------------------------------------------------------------------


def oauth_error(status: int, hint: str, detail: str | None = None):
    body = {
        "hint": hint,
        "title": "Некорректный запрос",
        "type": OAUTH_PROBLEM_TYPE,
        "status": status,
        "detail": detail or "В запросе отсутствует ряд параметров или параметры невалидны",
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def issue_tokens(client_id: str, account_id: int, scopes: list, refreshed: bool) -> dict:
    box = sandbox()
    state = box.state
    with state.lock:
        account = state.accounts[account_id]
        issued_at = now()
        ttl = int(state.config["SANDBOX_ACCESS_TOKEN_TTL"])
        jti = uuid.uuid4().hex
        host = account_host(account)
        claims = {
            "aud": client_id,
            "jti": jti,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl,
            "sub": str(account["users"][0]["id"]),
            "grant_type": "",
            "account_id": account_id,
            "base_domain": host,
            "version": 2,
            "scopes": scopes,
            "hash_uuid": str(uuid.uuid4()),
            "api_domain": api_host(),
        }
        state.access_tokens[jti] = {"client_id": client_id, "account_id": account_id, "revoked": False}
        refresh_token = "def502" + secrets.token_hex(300)
        state.refresh_tokens[refresh_token] = {
            "client_id": client_id,
            "account_id": account_id,
            "scopes": scopes,
            "used": False,
            "expires_at": time.time() + state.config["SANDBOX_REFRESH_TOKEN_TTL"],
        }
        state.count("tokens_refreshed" if refreshed else "tokens_issued")
    return {
        "token_type": "Bearer",
        "expires_in": ttl,
        "server_time": issued_at,
        "access_token": box.signer.sign(claims),
        "refresh_token": refresh_token,
    }


def at_its_host(state, account_id: int) -> bool:
    """An account with its own host takes token calls only there; the others on the shared host."""
    account = state.accounts[account_id]
    owner, _ = account_at(state, request.host)
    return request.host == account["host"] if account["host"] else owner is None


@bp.get("/oauth2/account/current/subdomain")
def current_subdomain():
    """The account of a refresh token, found without using it up (PHP SDK
    ``AmoCRMOAuth::getAccountDomainByRefreshToken``): ``X-Refresh-Token`` header, no bearer."""
    if faults.blocked(sandbox().state, request.remote_addr):
        return faults.block_page(sandbox().state)
    state = sandbox().state
    with state.lock:
        owner, _renamed = account_at(state, request.host)
        if owner is not None:
            return oauth_error(404, "Not found", "The subdomain lookup is answered at the API host (api_domain)")
        grant = state.refresh_tokens.get(request.headers.get("X-Refresh-Token", ""))
        if grant is None or grant["used"] or time.time() > grant["expires_at"]:
            return oauth_error(401, "Token has been revoked", "Refresh token is unknown or used")
        account = state.accounts[grant["account_id"]]
        host = account_host(account)
        top_level = "com" if account["settings"]["platform"] == "kommo" else "ru"
        return jsonify(
            {
                "id": account["id"],
                "subdomain": account["subdomain"],
                "domain": host,
                "top_level_domain": top_level,
            }
        )


@bp.post("/oauth2/access_token")
def access_token():
    if faults.blocked(sandbox().state, request.remote_addr):
        return faults.block_page(sandbox().state)
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        return oauth_error(400, "Check the `grant_type` parameter")
    state = sandbox().state
    with state.lock:
        moved, renamed = account_at(state, request.host)
        if renamed:
            return oauth_error(404, "Account not found", "The account has moved to another address")
        integration = state.integrations.get(str(data.get("client_id") or ""))
        if integration is None:
            return oauth_error(400, "Check the `client_id` parameter")
        if not secrets.compare_digest(str(data.get("client_secret") or ""), integration["client_secret"]):
            return oauth_error(400, "Check the `client_secret` parameter")
        if data.get("redirect_uri") is not None and data["redirect_uri"] != integration["redirect_uri"]:
            return oauth_error(400, "Redirect URI is not associated with client")
        grant_type = data.get("grant_type")
        if grant_type == "authorization_code":
            if data.get("redirect_uri") is None:
                return oauth_error(400, "Check the `redirect_uri` parameter")
            grant = state.codes.get(str(data.get("code") or ""))
            if grant is None or grant["client_id"] != integration["client_id"]:
                return oauth_error(400, "Cannot decrypt the authorization code")
            if grant["used"]:
                return oauth_error(400, "Authorization code has been revoked")
            if time.time() > grant["expires_at"]:
                return oauth_error(400, "Authorization code has expired")
            if grant["account_id"] not in state.accounts or not at_its_host(state, grant["account_id"]):
                return oauth_error(400, "Invalid account")
            grant["used"] = True
            return jsonify(
                issue_tokens(
                    integration["client_id"], grant["account_id"], integration["scopes"], refreshed=False
                )
            )
        if grant_type == "refresh_token":
            grant = state.refresh_tokens.get(str(data.get("refresh_token") or ""))
            if grant is None or grant["client_id"] != integration["client_id"]:
                return oauth_error(400, "Cannot decrypt the refresh token")
            if grant["used"]:
                state.count("refresh_revoked")
                return oauth_error(401, "Token has been revoked", "Refresh token has been revoked")
            if time.time() > grant["expires_at"]:
                return oauth_error(401, "Token has expired", "Refresh token has expired")
            if not at_its_host(state, grant["account_id"]):
                return oauth_error(400, "Invalid account")
            grant["used"] = True
            return jsonify(
                issue_tokens(integration["client_id"], grant["account_id"], grant["scopes"], refreshed=True)
            )
        return oauth_error(400, "Check the `grant_type` parameter")
