"""POST /api/leads: a lead from a landing page, answered by the ingest layer (portal.ingest) beneath Flask.

The intake is the public endpoint that must take bursts of thousands of requests a second. The layer routes it,
answers its CORS preflight and 405s, and gives every answer the request id, log line, security and CORS headers,
the JSON error shape and the 503 while PostgreSQL is unreachable; this handler reads, checks and stores the lead.
GET /api/leads (the reports API's lead list) is the Flask portal's.

GET /api/leads/origin answers the snippet's one question a refused page cannot read from its 403: may this page's
origin send leads to the workspace? (`check_page_origin`.)
"""
from flask import Flask
from werkzeug.wrappers import Request

from portal.ingest.layer import Cors, Refusal, Reply, json_reply
from portal.ingest.workspaces import CachedWorkspace
from portal.intake.services import (
    WorkspaceNotFound,
    accept_lead,
    check_rate_limits,
    find_workspace,
    origin_allowed,
    preflight_over_limit,
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
from portal.log_context import workspace_id_var

PATH = "/api/leads"
WRONG_METHOD = "Send leads with POST."
ORIGIN_PATH = "/api/leads/origin"
ORIGIN_WRONG_METHOD = "Ask with GET /api/leads/origin?userAccountId=<workspace>."
REFUSED_MESSAGE = "This site is not allowed to send leads to this workspace."
ACCEPTED_MESSAGE = "Thank you! Your request has been received."
_LIMIT_NAMES = {"ip": "address", "workspace": "workspace"}


def submit_lead(app: Flask, request: Request) -> Reply:
    """201 with the new lead's id, 200 with the lead an idempotency key made before; Refusal with a 4xx."""
    try:
        document, body_error = read_document(request, app.config["LEAD_MAX_BODY_BYTES"]), None
    except BodyError as error:
        document, body_error = {}, error
    # Every request counts, bad bodies included (they are keyed to the workspace "-").
    public_id = workspace_public_id(document, request.headers, request.args)
    exceeded = check_rate_limits(app, request.remote_addr or "127.0.0.1", public_id or "-")
    if exceeded is not None:
        raise Refusal(429, f"Too many leads from this {_LIMIT_NAMES[exceeded.name]}: "
                           f"try again in {exceeded.retry_after} s.", exceeded.retry_after)
    if body_error is not None:
        raise Refusal(body_error.status, body_error.message)
    try:
        workspace = find_workspace(public_id)
    except WorkspaceNotFound:
        raise _unknown_workspace() from None
    workspace_id_var.set(str(workspace.id))
    allow_origin = readable_by(app, request, workspace)
    if allow_origin is None and request.headers.get("Origin"):  # never reflected: that site may not read it
        raise Refusal(403, REFUSED_MESSAGE, allow_origin=None)
    try:
        submission = validate(document, request.headers, workspace.country)
    except SubmissionInvalid as invalid:
        raise Refusal(400, "Some fields are not valid.", allow_origin=allow_origin, errors=invalid.errors) from None
    user_agent = request.headers.get("User-Agent", "")[:512].replace("\x00", "") or None
    try:
        accepted = accept_lead(workspace, submission, request.remote_addr, user_agent)
    except WorkspaceNotFound:
        raise _unknown_workspace() from None
    return json_reply(201 if accepted.created else 200,
                      {"success": True, "leadId": accepted.lead_id, "message": ACCEPTED_MESSAGE},
                      allow_origin=allow_origin)


def vouch_for_preflight(app: Flask, request: Request) -> str | None:
    """The preflight's Access-Control-Allow-Origin. A browser's preflight has no body, so it knows the workspace
    only when the page names it in the query string (or a client sends the X-Workspace header): then the
    workspace's answer (`*`, the asking origin, or none for a refused one); otherwise `*`, and the POST's answer
    decides who may read it. Such a read counts against the address's lead limit; over it, `*`."""
    public_id = workspace_public_id({}, request.headers, request.args)
    if public_id is None or preflight_over_limit(app, request.remote_addr or "127.0.0.1"):
        return "*"
    try:
        workspace = find_workspace(public_id)
    except WorkspaceNotFound:
        return "*"
    return readable_by(app, request, workspace)


CORS = Cors(allow_headers=f"Content-Type, {IDEMPOTENCY_HEADER}, {WORKSPACE_HEADER}", vouch=vouch_for_preflight)


def check_page_origin(app: Flask, request: Request) -> Reply:
    """200 `{"allowed": bool}` (with the refusal's message when not): may the asking page's origin send leads to the
    workspace named by `?userAccountId=` (or X-Workspace)?

    A refused page's browser hides the POST's 403 (it names no origin a refused page may read), so the snippet sees
    a failed fetch, as it would on a lost connection. It then asks here, with a simple GET that needs no preflight,
    and drops the lead only on a readable `false`; a proxy's error page or a real outage leaves the lead queued.
    The answer is readable by any page (`*`) and reflects no origin: it says only whether the Origin the browser
    set is allowed, which a server could learn from the POST's 403 anyway. Each question reads the workspace, so it
    counts against the address's lead limit (429 over it)."""
    public_id = workspace_public_id({}, request.headers, request.args)
    retry_after = preflight_over_limit(app, request.remote_addr or "127.0.0.1")
    if retry_after:
        raise Refusal(429, f"Too many leads from this address: try again in {retry_after} s.", retry_after)
    try:
        workspace = find_workspace(public_id)
    except WorkspaceNotFound:
        raise _unknown_workspace() from None
    workspace_id_var.set(str(workspace.id))
    if readable_by(app, request, workspace) is not None or not request.headers.get("Origin"):
        return json_reply(200, {"allowed": True})
    return json_reply(200, {"allowed": False, "message": REFUSED_MESSAGE})


ORIGIN_CORS = Cors(allow_headers="Content-Type")


def readable_by(app: Flask, request: Request, workspace: CachedWorkspace) -> str | None:
    """Access-Control-Allow-Origin for this workspace's answers: `*` when it takes leads from any site, the
    request's Origin when it is allowed, None for a refused origin (or none at all: not a browser)."""
    if not workspace.allowed_origins:
        return "*"
    origin = request.headers.get("Origin")
    return origin if origin and origin_allowed(workspace, origin, lambda: _own_origins(app, request)) else None


def _unknown_workspace() -> Refusal:
    return Refusal(404, f"Unknown workspace: check userAccountId (or the {WORKSPACE_HEADER} header).")


def _own_origins(app: Flask, request: Request) -> tuple[str, ...]:
    """The portal's own pages (the Settings test form) may always post."""
    own = [request.host_url.rstrip("/").lower()]
    if app.config.get("PUBLIC_BASE_URL"):
        own.append(app.config["PUBLIC_BASE_URL"].lower())
    return tuple(own)

