"""POST /api/visits: the snippet's beacon, one per visit, answered by the ingest layer (portal.ingest) beneath Flask.

As hardened as the lead intake, with the intake's rules where they are the same question: the workspace's allowed
origins (portal.intake.endpoint.readable_by), rate limits per address and per workspace counted in one Redis round
trip (portal.ratelimit), bodies of at most VISIT_MAX_BODY_BYTES. A beacon from a bot (portal.visits.beacon.is_bot)
is answered 202 and not stored. The address is stored only as a daily-salted hash. A visit id already stored
answers the same 202 and writes nothing. Every 202 of a real visit comes after its row is committed.

A visit also tells the setup checklist that the snippet runs on a site (portal.onboarding.services).
"""
from flask import Flask
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Request

from portal.ingest.layer import Cors, Refusal, Reply, json_reply
from portal.ingest.workspaces import cached_workspace, forget_workspace
from portal.intake.endpoint import readable_by
from portal.intake.submission import WORKSPACE_HEADER, workspace_public_id
from portal.log_context import workspace_id_var
from portal.models.types import utcnow
from portal.onboarding.services import note_snippet_seen
from portal.ratelimit import parse_limit, rate_limiter
from portal.visits.beacon import TAG_KEYS, BeaconRefused, ip_hash, is_bot, read_document, validate
from portal.visits.store import insert_visit

PATH = "/api/visits"
WRONG_METHOD = "Send visits with POST."
REFUSED_MESSAGE = "This site is not allowed to send visits to this workspace."
_LIMIT_NAMES = {1: "address", 2: "workspace"}

CORS = Cors(allow_headers=f"Content-Type, {WORKSPACE_HEADER}")


def record_visit(app: Flask, request: Request) -> Reply:
    """202 once the visit is stored (or was before, or came from a bot); Refusal with a 4xx."""
    config = app.config
    try:
        document, body_error = read_document(request, config["VISIT_MAX_BODY_BYTES"]), None
    except BeaconRefused as error:
        document, body_error = {}, error
    # Every request counts, bad bodies included (they are keyed to the workspace "-").
    public_id = workspace_public_id(document, request.headers, request.args)
    address = request.remote_addr or "127.0.0.1"
    index, retry_after = rate_limiter(app).hit([
        ("visit-ip:" + address, parse_limit(config["VISIT_RATE_LIMIT_IP"])),
        ("visit-workspace:" + (public_id or "-"), parse_limit(config["VISIT_RATE_LIMIT_WORKSPACE"]))])
    if index:
        raise Refusal(429, f"Too many visits from this {_LIMIT_NAMES[index]}: try again in {retry_after} s.",
                      retry_after)
    if body_error is not None:
        raise Refusal(body_error.status, body_error.message)
    workspace = cached_workspace(public_id, config["LEAD_WORKSPACE_CACHE_SECONDS"]) if public_id else None
    if workspace is None:
        raise _unknown_workspace()
    workspace_id_var.set(str(workspace.id))
    allow_origin = readable_by(app, request, workspace)
    if allow_origin is None and request.headers.get("Origin"):  # never reflected: that site may not read it
        raise Refusal(403, REFUSED_MESSAGE, allow_origin=None)
    if is_bot(request.headers.get("User-Agent")):
        return _accepted(allow_origin)
    try:
        beacon = validate(document)
    except BeaconRefused as refused:
        raise Refusal(400, refused.message, allow_origin=allow_origin, errors=refused.errors) from None
    now = utcnow()
    params = {"p_workspace_id": workspace.id, "p_visitor_id": beacon.visitor_id, "p_visit_id": beacon.visit_id,
              "p_started_at": now, **{f"p_{key}": beacon.tags.get(key) for key in TAG_KEYS},
              "p_referrer": beacon.referrer, "p_landing_page": beacon.landing_page, "p_device": beacon.device,
              "p_ip_hash": ip_hash(config["SECRET_KEY"], address, now.date()), "p_created_at": now}
    try:
        insert_visit(params)
    except IntegrityError as error:  # the only other constraint: the workspace, deleted since it was cached
        forget_workspace(workspace.public_id)
        raise _unknown_workspace() from error
    note_snippet_seen(workspace.public_id)
    return _accepted(allow_origin)


def _accepted(allow_origin: str | None) -> Reply:
    """The one answer to a stored visit, a visit stored before and a bot's: nothing tells them apart."""
    return json_reply(202, {"success": True}, allow_origin=allow_origin)


def _unknown_workspace() -> Refusal:
    return Refusal(404, f"Unknown workspace: check userAccountId (or the {WORKSPACE_HEADER} header).")
