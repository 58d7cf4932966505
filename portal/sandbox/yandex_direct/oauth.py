"""Yandex ID OAuth as Yandex Direct apps use it: the authorize page (pick the signed-in user, Allow or Deny) and
the token endpoint (authorization_code and refresh_token grants, form-encoded, client credentials in the body or
HTTP Basic). Yandex ID: https://yandex.ru/dev/id/doc/en/codes/code-url, .../tokens/refresh-client."""
import time
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template_string, request

bp = Blueprint("yandex_oauth", __name__)

AUTHORIZE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Yandex ID (sandbox)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<main><h1>Allow access to Yandex Direct?</h1>
<p>The application <strong>{{ client_id }}</strong> asks to use Yandex Direct on your behalf.</p>
<form method="post">
{% for name, value in params.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
<label for="login">Signed in as</label>
<select id="login" name="login">{% for login in logins %}<option>{{ login }}</option>{% endfor %}</select>
<p><button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button></p>
</form></main></body></html>"""


def sandbox():
    return current_app.extensions["yandex_direct_sandbox"]


def _oauth_error(error: str, description: str, status: int = 400):
    return jsonify({"error": error, "error_description": description}), status


def _with_query(uri: str, params: dict) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    state = sandbox()
    values = request.values
    client_id, redirect_uri = values.get("client_id", ""), values.get("redirect_uri") or ""
    if values.get("response_type") != "code" or client_id != state.config["YD_CLIENT_ID"]:
        return _oauth_error("invalid_request", "unknown client_id or response_type is not code")
    allowed = state.config["YD_REDIRECT_URIS"]
    if not redirect_uri or (allowed and redirect_uri not in allowed):
        return _oauth_error("invalid_request", "redirect_uri does not match the application's callback")
    params = {name: values[name] for name in ("response_type", "client_id", "redirect_uri", "state")
              if values.get(name) is not None}
    if request.method == "GET":
        with state.lock:
            logins = sorted(state.users)
        return render_template_string(AUTHORIZE_PAGE, client_id=client_id, params=params, logins=logins)
    extra = {"state": values["state"]} if values.get("state") is not None else {}
    if values.get("decision") != "allow":
        return redirect(_with_query(redirect_uri, {"error": "access_denied",
                                                   "error_description": "the user denied access", **extra}))
    with state.lock:
        if values.get("login") not in state.users:
            return _oauth_error("invalid_request", "unknown user")
        code = state.issue_code(values["login"], client_id, redirect_uri)
    return redirect(_with_query(redirect_uri, {"code": code, **extra}))


@bp.post("/token")
def token():
    state = sandbox()
    form = request.form
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id, client_secret = request.authorization.username, request.authorization.password
    if client_id != state.config["YD_CLIENT_ID"] or client_secret != state.config["YD_CLIENT_SECRET"]:
        return _oauth_error("invalid_client", "Client not found", 401)
    with state.lock:
        grant = form.get("grant_type")
        if grant == "authorization_code":
            row = state.codes.pop(form.get("code", ""), None)
            if row is None or row["expires_at"] < time.time() or row["client_id"] != client_id:
                return _oauth_error("invalid_grant", "Code has expired")
            return jsonify(state.issue_tokens(row["login"], client_id))
        if grant == "refresh_token":
            row = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if row is None or row["client_id"] != client_id:
                return _oauth_error("invalid_grant", "Token has been revoked or expired")
            return jsonify(state.issue_tokens(row["login"], client_id))
    return _oauth_error("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
