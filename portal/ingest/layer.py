"""The ingest layer: a WSGI wrapper around the Flask app that answers the hot public endpoints itself.

For a request that does little work of its own (read a body, one INSERT, one Redis call), Flask's per-request
machinery (request context and session, URL matching, every before/after hook of the portal: CSRF, logins, the
limiter, the input guard) costs more CPU than the work. So the endpoints that take bursts from machines and other
sites are declared here as `Endpoint`s, a path pattern and per method the handler that answers it; every other
request (and a method an endpoint leaves to the portal: `PORTAL`) goes on to Flask untouched.

What the portal's hooks and error handlers do for each of its answers, the layer does for each of these, with the
same functions: the request id and the access log line (portal.log_context), the security headers (portal.security),
400 for a query string nothing can store, the JSON error shape and 503 with Retry-After while the database is
unavailable (portal.errors), and a logged 500 for anything unexpected. It also answers 405 (with Allow) for a
method nobody serves, and for an endpoint with `Cors` the preflight and the CORS headers of every answer
(Access-Control-Allow-Origin as the handler or the preflight's `vouch` decides: `*` unless they say otherwise).

A handler runs in an app context, takes the app, werkzeug's request and the path's <values>, and returns a `Reply`
(`json_reply`) or raises `Refusal` for a 4xx; it may let werkzeug's HTTP errors and database errors propagate.
"""
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus

from flask import Flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request

from portal.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_MESSAGE,
    UNEXPECTED_MESSAGE,
    database_unavailable,
    error_body,
    log_database_unavailable,
    log_unexpected,
)
from portal.log_context import log_request, start_request
from portal.security import UNSTORABLE_QUERY_MESSAGE, security_headers, unstorable_query

Headers = list[tuple[str, str]]
JSON_TYPE = ("Content-Type", "application/json")
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # json.dumps makes one per call


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)  # besides Content-Length and the layer's own
    # On an endpoint with `Cors`: the Access-Control-Allow-Origin of this answer, None for none (the page that
    # asked may not read it). "*" by default: an answer that tells nothing about a workspace's data.
    allow_origin: str | None = "*"


def json_reply(status: int, document: dict, retry_after: int | None = None, allow_origin: str | None = "*") -> Reply:
    headers = [JSON_TYPE] if retry_after is None else [JSON_TYPE, ("Retry-After", str(retry_after))]
    return Reply(status, _ENCODER.encode(document).encode(), headers, allow_origin)


def error_reply(status: int, message: str, retry_after: int | None = None, allow_origin: str | None = "*",
                **extra) -> Reply:
    """The portal's one JSON error shape (portal.errors.error_body)."""
    return json_reply(status, error_body(status, message, **extra), retry_after, allow_origin)


class Refusal(Exception):
    """A handler's error answer (a 4xx), decided on the way: raised, and answered as JSON by the layer.
    `allow_origin` as on `Reply`."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, *,
                 allow_origin: str | None = "*", **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after, self.extra = status, message, retry_after, extra
        self.allow_origin = allow_origin


Handler = Callable[..., Reply]  # handler(app, request, **path_values) -> Reply
PORTAL = object()  # in place of a handler: the Flask portal answers this method on this path


Vouch = Callable[[Flask, Request], str | None]  # vouch(app, preflight request) -> its Access-Control-Allow-Origin


@dataclass(frozen=True)
class Cors:
    """Pages on other sites may call the endpoint: the layer answers the preflight and puts the CORS headers on
    every answer, errors included. Which origin may read an answer is the handler's to say (`Reply.allow_origin`,
    `Refusal(allow_origin=…)`); the preflight's, `vouch`'s (in an app context), else `*`. No answer allows
    credentials."""

    allow_headers: str  # the request headers a page may send
    max_age: int = 86400  # seconds a browser may keep the preflight's answer
    vouch: Vouch | None = None


@dataclass(frozen=True)
class Endpoint:
    pattern: str  # "/api/leads", "/webhooks/amocrm/<public_id>/<secret>": a <name> is one path segment
    methods: dict[str, Handler | object]  # method → handler, or PORTAL
    cors: Cors | None = None
    wrong_method: str = MethodNotAllowed.description  # the 405's message


class _Route:
    """An endpoint prepared for matching and for its fixed answers (the preflight, the 405)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.methods = endpoint.methods
        self.cors = endpoint.cors
        parts = re.split(r"<(\w+)>", endpoint.pattern)  # literal, name, literal, name, …, literal
        self.prefix = parts[0]
        self.regex = None if len(parts) == 1 else re.compile("".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)" for index, part in enumerate(parts)))
        served = sorted(method for method, handler in self.methods.items() if handler is not PORTAL)
        allowed = set(self.methods) | ({"OPTIONS"} if self.cors else set())
        self.method_not_allowed = error_reply(405, endpoint.wrong_method)
        self.method_not_allowed.headers.append(("Allow", ", ".join(sorted(allowed))))
        self.preflight = None if self.cors is None else Reply(204, b"", [
            ("Access-Control-Allow-Methods", ", ".join([*served, "OPTIONS"])),
            ("Access-Control-Allow-Headers", self.cors.allow_headers),
            ("Access-Control-Max-Age", str(self.cors.max_age))])
        self.vouched_preflight = (_preflight_of(self.preflight, self.cors.vouch)
                                  if self.cors is not None and self.cors.vouch is not None else None)


