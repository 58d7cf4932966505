"""`POST /api/leads` and its CORS preflight (and a 405 for PUT, DELETE, …), served beneath Flask's request
machinery.

The intake is the one public endpoint that must take bursts of thousands of requests a second, and for it Flask's
per-request work (the request context and session, URL matching, every before/after hook of the portal: CSRF,
logins, the limiter, the input guard) cost more CPU than the lead itself. `LeadEndpoint` wraps the app's WSGI
callable and answers these two requests itself, with werkzeug's request object in an app context; every other
request (GET /api/leads of the reports API included) goes on to Flask.

What the portal's hooks do for every response is done here too: the request id and the request log line
(portal.log_context), the security headers (portal.security), the one JSON error shape (portal.errors), 503 when
PostgreSQL is unreachable and a logged 500 for anything unexpected.
"""
import json
import logging
import time
from http import HTTPStatus

from flask import Flask
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from portal.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_MESSAGE,
    UNEXPECTED_MESSAGE,
    error_body,
    is_connection_error,
)
from portal.intake.services import (
    WorkspaceNotFound,
    accept_lead,
    check_rate_limits,
    find_workspace,
    origin_allowed,
)
from portal.intake.submission import (
    IDEMPOTENCY_HEADER,
    WORKSPACE_HEADER,
    BodyError,
    SubmissionInvalid,
    read_document,
    validate,
    workspace_public_id,
)
from portal.log_context import new_request_id, request_id_var, workspace_id_var
from portal.security import UNSTORABLE_QUERY_MESSAGE, security_headers, unstorable_query

PATH = "/api/leads"
ACCEPTED_MESSAGE = "Thank you! Your request has been received."
JSON_TYPE = ("Content-Type", "application/json")
ALLOWED_METHODS = "GET, HEAD, OPTIONS, POST"  # GET and HEAD: the reports API's lead list
PREFLIGHT_HEADERS = [("Access-Control-Allow-Methods", "POST, OPTIONS"),
                     ("Access-Control-Allow-Headers", f"Content-Type, {IDEMPOTENCY_HEADER}, {WORKSPACE_HEADER}"),
                     ("Access-Control-Max-Age", "86400")]  # any origin may ask: the POST checks the origin
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # json.dumps makes one per call
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_LIMIT_NAMES = {"ip": "address", "workspace": "workspace"}

request_log = logging.getLogger("portal.request")
error_log = logging.getLogger("portal.errors")


