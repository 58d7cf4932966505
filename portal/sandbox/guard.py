"""What every ``/api/v4`` call goes through, shared by the API blueprints: ``api_blueprint(name)``.

Order: the temporary block (HTML 403) → bearer token (401) → rate limits (429) → injected faults → the view →
``drop_after_commit_rate`` on writes. A ``ValidationFailed`` raised by a view becomes amoCRM's 400.
"""

import jwt
from flask import Blueprint, g, request

from . import faults
from .oauth import sandbox
from .validation import ValidationFailed, validation_problem


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
    if state.faults["block"]:
        state.count("http_403")
        return faults.nginx_page(403, "Forbidden")
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
    limited = faults.rate_limited(state, record["client_id"], account["id"])
    if limited is not None:
        return limited
    g.account, g.client_id, g.user_id = account, record["client_id"], int(claims["sub"])
    return faults.before_view(state)


def maybe_drop(response):
    if request.method in ("POST", "PATCH", "DELETE") and "account" in g:
        return faults.after_write(sandbox().state, response)
    return response


def on_validation_failed(error):
    return validation_problem(error.entries)
