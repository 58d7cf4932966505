"""Accounts: sign-up, authentication, password change, invites. Services own their transaction."""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from portal.auth.sessions import end_other_sessions
from portal.extensions import db
from portal.mail.links import absolute_link
from portal.mail.messages import invite_mail
from portal.models import Invite, User, Workspace
from portal.models.types import utcnow
from portal.models.user import MEMBER, OWNER
from portal.passwords import hash_password, needs_rehash

# Checked when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = hash_password("leadpath-timing-equaliser")


class AccountError(Exception):
    """A user-facing reason an account action was refused."""


def normalize_email(email: str) -> str:
    """The form an e-mail is stored and looked up in: case and surrounding spaces do not make another account."""
    return (email or "").strip().lower()


def sign_up(workspace_name: str, name: str, email: str, password: str) -> User:
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise AccountError(_("An account with this e-mail already exists. Log in instead."))
    workspace = Workspace(name=workspace_name.strip())
    user = User(workspace=workspace, name=name.strip(), email=email, role=OWNER)
    user.set_password(password)
    db.session.add_all([workspace, user])
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        User(password_hash=_DUMMY_HASH).check_password(password)
        return None
    if not user.check_password(password):
        return None
    if needs_rehash(user.password_hash):
        user.set_password(password)  # an older scheme or weaker parameters: Argon2id from now on
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    """Replace `user`'s password, given the current one, and end their other sessions: whoever learnt the old
    password (or holds a session opened with it) is out. The caller keeps this browser's session."""
    if not user.check_password(current_password):
        raise AccountError(_("The current password is wrong."))
    user.set_password(new_password)
    end_other_sessions(user)  # commits the new password with it


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(inviter: User, email: str) -> str:
    """Invite `email` to the inviter's workspace and mail them the link (in the inviter's language). An address
    has one open invite per workspace: inviting it again revokes the open one and sends a new link (only the
    hash of a token is kept, so the old link cannot be re-sent). Returns the raw token (shown once)."""
    email = normalize_email(email)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise AccountError(_("That e-mail already has a Leadpath account."))
    now = utcnow()
    db.session.execute(update(Invite).where(
        Invite.workspace_id == inviter.workspace_id, Invite.email == email, Invite.used_at.is_(None),
        Invite.revoked_at.is_(None)).values(revoked_at=now))
    token = secrets.token_urlsafe(32)
    hours = current_app.config["INVITE_TTL_HOURS"]
    invite = Invite(workspace_id=inviter.workspace_id, email=email, token_hash=_token_hash(token), role=MEMBER,
                    created_by_id=inviter.id, created_at=now, expires_at=now + timedelta(hours=hours))
    db.session.add(invite)
    try:
        db.session.flush()
    except IntegrityError:  # uq_invites_open_per_address: another invite to the address won a race with this one
        db.session.rollback()
        raise AccountError(_("An invite to this address was sent a moment ago by someone else; its link is in "
                             "that mail. Invite again to send a new link instead.")) from None
    invite_mail(invite, inviter, absolute_link("auth.accept", token=token), hours)
    db.session.commit()
    return token


def find_open_invite(token: str) -> Invite:
    invite = db.session.scalar(select(Invite).where(Invite.token_hash == _token_hash(token)))
    if invite is None or invite.revoked_at is not None:
        raise AccountError(_("This invite link is not valid. Ask the workspace owner for a new one."))
    if invite.used_at is not None:
        raise AccountError(_("This invite link has already been used. Log in instead."))
    if invite.expires_at <= utcnow():
        raise AccountError(_("This invite link has expired. Ask the workspace owner for a new one."))
    return invite


def accept_invite(token: str, name: str, password: str) -> User:
    invite = find_open_invite(token)
    # Claim the invite atomically so two tabs cannot both use it.
    claimed = db.session.execute(
        Invite.__table__.update()
        .where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if claimed != 1 or db.session.scalar(select(User.id).where(User.email == invite.email)):
        db.session.rollback()
        raise AccountError(_("This invite link has already been used. Log in instead."))
    user = User(workspace_id=invite.workspace_id, email=invite.email, name=name.strip(), role=invite.role,
                email_verified_at=utcnow())  # the invite link was mailed to this address
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user
