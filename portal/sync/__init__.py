from flask import Blueprint

bp = Blueprint("sync", __name__, url_prefix="/sync")

from portal.sync import routes  # noqa: E402,F401
