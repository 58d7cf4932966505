"""Password reset by e-mail: a single-use link that expires (PASSWORD_RESET_TTL_MINUTES), of which only the
SHA-256 is stored. Asking never reveals whether an account exists: the form answers the same either way, and an
account receives at most PASSWORD_RESET_MAILS_PER_ACCOUNT mails in RESET_WINDOW. Using a link sets the password,
voids the account's other reset links and ends every session of the account (the caller logs this browser in).
"""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update

from portal.auth.services import AccountError, normalize_email
from portal.extensions import db
from portal.mail.links import absolute_link
from portal.mail.messages import password_reset_mail
from portal.models import PasswordReset, User, UserSession
from portal.models.types import utcnow

RESET_WINDOW = timedelta(minutes=15)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(email: str) -> None:
    """Mail a reset link to the account with this e-mail, if there is one and it has not had its share of mails
    lately. Says nothing either way."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        return
    # Links of this account that are used or long expired are of no further use: kept one day for the count below.
    db.session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id,
                                                   PasswordReset.expires_at < utcnow() - timedelta(days=1)))
    recent = db.session.scalar(select(func.count(PasswordReset.id)).where(
        PasswordReset.user_id == user.id, PasswordReset.created_at > utcnow() - RESET_WINDOW))
    if recent >= current_app.config["PASSWORD_RESET_MAILS_PER_ACCOUNT"]:
        return
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["PASSWORD_RESET_TTL_MINUTES"]
    db.session.add(PasswordReset(user_id=user.id, token_hash=_token_hash(token), created_at=utcnow(),
                                 expires_at=utcnow() + timedelta(minutes=minutes)))
    password_reset_mail(user, absolute_link("auth.reset_password_page", token=token), minutes)
    db.session.commit()


def find_password_reset(token: str) -> PasswordReset:
    reset = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _token_hash(token or "")))
    if reset is None or reset.used_at is not None:
        raise AccountError(_("This password reset link is not valid or has already been used. Ask for a new one."))
    if reset.expires_at <= utcnow():
        raise AccountError(_("This password reset link has expired. Ask for a new one."))
    return reset


def reset_password(token: str, new_password: str) -> User:
    """Set the account's password from a reset link, once. Every session of the account ends."""
    reset = find_password_reset(token)
    now = utcnow()
    # Claimed atomically: two tabs (or a replayed request) cannot both use the link.
    claimed = db.session.execute(update(PasswordReset).where(
        PasswordReset.id == reset.id, PasswordReset.used_at.is_(None), PasswordReset.expires_at > now)
        .values(used_at=now)).rowcount
    if claimed != 1:
        db.session.rollback()
        raise AccountError(_("This password reset link is not valid or has already been used. Ask for a new one."))
    user = db.session.get(User, reset.user_id)
    user.set_password(new_password)
    if user.email_verified_at is None:
        user.email_verified_at = now  # the link reached this mailbox
    db.session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                       .values(used_at=now))
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.commit()
    return user
