"""Password reset by e-mail: a single-use link that expires (PASSWORD_RESET_TTL_MINUTES), of which only the
SHA-256 is stored. Asking never reveals whether an account exists: the form answers the same either way, an
unknown address goes through the same reads, token, mail rendering and sealing as a known one, the known one does
not wait for the disk, and both answers take at least PASSWORD_RESET_MIN_SECONDS (so their timing does not tell them
apart; tests/bench/password_reset_timing.py measures it). An account receives at most
PASSWORD_RESET_MAILS_PER_ACCOUNT mails in RESET_WINDOW. Using a link sets the password,
voids the account's other reset links and ends every session of the account (the caller logs this browser in).
"""
import hashlib
import secrets
import time
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, text, update

from portal.auth.services import AccountError, normalize_email
from portal.crypto import column_context, seal
from portal.extensions import db
from portal.mail.links import absolute_link
from portal.mail.messages import password_reset_mail, password_reset_message
from portal.models import OutboxMail, PasswordReset, User, UserSession
from portal.models.types import utcnow

RESET_WINDOW = timedelta(minutes=15)
UNKNOWN_ACCOUNT_ID = 0


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(email: str) -> None:
    """Mail a reset link to the account with this e-mail, if there is one and it has not had its share of mails
    lately. Says nothing either way, and takes at least PASSWORD_RESET_MIN_SECONDS either way."""
    started = time.monotonic()
    try:
        _request_password_reset(email)
    finally:
        time.sleep(max(0.0, current_app.config["PASSWORD_RESET_MIN_SECONDS"] - (time.monotonic() - started)))


def _request_password_reset(email: str) -> None:
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    # No account has id 0: an unknown address runs the same statements, matching nothing.
    user_id = user.id if user is not None else UNKNOWN_ACCOUNT_ID
    # Links of this account that are used or long expired are of no further use: kept one day for the count below.
    db.session.execute(delete(PasswordReset).where(PasswordReset.user_id == user_id,
                                                   PasswordReset.expires_at < utcnow() - timedelta(days=1)))
    recent = db.session.scalar(select(func.count(PasswordReset.id)).where(
        PasswordReset.user_id == user_id, PasswordReset.created_at > utcnow() - RESET_WINDOW))
    if recent >= current_app.config["PASSWORD_RESET_MAILS_PER_ACCOUNT"]:
        return
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["PASSWORD_RESET_TTL_MINUTES"]
    link = absolute_link("auth.reset_password_page", token=token)
    if user is None:
        _same_work_for_no_account(email, link, minutes)
        return
    db.session.add(PasswordReset(user_id=user.id, token_hash=_token_hash(token), created_at=utcnow(),
                                 expires_at=utcnow() + timedelta(minutes=minutes)))
    password_reset_mail(user, link, minutes)
    _commit_without_waiting_for_the_disk()
    db.session.commit()


def _commit_without_waiting_for_the_disk() -> None:
    """The one cost an unknown address cannot share is the wait for the disk to confirm the two INSERTs (several
    milliseconds: enough to tell accounts apart). PostgreSQL may confirm this commit before its write reaches the
    disk: a crash in that fraction of a second loses the link and its mail, and the person asks again."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))


def _same_work_for_no_account(email: str, link: str, minutes: int) -> None:
    """What a known address costs, minus storing: the mail rendered for a stand-in account (never added to the
    session) and sealed as the outbox would seal it, then a commit. Only the two INSERTs differ."""
    stand_in = User(email=email, name="", workspace_id=UNKNOWN_ACCOUNT_ID)
    _subject, body = password_reset_message(stand_in, link, minutes)
    seal(body, column_context(OutboxMail.__tablename__, "body", UNKNOWN_ACCOUNT_ID))
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
