"""Google's OAuth 2.0 and the Google Ads API (REST) endpoints the spend import uses, as documented:

- ``GET /o/oauth2/v2/auth?client_id&redirect_uri&response_type=code&scope&access_type&prompt&state``: consent page
  (a Google user chooser, Allow / Deny); ``POST`` decides: 302 to ``redirect_uri?code&state&scope`` or
  ``?error=access_denied&state``.
- ``POST /token`` (form): ``authorization_code`` (client id + secret + the same redirect_uri; a refresh token only
  with ``access_type=offline``) and ``refresh_token`` (a new access token, no new refresh token). Errors
  ``{"error", "error_description"}``: ``invalid_grant`` (400: used or unknown code, revoked refresh token),
  ``invalid_client`` (401), ``unsupported_grant_type`` (400).
- ``GET /{version}/customers:listAccessibleCustomers`` → ``{"resourceNames": ["customers/…"]}``.
- ``POST /{version}/customers/{id}/googleAds:searchStream`` → a JSON array of batches of at most
  ``GOOGLE_SANDBOX_BATCH_ROWS`` (10,000) rows, the last with ``queryResourceConsumption``; ``:search`` → pages
  of the same size with ``nextPageToken``. GAQL on ``customer``, ``customer_client`` and ``campaign`` (with
  ``segments.date`` and ``metrics.cost_micros / impressions / clicks``); int64 values as strings.

Every API call: version (404 page otherwise) → bearer token (401 UNAUTHENTICATED) → injected faults → daily
operations and per-second limits (429 RESOURCE_EXHAUSTED with QuotaErrorDetails.retryDelay) → customer id (10
digits) → access: a customer the user reaches directly, or one below the manager named in ``login-customer-id``
(otherwise 403 USER_PERMISSION_DENIED), and enabled (403 CUSTOMER_NOT_ENABLED). Errors are Google's REST error with
a GoogleAdsFailure in ``details``; searchStream wraps them in its array.
"""
import re
import secrets
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request
from markupsafe import escape

from portal.sandbox.spend_figures import daily_figures

from . import gaql
from .state import OWNER_EMAIL

bp = Blueprint("google_ads_sandbox", __name__)

SCOPE = "https://www.googleapis.com/auth/adwords"
CUSTOMER_ID = re.compile(r"^\d{10}$")
NOT_FOUND_PAGE = "<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)!!1</title><p><b>404.</b> That’s an error."

CUSTOMER_FIELDS = {
    "customer.id": ("int", "id"), "customer.descriptive_name": ("str", "descriptive_name"),
    "customer.currency_code": ("str", "currency_code"), "customer.time_zone": ("str", "time_zone"),
    "customer.manager": ("bool", "manager"), "customer.status": ("str", "status"),
    "customer.resource_name": ("str", None),
}
CUSTOMER_CLIENT_FIELDS = {
    "customer_client.id": ("int", "id"), "customer_client.client_customer": ("str", None),
    "customer_client.descriptive_name": ("str", "descriptive_name"),
    "customer_client.currency_code": ("str", "currency_code"), "customer_client.time_zone": ("str", "time_zone"),
    "customer_client.manager": ("bool", "manager"), "customer_client.status": ("str", "status"),
    "customer_client.level": ("int", None), "customer_client.hidden": ("bool", None),
    "customer_client.resource_name": ("str", None),
}
CAMPAIGN_FIELDS = {
    "campaign.id": ("int", "id"), "campaign.name": ("str", "name"), "campaign.status": ("str", "status"),
    "campaign.resource_name": ("str", None), "segments.date": ("date", None), "metrics.cost_micros": ("int", None),
    "metrics.impressions": ("int", None), "metrics.clicks": ("int", None),
}
# What each FROM resource may select: its own fields, and its customer's (an attributed resource).
SELECTABLE = {"customer": CUSTOMER_FIELDS, "customer_client": CUSTOMER_CLIENT_FIELDS,
              "campaign": {**CAMPAIGN_FIELDS, **CUSTOMER_FIELDS}}
KNOWN_FIELDS = {**CUSTOMER_FIELDS, **CUSTOMER_CLIENT_FIELDS, **CAMPAIGN_FIELDS}


