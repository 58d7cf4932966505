"""Rate limits, the temporary block and injected faults for ``/api/v4/*`` (faults never for ``/oauth*`` or
``/_sandbox/*``).

Sustained excess blocks the caller, as amoCRM does ("requests from your IP address will be restricted", Kommo
limitations; an nginx 403 page on every call, ``/oauth2/access_token`` included, PHP SDK #434, #563): once a
caller address has had ``SANDBOX_BLOCK_AFTER_429S`` 429s within ``SANDBOX_BLOCK_WINDOW`` seconds, every call
from it answers the HTML 403 for ``SANDBOX_BLOCK_SECONDS``. The ``block`` fault forces the same page.

Order of checks for every API call: the block (403 nginx page) → bearer token (401) → token buckets, per
integration (``rate_limit_per_sec`` fault or ``SANDBOX_RATE_LIMIT_PER_SEC``) and per account
(``SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC``), 429 as JSON ``retry_after`` or, with ``html_429``, an nginx page →
``latency_ms`` → ``http_500_rate`` → ``timeout_rate`` (sleeps ``timeout_seconds``, then 504) → the view →
``drop_after_commit_rate`` (the write is kept, the client gets a 502 page). ``paths`` (a list of API paths, e.g.
``["/api/v4/leads/notes"]``) limits the 500s, timeouts and drops to calls to exactly those paths.
"""

import random
import time

from flask import Response, jsonify, request

NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {text}</title></head>\r\n<body>\r\n<center><h1>{code} {text}</h1>"
    "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def nginx_page(code: int, text: str) -> Response:
    return Response(NGINX_PAGE.format(code=code, text=text), status=code, mimetype="text/html")


def problem(status: int, title: str, detail: str, **extra) -> Response:
    body = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def take_token(state, key: str, rate: float) -> bool:
    """Token bucket holding at most ``rate`` tokens, refilled at ``rate`` per second. Caller holds the
    lock."""
    moment = time.monotonic()
    tokens, last = state.buckets.get(key, (rate, moment))
    tokens = min(rate, tokens + (moment - last) * rate)
    if tokens < 1:
        state.buckets[key] = (tokens, moment)
        return False
    state.buckets[key] = (tokens - 1, moment)
    return True


def blocked(state, caller: str) -> bool:
    with state.lock:
        return bool(state.faults["block"]) or state.blocked_until.get(caller, 0) > time.monotonic()


def block_page(state) -> Response:
    state.count("http_403")
    return nginx_page(403, "Forbidden")


def note_excess(state, caller: str) -> None:
    """Remember a 429 for ``caller``; enough of them within the window start a block. Caller holds the lock."""
    moment = time.monotonic()
    window = float(state.config["SANDBOX_BLOCK_WINDOW"])
    recent = [at for at in state.excess.get(caller, []) if at > moment - window] + [moment]
    state.excess[caller] = recent
    if len(recent) >= int(state.config["SANDBOX_BLOCK_AFTER_429S"]):
        state.blocked_until[caller] = moment + float(state.config["SANDBOX_BLOCK_SECONDS"])
        state.excess[caller] = []
        state.count("blocks")


def rate_limited(state, client_id: str, account_id: int, caller: str) -> Response | None:
    with state.lock:
        per_integration = state.faults["rate_limit_per_sec"] or state.config["SANDBOX_RATE_LIMIT_PER_SEC"]
        per_account = state.config["SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC"]
        allowed = take_token(
            state, f"integration:{client_id}:{account_id}", float(per_integration)
        ) and take_token(state, f"account:{account_id}", float(per_account))
        if allowed:
            return None
        state.count("http_429")
        note_excess(state, caller)
        html = state.faults["html_429"]
    if html:
        return nginx_page(429, "Too Many Requests")
    return problem(429, "Too Many Requests", "Too many requests, slow down", retry_after=1)


def aimed_here(faults: dict) -> bool:
    """The injected 500s, timeouts and drops apply to this call (every call, or only the ``paths`` named)."""
    return not faults["paths"] or request.path in faults["paths"]


def before_view(state) -> Response | None:
    """Latency, 500s and timeouts; runs after authentication and rate limiting."""
    faults = dict(state.faults)
    if faults["latency_ms"]:
        time.sleep(faults["latency_ms"] / 1000)
    if not aimed_here(faults):
        return None
    if faults["http_500_rate"] and random.random() < faults["http_500_rate"]:
        state.count("http_500")
        return problem(500, "Internal Server Error", "Injected fault")
    if faults["timeout_rate"] and random.random() < faults["timeout_rate"]:
        state.count("timeouts")
        time.sleep(faults["timeout_seconds"])
        return nginx_page(504, "Gateway Time-out")
    return None


def after_write(state, response: Response) -> Response:
    rate = state.faults["drop_after_commit_rate"]
    if rate and aimed_here(state.faults) and response.status_code < 300 and random.random() < rate:
        state.count("drops_after_commit")
        return nginx_page(502, "Bad Gateway")
    return response
