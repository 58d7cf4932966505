from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow


class OutboxMail(TenantOwned, db.Model):
    """An e-mail Leadpath owes someone: written in the transaction that decided to send it, delivered over SMTP
    by a job (portal.mail.outbox), kept after sending. A failed delivery stays here and is tried again, so no
    mail is lost to an SMTP outage or a lost job. The body carries one-time links: sealed at rest."""

    __tablename__ = "outbox_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # portal.mail.messages: password_reset, invite, verify_email
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Due for (another) delivery attempt from this moment; a sender claims the mail by moving it ahead.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class PasswordReset(db.Model):
    """A password-reset link: single-use, expiring; only the SHA-256 of its token is stored."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
