from flask import Blueprint

bp = Blueprint("spend", __name__, url_prefix="/reports/spend")

from portal.spend import routes  # noqa: E402,F401
