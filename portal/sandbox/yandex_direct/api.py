"""Yandex Direct API v5 as the import uses it: Reports (`/json/v5/reports`), Clients, AgencyClients and
Campaigns (`get` only). Every call needs `Authorization: Bearer`; an agency acts for a client with `Client-Login`.

Reports (https://yandex.com/dev/direct/doc/en/reports/…): the ReportDefinition's required fields, TSV only,
CUSTOM_DATE with DateFrom/DateTo; headers processingMode (online|offline|auto), returnMoneyInMicros (absent:
micros rounded to 10 000; "false": two decimals), skipReportHeader / skipColumnHeader / skipReportSummary. An
offline report answers 201 (queued), then 202 while it is built, both with `retryIn` and `reportsInQueue`, then 200
with the TSV; the client polls by sending the same request again. Limits: 20 requests per 10 s and 5 offline
reports in the queue per user (error 9000 when full), Units points per call (error 152 when none are left).
Errors: `{"error": {"request_id", "error_code", "error_string", "error_detail"}}`.
"""
import hashlib
import json
import secrets
import time
from datetime import date, timedelta

from flask import Blueprint, Response, jsonify, request

from .oauth import sandbox
from .state import AGENCY, campaign_day

bp = Blueprint("yandex_api", __name__, url_prefix="/json/v5")

REPORT_FIELDS = ("Date", "CampaignId", "CampaignName", "Impressions", "Clicks", "Cost")
REQUIRED_REPORT_KEYS = ("SelectionCriteria", "FieldNames", "ReportName", "ReportType", "DateRangeType", "Format",
                        "IncludeVAT")
REPORT_TYPES = ("ACCOUNT_PERFORMANCE_REPORT", "CAMPAIGN_PERFORMANCE_REPORT", "ADGROUP_PERFORMANCE_REPORT",
                "AD_PERFORMANCE_REPORT", "CRITERIA_PERFORMANCE_REPORT", "CUSTOM_REPORT")
MAX_REPORT_DAYS = 3 * 366  # statistics reach back about three years
MAX_BODY_BYTES = 1_000_000


class ApiError(Exception):
    def __init__(self, status: int, code: int, string: str, detail: str = "", headers: dict | None = None):
        super().__init__(string)
        self.status, self.code, self.string, self.detail = status, code, string, detail
        self.headers = headers or {}


def error_response(error: ApiError) -> Response:
    request_id = secrets.token_hex(8)
    response = jsonify({"error": {"request_id": request_id, "error_code": error.code,
                                  "error_string": error.string, "error_detail": error.detail}})
    response.status_code = error.status
    response.headers["RequestId"] = request_id
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    return error_response(error)


def _log(status: int) -> None:
    state = sandbox()
    with state.lock:
        state.calls.append({"path": request.path, "status": status, "client_login": request.headers.get("Client-Login"),
                            "at": time.time()})
        del state.calls[:-2000]


@bp.after_request
def _record(response):
    _log(response.status_code)
    return response


def _body() -> dict:
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise ApiError(400, 8000, "Invalid request", "The request body is too large")
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, 8000, "Invalid request", "The request body is not valid JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise ApiError(400, 8000, "Invalid request", "The params object is missing")
    return body


def _caller() -> tuple[dict, dict]:
    """(the token's user, the advertiser acted for). Injected 500/502 faults answer here."""
    state = sandbox()
    with state.lock:
        if state.take_fault("http_500"):
            raise ApiError(500, 1000, "Internal server error", "Injected fault")
        if state.take_fault("http_502"):
            raise ApiError(502, 1002, "Operation error", "Processing timed out")
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        user = state.user_of(token) if token else None
        if user is None:
            raise ApiError(400, 53, "Authorization error",
                           "Invalid or expired OAuth token" if token else "No OAuth token in the Authorization header")
        client_login = request.headers.get("Client-Login", "").strip().lower()
        if user["Type"] == AGENCY:
            # AgencyClients is called without Client-Login; Clients without it describes the agency itself.
            if request.path.endswith("/agencyclients") or (request.path.endswith("/clients") and not client_login):
                return user, user
            if not client_login:
                raise ApiError(400, 8000, "Invalid request", "An agency must name the client in Client-Login")
            client = state.users.get(client_login)
            if client is None or client["agency"] != user["Login"]:
                raise ApiError(400, 54, "No rights", f"{client_login} is not a client of this agency")
            return user, client
        if client_login and client_login != user["Login"]:
            raise ApiError(400, 54, "No rights", f"No access to {client_login}")
        return user, user


def _units(user: dict, cost: int) -> str:
    state = sandbox()
    with state.lock:
        allowed, header = state.spend_units(user["Login"], cost)
    if not allowed:
        raise ApiError(400, 152, "Insufficient points", "The daily points limit is used up",
                       {"Units": header})
    return header


