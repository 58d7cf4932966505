"""Yandex Direct API v5 and Yandex ID OAuth, as a plain library (no Flask, no database).

Facts relied on (sources in docs/adplatforms.md): OAuth at oauth.yandex.ru (`/authorize`, `/token` with the
authorization_code and refresh_token grants); API calls carry `Authorization: Bearer` and, when an agency acts
for a client, `Client-Login`; Reports answer 200 with TSV, or 201/202 with `retryIn` while an offline report is
built, and are polled by sending the same request again; money comes in micros unless `returnMoneyInMicros:
false`; errors are `{"error": {"error_code", "error_string", "error_detail"}}`.
"""
import csv
import hashlib
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import requests

from portal.adplatforms.base import (
    AdAccountInfo,
    AdPlatformError,
    CampaignDay,
    RetryLater,
    TokenRevoked,
    TokenSet,
)

PLATFORM = "yandex_direct"
OAUTH_BASE = "https://oauth.yandex.ru"
API_BASE = "https://api.direct.yandex.com"
REPORT_FIELDS = ["Date", "CampaignId", "CampaignName", "Impressions", "Clicks", "Cost"]
MICROS = Decimal(1_000_000)
# Error codes (Yandex Direct "Errors" list): what each means for the import.
TOKEN_ERRORS = {53}  # the OAuth token is invalid or expired
TRANSIENT_ERRORS = {52, 1000, 1001, 1002}  # the authorization server or Direct failed: try again soon
LIMIT_ERRORS = {56, 506}  # request limits: try again after the window
UNITS_EXHAUSTED = 152  # no points left: they are refilled hourly
QUEUE_FULL = 9000  # five offline reports already wait
PAGE_LIMIT = 10000
DEFAULT_RETRY_SECONDS = 60.0


class YandexDirectClient:
    """One app's access to Yandex Direct. `report_wait_seconds` bounds how long one `campaign_days` call polls an
    offline report before it raises RetryLater; `include_vat` decides the report's IncludeVAT."""

    platform = PLATFORM

    def __init__(self, client_id: str, client_secret: str, *, oauth_base: str = OAUTH_BASE,
                 api_base: str = API_BASE, session: requests.Session | None = None, timeout: float = 30.0,
                 report_wait_seconds: float = 60.0, include_vat: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.oauth_base, self.api_base = oauth_base.rstrip("/"), api_base.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.report_wait_seconds = report_wait_seconds
        self.include_vat = include_vat
        self.sleep = sleep
        self.last_units: str | None = None  # the last "spent/remaining/daily" Units header

    # -- OAuth -----------------------------------------------------------------------------------------------

    def authorization_url(self, state: str, redirect_uri: str) -> str:
        return f"{self.oauth_base}/authorize?" + urlencode(
            {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri, "state": state})

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        return self._token({"grant_type": "authorization_code", "code": code}, revoked_on_grant_error=False)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise TokenRevoked("Yandex gave no refresh token; connect Yandex Direct again.")
        return self._token({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                           revoked_on_grant_error=True)

    def _token(self, form: dict, *, revoked_on_grant_error: bool) -> TokenSet:
        form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        try:
            response = self.session.post(f"{self.oauth_base}/token", data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryLater("Yandex ID could not be reached.", DEFAULT_RETRY_SECONDS) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 500:
            raise RetryLater(f"Yandex ID answered {response.status_code}.", DEFAULT_RETRY_SECONDS)
        if response.status_code != 200 or "access_token" not in payload:
            error = payload.get("error", "") if isinstance(payload, dict) else ""
            if error == "invalid_grant" and revoked_on_grant_error:
                raise TokenRevoked("Yandex revoked or expired the authorization; connect Yandex Direct again.")
            if error == "invalid_client":
                raise AdPlatformError("Yandex ID did not accept this portal's application keys "
                                      "(YANDEX_DIRECT_CLIENT_ID / _SECRET).")
            raise AdPlatformError(f"Yandex ID refused the authorization ({error or response.status_code}).")
        expires_in = payload.get("expires_in")
        expires_at = datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None
        return TokenSet(payload["access_token"], payload.get("refresh_token"), expires_at)

    # -- JSON services ---------------------------------------------------------------------------------------

    def _headers(self, tokens: TokenSet, client_login: str | None) -> dict:
        headers = {"Authorization": f"Bearer {tokens.access_token}", "Accept-Language": "en"}
        if client_login:
            headers["Client-Login"] = client_login
        return headers

    def _post(self, service: str, body: dict, headers: dict) -> requests.Response:
        try:
            response = self.session.post(f"{self.api_base}/json/v5/{service}", data=json.dumps(body),
                                         headers={**headers, "Content-Type": "application/json; charset=utf-8"},
                                         timeout=self.timeout)
        except requests.RequestException as exc:
            raise RetryLater("Yandex Direct could not be reached.", DEFAULT_RETRY_SECONDS) from exc
        self.last_units = response.headers.get("Units", self.last_units)
        return response

    def _get_all(self, service: str, key: str, field_names: list[str], tokens: TokenSet,
                 client_login: str | None) -> list[dict]:
        items, offset = [], 0
        while True:
            body = {"method": "get", "params": {"SelectionCriteria": {}, "FieldNames": field_names,
                                                "Page": {"Limit": PAGE_LIMIT, "Offset": offset}}}
            response = self._post(service, body, self._headers(tokens, client_login))
            payload = _json_or_error(response)
            result = payload.get("result") or {}
            items.extend(result.get(key) or [])
            if "LimitedBy" not in result:
                return items
            offset = int(result["LimitedBy"])

    def account_tokens(self, tokens: TokenSet, account: AdAccountInfo) -> TokenSet | None:
        """None: an agency's token reads its clients (with Client-Login)."""
        return None

    def accounts(self, tokens: TokenSet) -> list[AdAccountInfo]:
        """The user's own account, or an agency's clients (each reached with Client-Login = its login)."""
        fields = ["Login", "ClientInfo", "Currency", "Type"]
        own = self._get_all("clients", "Clients", fields, tokens, None)
        if own and own[0].get("Type") == "AGENCY":
            agency = own[0]["Login"]
            clients = self._get_all("agencyclients", "Clients", fields[:3], tokens, None)
            return [AdAccountInfo(item["Login"], item.get("ClientInfo") or item["Login"], item.get("Currency", ""),
                                  manager_id=agency) for item in clients]
        return [AdAccountInfo(item["Login"], item.get("ClientInfo") or item["Login"], item.get("Currency", ""))
                for item in own]

    def campaigns(self, tokens: TokenSet, account: AdAccountInfo) -> list[dict]:
        return self._get_all("campaigns", "Campaigns", ["Id", "Name"], tokens, _client_login(account))

    # -- Reports ---------------------------------------------------------------------------------------------

    def report_definition(self, first: date, last: date) -> dict:
        params = {"SelectionCriteria": {"DateFrom": first.isoformat(), "DateTo": last.isoformat()},
                  "FieldNames": REPORT_FIELDS, "ReportType": "CAMPAIGN_PERFORMANCE_REPORT",
                  "DateRangeType": "CUSTOM_DATE", "Format": "TSV",
                  "IncludeVAT": "YES" if self.include_vat else "NO", "IncludeDiscount": "NO"}
        # Yandex knows a report by its name (polling resends the same request): one name per set of parameters.
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
        return {"params": {**params, "ReportName": f"leadpath-{digest}"}}

    def campaign_days(self, tokens: TokenSet, account: AdAccountInfo, first: date, last: date) -> list[CampaignDay]:
        body = self.report_definition(first, last)
        headers = {**self._headers(tokens, _client_login(account)), "processingMode": "auto",
                   "returnMoneyInMicros": "true", "skipReportHeader": "true", "skipReportSummary": "true"}
        deadline = time.monotonic() + self.report_wait_seconds
        while True:
            response = self._post("reports", body, headers)
            if response.status_code == 200:
                return parse_report(response.content.decode("utf-8"), vat_included=self.include_vat)
            if response.status_code in (201, 202):
                retry_in = _seconds(response.headers.get("retryIn"), 5.0)
                if time.monotonic() + retry_in > deadline:
                    raise RetryLater("Yandex Direct is still building the report.", retry_in)
                self.sleep(retry_in)
                continue
            _json_or_error(response)
            raise AdPlatformError(f"Yandex Direct answered {response.status_code} to a report request.")


def _client_login(account: AdAccountInfo) -> str | None:
    """Client-Login goes with calls an agency makes for its client (and only then)."""
    return account.external_id if account.manager_id else None


def _seconds(text: str | None, default: float) -> float:
    try:
        return max(float(text), 0.0) if text is not None else default
    except ValueError:
        return default


def _json_or_error(response: requests.Response) -> dict:
    """The decoded JSON answer, or the typed error its error body or status says."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = int(error.get("error_code") or 0)
        text = f"{error.get('error_string', '')}: {error.get('error_detail', '')}".strip(": ")
        retry_in = _seconds(response.headers.get("retryIn"), 0)
        if code in TOKEN_ERRORS:
            raise TokenRevoked("Yandex Direct no longer accepts this authorization; connect it again.")
        if code == UNITS_EXHAUSTED:
            raise RetryLater(f"Yandex Direct points are used up ({text}); they are refilled hourly.", 3600.0)
        if code in LIMIT_ERRORS:
            raise RetryLater(f"Yandex Direct request limit ({text}).", retry_in or 10.0)
        if code == QUEUE_FULL:
            raise RetryLater(f"Yandex Direct report queue is full ({text}).", retry_in or 60.0)
        if code in TRANSIENT_ERRORS or response.status_code >= 500:
            raise RetryLater(f"Yandex Direct failed ({text}).", retry_in or DEFAULT_RETRY_SECONDS)
        raise AdPlatformError(f"Yandex Direct refused the request: error {code}, {text}.")
    if response.status_code >= 500:
        raise RetryLater(f"Yandex Direct answered {response.status_code}.", DEFAULT_RETRY_SECONDS)
    if response.status_code != 200 or not isinstance(payload, dict):
        raise AdPlatformError(f"Yandex Direct answered {response.status_code} with no readable body.")
    return payload


def parse_report(text: str, *, vat_included: bool) -> list[CampaignDay]:
    """A campaign report's TSV (column header on, report header and summary off; costs in micros) as
    CampaignDays. An empty numeric cell comes as "--"."""
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header != REPORT_FIELDS:
        raise AdPlatformError("Yandex Direct sent a report with unexpected columns.")
    days = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(REPORT_FIELDS):
            raise AdPlatformError("Yandex Direct sent a report row that cannot be read.")
        values = dict(zip(REPORT_FIELDS, row, strict=True))
        try:
            days.append(CampaignDay(
                day=date.fromisoformat(values["Date"]), campaign_id=values["CampaignId"],
                campaign_name=values["CampaignName"], cost=_number(values["Cost"]) / MICROS,
                vat_included=vat_included, impressions=int(_number(values["Impressions"])),
                clicks=int(_number(values["Clicks"]))))
        except (ValueError, ArithmeticError) as exc:
            raise AdPlatformError("Yandex Direct sent a report row that cannot be read.") from exc
    return days


def _number(cell: str) -> Decimal:
    return Decimal(0) if cell in ("--", "") else Decimal(cell)
