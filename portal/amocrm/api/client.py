"""`AmoCRMClient`: amoCRM API v4 over `requests`, with typed errors, one 401 refresh-and-replay, and a record
of every HTTP call for the sync log.

    client = AmoCRMClient("https://example.amocrm.ru", tokens, before_request=limiter.wait, on_call=log)
    for lead in client.iter_leads(updated_from=1704900000):
        ...

Answers: parsed JSON, `None` for 204 (amoCRM's "empty list / not found / past the last page").
Failures: the errors of `portal.amocrm.api.errors`; `requests` exceptions never escape.
"""
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from portal.amocrm.api.errors import (
    AccountBlocked,
    AmoCRMError,
    BatchTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)

MAX_COMPLEX_ITEMS = 50
MAX_PAGE_LIMIT = 250
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class CallRecord:
    """One HTTP call, handed to `on_call` after it ends (success or not). Bodies are as sent and received:
    the receiver masks them before storing."""

    method: str
    path: str
    status: int | None
    duration_ms: int
    request_json: Any
    response_body: Any
    error: str | None


class TokenProvider(Protocol):
    def access_token(self) -> str:
        """A usable access token (refreshed first when it is about to expire)."""

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        """amoCRM said 401 to `rejected_token`: refresh once (under the lock) and return the token to replay with."""


def decode_body(response: requests.Response) -> Any:
    """JSON when the body is JSON, its text otherwise (amoCRM's nginx pages are HTML), None when empty."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def retry_after_of(response: requests.Response, body: Any) -> float | None:
    candidates = [body.get("retry_after") if isinstance(body, dict) else None, response.headers.get("Retry-After")]
    for value in candidates:
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


def flatten_validation_errors(body: Any) -> list[dict]:
    """amoCRM's `validation-errors` (per request_id, each with a list of errors) as one flat list."""
    flat = []
    entries = body.get("validation-errors") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        for problem in entry.get("errors") or []:
            if isinstance(problem, dict):
                flat.append({"request_id": entry.get("request_id"), "code": problem.get("code"),
                             "path": problem.get("path"), "detail": problem.get("detail")})
    return flat


def error_for(method: str, response: requests.Response, body: Any) -> AmoCRMError:
    """The typed error for a non-2xx answer (401 is handled by the caller)."""
    status = response.status_code
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    message = f"amoCRM answered {status} to {method} {urlsplit(response.url).path}" + (f": {detail}" if detail else "")
    if status == 429:
        return RateLimited(message, status=status, body=body, retry_after=retry_after_of(response, body))
    if status == 403:
        return AccountBlocked(message, status=status, body=body)
    if status == 401:
        return Unauthorized(message, status=status, body=body)
    if status == 400 and isinstance(body, dict) and "validation-errors" in body:
        return ValidationFailed(message, status=status, body=body, errors=flatten_validation_errors(body))
    if status == 504:
        return BatchTooLarge(message, status=status, body=body)
    if status >= 500:
        return ServerError(message, status=status, body=body)
    return AmoCRMError(message, status=status, body=body)


