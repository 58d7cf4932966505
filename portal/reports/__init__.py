from flask import Blueprint

bp = Blueprint("reports", __name__)
# The read-only JSON API (Bearer workspace token); CSRF-exempt, registered by portal.register_blueprints.
api_bp = Blueprint("reports_api", __name__, url_prefix="/api")

from portal.reports import api, rollups, routes  # noqa: E402,F401  (rollups: cache-invalidation hooks)
