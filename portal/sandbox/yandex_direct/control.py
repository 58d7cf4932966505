"""`/_sandbox/` — the control API tests and the demo use: the state, reset, users and campaigns, token revocation,
injected faults and runtime config.

- `GET /_sandbox/state` — users (with campaigns), live token count, offline reports, faults, recent calls
- `POST /_sandbox/reset`
- `POST /_sandbox/clients` `{"login", "currency": "RUB", "type": "CLIENT"|"AGENCY", "agency": login?,
  "campaigns": n, "names": [...]}`
- `POST /_sandbox/clients/<login>/campaigns` `{"count": n, "names": [...]}`
- `POST /_sandbox/tokens/revoke` `{"login"}` or `{"access_token"}`
- `POST /_sandbox/tokens/expire` `{"login"}` — access tokens expire now; refresh tokens still work
- `POST /_sandbox/faults` `{"http_500": n, "http_502": n, "stay_202": n, "units_exhausted": n}` — the next n
  calls fail so (`stay_202`: the next offline report answers 202 n more times after it is ready); `{}` clears
- `POST /_sandbox/config` `{"YD_…": value}` — any key of `state.DEFAULT_CONFIG`
- `POST /_sandbox/authorize` `{"login", "redirect_uri", "state"}` — consent without a browser: `{code, redirect_url}`
"""
from urllib.parse import urlencode

from flask import Blueprint, abort, jsonify, request

from .oauth import sandbox
from .state import ADVERTISER, AGENCY, DEFAULT_CONFIG

bp = Blueprint("yandex_control", __name__, url_prefix="/_sandbox")

FAULT_KINDS = ("http_500", "http_502", "stay_202", "units_exhausted")


def _json() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "a JSON object is expected")
    return body


def _count(body: dict, key: str) -> int:
    value = body.get(key, 0)
    if not isinstance(value, int) or not 0 <= value <= 100_000:
        abort(400, f"{key} must be a whole number from 0 to 100000")
    return value


def _names(body: dict) -> list[str]:
    names = body.get("names") or []
    if not isinstance(names, list) or not all(isinstance(name, str) and 0 < len(name) <= 255 for name in names):
        abort(400, "names must be a list of campaign names")
    return names


@bp.get("/state")
def state_view():
    state = sandbox()
    with state.lock:
        return jsonify({
            "users": list(state.users.values()),
            "tokens": len(state.tokens),
            "reports": [{"client": key[0], "name": key[1], "fetched": report["fetched"]}
                        for key, report in state.reports.items()],
            "faults": state.faults,
            "units_spent": state.units_spent,
            "calls": state.calls[-200:],
            "config": state.config,
        })


@bp.post("/reset")
def reset():
    sandbox().reset()
    return jsonify({"ok": True})


@bp.post("/clients")
def add_client():
    body = _json()
    state = sandbox()
    login = str(body.get("login", "")).strip().lower()
    kind = body.get("type", ADVERTISER)
    if not login or kind not in (ADVERTISER, AGENCY):
        abort(400, "login and a type of CLIENT or AGENCY are needed")
    with state.lock:
        if login in state.users:
            abort(409, "this login exists")
        if body.get("agency") and state.users.get(str(body["agency"]), {}).get("Type") != AGENCY:
            abort(400, "agency must name an agency user")
        user = state.add_user(login, kind, str(body.get("currency", "RUB"))[:3].upper(), agency=body.get("agency"),
                              campaigns=_count(body, "campaigns"), names=_names(body))
        return jsonify(user), 201


@bp.post("/clients/<login>/campaigns")
def add_campaigns(login: str):
    body = _json()
    state = sandbox()
    with state.lock:
        if login not in state.users:
            abort(404, "no such login")
        added = state.add_campaigns(login, _count(body, "count"), _names(body))
        return jsonify({"campaigns": added}), 201


@bp.post("/tokens/revoke")
def revoke():
    body = _json()
    return jsonify({"revoked": sandbox().revoke(body.get("login"), body.get("access_token"))})


@bp.post("/tokens/expire")
def expire():
    body = _json()
    state = sandbox()
    with state.lock:
        expired = 0
        for row in state.tokens.values():
            if row["login"] == body.get("login"):
                row["expires_at"] = 0
                expired += 1
    return jsonify({"expired": expired})


@bp.post("/faults")
def faults():
    body = _json()
    if any(kind not in FAULT_KINDS or not isinstance(times, int) or times < 0 for kind, times in body.items()):
        abort(400, f"faults are counts of: {', '.join(FAULT_KINDS)}")
    state = sandbox()
    with state.lock:
        state.faults = dict(body)
        return jsonify(state.faults)


@bp.post("/config")
def config():
    body = _json()
    unknown = [key for key in body if key not in DEFAULT_CONFIG]
    if unknown:
        abort(400, f"unknown settings: {', '.join(unknown)}")
    state = sandbox()
    with state.lock:
        state.config.update(body)
        return jsonify(state.config)


@bp.post("/authorize")
def authorize():
    body = _json()
    state = sandbox()
    redirect_uri = str(body.get("redirect_uri") or "")
    with state.lock:
        if body.get("login") not in state.users or not redirect_uri:
            abort(400, "a known login and a redirect_uri are needed")
        code = state.issue_code(body["login"], state.config["YD_CLIENT_ID"], redirect_uri)
    params = {"code": code, **({"state": body["state"]} if body.get("state") else {})}
    return jsonify({"code": code, "redirect_url": redirect_uri + ("&" if "?" in redirect_uri else "?")
                    + urlencode(params)})
