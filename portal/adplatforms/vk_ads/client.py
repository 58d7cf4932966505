"""`VKAdsClient`: VK Ads (ads.vk.com) OAuth, accounts and daily cost per campaign over `requests`.

    client = VKAdsClient(client_id="…", client_secret="…", session=requests.Session())
    tokens = client.exchange_code(code, redirect_uri)
    for account in client.accounts(tokens):
        days = client.campaign_days(tokens_for(account), account, date(2026, 7, 1), date(2026, 7, 31))

Tokens. An access token lives one day; `refresh()` gives a new one and **the old one dies at once**, so the
caller must serialise refreshes of one token set (a lock per ad account) and store the new set before any other
call uses it. The client keeps no token: every call uses the `TokenSet` it is given, so after a refresh it can
only be handed the new one. VK allows five tokens per (app, user); a sixth is refused with 403, which this client
reports as `TokenLimitReached` saying how to free the slots (`delete_user_tokens`).

Agencies. An agency's token cannot read its clients' campaigns. `accounts()` lists the clients (`manager_id` is the
agency); `agency_client_tokens()` obtains a client's own token (the extended agency-client-credentials grant, with
the agency's token) — once per client, to be stored with that ad account and refreshed like any other, because
each call of the grant takes one of the client's five token slots. `campaign_days()` is then called with the
client's tokens (`account_tokens()` does this for any account: None when the connection's tokens suffice).

Failures: `TokenRevoked` (401; `AccessTokenExpired`, its subclass, when a refresh cures it), `RetryLater` (429 past
the per-second waits, 5xx, timeouts), `AdPlatformError` (anything else, with VK's message). `requests` exceptions
never escape.
"""
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests

from portal.adplatforms.base import (
    AdAccountInfo,
    AdPlatformError,
    CampaignDay,
    RetryLater,
    TokenLimitReached,
    TokenRevoked,
    TokenSet,
)
from portal.adplatforms.vk_ads import facts
from portal.adplatforms.wire import TRANSIENT_RETRY_SECONDS, send

PER_SECOND_WAITS = 3  # a 429 of the per-second limit is waited out this many times within one call


class AccessTokenExpired(TokenRevoked):
    """VK said `expired_token`: this access token is past its day, and `refresh()` gives a working one."""


def token_set_from(body: Any, now: datetime) -> TokenSet:
    """VK's token answer as a TokenSet; `expires_in` comes as a string in some answers and a number in others."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise AdPlatformError("VK Ads answered the token request without an access token.")
    expires_at = None
    try:
        seconds = int(body.get("expires_in"))
        expires_at = now + timedelta(seconds=seconds)
    except (TypeError, ValueError):
        pass
    refresh_token = body.get("refresh_token")
    return TokenSet(access_token=body["access_token"],
                    refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
                    expires_at=expires_at)


def money(value: Any) -> Decimal:
    """A VK money value (a decimal string such as "23328.92"; a number is tolerated) as an exact Decimal."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise AdPlatformError(f"VK Ads sent a money value that is not a number: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise AdPlatformError("VK Ads sent a money value that is not a number.")
    return amount


def campaign_days_from_statistics(body: Any, names: Mapping[str, str]) -> list[CampaignDay]:
    """Rows of a `statistics/<object>/day.json` answer as CampaignDays (days with no shows, clicks or spend are
    left out). `names` maps campaign ids to names (the statistics carry none)."""
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise AdPlatformError("VK Ads answered the statistics request without `items`.")
    days = []
    for item in body["items"]:
        campaign_id = str(item.get("id")) if isinstance(item, dict) else None
        for row in (item.get("rows") or []) if campaign_id else []:
            base = row.get("base") or {}
            cost = money(base.get("spent", "0"))
            shows, clicks = int(base.get("shows") or 0), int(base.get("clicks") or 0)
            if not cost and not shows and not clicks:
                continue
            try:
                day = date.fromisoformat(row["date"])
            except (KeyError, TypeError, ValueError):
                raise AdPlatformError("VK Ads sent a statistics row without a valid date.") from None
            days.append(CampaignDay(day=day, campaign_id=campaign_id, campaign_name=names.get(campaign_id, ""),
                                    cost=cost, vat_included=False, impressions=shows, clicks=clicks))
    return days


