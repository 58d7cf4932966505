from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow
from portal.models.workspace import Workspace
from portal.passwords import hash_password, verify_password

OWNER = "owner"
MEMBER = "member"


class User(UserMixin, TenantOwned, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language the user chose ("ru", "uk", "en"); None: follow the browser's Accept-Language.
    locale: Mapped[str | None] = mapped_column(String(8))
    # When the user opened the verification link sent to `email` (or joined by an invite sent there).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    workspace: Mapped[Workspace] = relationship(lazy="joined")
    # Deleted with the user by the ORM too, not only by ON DELETE CASCADE: SQLite (the demo) does not enforce
    # foreign keys and may give a later user the same id, who must not inherit these sessions.
    sessions: Mapped[list["UserSession"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # The browser session this object was loaded for (portal.auth.sessions sets it; not a column). Flask-Login
    # keeps get_id() in the session cookie: it is that session's key, so a session ended on the server is over
    # for every copy of the cookie.
    session_key = None
    current_session = None

    def get_id(self) -> str | None:
        return self.session_key

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)

    @property
    def is_owner(self) -> bool:
        return self.role == OWNER

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Invite(TenantOwned, db.Model):
    """A single-use, expiring link that lets a teammate join the workspace."""

    __tablename__ = "invites"
    # One open invite per address and workspace, held by the database: two owners inviting the same address at
    # the same moment cannot both leave a valid link (portal.auth.services.create_invite retries the loser).
    __table_args__ = (
        Index("uq_invites_open_per_address", "workspace_id", "email", unique=True,
              postgresql_where=text("used_at IS NULL AND revoked_at IS NULL"),
              sqlite_where=text("used_at IS NULL AND revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=MEMBER)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    workspace: Mapped[Workspace] = relationship(lazy="joined")


class UserSession(db.Model):
    """One logged-in browser: the server's record that the session cookie (and the remember-me cookie) point to.
    Only hashes of their random keys are stored; deleting the row logs that browser out."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="sessions")
