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
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from portal.amocrm.api.errors import (
    AccountBlocked,
    AmoCRMError,
    BatchTooLarge,
    Forbidden,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)

MAX_COMPLEX_ITEMS = 50
MAX_PAGE_LIMIT = 250
# Ids per `filter[id][]` read. Each id costs ~30 bytes of request line (`filter%5Bid%5D%5B%5D=20000473&`): 250
# make ~7.5 KB, over the limits of common front servers (gunicorn 4 KB, nginx 8 KB by default), which answer 414.
# 100 keep the line near 3 KB whatever the ids' length.
MAX_IDS_PER_READ = 100
# Pages of 250 leads looked through, newest-updated first, for the ids an account without the filtering feature
# did not return: 20 pages are 5,000 recently changed leads; an id not among them is read on its own.
MAX_RECENT_PAGES = 20
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
READ_RETRIES = 2  # a GET that failed for a transient reason (timeout, 5xx) is tried this many more times
READ_RETRY_PAUSE = 0.25  # seconds before the first retry, doubled for the next


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


@dataclass
class LeadsById:
    """`get_leads_by_id`'s answer: {id: lead, or None when amoCRM has no such lead} for every id asked, and
    whether the account answered a `filter[id][]` read with leads not asked for (it ignores list filters)."""

    leads: dict[int, dict | None]
    filters_ignored: bool