def state():
    return current_app.extensions["google_ads_sandbox"]


def oauth_error(status: int, code: str, description: str):
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    return response


# -- OAuth -------------------------------------------------------------------------------------------------------

def consent_problem(message: str):
    page = "<!doctype html><title>Google sandbox</title><h1>Error 400: invalid_request</h1>"
    return f"{page}<p>{escape(message)}</p>", 400


def checked_consent():
    params = request.values
    config = state().config
    if params.get("client_id") != config["GOOGLE_SANDBOX_CLIENT_ID"]:
        return None, "The OAuth client was not found."
    if params.get("redirect_uri") not in config["GOOGLE_SANDBOX_REDIRECT_URIS"]:
        return None, "redirect_uri_mismatch: the redirect URI is not registered for this client."
    if params.get("response_type") != "code":
        return None, "Unsupported response_type."
    if SCOPE not in (params.get("scope") or "").split():
        return None, "The scope must include " + SCOPE
    return params, None


@bp.get("/o/oauth2/v2/auth")
def consent_page():
    params, problem = checked_consent()
    if problem:
        return consent_problem(problem)
    with state().lock:
        emails = sorted(state().users)
    options = "".join(f'<option value="{escape(email)}">{escape(email)}</option>' for email in emails)
    hidden = "".join(f'<input type="hidden" name="{name}" value="{escape(params.get(name, ""))}">'
                     for name in ("client_id", "redirect_uri", "response_type", "scope", "access_type", "prompt",
                                  "state"))
    return ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Sign in — Google sandbox</title>"
            "<h1>Leadpath wants to manage your Google Ads campaigns</h1>"
            f'<form method="post">{hidden}<label>Google account <select name="email">{options}</select></label> '
            '<button name="decision" value="allow">Allow</button> '
            '<button name="decision" value="deny">Cancel</button></form></html>')


@bp.post("/o/oauth2/v2/auth")
def consent_decision():
    params, problem = checked_consent()
    if problem:
        return consent_problem(problem)
    back = {"state": params.get("state", "")}
    target = params["redirect_uri"]
    if request.form.get("decision") != "allow":
        return Response(status=302, headers={"Location": f"{target}?{urlencode({'error': 'access_denied', **back})}"})
    email = request.form.get("email") or OWNER_EMAIL
    if email not in state().users:
        return consent_problem("Unknown Google account.")
    code = "4/" + secrets.token_urlsafe(24)
    with state().lock:
        state().codes[code] = {"email": email, "redirect_uri": target, "used": False,
                               "offline": params.get("access_type") == "offline",
                               "expires_at": time.time() + state().config["GOOGLE_SANDBOX_CODE_TTL"]}
    location = f"{target}?{urlencode({'code': code, **back, 'scope': SCOPE})}"
    return Response(status=302, headers={"Location": location})


@bp.post("/token")
def token():
    form = request.form
    sandbox = state()
    config = sandbox.config
    if form.get("client_id") != config["GOOGLE_SANDBOX_CLIENT_ID"] or \
            not secrets.compare_digest(form.get("client_secret", ""), config["GOOGLE_SANDBOX_CLIENT_SECRET"]):
        return oauth_error(401, "invalid_client", "The OAuth client was not found.")
    grant = form.get("grant_type")
    if grant == "authorization_code":
        with sandbox.lock:
            row = sandbox.codes.get(form.get("code", ""))
            if row is None or row["used"] or row["expires_at"] < time.time():
                return oauth_error(400, "invalid_grant", "Malformed auth code.")
            if row["redirect_uri"] != form.get("redirect_uri"):
                return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            row["used"] = True
        issued = sandbox.issue(row["email"])
        body = {"access_token": issued["access_token"], "expires_in": config["GOOGLE_SANDBOX_ACCESS_TOKEN_TTL"],
                "scope": SCOPE, "token_type": "Bearer"}
        if row["offline"]:
            body["refresh_token"] = issued["refresh_token"]
        return jsonify(body)
    if grant == "refresh_token":
        with sandbox.lock:
            grant_row = sandbox.refresh_tokens.get(form.get("refresh_token", ""))
        if grant_row is None or grant_row["revoked"]:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        issued = sandbox.issue(grant_row["email"], refresh_token=form["refresh_token"])
        return jsonify({"access_token": issued["access_token"], "expires_in": config["GOOGLE_SANDBOX_ACCESS_TOKEN_TTL"],
                        "scope": SCOPE, "token_type": "Bearer"})
    return oauth_error(400, "unsupported_grant_type", "Invalid grant_type: " + str(grant)[:40])


