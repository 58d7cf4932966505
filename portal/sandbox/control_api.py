"""Control API for tests and the demo, under ``/_sandbox/`` (JSON in and out; no auth, no faults, no limits).

- ``GET  /_sandbox/``                      HTML page: deals with "Won" (with an amount) / "Lost" buttons
- ``GET  /_sandbox/state``                 accounts, integrations, leads, contacts, webhooks, deliveries,
                                           counters, faults, config, ``webhook_queue``, ``jwt_public_key_pem``
- ``GET  /_sandbox/jwks``                  the RS256 public key as a JWKS
- ``POST /_sandbox/reset``                 back to the start state (config from create_app, no faults)
- ``POST /_sandbox/counters/reset``
- ``POST /_sandbox/config``                runtime config, keys lowercased without the prefix:
                                           ``access_token_ttl, refresh_token_ttl, code_ttl,
                                           rate_limit_per_sec, account_rate_limit_per_sec,
                                           webhook_retry_delays, webhook_disable_after, webhook_timeout,
                                           secrets_timeout, public_host, search_index_delay, list_filters
                                           (both: for accounts created later), block_after_429s,
                                           block_window, block_seconds``
- ``POST /_sandbox/faults``                ``{rate_limit_per_sec, http_500_rate, timeout_rate,
                                           timeout_seconds, drop_after_commit_rate, latency_ms, html_429,
                                           block, paths}``; replaces the whole fault set, so ``{}`` means no faults
- ``POST /_sandbox/tokens/expire``         ``{account_id?, client_id?}``: access tokens issued so far → 401
- ``POST /_sandbox/oauth/authorize``       ``{client_id, state, account_id?}`` → ``{redirect_url, code,
                                           referer, client_id, account_id}``; an integration with a
                                           ``secrets_uri`` gets its keys POSTed there first (non-200 → 502)
- ``POST /_sandbox/integrations``          ``{name, redirect_uri, secrets_uri?, client_id?, client_secret?}``
- ``POST /_sandbox/accounts``              ``{name?, subdomain?, duplicate_control?, tracking_fields?, own_host?,
                                           <settings>}`` → the account (``tracking_fields``: the tracking_data
                                           codes it has, OPENSTAT_* allowed; ``own_host``: served on a loopback
                                           port of its own, ``host`` in the answer)
- ``POST /_sandbox/accounts/<id>``         ``{duplicate_control?, subdomain?, name?, <settings>}``; settings:
                                           ``search_index_delay`` (s), ``list_filters`` (applied|ignored),
                                           ``duplicate_rules`` ([phone, email]), ``is_admin`` (bool),
                                           ``denied`` (call kinds answered 403, e.g. ``leads:write``,
                                           ``webhooks``, ``contacts``), ``platform`` (amocrm|kommo)
- ``POST /_sandbox/leads/<id>/status``     ``{status_id, pipeline_id?, price?}`` (JSON, or the page's form)
- ``DELETE /_sandbox/leads/<id>``          deletes the deal (``leads[delete]`` webhook)
- ``GET  /_sandbox/unsorted``              every Unsorted item (waiting, accepted, declined) of every account
- ``POST /_sandbox/unsorted/<uid>/accept`` ``{status_id?}``: a manager accepts the item (webhooks as amoCRM sends)
- ``POST /_sandbox/unsorted/<uid>/decline`` a manager declines it
"""

import copy

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for

from . import unsorted
from .changes import announce
from .oauth import authorize, public_host, sandbox
from .records import finish_update
from .search import drop_from_index
from .state import DEFAULT_CONFIG, NO_FAULTS, OPENSTAT_FIELD_CODES, TRACKING_FIELD_CODES
from .validation import ValidationFailed

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

CONFIG_KEYS = {
    key[len("SANDBOX_") :].lower(): key
    for key in DEFAULT_CONFIG
    if key not in ("SANDBOX_INTEGRATIONS", "SANDBOX_STATE_FILE")
}


def bad_request(message: str, status: int = 400):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def json_body() -> dict:
    body = request.get_json(silent=True, force=True)
    return body if isinstance(body, dict) else {}


def host_url() -> str:
    return f"{request.scheme}://{public_host()}"


@bp.get("/")
def dashboard():
    state = sandbox().state
    with state.lock:
        rows = []
        for lead in sorted(state.leads.values(), key=lambda item: item["id"], reverse=True):
            account = state.accounts[lead["account_id"]]
            pipeline = state.pipeline(account, lead["pipeline_id"])
            status = next(s for s in pipeline["statuses"] if s["id"] == lead["status_id"])
            utm = {
                f["field_code"]: f["values"][0]["value"]
                for f in lead["custom_fields_values"] or []
                if f["field_code"] and f["values"]
            }
            rows.append(
                {"lead": lead, "account": account, "pipeline": pipeline, "status": status, "utm": utm}
            )
        accounts = list(state.accounts.values())
    return render_template("sandbox/dashboard.html", rows=rows, accounts=accounts)