def _page(items: list, params: dict, key: str, fields: list[str]):
    page = params.get("Page") or {}
    try:
        limit, offset = int(page.get("Limit", 10000)), int(page.get("Offset", 0))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ApiError(400, 4000, "Invalid request parameters", "Page.Limit and Page.Offset must be numbers") from exc
    if limit < 1 or offset < 0:
        raise ApiError(400, 4000, "Invalid request parameters", "Page.Limit must be positive")
    chosen = items[offset:offset + limit]
    result = {key: [{name: item[name] for name in fields if name in item} for item in chosen]}
    if offset + limit < len(items):
        result["LimitedBy"] = offset + limit
    return result


def _field_names(params: dict, known: tuple[str, ...]) -> list[str]:
    names = params.get("FieldNames")
    if not isinstance(names, list) or not names or any(name not in known for name in names):
        raise ApiError(400, 8000, "Invalid request", f"FieldNames must list some of: {', '.join(known)}")
    return names


def _json_service(items_of, key: str, known: tuple[str, ...]):
    body = _body()
    if body.get("method") != "get":
        raise ApiError(400, 55, "Operation not found", "Only the get method is emulated")
    user, client = _caller()
    units = _units(user, int(sandbox().config["YD_CALL_UNITS"]))
    with sandbox().lock:
        items = items_of(user, client)
    response = jsonify({"result": _page(items, body["params"], key, _field_names(body["params"], known))})
    response.headers["Units"] = units
    response.headers["RequestId"] = secrets.token_hex(8)
    return response


CLIENT_FIELDS = ("Login", "ClientId", "ClientInfo", "Currency", "Type")


@bp.post("/clients")
def clients():
    return _json_service(lambda user, client: [client], "Clients", CLIENT_FIELDS)


@bp.post("/agencyclients")
def agency_clients():
    def listing(user, _client):
        if user["Type"] != AGENCY:
            raise ApiError(400, 54, "No rights", "AgencyClients is for agency accounts only")
        return sorted(sandbox().clients_of(user["Login"]), key=lambda item: item["Login"])
    return _json_service(listing, "Clients", CLIENT_FIELDS)


@bp.post("/campaigns")
def campaigns():
    return _json_service(lambda user, client: list(client["campaigns"]), "Campaigns", ("Id", "Name", "TimeZone"))


# -- Reports -------------------------------------------------------------------------------------------------------

