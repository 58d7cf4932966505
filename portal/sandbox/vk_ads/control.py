"""``/_sandbox/*`` of the VK Ads sandbox: reset, state, users and ad plans, token revocation and expiry, injected
faults, settings and the log of API calls (JSON in, JSON out; never rate-limited or faulted)."""
from flask import Blueprint, current_app, jsonify, request

bp = Blueprint("vk_ads_sandbox_control", __name__, url_prefix="/_sandbox")


def state():
    return current_app.extensions["vk_ads_sandbox"]


def problem(message: str, status: int = 400):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def optional_user_id(data: dict) -> int | None:
    value = data.get("user_id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() and len(str(value)) < 19 else None


@bp.post("/reset")
def reset():
    state().reset()
    return jsonify({"ok": True})


@bp.get("/state")
def summary():
    sandbox = state()
    with sandbox.lock:
        tokens: dict[str, int] = {}
        for token in sandbox.tokens.values():
            tokens[str(token["user_id"])] = tokens.get(str(token["user_id"]), 0) + 1
        plans_by_user: dict[str, list[dict]] = {}
        for plan in sandbox.plans.values():
            plans_by_user.setdefault(str(plan["user_id"]), []).append({"id": plan["id"], "name": plan["name"]})
        return jsonify({"users": list(sandbox.users.values()), "plans": len(sandbox.plans), "tokens_per_user": tokens,
                        "plans_by_user": plans_by_user, "faults": sandbox.faults, "calls": len(sandbox.calls)})


@bp.post("/users")
def add_user():
    data = body()
    if not isinstance(data.get("username"), str) or not data["username"]:
        return problem("username is required")
    try:
        user = state().add_user(username=data["username"], currency=str(data.get("currency") or "RUB"),
                                types=data.get("types"), agency_id=data.get("agency_id"),
                                client_name=data.get("client_name"))
    except ValueError as failure:
        return problem(str(failure))
    return jsonify(user), 201


@bp.post("/users/<int:user_id>/ad_plans")
def add_plans(user_id: int):
    """{"count": n, "prefix": "Campaign", "status": "active"} or {"names": [...]}: new ad plans of the user."""
    data = body()
    if user_id not in state().users:
        return problem("unknown user", 404)
    names = data.get("names")
    if not isinstance(names, list):
        count = data.get("count")
        if not isinstance(count, int) or not 0 < count <= 100_000:
            return problem("names (a list) or count (1…100000) is required")
        names = [f"{data.get('prefix') or 'Campaign'} {number}" for number in range(1, count + 1)]
    status = data.get("status") or "active"
    if status not in ("active", "blocked", "deleted"):
        return problem("status must be active, blocked or deleted")
    plans = [state().add_plan(user_id, str(name), status) for name in names]
    return jsonify({"ids": [plan["id"] for plan in plans]}), 201


@bp.post("/tokens/revoke")
def revoke():
    return jsonify({"revoked": state().revoke(optional_user_id(body()))})


@bp.post("/tokens/expire")
def expire():
    return jsonify({"expired": state().expire(optional_user_id(body()))})


@bp.post("/faults")
def add_fault():
    """{"status": 500 | 429, "count": n, "path": optional API path}: the next n matching API calls fail so."""
    data = body()
    if data.get("status") not in (500, 429) or not isinstance(data.get("count"), int) or data["count"] < 1:
        return problem("status (500 or 429) and count (≥ 1) are required")
    with state().lock:
        state().faults.append({"status": data["status"], "remaining": data["count"], "path": data.get("path")})
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
