"""amoCRM webhooks: the inbound endpoint, and turning deal events into Sales."""
from flask import Blueprint

from portal.extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)  # a machine endpoint: authenticated by the workspace's secret in the URL, not a session

from portal.webhooks import routes  # noqa: E402,F401
