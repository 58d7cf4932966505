"""VK Ads OAuth as documented (Authorization page of the API docs):

- ``GET /hq/settings/access?action=oauth2&response_type=code&client_id&state&scope&redirect_uri``: the consent page
  (a user chooser and Allow / Deny, plain HTML). ``POST`` of the same address decides: Allow → 302 to
  ``redirect_uri?code&state&user_id`` (the code lives ``VK_SANDBOX_CODE_TTL``, one hour); Deny → 302 to
  ``redirect_uri?error=access_denied&state``.
- ``POST /api/v2/oauth2/token.json`` (form-urlencoded): grants ``client_credentials`` (the app owner's account),
  ``authorization_code``, ``refresh_token`` (the same token instance with a new access token: the old access token
  dies at once) and ``agency_client_credentials`` (``agency_client_id`` or ``agency_client_name``, plus
  ``access_token`` of an agency that granted access through the code flow). At most
  ``VK_SANDBOX_TOKENS_PER_USER`` (5) tokens per (app, user): one more answers 403.
- ``POST /api/v2/oauth2/token/delete.json``: deletes every token of a user (``user_id`` / ``username``; default
  the app owner).

The token endpoint's error bodies are not in VK's docs; they follow the OAuth 2.0 draft VK cites
(``{"error": "...", "error_description": "..."}``).
"""
import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, request
from markupsafe import escape

bp = Blueprint("vk_ads_sandbox_oauth", __name__)

OWNER_USER_ID = 1001  # the app's own account: what client_credentials gives a token for


def state():
    return current_app.extensions["vk_ads_sandbox"]


def oauth_error(status: int, code: str, description: str):
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    return response


def consent_problem(message: str):
    return f"<!doctype html><title>VK Ads sandbox</title><h1>Cannot grant access</h1><p>{escape(message)}</p>", 400


def checked_consent_params():
    """The consent parameters, or a message saying which one is wrong."""
    params = request.values
    config = state().config
    if params.get("action") != "oauth2":
        return None, "action must be oauth2"
    if params.get("response_type") != "code":
        return None, "response_type must be code"
    if params.get("client_id") != config["VK_SANDBOX_CLIENT_ID"]:
        return None, "unknown client_id"
    if params.get("redirect_uri") not in config["VK_SANDBOX_REDIRECT_URIS"]:
        return None, "redirect_uri is not registered for this client"
    return params, None


@bp.get("/hq/settings/access")
def consent_page():
    params, problem = checked_consent_params()
    if problem:
        return consent_problem(problem)
    with state().lock:
        users = sorted(state().users.values(), key=lambda user: user["id"])
    options = "".join(f'<option value="{user["id"]}">{escape(user["username"])} ({escape(", ".join(user["types"]))})'
                      "</option>" for user in users)
    hidden = "".join(f'<input type="hidden" name="{name}" value="{escape(params.get(name, ""))}">'
                     for name in ("action", "response_type", "client_id", "state", "scope", "redirect_uri"))
    return (
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>VK Ads sandbox — grant access</title>"
        f"<h1>Grant access to your VK Ads account</h1><p>Rights asked: {escape(params.get('scope', ''))}</p>"
        f'<form method="post">{hidden}<label>Account <select name="user_id">{options}</select></label> '
        '<button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button>'
        "</form></html>"
    )


@bp.post("/hq/settings/access")
def consent_decision():
    params, problem = checked_consent_params()
    if problem:
        return consent_problem(problem)
    back = {"state": params.get("state", "")}
    if request.form.get("decision") != "allow":
        return redirect(f"{params['redirect_uri']}?{urlencode({'error': 'access_denied', **back})}")
    try:
        user_id = int(request.form.get("user_id", OWNER_USER_ID))
    except ValueError:
        return consent_problem("user_id must be a number")
    if user_id not in state().users:
        return consent_problem("unknown user")
    code = secrets.token_hex(16)
    with state().lock:
        state().codes[code] = {"user_id": user_id, "client_id": params["client_id"], "used": False,
                               "expires_at": time.time() + state().config["VK_SANDBOX_CODE_TTL"]}
    return redirect(f"{params['redirect_uri']}?{urlencode({'code': code, **back, 'user_id': user_id})}")