class TokenProvider(Protocol):
    def access_token(self) -> str:
        """A usable access token (refreshed first when it is about to expire)."""

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        """amoCRM said 401 to `rejected_token`: refresh once (under the lock) and return the token to replay with."""

    # Optional: `account_base_url() -> str | None`, the account's address as the provider knows it now. The client
    # moves there after asking for a token and before replaying a 401 (a renamed account answers at a new host).


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
        # amoCRM's block is an nginx HTML page; a JSON problem is a refusal of this one call (missing rights).
        error_class = Forbidden if isinstance(body, dict) else AccountBlocked
        return error_class(message, status=status, body=body)
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
        """Send one API call; on 401 refresh the token once and replay; a GET that times out or gets a 5xx is tried
        READ_RETRIES more times. Returns parsed JSON, None for 204.

        `path` is relative to the account (`/api/v4/leads`) or an absolute URL on the same host (`_links`).
        """
        method = method.upper()
        for retry in range(READ_RETRIES + 1):
            try:
                return self._request_once(method, path, params=params, json=json)
            except (TransportError, ServerError):
                # A read changes nothing: a transient failure is retried at once (a long read such as the deals
                # list back to a window must not start over for one bad page). A write is never retried here.
                if method != "GET" or retry == READ_RETRIES:
                    raise
                time.sleep(READ_RETRY_PAUSE * 2 ** retry)
        raise AssertionError("unreachable")

    def _request_once(self, method: str, path: str, *, params=None, json=None) -> Any:
        token = self.tokens.access_token()
        self._follow_account()  # a refresh due now may have found the account at a new address
        response, body = self._send(method, path, token, params, json)
        if response.status_code == 401:
            token = self.tokens.refresh_after_unauthorized(token)
            self._follow_account()
            response, body = self._send(method, path, token, params, json)
        if response.status_code == 204:
            return None
        if 200 <= response.status_code < 300:
            if isinstance(body, str):
                raise AmoCRMError(f"amoCRM answered {method} {path} with a body that is not JSON",
                                  status=response.status_code, body=body)
            return body
        raise error_for(method, response, body)

    def _follow_account(self) -> None:
        """Take the account's current address from the token provider: the 401 may have been the old host of a
        renamed account, which the refresh found out (portal.amocrm.token_provider)."""
        current = getattr(self.tokens, "account_base_url", None)
        base = current() if callable(current) else None
        if base:
            self.base_url = base.rstrip("/")

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

    def create_unsorted_forms(self, items: list[dict]) -> list[dict]:
        """At most 50 Unsorted form items (amoCRM documents no maximum for this call: the complex call's is kept);
        the answer's `_embedded.unsorted` items, each with its uid, request_id and the ids of what it made."""
        if not 0 < len(items) <= MAX_COMPLEX_ITEMS:
            raise ValueError(f"create_unsorted_forms takes 1 to {MAX_COMPLEX_ITEMS} items, not {len(items)}")
        return _embedded(self.request("POST", "/api/v4/leads/unsorted/forms", json=items), "unsorted")

    def iter_unsorted_forms(self, *, pipeline_id: int | None = None) -> Iterator[dict]:
        """The form items waiting in Unsorted, newest first."""
        params: dict[str, Any] = {"limit": MAX_PAGE_LIMIT, "page": 1, "filter[category][]": "forms",
                                  "order[created_at]": "desc"}
        if pipeline_id:
            params["filter[pipeline_id]"] = int(pipeline_id)
        for page in self.pages("/api/v4/leads/unsorted", "unsorted", params):
            yield from page

    def get_lead(self, lead_id: int, with_: Sequence[str] = ()) -> dict | None:
        params = {"with": ",".join(with_)} if with_ else None
        return self.request("GET", f"/api/v4/leads/{int(lead_id)}", params=params)

    def get_leads_by_id(self, lead_ids: Iterable[int], *, changed_since: int | None = None,
                        filters_ignored: bool = False) -> LeadsById:
        """Every id asked, as amoCRM holds the lead now (None when it is deleted or unknown), and whether the
        account showed it ignores list filters.

        One `GET /api/v4/leads?filter[id][]=…` per MAX_IDS_PER_READ ids (a request line front servers accept).
        API filtering is not enabled on every account, and an unsupported filter is silently ignored: an unfiltered
        list comes back, told apart by leads that were not asked for. From then on (or at once, when the caller
        already knows: `filters_ignored`) the ids are looked for in the account's leads newest-updated first
        (`order[updated_at]=desc`, documented on every account), from the newest down to `changed_since` (unix
        seconds: the oldest change the caller is after), unless the unfiltered answer was already the whole list.
        Every item is checked against the ids asked, whichever list it came from; an id neither read found is
        read on its own (`GET …/leads/{id}`, 204 → None), so a lead older than the pages scanned is never missed.
        Each lead carries its contacts (`with=contacts`): a deal's main contact tells a customer's first sale from a
        repeat."""
        wanted = sorted({int(lead_id) for lead_id in lead_ids})
        wanted_set = set(wanted)
        found: dict[int, dict | None] = {}
        ignored = filters_ignored
        whole_list_seen = False
        for start in range(0, 0 if ignored else len(wanted), MAX_IDS_PER_READ):
            chunk = wanted[start:start + MAX_IDS_PER_READ]
            body = self.request("GET", "/api/v4/leads", params={"filter[id][]": chunk, "limit": MAX_PAGE_LIMIT,
                                                                 "with": "contacts"})
            asked = set(chunk)
            leads = _embedded(body, "leads")
            for lead in leads:
                lead_id = _lead_id(lead)
                if lead_id in wanted_set:
                    found[lead_id] = lead
                if lead_id not in asked:  # the filter was not applied: the other chunks would come back unfiltered
                    ignored = True
            if ignored:
                # an unfiltered answer short of a page, with no next one, was the account's every lead
                whole_list_seen = len(leads) < MAX_PAGE_LIMIT and _next_link(body) is None
                break
        missing = set(wanted) - set(found)
        if ignored and missing and not whole_list_seen:
            self._find_among_recently_updated(missing, found, changed_since)
        for lead_id in wanted:
            if lead_id not in found:
                found[lead_id] = self.get_lead(lead_id, with_=("contacts",))
        return LeadsById(found, filters_ignored=ignored)

    def _find_among_recently_updated(self, missing: set[int], found: dict[int, dict | None],
                                     changed_since: int | None) -> None:
        """Page the account's leads newest-updated first, moving each lead asked for from `missing` to `found`,
        until none is missing, a page ends before `changed_since`, or MAX_RECENT_PAGES pages (never more pages than
        the single reads they could save). `filter[updated_at][from]` goes along: an account that honours it
        answers fewer pages, one that ignores it loses nothing."""
        params: dict[str, Any] = {"limit": MAX_PAGE_LIMIT, "page": 1, "order[updated_at]": "desc", "with": "contacts"}
        if changed_since is not None:
            params["filter[updated_at][from]"] = int(changed_since)
        budget = min(MAX_RECENT_PAGES, len(missing))
        for pages_read, page in enumerate(self.pages("/api/v4/leads", "leads", params), start=1):
            for lead in page:
                lead_id = _lead_id(lead)
                if lead_id in missing:
                    missing.discard(lead_id)
                    found[lead_id] = lead
            if not missing or pages_read >= budget or _past_the_window(page, "updated_at", changed_since):
                return

    def iter_leads(self, *, updated_from: int | None = None, updated_to: int | None = None,
                   created_from: int | None = None, newest_first_by: str | None = None, query: str | None = None,
                   limit: int = MAX_PAGE_LIMIT, with_: Sequence[str] = ()) -> Iterator[dict]:
        """Every matching lead, page by page (following `_links.next`, stopping at a 204 or the last page).

        amoCRM applies list filters only on accounts with the filtering feature; an account without it silently
        answers the unfiltered list. So every item is checked here against the bounds given, and with
        `newest_first_by` ("created_at" or "updated_at": `order[…]=desc`, documented for every account) the read
        stops at the first item older than that field's lower bound: it never reads past the window, filtered
        by amoCRM or not. `query` is amoCRM's full-text search: neither exact nor instant, never a guarantee.
        """
        params: dict[str, Any] = {"limit": max(1, min(int(limit), MAX_PAGE_LIMIT)), "page": 1}
        bounds = {"updated_at": (updated_from, updated_to), "created_at": (created_from, None)}
        for name, (low, high) in bounds.items():
            if low is not None:
                params[f"filter[{name}][from]"] = int(low)
            if high is not None:
                params[f"filter[{name}][to]"] = int(high)
        if newest_first_by is not None:
            if newest_first_by not in bounds:
                raise ValueError(f"leads are ordered by created_at or updated_at, not {newest_first_by!r}")
            params[f"order[{newest_first_by}]"] = "desc"
        if query:
            params["query"] = query
        if with_:
            params["with"] = ",".join(with_)
        for page in self.pages("/api/v4/leads", "leads", params):
            yield from (lead for lead in page
                        if all(_within(lead.get(name), low, high) for name, (low, high) in bounds.items()))
            if newest_first_by is not None and _past_the_window(page, newest_first_by, bounds[newest_first_by][0]):
                return

    def iter_lead_custom_fields(self) -> Iterator[dict]:
        """The account's deal fields (amoCRM pages them by 50), tracking fields (UTM_*, GCLID…) included."""
        return self.iter_custom_fields("leads")

    def iter_custom_fields(self, entity: str) -> Iterator[dict]:
        """The account's custom fields of `entity` (leads, contacts, companies), page by page (50 a page)."""
        if entity not in ("leads", "contacts", "companies"):
            raise ValueError(f"no custom fields for {entity!r}")
        for page in self.pages(f"/api/v4/{entity}/custom_fields", "custom_fields", {"limit": 50, "page": 1}):
            yield from page

    def iter_deal_notes(self, deal_id: int, note_type: str = "common") -> Iterator[dict]:
        """`GET /api/v4/leads/{id}/notes?filter[note_type][]=…`: the deal's notes, page by page. Every item is
        re-checked by the caller: a filter an account does not apply is silently ignored."""
        params = {"limit": MAX_PAGE_LIMIT, "page": 1, "filter[note_type][]": note_type}
        for page in self.pages(f"/api/v4/leads/{int(deal_id)}/notes", "notes", params):
            yield from page

    def add_lead_notes(self, items: list[dict]) -> list[dict]:
        """`POST /api/v4/leads/notes`: `[{entity_id, note_type, params, request_id}]` → `_embedded.notes`
        `[{id, entity_id, request_id}]`."""
        if not 0 < len(items) <= MAX_PAGE_LIMIT:
            raise ValueError(f"add_lead_notes takes 1 to {MAX_PAGE_LIMIT} items, not {len(items)}")
        return _embedded(self.request("POST", "/api/v4/leads/notes", json=items), "notes")

    def pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[list[dict]]:
        """The `_embedded[key]` items of a list, one page at a time. A `_links.next` URL keeps what it says; the
        caller's parameters it leaves out (`with`, `limit`, filters, order) are added back, so page 2 asks for what
        page 1 asked for."""
        next_path: str | None = path
        page_params: Any = params
        while next_path:
            body = self.request("GET", next_path, params=page_params)
            if body is None:
                return
            yield _embedded(body, key)
            link = _next_link(body)
            if link is None:
                return
            next_path, page_params = _with_callers_params(link, params)

    def update_leads(self, items: list[dict]) -> list[dict]:
        body = self.request("PATCH", "/api/v4/leads", json=items)
        return list(_embedded(body, "leads")) if isinstance(body, dict) else (body or [])

    # -- contacts -------------------------------------------------------------------------------------

    def contact_pages(self, *, updated_from: int | None = None) -> Iterator[list[dict]]:
        """Every contact, 250 per page; with `updated_from`, those changed since, newest first (`order[updated_at]`),
        each re-checked (an account without the filtering feature answers every contact) and the read stopped at
        the window."""
        params: dict[str, Any] = {"limit": MAX_PAGE_LIMIT, "page": 1}
        if updated_from is not None:
            params.update({"filter[updated_at][from]": int(updated_from), "order[updated_at]": "desc"})
        for page in self.pages("/api/v4/contacts", "contacts", params):
            if updated_from is None:
                yield page
                continue
            yield [contact for contact in page if _within(contact.get("updated_at"), updated_from, None)]
            if _past_the_window(page, "updated_at", updated_from):
                return

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


