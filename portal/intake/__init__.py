"""Lead capture: the public intake API (`POST /api/leads`) and Settings → Lead form."""
from flask import Blueprint

bp = Blueprint("intake", __name__)

from portal.intake import routes  # noqa: E402,F401
