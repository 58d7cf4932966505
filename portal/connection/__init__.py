"""Settings → amoCRM: the button, the OAuth callback, tokens that stay alive, status and disconnect."""
from flask import Blueprint

bp = Blueprint("connection", __name__)

from portal.connection import routes  # noqa: E402,F401
