"""The VK Ads API resources the spend import reads, as documented (Overview, Statistics, AdPlans, AgencyClients,
User):

Every call: ``Authorization: Bearer`` → 401 ``{"code", "message"}`` + ``WWW-Authenticate`` for an unknown,
expired or revoked token → injected faults → per-user limits per calendar second, hour and day (429, with
``X-RateLimit-{RPS,Hourly,Daily}-{Limit,Remaining}`` on every answer) → the resource.

- ``GET /api/v2/user.json`` and ``/api/v3/user.json``: the token's user (id, username, currency, types).
- ``GET /api/v2/agency/clients.json`` and ``/api/v3/manager/clients.json``: an agency's or a manager's clients
  (``limit`` ≤ 50, ``offset``); users of another type get 403.
- ``GET /api/v2/ad_plans.json``: ``limit`` (default 20, ≤ 50), ``offset``, ``fields``, ``_status``,
  ``_status__in``, ``_id__in``; ``{"count", "offset", "items"}``.
- ``GET /api/v2/statistics/ad_plans/day.json``: ``id`` (≤ 200, the user's own plans), ``date_from``, ``date_to``
  (daily statistics for the last 365 days only), ``metrics`` (``base``); money as decimal strings.
  Errors ``{"error": {"message", "code"}}``: ERR_WRONG_PARAMETER, ERR_LIMIT_EXCEEDED, ERR_WRONG_DATE,
  ERR_WRONG_CAMPAIGNS (400), ERR_WRONG_RESOURCE (404).
"""
import time
from datetime import date
from decimal import Decimal

from flask import Blueprint, current_app, g, jsonify, request

from portal.sandbox.spend_figures import daily_figures

from .state import window_too_old

bp = Blueprint("vk_ads_sandbox_api", __name__)

PLAN_FIELDS = frozenset({"id", "name", "status"})
STATUSES = frozenset({"active", "blocked", "deleted"})
METRIC_SETS = frozenset({"all", "base", "events", "video", "uniques", "tps", "playable", "romi"})


def state():
    return current_app.extensions["vk_ads_sandbox"]


def error(status: int, code: str, message: str):
    response = jsonify({"error": {"message": message, "code": code}})
    response.status_code = status
    return response


def validation_failed(field: str, code: str, message: str):
    response = jsonify({"error": {"fields": {field: {"message": message, "code": code}},
                                  "message": "Validation failed", "code": "validation_failed"}})
    response.status_code = 400
    return response