# -- API errors ----------------------------------------------------------------------------------------------------

def ads_error(http: int, status: str, message: str, errors: list[dict], stream: bool = False):
    failure = {"@type": f"type.googleapis.com/google.ads.googleads.{g.get('version', 'v26')}.errors.GoogleAdsFailure",
               "errors": errors, "requestId": uuid.uuid4().hex[:22]}
    body = {"error": {"code": http, "message": message, "status": status, "details": [failure]}}
    response = jsonify([body] if stream else body)
    response.status_code = http
    return response


def query_problem(problem: gaql.QueryProblem):
    return ads_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                     [{"errorCode": {"queryError": problem.reason}, "message": str(problem)}],
                     stream=request.path.endswith(":searchStream"))


def permission_denied(message: str, reason: str = "USER_PERMISSION_DENIED"):
    return ads_error(403, "PERMISSION_DENIED", "The caller does not have permission",
                     [{"errorCode": {"authorizationError": reason}, "message": message}],
                     stream=request.path.endswith(":searchStream"))


def quota_error(reason: str, delay: float, message: str):
    return ads_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).",
                     [{"errorCode": {"quotaError": reason}, "message": message,
                       "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER", "rateName": "Number of operations",
                                                         "retryDelay": f"{int(delay)}s"}}}],
                     stream=request.path.endswith(":searchStream"))


# -- API -------------------------------------------------------------------------------------------------------------

@bp.before_request
def guard():
    if request.blueprint != "google_ads_sandbox" or not request.path.startswith("/v"):
        return None
    sandbox = state()
    version = request.path.split("/")[1]
    sandbox.record({"method": request.method, "path": request.path,
                    "login_customer_id": request.headers.get("login-customer-id"),
                    "developer_token": request.headers.get("developer-token")})
    if version not in sandbox.config["GOOGLE_SANDBOX_VERSIONS"]:
        return Response(NOT_FOUND_PAGE, status=404, mimetype="text/html")
    g.version = version
    header = request.headers.get("Authorization", "")
    with sandbox.lock:
        token = sandbox.access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
        grant = sandbox.refresh_tokens.get(token["refresh_token"]) if token else None
    reason = None
    if token is None:
        reason = "OAUTH_TOKEN_INVALID"
    elif grant is None or grant["revoked"]:
        reason = "OAUTH_TOKEN_REVOKED"
    elif token["expires_at"] < time.time():
        reason = "OAUTH_TOKEN_EXPIRED"
    if reason:
        return ads_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 "
                         "access token, login cookie or other valid authentication credential.",
                         [{"errorCode": {"authenticationError": reason},
                           "message": "Authentication of the request failed."}],
                         stream=request.path.endswith(":searchStream"))
    g.email = token["email"]
    fault = sandbox.take_fault()
    if fault and fault["status"] == 500:
        return ads_error(500, "INTERNAL", "Internal error encountered.",
                         [{"errorCode": {"internalError": "INTERNAL_ERROR"},
                           "message": "An internal error has occurred."}],
                         stream=request.path.endswith(":searchStream"))
    if fault and fault["status"] == 429:
        return quota_error("RESOURCE_TEMPORARILY_EXHAUSTED", fault["retry_delay"],
                           "Too many requests. Retry in the time the details name.")
    wait = sandbox.spend_operation()
    if wait is not None:
        return quota_error("RESOURCE_EXHAUSTED", wait, "Too many requests: the daily operations quota is used up.")
    return None


@bp.get("/<version>/customers:listAccessibleCustomers")
def list_accessible_customers(version: str):
    with state().lock:
        reachable = sorted(state().users.get(g.email, set()))
    return jsonify({"resourceNames": [f"customers/{customer_id}" for customer_id in reachable]})