class IngestLayer:
    """The WSGI callable: answers its endpoints, hands every other request to `wrapped` (the Flask app's)."""

    def __init__(self, app: Flask, wrapped, endpoints: Iterable[Endpoint]) -> None:
        self.app = app
        self.wrapped = wrapped
        routes = [(endpoint.pattern, _Route(endpoint)) for endpoint in endpoints]
        self.exact = {pattern: route for pattern, route in routes if route.regex is None}
        self.patterns = [route for _pattern, route in routes if route.regex is not None]

    def match(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        for route in self.patterns:
            if path.startswith(route.prefix) and (found := route.regex.fullmatch(path)):
                # WSGI gives the path's bytes as latin-1; the portal reads them as UTF-8, as Flask does.
                return route, {name: _as_utf8(value) for name, value in found.groupdict().items()}
        return None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        matched = self.match(path)
        if matched is None:
            return self.wrapped(environ, start_response)
        route, values = matched
        method = environ.get("REQUEST_METHOD", "")
        handler = route.methods.get(method)
        if handler is PORTAL:
            return self.wrapped(environ, start_response)
        started = time.perf_counter()
        request_id = start_request(environ.get("HTTP_X_REQUEST_ID", ""))
        if handler is not None:
            reply = self._run(handler, Request(environ), values, method, path)
        elif method == "OPTIONS" and route.preflight is not None:
            reply = route.preflight
            if route.vouched_preflight is not None:
                reply = self._run(route.vouched_preflight, Request(environ), {}, method, path)
        else:
            reply = route.method_not_allowed
        headers = [*reply.headers, ("X-Request-ID", request_id)]
        if reply.status != 204:  # a 204 has no body, and no Content-Length either (RFC 9110)
            headers.append(("Content-Length", str(len(reply.body))))
        if route.cors:
            if reply.allow_origin is not None:
                headers.append(("Access-Control-Allow-Origin", reply.allow_origin))
            headers += [("Access-Control-Expose-Headers", "Retry-After"), ("Vary", "Origin")]
        start_response(STATUS_LINES[reply.status], [*headers, *security_headers(self.app.config)])
        log_request(method, _as_utf8(path), reply.status, started)
        return [reply.body]

    def _run(self, handler: Handler, request: Request, values: dict[str, str], method: str, path: str) -> Reply:
        request.max_content_length = self.app.config["MAX_CONTENT_LENGTH"]  # as Flask's request reads it
        try:
            if unstorable_query(request.query_string):  # as portal.security refuses it on every Flask route
                raise Refusal(400, UNSTORABLE_QUERY_MESSAGE)
            with self.app.app_context():
                return handler(self.app, request, **values)
        except Refusal as refusal:
            return error_reply(refusal.status, refusal.message, refusal.retry_after, refusal.allow_origin,
                               **refusal.extra)
        except HTTPException as error:  # werkzeug's own refusals: a body over MAX_CONTENT_LENGTH, cut short, …
            return error_reply(error.code or 400, error.description or error.name)
        except Exception as error:  # noqa: BLE001 - every other error is answered here, as Flask's handlers do
            if database_unavailable(error):
                log_database_unavailable(method, _as_utf8(path), error)
                return error_reply(503, UNAVAILABLE_MESSAGE, RETRY_AFTER_SECONDS)
            log_unexpected(method, _as_utf8(path), error)
            return error_reply(500, UNEXPECTED_MESSAGE)


def _preflight_of(preflight: Reply, vouch: Vouch) -> Handler:
    """The route's preflight answer with the origin `vouch` allows, run as a handler (its errors answered alike)."""
    return lambda app, request: replace(preflight, allow_origin=vouch(app, request))


def _as_utf8(wsgi_text: str) -> str:
    return wsgi_text if wsgi_text.isascii() else wsgi_text.encode("latin-1").decode("utf-8", "replace")
