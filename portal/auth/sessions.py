"""Server-side sessions: every logged-in browser has a `UserSession` row, and its cookies are only keys to it.

Why a row per browser rather than a per-user "session generation" number checked on each request: a generation
can only end all of a user's sessions at once, so logging out on one device would log out every other one, and
"log out everywhere else" could not keep the current one. A row per browser costs the same single query per
request (the session and its user are read together) and lets each browser be ended on its own.

- The session cookie (Flask's signed cookie) carries a random session key as Flask-Login's user id; the row keeps
  its SHA-256. Ending the row ends every copy of the cookie: the key no longer finds a session.
- The remember-me cookie carries another random key of the same row (hashed there too). It is used only when the
  browser has no session cookie; it then gets a new session key and a new remember key (rotation), so a
  remember cookie works once, and an old copy is dead after its first use.
- Logout deletes the row; "log out everywhere else", a password change and removal from the workspace delete the
  user's other rows (removal: the foreign key's ON DELETE CASCADE).

A session without "remember me" ends after SESSION_IDLE_MINUTES without a request; a remembered one lasts
REMEMBER_COOKIE_DURATION from the login, however active.
"""
import hashlib
import secrets
from datetime import timedelta

from flask import after_this_request, current_app, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete, select, update

from portal.extensions import db
from portal.models import User, UserSession
from portal.models.types import utcnow

# last_seen_at (and an idle session's expiry) are written at most this often per session, not on every request.
TOUCH_INTERVAL = timedelta(minutes=5)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def _idle_lifetime() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def _remember_lifetime() -> timedelta:
    duration = current_app.config["REMEMBER_COOKIE_DURATION"]
    return duration if isinstance(duration, timedelta) else timedelta(seconds=duration)


def log_in(user: User, remember: bool = False) -> None:
    """Start a server-side session for `user` in this browser (and a remember-me cookie if asked)."""
    now = utcnow()
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    key = _new_key()
    remember_key = _new_key() if remember else None
    row = UserSession(user_id=user.id, key_hash=_hash(key), created_at=now, last_seen_at=now,
                      remember_hash=_hash(remember_key) if remember_key else None,
                      user_agent=request.headers.get("User-Agent", "")[:200].replace("\x00", ""),
                      expires_at=now + (_remember_lifetime() if remember else _idle_lifetime()))
    db.session.add(row)
    db.session.commit()
    _enter(user, row, key)
    _set_remember_cookie_after_request(remember_key, row)


def _enter(user: User, row: UserSession, key: str, fresh: bool = True) -> None:
    user.session_key = key
    user.current_session = row
    session.clear()  # nothing of a previous login (or of the anonymous visit) carries over
    login_user(user, fresh=fresh)


def load_user(session_key: str) -> User | None:
    """Flask-Login's user loader: the user of the live session with this key, or None (logged out)."""
    if not session_key or len(session_key) > 100:
        return None  # includes the plain user ids that sessions held before they were server-side
    now = utcnow()
    found = db.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.key_hash == _hash(session_key), UserSession.expires_at > now)).first()
    if found is None:
        return None
    row, user = found
    user.session_key = session_key
    user.current_session = row
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        _touch(row, now)
    return user


def _touch(row: UserSession, now) -> None:
    """Note the activity on a connection of its own: the request's transaction belongs to its view."""
    values = {"last_seen_at": now}
    if row.remember_hash is None:
        values["expires_at"] = now + _idle_lifetime()
    with db.engine.begin() as connection:
        connection.execute(update(UserSession).where(UserSession.id == row.id).values(**values))


def restore_remembered_session() -> None:
    """Before each request: a browser without a session but with a live remember-me cookie is logged back in to
    the same server-side session, with both keys replaced (the cookie just used is dead from now on)."""
    remember_key = request.cookies.get(current_app.config["REMEMBER_COOKIE_NAME"])
    if not remember_key or len(remember_key) > 100 or request.endpoint == "static" or "_user_id" in session:
        return  # a page's stylesheet must not race the page for the one rotation
    now = utcnow()
    found = db.session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.remember_hash == _hash(remember_key), UserSession.expires_at > now)).first()
    if found is None:
        # Left in place: a dead cookie finds nothing again; deleting it could delete a fresh one that a
        # concurrent request of the same browser just received.
        return
    row, user = found
    key, new_remember_key = _new_key(), _new_key()
    rotated = db.session.execute(
        update(UserSession).where(UserSession.id == row.id, UserSession.remember_hash == _hash(remember_key))
        .values(key_hash=_hash(key), remember_hash=_hash(new_remember_key), last_seen_at=now)).rowcount
    db.session.commit()
    if rotated != 1:
        return  # another request rotated it first
    _enter(user, row, key, fresh=False)
    _set_remember_cookie_after_request(new_remember_key, row)


def _set_remember_cookie_after_request(remember_key: str | None, row: UserSession) -> None:
    config = current_app.config

    @after_this_request
    def set_cookie(response):
        if remember_key is None:
            _delete_remember_cookie(response)
        else:
            response.set_cookie(config["REMEMBER_COOKIE_NAME"], remember_key, expires=row.expires_at, path="/",
                                secure=config["REMEMBER_COOKIE_SECURE"], httponly=True,
                                samesite=config["REMEMBER_COOKIE_SAMESITE"])
        return response


def _delete_remember_cookie(response) -> None:
    config = current_app.config
    if config["REMEMBER_COOKIE_NAME"] in request.cookies:
        response.delete_cookie(config["REMEMBER_COOKIE_NAME"], path="/", secure=config["REMEMBER_COOKIE_SECURE"],
                               httponly=True, samesite=config["REMEMBER_COOKIE_SAMESITE"])


def log_out(user: User) -> None:
    """End this browser's session on the server, and its cookies."""
    if user.current_session is not None:
        db.session.execute(delete(UserSession).where(UserSession.id == user.current_session.id))
        db.session.commit()
    logout_user()
    session.clear()

    @after_this_request
    def forget(response):
        _delete_remember_cookie(response)
        return response


def end_other_sessions(user: User) -> int:
    """End every session of `user` but this browser's (and their remember-me cookies). Returns how many."""
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if user.current_session is not None:
        statement = statement.where(UserSession.id != user.current_session.id)
    ended = db.session.execute(statement).rowcount
    db.session.commit()
    return ended


def live_sessions(user: User) -> list[UserSession]:
    return list(db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.expires_at > utcnow()).order_by(UserSession.last_seen_at.desc())))