class AmoCRMClient:
    """One amoCRM account. Thread-safe as far as the given `requests.Session` is (one per thread is safest)."""

    def __init__(self, base_url: str, tokens: TokenProvider, *, session: requests.Session | None = None,
                 timeout: float = 15.0, before_request: Callable[[], None] | None = None,
                 on_call: Callable[[CallRecord], None] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.session = session or requests.Session()
        self.timeout = timeout
        self.before_request = before_request
        self.on_call = on_call

    # -- the one way out -------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params=None, json=None) -> Any:
        """Send one API call; on 401 refresh the token once and replay. Returns parsed JSON, None for 204.

        `path` is relative to the account (`/api/v4/leads`) or an absolute URL on the same host (`_links`).
        """
        method = method.upper()
        token = self.tokens.access_token()
        response, body = self._send(method, path, token, params, json)
        if response.status_code == 401:
            token = self.tokens.refresh_after_unauthorized(token)
            response, body = self._send(method, path, token, params, json)
        if response.status_code == 204:
            return None
        if 200 <= response.status_code < 300:
            if isinstance(body, str):
                raise AmoCRMError(f"amoCRM answered {method} {path} with a body that is not JSON",
                                  status=response.status_code, body=body)
            return body
        raise error_for(method, response, body)

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            # A `_links` URL: keep its path and query but never its host, so the token goes nowhere else.
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def _send(self, method: str, path: str, token: str, params, json) -> tuple[requests.Response, Any]:
        url = self._url(path)
        if self.before_request is not None:
            self.before_request()
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            response = self.session.request(method, url, params=params, json=json, headers=headers,
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            error = TransportError(f"{exc.__class__.__name__} on {method} {urlsplit(url).path}",
                                   ambiguous=method in WRITE_METHODS and _may_have_arrived(exc))
            self._record(method, url, None, started, json, None, str(error))
            raise error from exc
        body = decode_body(response)
        failed = None if response.status_code < 400 else f"HTTP {response.status_code}"
        self._record(method, url, response.status_code, started, json, body, failed)
        return response, body

    def _record(self, method, url, status, started, request_json, response_body, error) -> None:
        if self.on_call is None:
            return
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.on_call(CallRecord(method=method, path=path, status=status,
                                duration_ms=int((time.monotonic() - started) * 1000),
                                request_json=request_json, response_body=response_body, error=error))

    # -- account and pipelines -------------------------------------------------------------------------

    def get_account(self) -> dict:
        return self.request("GET", "/api/v4/account", params={"with": "datetime_settings"})

    def get_pipelines(self) -> list[dict]:
        body = self.request("GET", "/api/v4/leads/pipelines")
        return list(_embedded(body, "pipelines"))

    # -- leads ----------------------------------------------------------------------------------------

    def create_leads_complex(self, items: list[dict]) -> list[dict]:
        """At most 50 leads (each with its contact); amoCRM answers a bare array with request_id per item."""
        if not 0 < len(items) <= MAX_COMPLEX_ITEMS:
            raise ValueError(f"create_leads_complex takes 1 to {MAX_COMPLEX_ITEMS} items, not {len(items)}")
        body = self.request("POST", "/api/v4/leads/complex", json=items)
        return body if isinstance(body, list) else []

    def get_lead(self, lead_id: int, with_: Sequence[str] = ()) -> dict | None:
        params = {"with": ",".join(with_)} if with_ else None
        return self.request("GET", f"/api/v4/leads/{int(lead_id)}", params=params)

    def get_leads_by_id(self, lead_ids: Iterable[int]) -> dict[int, dict | None]:
        """{id: the lead as amoCRM holds it now, or None when it is deleted or unknown}, for every id asked.

        One `GET /api/v4/leads?filter[id][]=…` per MAX_PAGE_LIMIT ids. API filtering is not enabled on every
        account, and an unsupported filter is silently ignored (an unfiltered list comes back): so only the ids
        asked for are taken from the answer, and an id missing from it is read on its own (`GET …/leads/{id}`,
        204 → None)."""
        wanted = sorted({int(lead_id) for lead_id in lead_ids})
        found: dict[int, dict | None] = {}
        for start in range(0, len(wanted), MAX_PAGE_LIMIT):
            chunk = wanted[start:start + MAX_PAGE_LIMIT]
            body = self.request("GET", "/api/v4/leads", params={"filter[id][]": chunk, "limit": MAX_PAGE_LIMIT})
            asked = set(chunk)
            for lead in _embedded(body, "leads"):
                lead_id = lead.get("id")
                if isinstance(lead_id, int) and not isinstance(lead_id, bool) and lead_id in asked:
                    found[lead_id] = lead
        for lead_id in wanted:
            if lead_id not in found:
                found[lead_id] = self.get_lead(lead_id)
        return found

    def iter_leads(self, *, updated_from: int | None = None, updated_to: int | None = None,
                   query: str | None = None, limit: int = MAX_PAGE_LIMIT, with_: Sequence[str] = ()) -> Iterator[dict]:
        """Every matching lead, page by page (following `_links.next`, stopping at a 204 or the last page)."""
        params: dict[str, Any] = {"limit": max(1, min(int(limit), MAX_PAGE_LIMIT)), "page": 1}
        if updated_from is not None:
            params["filter[updated_at][from]"] = int(updated_from)
        if updated_to is not None:
            params["filter[updated_at][to]"] = int(updated_to)
        if query:
            params["query"] = query
        if with_:
            params["with"] = ",".join(with_)
        next_path: str | None = "/api/v4/leads"
        while next_path:
            body = self.request("GET", next_path, params=params)
            if body is None:
                return
            yield from _embedded(body, "leads")
            next_path = _next_link(body)
            params = None  # the next link carries the query

    def update_leads(self, items: list[dict]) -> list[dict]:
        body = self.request("PATCH", "/api/v4/leads", json=items)
        return list(_embedded(body, "leads")) if isinstance(body, dict) else (body or [])

    # -- contacts -------------------------------------------------------------------------------------

    def search_contacts(self, query: str) -> list[dict]:
        """amoCRM's fuzzy search: check a hit really has the phone / e-mail before reusing it."""
        body = self.request("GET", "/api/v4/contacts", params={"query": query})
        return list(_embedded(body, "contacts"))

    # -- webhooks -------------------------------------------------------------------------------------

    def list_webhooks(self) -> list[dict]:
        return list(_embedded(self.request("GET", "/api/v4/webhooks"), "webhooks"))

    def subscribe_webhook(self, destination: str, settings: Sequence[str]) -> dict:
        """Subscribe (or update: re-posting a destination replaces its settings and re-enables it)."""
        return self.request("POST", "/api/v4/webhooks", json={"destination": destination, "settings": list(settings),
                                                                "sort": 10})

    def unsubscribe_webhook(self, destination: str) -> None:
        self.request("DELETE", "/api/v4/webhooks", json={"destination": destination})


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the request surely never reached amoCRM (connect refused or timed out, TLS failed)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return not isinstance(reason, NewConnectionError)
    return True


def _embedded(body: Any, key: str) -> list[dict]:
    if not isinstance(body, dict):
        return []
    items = (body.get("_embedded") or {}).get(key) if isinstance(body.get("_embedded"), dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _next_link(body: dict) -> str | None:
    links = body.get("_links")
    nxt = links.get("next") if isinstance(links, dict) else None
    href = nxt.get("href") if isinstance(nxt, dict) else None
    return href if isinstance(href, str) and href else None
