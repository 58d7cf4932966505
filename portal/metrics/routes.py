import hmac
from ipaddress import ip_address

from flask import Blueprint, abort, current_app, request

from portal.extensions import csrf, limiter
from portal.metrics.services import collect, render

bp = Blueprint("metrics", __name__)
limiter.exempt(bp)
csrf.exempt(bp)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def _allowed() -> bool:
    """With METRICS_TOKEN: the bearer token must match. Without: only a direct (unproxied) loopback caller."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if any(header in request.headers for header in PROXY_HEADERS):
        return False  # came through a proxy that did not block /metrics: the peer address says nothing
    try:
        return ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics():
    if not _allowed():
        abort(404)
    return current_app.response_class(render(collect()), mimetype=None, content_type=PROMETHEUS_CONTENT_TYPE,
                                      headers={"Cache-Control": "no-store"})
