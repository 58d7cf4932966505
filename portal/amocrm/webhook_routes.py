"""POST /webhooks/amocrm/<workspace public id>/<secret>: store, acknowledge at once, process in a job."""
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError

from portal.amocrm.inbox import WebhookRejected, receive_webhook
from portal.errors import error_response
from portal.extensions import csrf, limiter
from portal.ratelimit import parse_limit, rate_limiter

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # a machine endpoint: authenticated by the workspace's secret in the URL, not a session

FORM_TYPE = "application/x-www-form-urlencoded"
# Failed guesses (404) are throttled per client IP and workspace, and more loosely per IP. Keying on the
# workspace as well keeps one workspace's stale URL (after a secret rotation) from throttling the amoCRM
# servers that also deliver other workspaces' webhooks (WEBHOOK_GUESS_RATE_LIMIT, WEBHOOK_GUESS_RATE_LIMIT_PER_IP).
# An address found not throttled is believed so for this long (per process) before Redis is asked again: amoCRM's
# few servers then cost no Redis read per webhook. A process that answers a 404 asks again at once.
TRUST_CLEAR_SECONDS = 1.0


def _guess_counters() -> list:
    address = request.remote_addr or "127.0.0.1"
    config = current_app.config
    return [(f"webhook-guess:{address}:{(request.view_args or {}).get('public_id', '')[:36]}",
             parse_limit(config["WEBHOOK_GUESS_RATE_LIMIT"])),
            (f"webhook-guess-ip:{address}", parse_limit(config["WEBHOOK_GUESS_RATE_LIMIT_PER_IP"]))]


@bp.post("/amocrm/<public_id>/<secret>")
@limiter.exempt  # the guess limits below: a Redis read per address and second, a write per 404
def amocrm(public_id: str, secret: str):
    app = current_app._get_current_object()
    counters = _guess_counters()
    index, retry_after = rate_limiter(app).blocked(counters, trust_clear_for=TRUST_CLEAR_SECONDS)
    if index:  # a throttled address gets no answer about any URL, right or wrong
        response = error_response(429, f"Too many requests to unknown webhook URLs: try again in {retry_after} s.")
        response[0].headers["Retry-After"] = str(retry_after)
        return response
    response = _receive(public_id, secret)
    if response[1] == 404:
        rate_limiter(app).add(counters)
    return response


def _receive(public_id: str, secret: str):
    if request.mimetype != FORM_TYPE:
        return error_response(415, f"Webhook bodies must be {FORM_TYPE}.")
    try:
        receipt = receive_webhook(public_id, secret, request.get_data(cache=False))
    except WebhookRejected as rejected:
        return error_response(rejected.status, str(rejected))
    except DBAPIError as error:  # PostgreSQL down or restarting: amoCRM retries a failed delivery
        if not (error.connection_invalidated or isinstance(error, OperationalError)):
            raise
        return _unavailable()
    return jsonify(success=True, event_id=receipt.event_id, duplicate=receipt.duplicate,
                   ignored=receipt.ignored), 200


def _unavailable():
    response = error_response(503, "The database is unavailable: the delivery will be retried.")
    response[0].headers["Retry-After"] = "5"
    return response