def accessible_customer(customer_id: str):
    """The customer to read, or the error answer the rules of access give."""
    sandbox = state()
    if not CUSTOMER_ID.match(customer_id):
        return None, ads_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                               [{"errorCode": {"requestError": "INVALID_CUSTOMER_ID"},
                                 "message": "Invalid customer ID."}], stream=request.path.endswith(":searchStream"))
    if sandbox.over_short_term_limit(customer_id):
        return None, quota_error("RESOURCE_TEMPORARILY_EXHAUSTED", sandbox.config["GOOGLE_SANDBOX_RETRY_DELAY_SECONDS"],
                                 "Too many requests in a short amount of time.")
    with sandbox.lock:
        direct = sandbox.users.get(g.email, set())
        customer = sandbox.customers.get(customer_id)
    login = (request.headers.get("login-customer-id") or "").replace("-", "")
    if login:
        if login not in direct or customer is None or not sandbox.under(login, customer_id):
            return None, permission_denied("User doesn't have permission to access customer.")
    elif customer is None or customer_id not in direct:
        return None, permission_denied(
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the "
            "manager's customer id must be set in the 'login-customer-id' header. See "
            "https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid")
    if customer["status"] != "ENABLED":
        return None, permission_denied("The customer account can't be accessed because it is not yet enabled or has "
                                       "been deactivated.", "CUSTOMER_NOT_ENABLED")
    return customer, None


def body_query(allowed_keys: set[str]):
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise gaql.QueryProblem("QUERY_ERROR", "The request body must be a JSON object with a query.")
    unknown = set(body) - allowed_keys
    if unknown:
        raise gaql.QueryProblem("QUERY_ERROR", f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}".')
    return body, gaql.parse(body.get("query"))


def flat_rows(query: gaql.Query, customer: dict) -> list[dict]:
    """Rows of the FROM resource as {field: value} (every field it knows), filtered by the WHERE clause."""
    sandbox = state()
    customer_values = {name: customer[key] if key else f"customers/{customer['id']}"
                       for name, (_, key) in CUSTOMER_FIELDS.items()}
    customer_values["customer.id"] = int(customer["id"])
    if query.resource == "customer":
        rows = [customer_values]
    elif query.resource == "customer_client":
        rows = []
        for client, level in (sandbox.descendants(customer["id"]) if customer["manager"] else [(customer, 0)]):
            rows.append({"customer_client.id": int(client["id"]),
                         "customer_client.client_customer": f"customers/{client['id']}",
                         "customer_client.descriptive_name": client["descriptive_name"],
                         "customer_client.currency_code": client["currency_code"],
                         "customer_client.time_zone": client["time_zone"], "customer_client.manager": client["manager"],
                         "customer_client.status": client["status"], "customer_client.level": level,
                         "customer_client.hidden": False,
                         "customer_client.resource_name": f"customers/{customer['id']}/customerClients/{client['id']}"})
    else:
        rows = campaign_rows(query, customer, customer_values)
    return [row for row in rows if gaql.matches(row, [condition for condition in query.conditions
                                                      if condition.field != "segments.date"])]


