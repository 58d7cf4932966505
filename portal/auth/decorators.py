from functools import wraps

from flask import abort
from flask_babel import gettext as _
from flask_login import current_user, login_required


def owner_required(view):
    """Logged in as the workspace owner; members get 403 (they may read, not change)."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_owner:
            abort(403, _("Only the workspace owner can change this."))
        return view(*args, **kwargs)

    return wrapped