@bp.get("/state")
def state_dump():
    box = sandbox()
    body = box.state.public_state()
    body["webhook_queue"] = box.sender.pending()
    body["jwt_public_key_pem"] = box.signer.public_pem
    return jsonify(body)


@bp.get("/jwks")
def jwks():
    return jsonify(sandbox().signer.jwks())


@bp.post("/reset")
def reset():
    sandbox().state.reset()
    return jsonify({"ok": True})


@bp.post("/counters/reset")
def counters_reset():
    sandbox().state.reset_counters()
    return jsonify({"ok": True})


@bp.post("/config")
def config():
    body = json_body()
    unknown = set(body) - set(CONFIG_KEYS)
    if unknown:
        return bad_request(f"unknown config keys: {sorted(unknown)}")
    state = sandbox().state
    with state.lock:
        for key, value in body.items():
            state.config[CONFIG_KEYS[key]] = value
        return jsonify({key: state.config[name] for key, name in CONFIG_KEYS.items()})


@bp.post("/faults")
def faults():
    body = json_body()
    unknown = set(body) - set(NO_FAULTS)
    if unknown:
        return bad_request(f"unknown faults: {sorted(unknown)}")
    state = sandbox().state
    with state.lock:
        state.faults = dict(NO_FAULTS, **body)
        return jsonify(state.faults)


@bp.post("/tokens/expire")
def tokens_expire():
    body = json_body()
    state = sandbox().state
    expired = 0
    with state.lock:
        for record in state.access_tokens.values():
            if body.get("account_id") not in (None, record["account_id"]):
                continue
            if body.get("client_id") not in (None, record["client_id"]):
                continue
            if not record["revoked"]:
                record["revoked"] = True
                expired += 1
    return jsonify({"expired": expired})


@bp.post("/oauth/authorize")
def oauth_authorize():
    body = json_body()
    result = authorize(body.get("client_id"), body.get("account_id"), body.get("state"))
    if "error" in result:
        return bad_request(result["error"], 502 if "secrets_uri" in result["error"] else 400)
    return jsonify(
        {
            "redirect_url": result["redirect_url"],
            "code": result["code"],
            "referer": result["referer"],
            "client_id": result["integration"]["client_id"],
            "account_id": result["account_id"],
        }
    )


@bp.post("/integrations")
def integrations():
    body = json_body()
    if not body.get("name") or not body.get("redirect_uri"):
        return bad_request("name and redirect_uri are required")
    allowed = ("name", "redirect_uri", "secrets_uri", "client_id", "client_secret", "scopes", "description")
    integration = sandbox().state.create_integration(**{k: body[k] for k in allowed if k in body})
    return jsonify(integration), 201


def setting_errors(body: dict) -> list[str]:
    """What is wrong with per-account settings in ``body`` (unknown keys are the caller's to reject)."""
    problems = []
    checks = {
        "search_index_delay": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0,
        "list_filters": lambda v: v in ("applied", "ignored"),
        "duplicate_rules": lambda v: isinstance(v, list) and set(v) <= {"phone", "email"},
        "is_admin": lambda v: isinstance(v, bool),
        "denied": lambda v: isinstance(v, list) and all(isinstance(kind, str) for kind in v),
        "platform": lambda v: v in ("amocrm", "kommo"),
        "unsorted_decline_methods": lambda v: isinstance(v, list) and v and set(v) <= {"DELETE", "POST"},
        "unsorted_decline_outcome": lambda v: v in ("delete", "lost"),
    }
    for key, check in checks.items():
        if key in body and not check(body[key]):
            problems.append(key)
    return problems


ACCOUNT_KEYS = {"name", "subdomain", "duplicate_control", "tracking_fields", "own_host"}
SETTING_KEYS = {"search_index_delay", "list_filters", "duplicate_rules", "is_admin", "denied", "platform",
                "unsorted_decline_methods", "unsorted_decline_outcome"}


