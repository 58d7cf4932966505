"""Workspace settings and the team. Every function takes the workspace explicitly and commits once."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Invite, User, Workspace
from portal.models.types import utcnow
from portal.models.user import OWNER
from portal.visits.retention import check_retention_days


class SettingsError(Exception):
    pass


def update_workspace(workspace: Workspace, name: str, currency: str, timezone: str, country: str,
                     visit_retention_days: int) -> None:
    workspace.name = name.strip()
    workspace.visit_retention_days = check_retention_days(visit_retention_days)
    workspace.currency = currency
    workspace.timezone = timezone
    workspace.country = country.strip().upper()
    db.session.commit()


def team(workspace_id: int) -> tuple[list[User], list[Invite]]:
    users = db.session.scalars(select(User).where(User.workspace_id == workspace_id).order_by(User.created_at))
    invites = db.session.scalars(select(Invite).where(
        Invite.workspace_id == workspace_id, Invite.used_at.is_(None), Invite.revoked_at.is_(None),
        Invite.expires_at > utcnow()).order_by(Invite.created_at.desc()))
    return list(users), list(invites)


def remove_member(member: User) -> None:
    if member.role == OWNER:
        owners = db.session.scalar(select(func.count(User.id)).where(
            User.workspace_id == member.workspace_id, User.role == OWNER))
        if owners <= 1:
            raise SettingsError(_("The last owner cannot be removed."))
    db.session.delete(member)
    db.session.commit()


def revoke_invite(invite: Invite) -> None:
    invite.revoked_at = utcnow()
    db.session.commit()


def set_language(user: User, locale: str | None) -> None:
    """The language the user reads Leadpath in; None follows the browser."""
    user.locale = locale or None
    db.session.commit()
