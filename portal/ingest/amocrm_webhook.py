"""POST /webhooks/amocrm/<workspace public id>/<secret>: amoCRM's webhook, stored and acknowledged at once.

amoCRM waits 2 s for the answer and disables a webhook that keeps failing, and it delivers in bursts: the ingest
layer answers it beneath Flask. This handler refuses addresses that guess URLs and bodies of the wrong type; the
webhook inbox (`receive_webhook`) authenticates, parses, stores and schedules its processing.
"""
from flask import Flask
from werkzeug.wrappers import Request

from portal.amocrm.inbox import WebhookRejected, receive_webhook
from portal.ingest.layer import Refusal, Reply, json_reply
from portal.ratelimit import Limit, parse_limit, rate_limiter

PATH = "/webhooks/amocrm/<public_id>/<secret>"
WRONG_METHOD = "amoCRM delivers webhooks with POST."
FORM_TYPE = "application/x-www-form-urlencoded"
# Failed guesses (404) are throttled per client IP and workspace, and more loosely per IP. Keying on the
# workspace as well keeps one workspace's stale URL (after a secret rotation) from throttling the amoCRM
# servers that also deliver other workspaces' webhooks (WEBHOOK_GUESS_RATE_LIMIT, WEBHOOK_GUESS_RATE_LIMIT_PER_IP).
# An address found not throttled is believed so for this long (per process) before Redis is asked again: amoCRM's
# few servers then cost no Redis read per webhook. A process that answers a 404 asks again at once.
TRUST_CLEAR_SECONDS = 1.0


def acknowledge_webhook(app: Flask, request: Request, public_id: str, secret: str) -> Reply:
    """200 with the stored event's id (or the one the same body made before); Refusal with a 4xx."""
    counters = _guess_counters(app, request.remote_addr or "127.0.0.1", public_id)
    limiter = rate_limiter(app)
    blocked, retry_after = limiter.blocked(counters, trust_clear_for=TRUST_CLEAR_SECONDS)
    if blocked:  # a throttled address gets no answer about any URL, right or wrong
        raise Refusal(429, f"Too many requests to unknown webhook URLs: try again in {retry_after} s.", retry_after)
    if request.mimetype != FORM_TYPE:
        raise Refusal(415, f"Webhook bodies must be {FORM_TYPE}.")
    try:
        receipt = receive_webhook(public_id, secret, request.get_data(cache=False))
    except WebhookRejected as rejected:
        if rejected.status == 404:  # a wrong workspace or secret: a guess
            limiter.add(counters)
        raise Refusal(rejected.status, str(rejected)) from None
    return json_reply(200, {"success": True, "event_id": receipt.event_id, "duplicate": receipt.duplicate,
                            "ignored": receipt.ignored})


def _guess_counters(app: Flask, address: str, public_id: str) -> list[tuple[str, Limit]]:
    config = app.config
    return [(f"webhook-guess:{address}:{public_id[:36]}", parse_limit(config["WEBHOOK_GUESS_RATE_LIMIT"])),
            (f"webhook-guess-ip:{address}", parse_limit(config["WEBHOOK_GUESS_RATE_LIMIT_PER_IP"]))]
