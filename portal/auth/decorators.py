from functools import wraps

from flask import abort
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.auth.permissions import PERMISSIONS, role_has


def can(permission: str) -> bool:
    """Whether the logged-in user's role holds `permission`: templates show a control only to those who may use it
    (`{% if can('spend.change') %}`), from the same matrix the routes enforce."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return bool(current_user and current_user.is_authenticated and role_has(current_user.role, permission))


def permission_required(permission: str):
    """Logged in, with a role that holds `permission` (portal.auth.permissions); else 403. The view keeps the
    permission as `view.permission`, which the roles test reads from the URL map."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not role_has(current_user.role, permission):
                abort(403, _("Your role in this workspace can read this but not change it. Ask the workspace owner."))
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorate
