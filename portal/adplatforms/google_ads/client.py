"""`GoogleAdsClient`: Google Ads API (REST) OAuth, accessible customers and daily cost per campaign over `requests`.

    client = GoogleAdsClient(client_id="…", client_secret="…", session=requests.Session())
    tokens = client.exchange_code(code, redirect_uri)
    for account in client.accounts(tokens):
        days = client.campaign_days(tokens, account, date(2026, 7, 1), date(2026, 7, 31))

Tokens. Google's access token lives an hour; `refresh()` asks for a new one with the refresh token, which stays
the same (a refresh answer carries none, so the old one is kept). Google does not kill the previous access token
on refresh, but the caller should still refresh one account at a time and store the result.

Accounts. `customers:listAccessibleCustomers` names the customers the user reaches directly; each is read with
GAQL on `customer`. A manager (MCC) carries no cost itself: its client accounts, at every level, come from
`customer_client` read through the manager, and every later call for them sends `login-customer-id: <manager>`
(`AdAccountInfo.manager_id`). An account reached both directly and through a manager is listed once, directly.

Cost. One `googleAds:searchStream` per account and period; the answer is a JSON array of batches (10,000 rows
each), int64 values are strings, money is in micros of the account's currency.

Failures: `TokenRevoked` (401 / UNAUTHENTICATED, `invalid_grant` on refresh), `RetryLater` (429 /
RESOURCE_EXHAUSTED with the quota's retryDelay, 5xx, timeouts), `AdPlatformError` (anything else, with Google's
message). `requests` exceptions never escape.
"""
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
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
from portal.adplatforms.google_ads import facts
from portal.adplatforms.wire import TRANSIENT_RETRY_SECONDS, send

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
CUSTOMER_ID = re.compile(r"^\d{10}$")


def customer_id_of(resource_name: str) -> str:
    """'customers/1234567890' → '1234567890' (ids are 10 digits, no hyphens)."""
    customer_id = resource_name.rpartition("/")[2].replace("-", "")
    if not CUSTOMER_ID.match(customer_id):
        raise AdPlatformError(f"Google Ads named a customer that is not a 10-digit id: {resource_name[:40]!r}")
    return customer_id


def micros_to_decimal(value: Any) -> Decimal:
    """An int64 micros value (a string in JSON, e.g. "118400000") as exact currency units (Decimal("118.4"))."""
    try:
        micros = int(str(value))
    except (TypeError, ValueError):
        raise AdPlatformError(f"Google Ads sent a money value that is not whole micros: {str(value)[:40]!r}") from None
    return Decimal(micros) / facts.MICROS_PER_UNIT  # exact: an int64 has at most 19 digits


def seconds_of_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON ("30s", "1.500s") as seconds; None when it is not one."""
    match = DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def rows_of_stream(body: Any) -> list[dict]:
    """Every row of a searchStream answer (a JSON array of batches). A batch that is an error (the stream broke
    after it started) raises that error."""
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise AdPlatformError("Google Ads answered the report without a list of batches.")
    rows = []
    for batch in body:
        if not isinstance(batch, dict):
            continue
        if "error" in batch:
            raise error_of(200, batch)
        rows.extend(row for row in batch.get("results") or [] if isinstance(row, dict))
    return rows


def campaign_days_from_rows(rows: Iterable[dict]) -> list[CampaignDay]:
    """Rows of the cost query as CampaignDays (rows with no cost, impressions or clicks are left out). Google's cost
    is taken before tax: the API reports what the campaigns spent, tax is added on the invoice."""
    days = []
    for row in rows:
        campaign, metrics, segments = row.get("campaign") or {}, row.get("metrics") or {}, row.get("segments") or {}
        cost = micros_to_decimal(metrics.get("costMicros", "0"))
        impressions, clicks = int(metrics.get("impressions") or 0), int(metrics.get("clicks") or 0)
        if not cost and not impressions and not clicks:
            continue
        try:
            day = date.fromisoformat(segments["date"])
        except (KeyError, TypeError, ValueError):
            raise AdPlatformError("Google Ads sent a report row without a valid date.") from None
        if campaign.get("id") is None:
            raise AdPlatformError("Google Ads sent a report row without a campaign id.")
        days.append(CampaignDay(day=day, campaign_id=str(campaign["id"]), campaign_name=str(campaign.get("name") or ""),
                                cost=cost, vat_included=False, impressions=impressions, clicks=clicks))
    return days


def failures_of(error: Mapping) -> list[dict]:
    """The GoogleAdsError entries of an error's GoogleAdsFailure details."""
    failures = []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("GoogleAdsFailure"):
            failures.extend(entry for entry in detail.get("errors") or [] if isinstance(entry, dict))
    return failures