def _report_definition(body: dict) -> tuple[dict, date, date, list[str]]:
    params = body["params"]
    missing = [key for key in REQUIRED_REPORT_KEYS if key not in params]
    if missing:
        raise ApiError(400, 8000, "Invalid request", f"Required field {missing[0]} is missing")
    if params["Format"] != "TSV":
        raise ApiError(400, 4000, "Invalid request parameters", "Format must be TSV")
    if params["IncludeVAT"] not in ("YES", "NO"):
        raise ApiError(400, 4000, "Invalid request parameters", "IncludeVAT must be YES or NO")
    if params.get("IncludeDiscount", "NO") not in ("YES", "NO"):
        raise ApiError(400, 4000, "Invalid request parameters", "IncludeDiscount must be YES or NO")
    if params["ReportType"] not in REPORT_TYPES:
        raise ApiError(400, 4000, "Invalid request parameters", "Unknown ReportType")
    if not isinstance(params["ReportName"], str) or not params["ReportName"].strip():
        raise ApiError(400, 4000, "Invalid request parameters", "ReportName must be a non-empty string")
    names = _field_names(params, REPORT_FIELDS)
    if params["DateRangeType"] != "CUSTOM_DATE":
        raise ApiError(400, 4000, "Invalid request parameters", "The sandbox builds CUSTOM_DATE reports only")
    criteria = params["SelectionCriteria"]
    if not isinstance(criteria, dict):
        raise ApiError(400, 8000, "Invalid request", "SelectionCriteria must be an object")
    try:
        first, last = date.fromisoformat(criteria["DateFrom"]), date.fromisoformat(criteria["DateTo"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(400, 4000, "Invalid request parameters",
                       "CUSTOM_DATE needs DateFrom and DateTo as YYYY-MM-DD") from exc
    if last < first or (last - first).days > MAX_REPORT_DAYS:
        raise ApiError(400, 4000, "Invalid request parameters", "DateTo must not precede DateFrom")
    return params, first, last, names


def _rows(client: dict, first: date, last: date, names: list[str], vat_percent: int, micros: bool) -> list[list]:
    rows = []
    day = first
    while day <= last:
        for campaign in client["campaigns"]:
            impressions, clicks, cost = campaign_day(client["Login"], campaign["Id"], day)
            if not impressions:
                continue
            cost = cost * (100 + vat_percent) // 100 // 10_000 * 10_000 if vat_percent else cost
            values = {"Date": day.isoformat(), "CampaignId": str(campaign["Id"]), "CampaignName": campaign["Name"],
                      "Impressions": str(impressions), "Clicks": str(clicks),
                      "Cost": str(cost) if micros else f"{cost / 1_000_000:.2f}"}
            rows.append([values[name] for name in names])
        day += timedelta(days=1)
    return rows


def _tsv(params: dict, rows: list[list], names: list[str]) -> str:
    headers = request.headers
    lines = []
    if headers.get("skipReportHeader", "").lower() != "true":
        criteria = params["SelectionCriteria"]
        lines.append(f'"{params["ReportName"]} ({criteria["DateFrom"]} - {criteria["DateTo"]})"')
    if headers.get("skipColumnHeader", "").lower() != "true":
        lines.append("\t".join(names))
    lines.extend("\t".join(row) for row in rows)
    if headers.get("skipReportSummary", "").lower() != "true":
        lines.append(sandbox().config["YD_SUMMARY_FORMAT"].format(count=len(rows)))
    return "\n".join(lines) + "\n"


def _offline_answer(status: int, report: dict, queued: int, units: str) -> Response:
    response = Response("", status=status)
    response.headers.update({"retryIn": str(sandbox().config["YD_RETRY_IN"]), "reportsInQueue": str(queued),
                             "RequestId": secrets.token_hex(8), "Units": units})
    return response


@bp.post("/reports")
def reports():
    body = _body()
    user, client = _caller()
    state = sandbox()
    config = state.config
    mode = request.headers.get("processingMode", "auto")
    if mode not in ("online", "offline", "auto"):
        raise ApiError(400, 8000, "Invalid request", "processingMode must be online, offline or auto")
    money = request.headers.get("returnMoneyInMicros", "true").lower()
    if money not in ("true", "false"):
        raise ApiError(400, 8000, "Invalid request", "returnMoneyInMicros must be true or false")
    params, first, last, names = _report_definition(body)
    with state.lock:
        if not state.take_report_slot(user["Login"]):
            raise ApiError(400, 56, "Request limit exceeded",
                           "No more than 20 Reports requests in 10 seconds; retry later", {"retryIn": "10"})
    units = _units(user, int(config["YD_REPORT_UNITS"]))
    fingerprint = hashlib.sha256(json.dumps([params, client["Login"], money], sort_keys=True).encode()).hexdigest()
    key = (client["Login"], params["ReportName"])
    now = time.time()
    with state.lock:
        for stale in [name for name, report in state.reports.items()
                      if report["created"] < now - float(config["YD_OFFLINE_KEEP_SECONDS"])]:
            del state.reports[stale]
        report = state.reports.get(key)
        if report is not None and report["fingerprint"] != fingerprint and config["YD_STRICT_REPORT_NAMES"]:
            raise ApiError(400, 4000, "Invalid request parameters",
                           "A report with this ReportName and other parameters exists; use another name")
        vat = int(config["YD_VAT_PERCENT"]) if params["IncludeVAT"] == "YES" else 0
        expected_rows = len(client["campaigns"]) * ((last - first).days + 1)
        offline = mode == "offline" or (mode == "auto" and expected_rows > int(config["YD_ONLINE_MAX_ROWS"]))
        if report is None and (offline or state.faults.get("stay_202", 0) > 0):
            queued = [r for r in state.reports.values() if r["user"] == user["Login"] and not r["fetched"]]
            if len(queued) >= int(config["YD_OFFLINE_QUEUE_LIMIT"]):
                raise ApiError(400, 9000, "Report queue limit exceeded",
                               "No more than 5 offline reports may wait in the queue", {"retryIn": "60"})
            extra_202 = state.faults.pop("stay_202", 0)
            state.reports[key] = {"user": user["Login"], "fingerprint": fingerprint, "created": now,
                                  "ready_at": now + float(config["YD_REPORT_BUILD_SECONDS"]),
                                  "extra_202": extra_202, "fetched": False}
            return _offline_answer(201, state.reports[key], len(queued) + 1, units)
        if report is not None and not report["fetched"]:
            queued = sum(1 for r in state.reports.values() if r["user"] == user["Login"] and not r["fetched"])
            if report["ready_at"] > now or report["extra_202"] > 0:
                if report["ready_at"] <= now:
                    report["extra_202"] -= 1
                return _offline_answer(202, report, queued, units)
            report["fetched"] = True
        elif report is None and mode == "online" and expected_rows > int(config["YD_ONLINE_MAX_ROWS"]):
            raise ApiError(400, 4000, "Invalid request parameters",
                           "The report is too large to build online; use processingMode auto or offline")
        rows = _rows(client, first, last, names, vat, money == "true")
    response = Response(_tsv(params, rows, names), status=200, content_type="text/tab-separated-values; charset=utf-8")
    response.headers.update({"RequestId": secrets.token_hex(8), "Units": units})
    return response