class Answer(Exception):
    """A response decided on the way (an error, a refusal): raised, and turned into JSON by the endpoint."""

    def __init__(self, status: int, message: str, retry_after: int | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after, self.extra = status, message, retry_after, extra


class LeadEndpoint:
    def __init__(self, app: Flask, wrapped) -> None:
        self.app = app
        self.wrapped = wrapped

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        if environ.get("PATH_INFO") != PATH or method in ("GET", "HEAD"):
            return self.wrapped(environ, start_response)
        started = time.perf_counter()
        request = Request(environ)
        request_id = new_request_id(request.headers.get("X-Request-ID", ""))
        request_id_var.set(request_id)
        workspace_id_var.set("-")
        if method == "POST":
            with self.app.app_context():
                status, body, headers = self._submit(request)
        elif method == "OPTIONS":
            status, body, headers = 204, b"", PREFLIGHT_HEADERS
        else:
            status, body, headers = _json(405, error_body(405, "Send leads with POST."))
            headers.append(("Allow", ALLOWED_METHODS))
        if status != 204:  # a 204 has no body, and no Content-Length either
            headers = [*headers, ("Content-Length", str(len(body)))]
        start_response(STATUS_LINES[status], [
            *headers,
            ("Access-Control-Allow-Origin", request.headers.get("Origin") or "*"),
            ("Access-Control-Expose-Headers", "Retry-After"), ("Vary", "Origin"), ("X-Request-ID", request_id),
            *security_headers(self.app.config)])
        if request_log.isEnabledFor(logging.INFO):
            request_log.info("%s %s %s %.1fms", method, PATH, status, (time.perf_counter() - started) * 1000)
        return [body]

    def _submit(self, request: Request) -> tuple[int, bytes, list[tuple[str, str]]]:
        """201 new, 200 replayed idempotency key, a 4xx JSON error otherwise (503 while PostgreSQL is down)."""
        try:
            lead_id, created = self._accept(request)
        except Answer as answer:
            return _json(answer.status, error_body(answer.status, answer.message, **answer.extra),
                         answer.retry_after)
        except HTTPException as error:  # werkzeug's own refusals (a body cut short: 400)
            return _json(error.code or 400, error_body(error.code or 400, error.description or error.name))
        except DBAPIError as error:
            if not (error.connection_invalidated or is_connection_error(error)):
                return self._unexpected(error)
            error_log.warning("database unavailable on POST %s: %s", PATH,
                              error.orig.__class__.__name__ if error.orig else error.__class__.__name__)
            return _json(503, error_body(503, UNAVAILABLE_MESSAGE), RETRY_AFTER_SECONDS)
        except Exception as error:  # noqa: BLE001 - a bug: logged, and answered like Flask's 500
            return self._unexpected(error)
        return _json(201 if created else 200, {"success": True, "leadId": lead_id, "message": ACCEPTED_MESSAGE})

    def _accept(self, request: Request) -> tuple[int, bool]:
        app = self.app
        if unstorable_query(request.query_string):  # as portal.security refuses it for every Flask route
            raise Answer(400, UNSTORABLE_QUERY_MESSAGE)
        try:
            document, body_error = read_document(request, app.config["LEAD_MAX_BODY_BYTES"]), None
        except BodyError as error:
            document, body_error = {}, error
        # Every request counts, bad bodies included (they are keyed to the workspace "-").
        public_id = workspace_public_id(document, request.headers)
        exceeded = check_rate_limits(app, request.remote_addr or "127.0.0.1", public_id or "-")
        if exceeded is not None:
            raise Answer(429, f"Too many leads from this {_LIMIT_NAMES[exceeded.name]}: "
                              f"try again in {exceeded.retry_after} s.", exceeded.retry_after)
        if body_error is not None:
            raise Answer(body_error.status, body_error.message)
        try:
            workspace = find_workspace(public_id)
        except WorkspaceNotFound:
            raise _unknown_workspace() from None
        workspace_id_var.set(str(workspace.id))
        if not origin_allowed(workspace, request.headers.get("Origin"), lambda: _own_origins(app, request)):
            raise Answer(403, "This site is not allowed to send leads to this workspace.")
        try:
            submission = validate(document, request.headers, workspace.country)
        except SubmissionInvalid as invalid:
            raise Answer(400, "Some fields are not valid.", errors=invalid.errors) from None
        user_agent = request.headers.get("User-Agent", "")[:512].replace("\x00", "") or None
        try:
            accepted = accept_lead(workspace, submission, request.remote_addr, user_agent)
        except WorkspaceNotFound:
            raise _unknown_workspace() from None
        return accepted.lead_id, accepted.created

    def _unexpected(self, error: Exception) -> tuple[int, bytes, list[tuple[str, str]]]:
        error_log.error("Unhandled error on POST %s", PATH, exc_info=error)
        return _json(500, error_body(500, UNEXPECTED_MESSAGE))


def _unknown_workspace() -> Answer:
    return Answer(404, f"Unknown workspace: check userAccountId (or the {WORKSPACE_HEADER} header).")


def _own_origins(app: Flask, request: Request) -> tuple[str, ...]:
    """The portal's own pages (the Settings test form) may always post."""
    own = [request.host_url.rstrip("/").lower()]
    if app.config.get("PUBLIC_BASE_URL"):
        own.append(app.config["PUBLIC_BASE_URL"].lower())
    return tuple(own)


def _json(status: int, body: dict, retry_after: int | None = None) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = [JSON_TYPE] if retry_after is None else [JSON_TYPE, ("Retry-After", str(retry_after))]
    return status, _ENCODER.encode(body).encode(), headers