def token_problem(code: str, message: str):
    response = jsonify({"code": code, "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Bearer realm="api", error="{code}", error_description="{message}"'
    return response


@bp.before_request
def guard():
    sandbox = state()
    sandbox.record(request.method, request.path, request.args.to_dict())
    header = request.headers.get("Authorization", "")
    access_token = header[7:] if header.lower().startswith("bearer ") else ""
    with sandbox.lock:
        token = sandbox.tokens.get(access_token)
    if token is None:
        return token_problem("invalid_token", "Unknown access token")
    if token["revoked"]:
        return token_problem("revoked_token", "Access token has been revoked")
    if token["expires_at"] < time.time():
        return token_problem("expired_token", "Access token is expired")
    g.vk_user = sandbox.users[token["user_id"]]
    g.rate_report = sandbox.count_call(token["user_id"])
    fault = sandbox.take_fault(request.path)
    if fault == 500:
        return error(500, "ERR_INTERNAL", "Internal server error")
    if fault == 429 or any(remaining < 0 for _, remaining in g.rate_report.values()):
        return error(429, "ERR_LIMIT_EXCEEDED", "Too many requests")
    return None


@bp.after_request
def rate_headers(response):
    for period, (limit, remaining) in (getattr(g, "rate_report", None) or {}).items():
        response.headers[f"X-RateLimit-{period}-Limit"] = str(limit)
        response.headers[f"X-RateLimit-{period}-Remaining"] = str(max(0, remaining))
    return response


def paging() -> tuple[int, int] | object:
    maximum = state().config["VK_SANDBOX_LIST_LIMIT_MAX"]
    try:
        limit = int(request.args.get("limit", 20))
    except ValueError:
        return validation_failed("limit", "bad_value", "limit must be a number")
    try:
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return validation_failed("offset", "bad_value", "offset must be a number")
    if limit > maximum:
        return validation_failed("limit", "max_value", f"limit must be at most {maximum}")
    if limit < 1:
        return validation_failed("limit", "min_value", "limit must be at least 1")
    if offset < 0:
        return validation_failed("offset", "min_value", "offset must not be negative")
    return limit, offset


@bp.get("/api/v2/user.json")
@bp.get("/api/v3/user.json")
def user():
    user = g.vk_user
    return jsonify({"id": user["id"], "username": user["username"], "status": user["status"],
                    "currency": user["currency"], "info_currency": user["currency"], "types": user["types"]})


@bp.get("/api/v2/agency/clients.json")
def agency_clients():
    if "agency" not in g.vk_user["types"]:
        return error(403, "ERR_ACCESS_DENIED", "Available only to agency accounts")
    return clients_page()


@bp.get("/api/v3/manager/clients.json")
def manager_clients():
    if "manager" not in g.vk_user["types"]:
        return error(403, "ERR_ACCESS_DENIED", "Available only to manager accounts")
    return clients_page()


def clients_page():
    """The caller's clients (users whose agency_id is the caller), as AgencyClients and ManagerClients list them."""
    page = paging()
    if not isinstance(page, tuple):
        return page
    limit, offset = page
    with state().lock:
        clients = sorted((user for user in state().users.values() if user["agency_id"] == g.vk_user["id"]),
                         key=lambda user: user["id"])
    items = [{"access_type": "full_access", "status": "active",
              "user": {"id": user["id"], "username": user["username"], "status": user["status"],
                       "additional_info": {"client_name": user["client_name"]}}}
             for user in clients[offset:offset + limit]]
    return jsonify({"count": len(clients), "items": items, "limit": limit, "offset": offset})


@bp.get("/api/v2/ad_plans.json")
def ad_plans():
    page = paging()
    if not isinstance(page, tuple):
        return page
    limit, offset = page
    fields = [field for field in request.args.get("fields", "id,name").split(",") if field]
    unknown = [field for field in fields if field not in PLAN_FIELDS]
    if unknown:
        return validation_failed("fields", "unallowed_value", f"Unknown fields: {', '.join(unknown)}")
    statuses = set(request.args.get("_status__in", request.args.get("_status", "")).split(",")) - {""}
    if statuses - STATUSES:
        return validation_failed("_status", "unallowed_value", "Status must be one of active, blocked, deleted")
    if not statuses:
        statuses = set(STATUSES) if state().config["VK_SANDBOX_LIST_DELETED_BY_DEFAULT"] else {"active", "blocked"}
    ids = None
    if request.args.get("_id__in"):
        try:
            ids = {int(value) for value in request.args["_id__in"].split(",")}
        except ValueError:
            return validation_failed("_id__in", "bad_items", "ids must be numbers")
    plans = sorted((plan for plan in state().plans_of(g.vk_user["id"])
                    if plan["status"] in statuses and (ids is None or plan["id"] in ids)), key=lambda plan: plan["id"])
    items = [{field: plan[field] for field in fields} for plan in plans[offset:offset + limit]]
    return jsonify({"count": len(plans), "offset": offset, "items": items})


def parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value and len(value) == 10 else None
    except ValueError:
        return None


def money(hundredths: int) -> str:
    return str(Decimal(hundredths) / 100)


@bp.get("/api/v2/statistics/<object_type>/<period>.json")
def statistics(object_type: str, period: str):
    if object_type != "ad_plans" or period != "day":
        return error(404, "ERR_WRONG_RESOURCE", "The API method does not exist")
    config = state().config
    args = request.args
    metrics = set((args.get("metrics") or "base").split(","))
    if metrics - METRIC_SETS:
        return error(400, "ERR_WRONG_PARAMETER", "Unknown metrics set")
    for name in ("id", "date_from", "date_to"):
        if not args.get(name):
            return error(400, "ERR_WRONG_PARAMETER", f"Required parameter {name} is missing")
    try:
        ids = [int(value) for value in args["id"].split(",")]
    except ValueError:
        return error(400, "ERR_WRONG_PARAMETER", "id must be a comma-separated list of numbers")
    if len(ids) > config["VK_SANDBOX_STATISTICS_IDS_MAX"]:
        return error(400, "ERR_LIMIT_EXCEEDED", f"At most {config['VK_SANDBOX_STATISTICS_IDS_MAX']} ids per request")
    first, last = parse_day(args["date_from"]), parse_day(args["date_to"])
    if first is None or last is None or first > last:
        return error(400, "ERR_WRONG_DATE", "date_from and date_to must be YYYY-MM-DD, date_from not after date_to")
    sandbox = state()
    today = sandbox.today()
    if window_too_old(first, today, config["VK_SANDBOX_STATISTICS_DAYS_BACK"]):
        return error(400, "ERR_LIMIT_EXCEEDED", "Daily statistics are kept for the last 365 days only")
    days_limit = config["VK_SANDBOX_STATISTICS_DAYS_PER_REQUEST"]
    if days_limit and (last - first).days + 1 > days_limit:
        return error(400, "ERR_LIMIT_EXCEEDED", f"At most {days_limit} days per request")
    own = {plan["id"] for plan in sandbox.plans_of(g.vk_user["id"])}
    if any(plan_id not in own for plan_id in ids):
        return error(400, "ERR_WRONG_CAMPAIGNS",
                     "The requested campaigns do not exist or are not available for this API user")
    seed = config["VK_SANDBOX_SEED"]
    items, grand = [], [0, 0, 0]
    span = (min(last, today) - first).days + 1
    for plan_id in ids:
        rows, total = [], [0, 0, 0]
        for offset in range(max(0, span)):
            day = date.fromordinal(first.toordinal() + offset)
            shows, clicks, spent = daily_figures(seed, plan_id, day)
            total = [total[0] + shows, total[1] + clicks, total[2] + spent]
            rows.append({"date": day.isoformat(), "base": base_metrics(shows, clicks, spent)})
        grand = [grand[0] + total[0], grand[1] + total[1], grand[2] + total[2]]
        items.append({"id": plan_id, "rows": rows, "total": {"base": base_metrics(*total)}})
    return jsonify({"items": items, "total": {"base": base_metrics(*grand)}})


def base_metrics(shows: int, clicks: int, spent: int) -> dict:
    return {"shows": shows, "clicks": clicks, "goals": 0, "spent": money(spent), "a_amount": money(spent),
            "n_amount": "0", "cpm": money(spent * 1000 // shows) if shows else "0",
            "cpc": money(spent // clicks) if clicks else "0", "cpa": "0",
            "ctr": round(clicks * 100 / shows, 4) if shows else 0, "cr": 0}