def client_authenticated(form) -> bool:
    config = state().config
    return form.get("client_id") == config["VK_SANDBOX_CLIENT_ID"] and \
        secrets.compare_digest(form.get("client_secret", ""), config["VK_SANDBOX_CLIENT_SECRET"])


def token_answer(token: dict | None):
    if token is None:
        return oauth_error(403, "access_denied",
                           "Active access token limit reached for this user: delete tokens to obtain a new one")
    return jsonify({"access_token": token["access_token"], "token_type": "bearer", "scope": "read_ads",
                    "expires_in": str(state().config["VK_SANDBOX_ACCESS_TOKEN_TTL"]),
                    "refresh_token": token["refresh_token"]})


@bp.post("/api/v2/oauth2/token.json")
def token():
    if request.mimetype != "application/x-www-form-urlencoded":
        return oauth_error(400, "invalid_request", "The body must be application/x-www-form-urlencoded")
    form = request.form
    grant = form.get("grant_type")
    sandbox = state()
    if grant == "authorization_code":
        if form.get("client_id") != sandbox.config["VK_SANDBOX_CLIENT_ID"]:
            return oauth_error(401, "invalid_client", "Invalid client id or secret provided")
        with sandbox.lock:
            grant_row = sandbox.codes.get(form.get("code", ""))
            if grant_row is None or grant_row["used"] or grant_row["expires_at"] < time.time() \
                    or grant_row["client_id"] != form["client_id"]:
                return oauth_error(400, "invalid_grant", "Unknown, used or expired code")
            grant_row["used"] = True
        return token_answer(sandbox.issue_token(form["client_id"], grant_row["user_id"]))
    if not client_authenticated(form):
        return oauth_error(401, "invalid_client", "Invalid client id or secret provided")
    if grant == "client_credentials":
        return token_answer(sandbox.issue_token(form["client_id"], OWNER_USER_ID))
    if grant == "refresh_token":
        refreshed = sandbox.refresh(form["client_id"], form.get("refresh_token", ""))
        if refreshed is None:
            return oauth_error(400, "invalid_grant", "Unknown or revoked refresh token")
        return token_answer(refreshed)
    if grant == "agency_client_credentials":
        agency_id = OWNER_USER_ID
        if form.get("access_token"):
            with sandbox.lock:
                agency_token = sandbox.tokens.get(form["access_token"])
            if agency_token is None or agency_token["revoked"] or agency_token["expires_at"] < time.time():
                return oauth_error(401, "invalid_token", "Unknown, expired or revoked agency access token")
            agency_id = agency_token["user_id"]
        with sandbox.lock:
            clients = [user for user in sandbox.users.values() if user["agency_id"] == agency_id]
        wanted_id, wanted_name = form.get("agency_client_id"), form.get("agency_client_name")
        if not wanted_id and not wanted_name:
            return oauth_error(400, "invalid_request", "agency_client_name or agency_client_id is required")
        client = next((user for user in clients if str(user["id"]) == wanted_id or user["username"] == wanted_name),
                      None)
        if client is None:
            return oauth_error(400, "invalid_request", "No such client of this agency or manager")
        return token_answer(sandbox.issue_token(form["client_id"], client["id"]))
    return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")


@bp.post("/api/v2/oauth2/token/delete.json")
def delete_tokens():
    form = request.form
    if not client_authenticated(form):
        return oauth_error(401, "invalid_client", "Invalid client id or secret provided")
    sandbox = state()
    user_id = OWNER_USER_ID
    if form.get("user_id"):
        user_id = int(form["user_id"]) if form["user_id"].isdigit() and len(form["user_id"]) < 19 else -1
    elif form.get("username"):
        user_id = next((user["id"] for user in sandbox.users.values() if user["username"] == form["username"]), -1)
    if user_id not in sandbox.users:
        return oauth_error(400, "invalid_request", "Unknown user")
    sandbox.delete_tokens(form["client_id"], user_id)
    return "", 204