@bp.post("/accounts")
def accounts():
    body = json_body()
    unknown = set(body) - ACCOUNT_KEYS - SETTING_KEYS
    invalid = setting_errors(body)
    tracking = body.get("tracking_fields")
    if tracking is not None and not (
        isinstance(tracking, list) and set(tracking) <= set(TRACKING_FIELD_CODES + OPENSTAT_FIELD_CODES)
    ):
        invalid.append("tracking_fields")
    if unknown or invalid:
        return bad_request(f"unknown keys {sorted(unknown)}, invalid values {sorted(invalid)}")
    box = sandbox()
    account = box.state.create_account(
        name=body.get("name"),
        subdomain=body.get("subdomain"),
        duplicate_control=bool(body.get("duplicate_control", False)),
        tracking_fields=tracking,
        **{key: body[key] for key in SETTING_KEYS if key in body},
    )
    if body.get("own_host"):
        box.hosts.give_host(account)
    return jsonify(copy.deepcopy(account)), 201


@bp.post("/accounts/<int:account_id>")
def account_update(account_id):
    """Per-account settings; ``subdomain`` renames the account (an account with its own host moves to a new
    host, and the old one answers 404 on the token endpoint, as a renamed amoCRM account's old domain)."""
    body = json_body()
    unknown = set(body) - {"duplicate_control", "subdomain", "name"} - SETTING_KEYS
    invalid = setting_errors(body)
    if unknown or invalid:
        return bad_request(f"unknown keys {sorted(unknown)}, invalid values {sorted(invalid)}")
    box = sandbox()
    state = box.state
    with state.lock:
        account = state.account(account_id)
        if account is None:
            return bad_request("no such account", 404)
        if "duplicate_control" in body:
            account["duplicate_control"] = bool(body["duplicate_control"])
        if body.get("name"):
            account["name"] = str(body["name"])
        account["settings"].update({key: body[key] for key in SETTING_KEYS if key in body})
        if body.get("subdomain") and body["subdomain"] != account["subdomain"]:
            account["subdomain"] = str(body["subdomain"])
            if account["host"]:
                box.hosts.move_host(account)
        return jsonify(copy.deepcopy(account))


@bp.post("/leads/<int:lead_id>/status")
def lead_status(lead_id):
    from_form = not request.is_json
    body = request.form.to_dict() if from_form else json_body()
    box = sandbox()
    state = box.state
    with state.lock:
        lead = state.leads.get(lead_id)
        if lead is None:
            return bad_request("no such lead", 404)
        account = state.accounts[lead["account_id"]]
        try:
            status_id = int(body["status_id"])
            pipeline_id = int(body.get("pipeline_id") or lead["pipeline_id"])
            price = int(body["price"]) if body.get("price") not in (None, "") else None
        except (KeyError, TypeError, ValueError):
            return bad_request("status_id (int), pipeline_id (int) and price (int) expected")
        pipeline = state.pipeline(account, pipeline_id)
        if pipeline is None or all(s["id"] != status_id for s in pipeline["statuses"]):
            return bad_request("no such pipeline/status in the lead's account")
        before = copy.deepcopy(lead)
        lead.update(status_id=status_id, pipeline_id=pipeline_id)
        if price is not None:
            lead["price"] = price
        g.user_id = account["users"][0]["id"]
        changes = finish_update(lead, before)
        announce(account["id"], host_url(), changes, "leads", g.user_id)
        result = copy.deepcopy(lead)
    if from_form:
        if "/leads/detail/" in (request.referrer or ""):
            return redirect(url_for("sandbox_pages.deal_page", lead_id=lead_id))
        return redirect(url_for(".dashboard"))
    return jsonify(result)


@bp.delete("/leads/<int:lead_id>")
def lead_delete(lead_id):
    box = sandbox()
    state = box.state
    with state.lock:
        lead = state.leads.pop(lead_id, None)
        if lead is None:
            return bad_request("no such lead", 404)
        drop_from_index("leads", lead_id)
        account = state.accounts[lead["account_id"]]
        announce(lead["account_id"], host_url(), [("delete", lead, {})], "leads", account["users"][0]["id"])
    return "", 204


@bp.get("/unsorted")
def unsorted_items():
    with sandbox().state.lock:
        return jsonify(copy.deepcopy(list(sandbox().state.unsorted.values())))


@bp.post("/unsorted/<uid>/<any(accept, decline):verb>")
def unsorted_by_manager(uid, verb):
    """A manager's accept or decline in amoCRM's interface: what the API's accept/decline do, webhooks included."""
    body = json_body()
    state = sandbox().state
    with state.lock:
        item = state.unsorted.get(uid)
        if item is None or item["status"] != "new":
            return bad_request("no such item waiting in Unsorted", 404)
        g.account = state.accounts[item["account_id"]]
        g.user_id = g.account["users"][0]["id"]
        try:
            result = unsorted.accept(item, body.get("status_id")) if verb == "accept" else unsorted.decline(item)
        except ValidationFailed:
            return bad_request("status_id must be a working status of the item's pipeline")
    return jsonify(result)