def seconds_until_limit_resets(headers: Mapping[str, str], now: datetime) -> float:
    """How long a 429 asks us to wait, from the X-RateLimit-* headers: limits run over calendar periods, so an
    exhausted daily limit waits for Moscow's midnight, an hourly one for the next hour, a per-second one a second."""
    def exhausted(period: str) -> bool:
        value = headers.get(f"X-RateLimit-{period}-Remaining")
        try:
            return value is not None and int(value) <= 0
        except ValueError:
            return False

    moscow_now = now.astimezone(facts.MOSCOW)
    if exhausted("Daily"):
        midnight = (moscow_now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1.0, (midnight - moscow_now).total_seconds())
    if exhausted("Hourly"):
        next_hour = (moscow_now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        return max(1.0, (next_hour - moscow_now).total_seconds())
    return 1.0


def date_windows(first: date, last: date, days: int) -> Iterator[tuple[date, date]]:
    """[first, last] cut into consecutive windows of at most `days` days."""
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        yield start, end
        start = end + timedelta(days=1)


def error_message(body: Any) -> tuple[str | None, str | None]:
    """(code, message) of a VK error body, whichever of its shapes it has: {"error": {"code", "message"}} (resources
    and statistics), {"code", "message"} (tokens), {"error": "…", "error_description": "…"} (the token endpoint)."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        fields = error.get("fields")
        if isinstance(fields, dict) and fields:
            message = "; ".join(f"{name}: {(problem or {}).get('message')}" for name, problem in fields.items()
                                if isinstance(problem, dict)) or message
        return error.get("code"), message
    if isinstance(error, str):
        return error, body.get("error_description")
    return body.get("code"), body.get("message")


class VKAdsClient:
    """VK Ads for one app (client id and secret). Thread-safe as far as the given session is."""

    platform = facts.PLATFORM

    def __init__(self, *, client_id: str, client_secret: str, api_url: str = facts.API_URL,
                 oauth_url: str = facts.OAUTH_URL, session: requests.Session | None = None, timeout: float = 30.0,
                 scopes: tuple[str, ...] = facts.SCOPES, statistics_object: str = facts.STATISTICS_OBJECT,
                 days_per_request: int = facts.STATISTICS_DAYS_PER_REQUEST,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self.session = session or requests.Session()
        self.timeout = timeout
        self.scopes = scopes
        self.statistics_object = statistics_object
        self.days_per_request = days_per_request
        self.now = now
        self.sleep = sleep

    # -- OAuth ---------------------------------------------------------------------------------------------

    def authorization_url(self, state: str, redirect_uri: str) -> str:
        query = urlencode({"action": "oauth2", "response_type": "code", "client_id": self.client_id,
                           "state": state, "scope": ",".join(self.scopes), "redirect_uri": redirect_uri})
        return f"{self.oauth_url}?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """The code (valid one hour) for tokens. VK's grant takes no redirect_uri; the argument is the interface's."""
        return self._token({"grant_type": "authorization_code", "code": code, "client_id": self.client_id})

    def refresh(self, tokens: TokenSet) -> TokenSet:
        """A new access token; the one in `tokens` stops working the moment VK answers (see the module note)."""
        if not tokens.refresh_token:
            raise TokenRevoked("This VK Ads connection has no refresh token: connect the account again.")
        return self._token({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                            "client_id": self.client_id, "client_secret": self.client_secret})

    def agency_client_tokens(self, agency_tokens: TokenSet, client: AdAccountInfo) -> TokenSet:
        """Tokens of one of the agency's (or manager's) clients, obtained with the agency's token. Store them with
        that ad account: every call takes one of the client's five token slots."""
        return self._token({"grant_type": "agency_client_credentials", "client_id": self.client_id,
                            "client_secret": self.client_secret, "agency_client_id": client.external_id,
                            "access_token": agency_tokens.access_token})

    def delete_user_tokens(self, user_id: str) -> None:
        """Delete every token this app holds for a VK user: the documented way out of the five-token limit."""
        self._post_form(facts.TOKEN_DELETE_PATH, {"client_id": self.client_id, "client_secret": self.client_secret,
                                                  "user_id": user_id})

    def _token(self, form: dict) -> TokenSet:
        return token_set_from(self._post_form(facts.TOKEN_PATH, form), self.now())

    def _post_form(self, path: str, form: dict) -> Any:
        response, body = self._send("POST", path, data=form)
        if response.status_code < 300:
            return body
        code, message = error_message(body)
        if response.status_code == 403:
            raise TokenLimitReached(
                "VK Ads refused a new token: it keeps at most five tokens per app and user. Disconnect unused "
                "connections of this VK Ads user (or delete the app's tokens for it), then connect again."
                + (f" VK Ads said: {message}" if message else ""))
        if code == "invalid_client":
            raise AdPlatformError("VK Ads does not accept this app's client id and secret (VK_ADS_CLIENT_ID, "
                                  "VK_ADS_CLIENT_SECRET), or the app is blocked.")
        if response.status_code == 429:
            raise RetryLater("VK Ads limits requests: try again shortly.",
                             seconds_until_limit_resets(response.headers, self.now()))
        if response.status_code >= 500:
            raise RetryLater(f"VK Ads answered {response.status_code}; try again later.", TRANSIENT_RETRY_SECONDS)
        if code in {"invalid_grant", "invalid_token", "revoked_token", "invalid_user", "expired_token"} or \
                response.status_code == 401:
            raise TokenRevoked(f"VK Ads no longer accepts this connection ({code or response.status_code}): "
                               "connect the account again.")
        raise AdPlatformError(f"VK Ads refused the token request ({code or response.status_code})"
                              + (f": {message}" if message else "."))

    # -- reads -----------------------------------------------------------------------------------------------

    def accounts(self, tokens: TokenSet) -> list[AdAccountInfo]:
        """The advertiser itself, or, for an agency or manager, its active clients (they share its currency)."""
        user = self.user(tokens)
        currency = str(user.get("currency") or "")
        user_id = str(user["id"])
        types = set(user.get("types") or [])
        if "agency" in types:
            clients_path = facts.AGENCY_CLIENTS_PATH
        elif "manager" in types:
            clients_path = facts.MANAGER_CLIENTS_PATH
        else:
            return [AdAccountInfo(external_id=user_id, name=str(user.get("username") or user_id), currency=currency,
                                  timezone=facts.TIMEZONE)]
        accounts = []
        for item in self._paginate(tokens, clients_path, {}):
            client_user = item.get("user") or {}
            if client_user.get("id") is None or item.get("status", "active") != "active":
                continue
            info = client_user.get("additional_info") or {}
            accounts.append(AdAccountInfo(
                external_id=str(client_user["id"]),
                name=str(info.get("client_name") or client_user.get("username") or client_user["id"]),
                currency=currency, timezone=facts.TIMEZONE, manager_id=user_id))
        return accounts

    def user(self, tokens: TokenSet) -> dict:
        """The VK user the token belongs to (id, username, currency, types)."""
        user = self._get(tokens, facts.USER_PATH)
        if not isinstance(user, dict) or user.get("id") is None:
            raise AdPlatformError("VK Ads answered the user request without a user id.")
        return user

    def account_tokens(self, tokens: TokenSet, account: AdAccountInfo) -> TokenSet | None:
        """Tokens an account needs of its own, or None when the connection's tokens read it: an agency's or
        manager's client is read only with the client's tokens (`agency_client_tokens`; store them with the
        account, each call of the grant takes one of the client's five token slots)."""
        return self.agency_client_tokens(tokens, account) if account.manager_id else None

    def campaigns(self, tokens: TokenSet) -> dict[str, str]:
        """{campaign id: name} of every ad plan, deleted ones included (they spent money too)."""
        params = {"fields": "id,name,status", "_status__in": ",".join(facts.CAMPAIGN_STATUSES)}
        return {str(item["id"]): str(item.get("name") or "") for item in self._paginate(tokens, facts.AD_PLANS_PATH,
                                                                                         params)}

    def campaign_days(self, tokens: TokenSet, account: AdAccountInfo, first: date, last: date) -> list[CampaignDay]:
        """Cost per campaign and Moscow day. `tokens` are the account's own (an agency client's from
        `agency_client_tokens`). Days older than VK keeps (365) are left out rather than refused."""
        today = self.now().astimezone(facts.MOSCOW).date()
        first = max(first, today - timedelta(days=facts.STATISTICS_DAYS_BACK))
        last = min(last, today)
        if first > last:
            return []
        # An agency's token reads the agency's own (empty) cabinet, not the client's: that would import no cost
        # without a word, so the token's owner is checked first.
        owner = str(self.user(tokens)["id"])
        if owner != account.external_id:
            raise AdPlatformError(f"These VK Ads tokens belong to user {owner}, not to account "
                                  f"{account.external_id}: read an agency's client with the client's own tokens.")
        names = self.campaigns(tokens)
        ids = list(names)
        path = facts.STATISTICS_PATH.format(object=self.statistics_object)
        days: list[CampaignDay] = []
        for start in range(0, len(ids), facts.STATISTICS_IDS_MAX):
            chunk = ids[start:start + facts.STATISTICS_IDS_MAX]
            for window_first, window_last in date_windows(first, last, self.days_per_request):
                body = self._get(tokens, path, {"id": ",".join(chunk), "date_from": window_first.isoformat(),
                                                "date_to": window_last.isoformat(), "metrics": "base"})
                days.extend(campaign_days_from_statistics(body, names))
        return days

    def _paginate(self, tokens: TokenSet, path: str, params: dict) -> Iterator[dict]:
        offset = 0
        for _ in range(facts.LIST_PAGES_MAX):
            body = self._get(tokens, path, {**params, "limit": facts.LIST_LIMIT_MAX, "offset": offset})
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise AdPlatformError(f"VK Ads answered {path} without `items`.")
            yield from (item for item in items if isinstance(item, dict))
            offset += len(items)
            count = body.get("count")
            if not items or (isinstance(count, int) and offset >= count):
                return
        raise AdPlatformError(f"VK Ads kept answering {path} with more pages than any account has.")

    # -- the one way out -------------------------------------------------------------------------------------

    def _get(self, tokens: TokenSet, path: str, params: dict | None = None) -> Any:
        for attempt in range(PER_SECOND_WAITS + 1):
            response, body = self._send("GET", path, params=params,
                                        headers={"Authorization": f"Bearer {tokens.access_token}"})
            if response.status_code == 429:
                wait = seconds_until_limit_resets(response.headers, self.now())
                if wait <= 1.0 and attempt < PER_SECOND_WAITS:
                    self.sleep(wait)  # the per-second limit: the next second is allowed again
                    continue
                raise RetryLater("VK Ads limits requests per second, hour and day: the import continues later.",
                                 wait)
            break
        if response.status_code < 300:
            if isinstance(body, str):
                raise AdPlatformError(f"VK Ads answered {path} with a body that is not JSON.")
            return body
        raise self._error(response, body, path)

    def _error(self, response: requests.Response, body: Any, path: str) -> AdPlatformError:
        status = response.status_code
        code, message = error_message(body)
        if status == 401:
            if code == facts.EXPIRED_TOKEN_CODE:
                return AccessTokenExpired("The VK Ads access token has expired: refresh it.")
            return TokenRevoked(f"VK Ads no longer accepts this connection ({code or 'unauthorized'}): "
                                "connect the account again.")
        if status >= 500:
            return RetryLater(f"VK Ads answered {status} to {path}; try again later.", TRANSIENT_RETRY_SECONDS)
        if status == 403:
            return AdPlatformError("VK Ads denies this connection access to "
                                   f"{path} ({code or 'access denied'}): check the rights granted to the app.")
        return AdPlatformError(f"VK Ads refused {path} ({code or status})" + (f": {message}" if message else "."))

    def _send(self, method: str, path: str, **kwargs) -> tuple[requests.Response, Any]:
        return send(self.session, method, self.api_url + path, self.timeout, "VK Ads", **kwargs)


def client_from_config(config: Mapping, session: requests.Session | None = None) -> VKAdsClient:
    """The client the app's settings describe (VK_ADS_* keys of config.py)."""
    return VKAdsClient(client_id=config.get("VK_ADS_CLIENT_ID") or "",
                       client_secret=config.get("VK_ADS_CLIENT_SECRET") or "",
                       api_url=config.get("VK_ADS_API_URL") or facts.API_URL,
                       oauth_url=config.get("VK_ADS_OAUTH_URL") or facts.OAUTH_URL,
                       timeout=float(config.get("VK_ADS_TIMEOUT_SECONDS") or 30),
                       session=session)
