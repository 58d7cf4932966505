"""``/_sandbox/*`` of the Google Ads sandbox: reset, state, Google users, customers (managers and their clients)
and campaigns, token revocation and expiry, injected faults, settings and the log of API calls."""
from flask import Blueprint, current_app, jsonify, request

bp = Blueprint("google_ads_sandbox_control", __name__, url_prefix="/_sandbox")


def state():
    return current_app.extensions["google_ads_sandbox"]


def problem(message: str, status: int = 400):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.post("/reset")
def reset():
    state().reset()
    return jsonify({"ok": True})


@bp.get("/state")
def summary():
    sandbox = state()
    with sandbox.lock:
        return jsonify({"customers": list(sandbox.customers.values()), "campaigns": len(sandbox.campaigns),
                        "users": {email: sorted(ids) for email, ids in sandbox.users.items()},
                        "operations": len(sandbox.operations), "faults": sandbox.faults})


@bp.post("/users")
def add_user():
    """{"email": "...", "customers": ["1234567890", ...]}: a Google user and the customers it reaches directly."""
    data = body()
    customers = data.get("customers") or []
    if not isinstance(data.get("email"), str) or not isinstance(customers, list):
        return problem("email and customers (a list of ids) are required")
    with state().lock:
        unknown = [customer for customer in customers if customer not in state().customers]
        if unknown:
            return problem(f"unknown customers: {', '.join(map(str, unknown))}")
        state().users[data["email"]] = set(customers)
    return jsonify({"email": data["email"], "customers": customers}), 201


@bp.post("/customers")
def add_customer():
    """{"id": 10 digits, "name", "currency", "time_zone", "manager": bool, "parent": manager id, "status",
    "access": [emails reaching it directly]}."""
    data = body()
    customer_id = str(data.get("id") or "")
    if not (customer_id.isdigit() and len(customer_id) == 10):
        return problem("id must be 10 digits")
    try:
        customer = state().add_customer(customer_id, str(data.get("name") or customer_id),
                                        str(data.get("currency") or "USD"), str(data.get("time_zone") or "UTC"),
                                        manager=bool(data.get("manager")), parent=data.get("parent"),
                                        status=str(data.get("status") or "ENABLED"))
    except (ValueError, KeyError) as failure:
        return problem(str(failure))
    with state().lock:
        for email in data.get("access") or []:
            state().users.setdefault(str(email), set()).add(customer_id)
    return jsonify(customer), 201


@bp.post("/customers/<customer_id>/campaigns")
def add_campaigns(customer_id: str):
    """{"count": n, "prefix": "Campaign"} or {"names": [...]}: new campaigns of the customer."""
    data = body()
    if customer_id not in state().customers:
        return problem("unknown customer", 404)
    names = data.get("names")
    if not isinstance(names, list):
        count = data.get("count")
        if not isinstance(count, int) or not 0 < count <= 100_000:
            return problem("names (a list) or count (1…100000) is required")
        names = [f"{data.get('prefix') or 'Campaign'} {number}" for number in range(1, count + 1)]
    campaigns = [state().add_campaign(customer_id, str(name), str(data.get("status") or "ENABLED")) for name in names]
    return jsonify({"ids": [str(campaign["id"]) for campaign in campaigns]}), 201


@bp.post("/tokens/revoke")
def revoke():
    return jsonify({"revoked": state().revoke(body().get("email"))})


@bp.post("/tokens/expire")
def expire():
    return jsonify({"expired": state().expire(body().get("email"))})


@bp.post("/faults")
def add_fault():
    """{"status": 500 | 429, "count": n, "retry_delay": seconds (429)}: the next n API calls fail so."""
    data = body()
    if data.get("status") not in (500, 429) or not isinstance(data.get("count"), int) or data["count"] < 1:
        return problem("status (500 or 429) and count (≥ 1) are required")
    delay = data.get("retry_delay", state().config["GOOGLE_SANDBOX_RETRY_DELAY_SECONDS"])
    if not isinstance(delay, int | float) or delay < 0:
        return problem("retry_delay must be a number of seconds")
    with state().lock:
        state().faults.append({"status": data["status"], "remaining": data["count"], "retry_delay": delay})
    return jsonify({"ok": True})


@bp.post("/config")
def configure():
    data = body()
    unknown = [key for key in data if key not in state().config]
    if unknown:
        return problem(f"unknown settings: {', '.join(sorted(unknown))}")
    with state().lock:
        state().config.update(data)
    return jsonify({key: state().config[key] for key in data})


@bp.get("/calls")
def calls():
    with state().lock:
        return jsonify(list(state().calls))