def _with_callers_params(link: str, params: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """(path, query pairs) of a next-page link, with every caller parameter it omits added back (never `page`)."""
    parts = urlsplit(link)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _value in pairs}
    pairs += [(name, str(value)) for name, value in params.items() if name not in present and name != "page"]
    return parts.path, pairs


def _past_the_window(page: list[dict], field: str, low: int | None) -> bool:
    """True when a page asked for newest first ends before `low` and shows it really is newest first: never
    ascending, and descending at least once. An account that did not apply the order, or a page that cannot
    tell (all alike), is read on."""
    values = [item.get(field) for item in page]
    if low is None or len(values) < 2 or not all(isinstance(value, int) for value in values):
        return False
    steps = list(zip(values, values[1:], strict=False))
    descending = all(newer >= older for newer, older in steps) and any(newer > older for newer, older in steps)
    return descending and values[-1] < low


def _lead_id(lead: Any) -> int | None:
    lead_id = lead.get("id") if isinstance(lead, dict) else None
    return lead_id if isinstance(lead_id, int) and not isinstance(lead_id, bool) else None


def _within(value: Any, low: int | None, high: int | None) -> bool:
    """An item the caller's filter would have kept. A value that is not an integer is kept: the caller decides."""
    if not isinstance(value, int) or isinstance(value, bool):
        return True
    return (low is None or value >= low) and (high is None or value <= high)


def _next_link(body: dict) -> str | None:
    links = body.get("_links")
    nxt = links.get("next") if isinstance(links, dict) else None
    href = nxt.get("href") if isinstance(nxt, dict) else None
    return href if isinstance(href, str) and href else None
