from flask import Blueprint

bp = Blueprint("leads", __name__)

from portal.leads import routes  # noqa: E402,F401
