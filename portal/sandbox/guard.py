"""What every ``/api/v4`` call goes through, shared by the API blueprints: ``api_blueprint(name)``.

Order: the temporary block (HTML 403) → bearer token (401) → the account's host → rate limits (429) → rights
(403 problem JSON: admin-only calls for a non-admin, and the account's ``denied`` call kinds) → injected faults
→ the view →
``drop_after_commit_rate`` on writes. A ``ValidationFailed`` raised by a view becomes amoCRM's 400.
"""

import jwt
from flask import Blueprint, g, request

from . import faults
from .hosts import account_at
from .oauth import sandbox
from .validation import ValidationFailed, validation_problem

# amoCRM: managing webhooks and adding custom fields take an administrator (Kommo webhooks, custom fields).
ADMIN_ONLY = ("webhooks", "custom_fields:write")


def api_blueprint(name: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix="/api/v4")
    bp.before_request(guard)
    bp.after_request(maybe_drop)
    bp.register_error_handler(ValidationFailed, on_validation_failed)
    return bp


def guard():
    """Block page → bearer token (401) → rate limits → faults; sets ``g.account``, ``g.client_id``, ``g.user_id``."""
    box = sandbox()
    state = box.state
    if faults.blocked(state, request.remote_addr):
        return faults.block_page(state)
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    try:
        claims = box.signer.verify(token)
    except jwt.InvalidTokenError:
        return faults.problem(401, "Unauthorized", "Token is invalid or expired")
    with state.lock:
        record = state.access_tokens.get(claims.get("jti"))
        account = state.account(claims.get("account_id"))
        if record is None or record["revoked"] or account is None:
            return faults.problem(401, "Unauthorized", "Token has been revoked")
        state.count("requests", record["client_id"])
        state.count("requests_by_account", account["id"])
        owner, _ = account_at(state, request.host)
    if request.host != (account["host"] or request.host) or (
        owner is not None and owner["id"] != account["id"]
    ):
        # An account with a host of its own answers only there, as each amoCRM account has its own domain.
        return faults.problem(401, "Unauthorized", "Account not found at this address")
    limited = faults.rate_limited(state, record["client_id"], account["id"], request.remote_addr)
    if limited is not None:
        return limited
    if not allowed(account, call_kind()):
        state.count("http_403_rights")
        return faults.problem(403, "Forbidden", "Access denied")
    g.account, g.client_id, g.user_id = account, record["client_id"], int(claims["sub"])
    return faults.before_view(state)


def call_kind() -> str:
    """What the call does, for the account's rights: ``webhooks``, ``custom_fields:write``, ``leads:read`` …"""
    parts = request.path[len("/api/v4/") :].split("/")
    if parts[0] == "webhooks":
        return "webhooks"
    entity = "custom_fields" if "custom_fields" in parts else "unsorted" if "unsorted" in parts else parts[0]
    return f"{entity}:{'read' if request.method == 'GET' else 'write'}"


def allowed(account: dict, kind: str) -> bool:
    """Admin-only calls (webhooks, adding custom fields) need an admin; ``denied`` lists refused kinds."""
    settings = account["settings"]
    if kind in ADMIN_ONLY and not settings["is_admin"]:
        return False
    return kind not in settings["denied"] and kind.split(":")[0] not in settings["denied"]


def maybe_drop(response):
    if request.method in ("POST", "PATCH", "DELETE") and "account" in g:
        return faults.after_write(sandbox().state, response)
    return response


def on_validation_failed(error):
    return validation_problem(error.entries)