def campaign_rows(query: gaql.Query, customer: dict, customer_values: dict) -> list[dict]:
    sandbox = state()
    today = sandbox.today(customer["time_zone"])
    days = None
    if "segments.date" in query.fields or any(condition.field == "segments.date" for condition in query.conditions):
        days = gaql.date_range(query.conditions, today)
        if days is None:
            raise gaql.QueryProblem("EXPECTED_FILTERS_ON_DATE_RANGE",
                                    "Filters on date segments must define a finite date range.")
    rows = []
    seed = sandbox.config["GOOGLE_SANDBOX_SEED"]
    for campaign in sandbox.campaigns_of(customer["id"]):
        base = {**customer_values, "campaign.id": campaign["id"], "campaign.name": campaign["name"],
                "campaign.status": campaign["status"],
                "campaign.resource_name": f"customers/{customer['id']}/campaigns/{campaign['id']}"}
        if days is None:
            rows.append({**base, "metrics.cost_micros": 0, "metrics.impressions": 0, "metrics.clicks": 0})
            continue
        day = days[0]
        while day <= min(days[1], today):
            impressions, clicks, hundredths = daily_figures(seed, campaign["id"], day)
            if impressions:  # a day without impressions has no row when segmented by date
                rows.append({**base, "segments.date": day, "metrics.cost_micros": hundredths * 10_000,
                             "metrics.impressions": impressions, "metrics.clicks": clicks})
            day += timedelta(days=1)
    return rows


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def rendered(row: dict, fields: list[str]) -> dict:
    """A GoogleAdsRow as proto3 JSON: nested camelCase objects, int64 as strings, the resource names of the
    resources selected."""
    out: dict = {}
    for name in fields + [f"{name.split('.')[0]}.resource_name" for name in fields
                          if name.split(".")[0] not in ("metrics", "segments")]:
        resource, attribute = name.split(".", 1)
        kind = KNOWN_FIELDS[name][0]
        value = row.get(name)
        if kind == "int":
            value = str(value)
        elif kind == "date":
            value = value.isoformat()
        out.setdefault(camel(resource), {})[camel(attribute)] = value
    return out


def checked_query(query: gaql.Query) -> None:
    selectable = SELECTABLE.get(query.resource)
    if selectable is None:
        raise gaql.QueryProblem("BAD_RESOURCE_TYPE_IN_FROM_CLAUSE", f"Invalid resource in the FROM clause: "
                                                                    f"'{query.resource}'.")
    for name in query.fields + [condition.field for condition in query.conditions]:
        if name not in KNOWN_FIELDS:
            raise gaql.QueryProblem("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{name}'.")
        if name not in selectable:
            raise gaql.QueryProblem("PROHIBITED_FIELD_IN_SELECT_CLAUSE",
                                    f"The field '{name}' cannot be selected with resource '{query.resource}'.")


def run(customer_id: str, allowed_keys: set[str]):
    customer, problem = accessible_customer(customer_id)
    if problem:
        return None, None, problem
    try:
        body, query = body_query(allowed_keys)
        checked_query(query)
        rows = flat_rows(query, customer)
    except gaql.QueryProblem as failure:
        return None, None, query_problem(failure)
    if query.limit:
        rows = rows[:query.limit]
    return body, query, [rendered(row, query.fields) for row in rows]


@bp.post("/<version>/customers/<customer_id>/googleAds:searchStream")
def search_stream(version: str, customer_id: str):
    _, query, rows = run(customer_id, {"query", "summaryRowSetting"})
    if query is None:
        return rows
    size = state().config["GOOGLE_SANDBOX_BATCH_ROWS"]
    mask = ",".join(query.fields)
    request_id = uuid.uuid4().hex[:22]
    batches = [{"results": rows[start:start + size], "fieldMask": mask, "requestId": request_id}
               for start in range(0, len(rows), size)] or [{"fieldMask": mask, "requestId": request_id}]
    batches[-1]["queryResourceConsumption"] = str(len(rows) // 100 + 1)
    return jsonify(batches)


@bp.post("/<version>/customers/<customer_id>/googleAds:search")
def search(version: str, customer_id: str):
    body, query, rows = run(customer_id, {"query", "pageToken", "returnTotalResultsCount", "summaryRowSetting",
                                          "validateOnly", "searchSettings"})
    if query is None:
        return rows
    size = state().config["GOOGLE_SANDBOX_BATCH_ROWS"]
    token = body.get("pageToken") or "0"
    if not str(token).isdigit() or len(str(token)) > 12:
        return query_problem(gaql.QueryProblem("QUERY_ERROR", "Invalid page token."))
    start = int(token)
    page = {"results": rows[start:start + size], "fieldMask": ",".join(query.fields),
            "requestId": uuid.uuid4().hex[:22], "queryResourceConsumption": str(len(rows) // 100 + 1)}
    if start + size < len(rows):
        page["nextPageToken"] = str(start + size)
    if body.get("returnTotalResultsCount"):
        page["totalResultsCount"] = str(len(rows))
    return jsonify(page)
