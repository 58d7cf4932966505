"""GET /metrics: Prometheus text exposition of the pipeline's health (leads, webhooks, amoCRM calls, queues)."""
from flask import Blueprint

from portal.extensions import csrf, limiter

bp = Blueprint("metrics", __name__)
limiter.exempt(bp)
csrf.exempt(bp)

from portal.metrics import routes  # noqa: E402,F401