def error_of(http_status: int, body: Any) -> AdPlatformError:
    """The typed error for a REST error body {"error": {code, message, status, details: [GoogleAdsFailure]}}."""
    if isinstance(body, list):  # searchStream wraps an error raised at the start in its array too
        body = next((item for item in body if isinstance(item, dict) and "error" in item), {})
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status") or "")
    code = error.get("code") if isinstance(error.get("code"), int) else http_status
    failures = failures_of(error)
    message = next((entry.get("message") for entry in failures if entry.get("message")), None) or error.get("message")
    reasons = [f"{kind}={value}" for entry in failures for kind, value in (entry.get("errorCode") or {}).items()]
    described = f"Google Ads answered {status or code}" + (f" ({', '.join(reasons)})" if reasons else "") + \
        (f": {message}" if message else ".")
    if code == 401 or status == "UNAUTHENTICATED":
        return TokenRevoked(described + " Connect the Google Ads account again if refreshing the token does not help.")
    if code == 429 or status == "RESOURCE_EXHAUSTED" or any("quotaError" in (entry.get("errorCode") or {})
                                                           for entry in failures):
        delays = [seconds_of_duration(((entry.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay"))
                  for entry in failures]
        delay = max((value for value in delays if value is not None), default=facts.DEFAULT_QUOTA_RETRY_SECONDS)
        return RetryLater(described, delay)
    if code >= 500:
        return RetryLater(described, TRANSIENT_RETRY_SECONDS)
    return AdPlatformError(described)


def token_set_from(body: Any, now: datetime, previous_refresh_token: str | None = None) -> TokenSet:
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise AdPlatformError("Google answered the token request without an access token.")
    try:
        expires_at = now + timedelta(seconds=int(body.get("expires_in")))
    except (TypeError, ValueError):
        expires_at = None
    return TokenSet(access_token=body["access_token"],
                    refresh_token=body.get("refresh_token") or previous_refresh_token, expires_at=expires_at)


class GoogleAdsClient:
    """The Google Ads API for one OAuth client. Thread-safe as far as the given session is."""

    platform = facts.PLATFORM

    def __init__(self, *, client_id: str, client_secret: str, api_url: str = facts.API_URL,
                 oauth_url: str = facts.OAUTH_URL, token_url: str = facts.TOKEN_URL,
                 api_version: str = facts.API_VERSION, developer_token: str | None = None,
                 session: requests.Session | None = None, timeout: float = 60.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self.token_url = token_url
        self.api_version = api_version
        self.developer_token = developer_token
        self.session = session or requests.Session()
        self.timeout = timeout
        self.now = now

    # -- OAuth ---------------------------------------------------------------------------------------------

    def authorization_url(self, state: str, redirect_uri: str) -> str:
        # offline + consent: Google returns a refresh token only then (and again on every consent).
        query = urlencode({"client_id": self.client_id, "redirect_uri": redirect_uri, "response_type": "code",
                           "scope": facts.SCOPE, "access_type": "offline", "prompt": "consent", "state": state})
        return f"{self.oauth_url}?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                            "client_id": self.client_id, "client_secret": self.client_secret}, None)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise TokenRevoked("This Google Ads connection has no refresh token: connect the account again.")
        return self._token({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                            "client_id": self.client_id, "client_secret": self.client_secret}, tokens.refresh_token)

    def _token(self, form: dict, previous_refresh_token: str | None) -> TokenSet:
        response, body = self._send("POST", self.token_url, data=form)
        if response.status_code < 300:
            return token_set_from(body, self.now(), previous_refresh_token)
        code = body.get("error") if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        if response.status_code >= 500:
            raise RetryLater(f"Google answered {response.status_code} to the token request.", TRANSIENT_RETRY_SECONDS)
        if code == "invalid_grant":
            raise TokenRevoked("Google no longer accepts this connection (the grant was revoked or has expired): "
                               "connect the Google Ads account again.")
        raise AdPlatformError(f"Google refused the token request ({code or response.status_code})"
                              + (f": {description}" if description else "."))

    # -- reads -----------------------------------------------------------------------------------------------

    def accessible_customer_ids(self, tokens: TokenSet) -> list[str]:
        body = self._request("GET", facts.LIST_ACCESSIBLE_PATH.format(version=self.api_version), tokens)
        names = body.get("resourceNames") if isinstance(body, dict) else None
        return [customer_id_of(name) for name in names or [] if isinstance(name, str)]

    def accounts(self, tokens: TokenSet) -> list[AdAccountInfo]:
        """Every account with cost the token reaches. A customer that refuses to be read is skipped (a cancelled or
        not yet enabled account answers PERMISSION_DENIED); when every one refuses, the last refusal is raised, so
        a problem of the whole connection (an unapproved project, say) is never an empty list."""
        direct: dict[str, AdAccountInfo] = {}
        managed: dict[str, AdAccountInfo] = {}
        refusal: AdPlatformError | None = None
        for customer_id in self.accessible_customer_ids(tokens):
            try:
                rows = self.search_stream(tokens, customer_id, facts.CUSTOMER_QUERY)
            except (TokenRevoked, RetryLater):
                raise
            except AdPlatformError as error:
                refusal = error
                continue
            customer = (rows[0].get("customer") or {}) if rows else {}
            if not customer.get("manager"):
                direct[customer_id] = AdAccountInfo(
                    external_id=customer_id, name=str(customer.get("descriptiveName") or customer_id),
                    currency=str(customer.get("currencyCode") or ""), timezone=customer.get("timeZone"))
                continue
            try:
                clients = self.search_stream(tokens, customer_id, facts.CUSTOMER_CLIENT_QUERY,
                                             manager_id=customer_id)
            except (TokenRevoked, RetryLater):
                raise
            except AdPlatformError as error:
                refusal = error  # a manager this user may not list: its clients are not reachable through it
                continue
            for row in clients:
                client = row.get("customerClient") or {}
                client_id = str(client.get("id") or "")
                if not CUSTOMER_ID.match(client_id) or client.get("manager") or client_id in managed:
                    continue
                if client.get("status", "ENABLED") != "ENABLED":
                    continue  # cancelled, suspended or closed: reading it answers CUSTOMER_NOT_ENABLED
                managed[client_id] = AdAccountInfo(
                    external_id=client_id, name=str(client.get("descriptiveName") or client_id),
                    currency=str(client.get("currencyCode") or ""), timezone=client.get("timeZone"),
                    manager_id=customer_id)
        if not direct and not managed and refusal is not None:
            raise refusal
        return list(direct.values()) + [account for key, account in managed.items() if key not in direct]

    def account_tokens(self, tokens: TokenSet, account: AdAccountInfo) -> TokenSet | None:
        """None: one Google connection reads every account it reaches (managers' clients with login-customer-id)."""
        return None

    def campaign_days(self, tokens: TokenSet, account: AdAccountInfo, first: date, last: date) -> list[CampaignDay]:
        """Cost per campaign and day of the account's time zone, from one searchStream."""
        query = facts.COST_QUERY.format(first=first.isoformat(), last=last.isoformat())
        return campaign_days_from_rows(self.search_stream(tokens, account.external_id, query,
                                                          manager_id=account.manager_id))

    def search_stream(self, tokens: TokenSet, customer_id: str, query: str, *, manager_id: str | None = None
                      ) -> list[dict]:
        path = facts.SEARCH_STREAM_PATH.format(version=self.api_version, customer_id=customer_id)
        return rows_of_stream(self._request("POST", path, tokens, json={"query": query}, manager_id=manager_id))

    # -- the one way out -------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, tokens: TokenSet, *, json: Any = None,
                 manager_id: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {tokens.access_token}"}
        if self.developer_token:
            headers["developer-token"] = self.developer_token
        if manager_id:
            headers["login-customer-id"] = manager_id
        response, body = self._send(method, self.api_url + path, headers=headers, json=json)
        if response.status_code >= 300:
            raise error_of(response.status_code, body)
        if isinstance(body, str):
            raise AdPlatformError(f"Google Ads answered {path} with a body that is not JSON.")
        return body

    def _send(self, method: str, url: str, **kwargs) -> tuple[requests.Response, Any]:
        return send(self.session, method, url, self.timeout, "Google Ads", **kwargs)


def client_from_config(config: Mapping, session: requests.Session | None = None) -> GoogleAdsClient:
    """The client the app's settings describe (GOOGLE_ADS_* keys of config.py)."""
    return GoogleAdsClient(client_id=config.get("GOOGLE_ADS_CLIENT_ID") or "",
                           client_secret=config.get("GOOGLE_ADS_CLIENT_SECRET") or "",
                           api_url=config.get("GOOGLE_ADS_API_URL") or facts.API_URL,
                           oauth_url=config.get("GOOGLE_ADS_OAUTH_URL") or facts.OAUTH_URL,
                           token_url=config.get("GOOGLE_ADS_TOKEN_URL") or facts.TOKEN_URL,
                           api_version=config.get("GOOGLE_ADS_API_VERSION") or facts.API_VERSION,
                           developer_token=config.get("GOOGLE_ADS_DEVELOPER_TOKEN") or None,
                           timeout=float(config.get("GOOGLE_ADS_TIMEOUT_SECONDS") or 60),
                           session=session)
