import secrets
import uuid
from datetime import datetime

from sqlalchemy import String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow


def new_public_id() -> str:
    return str(uuid.uuid4())


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Workspace(db.Model):
    """The tenant: one business."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_public_id)
    name: Mapped[str] = mapped_column(String(120))
    webhook_secret: Mapped[str] = mapped_column(EncryptedText, default=new_webhook_secret)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    # ISO 3166 region used to read phone numbers written without a country code.
    country: Mapped[str] = mapped_column(String(2), default="RU")
    # Origins allowed to post leads, one per line; empty means any.
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    duplicate_window_hours: Mapped[int] = mapped_column(default=24)
    deal_name_template: Mapped[str] = mapped_column(String(200), default="Lead: {campaign}")
    # Visits older than this many days are pruned (portal.models.visit); leads keep their own tags.
    visit_retention_days: Mapped[int] = mapped_column(default=395, server_default="395")
    # The hour of the day (the workspace's time zone) at which ad spend is imported from ad accounts.
    ad_import_hour: Mapped[int] = mapped_column(default=6, server_default="6")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The setup checklist (portal.onboarding): when the snippet first ran on a site, when the owner hid the list.
    snippet_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    onboarding_dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Workspace {self.id}>"


@event.listens_for(Workspace, "init")
def _public_id_and_secret_when_made(_workspace, _args, kwargs) -> None:
    """Set when the object is made, not at INSERT: the webhook secret is sealed for the workspace's public id
    before its row exists (portal.crypto)."""
    kwargs.setdefault("public_id", new_public_id())
    kwargs.setdefault("webhook_secret", new_webhook_secret())


class ApiToken(TenantOwned, db.Model):
    """A read-only API token (Bearer); only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
