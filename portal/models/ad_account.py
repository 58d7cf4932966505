"""Ad platform connections, the ad accounts they reach, per-campaign tag overrides and the import history.

A connection is one OAuth grant (one Yandex, VK or Google user) and holds its tokens, sealed for its row; an
agency's grant reaches many ad accounts. An ad account is what spend is imported from: its currency, how its
campaigns become tags, whether costs include VAT, and when it was last imported. Every import of a range of days
is a `spend_imports` row, so partial failures are retried by range and the history is shown to the owner.
"""
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import JSONDocument, UTCDateTime, utcnow

# Connection and account status
CONNECTED, REVOKED, DISCONNECTED = "connected", "revoked", "disconnected"
# How a campaign becomes utm_campaign
CAMPAIGN_BY_ID, CAMPAIGN_BY_NAME = "id", "name"
# Import runs
QUEUED, RUNNING, WAITING, DONE, FAILED = "queued", "running", "waiting", "done", "failed"
BACKFILL, DAILY, MANUAL, RETAG = "backfill", "daily", "manual", "retag"


class AdPlatformConnection(TenantOwned, db.Model):
    __tablename__ = "ad_platform_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedText)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=CONNECTED)
    last_error: Mapped[str | None] = mapped_column(Text)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdAccount(TenantOwned, db.Model):
    __tablename__ = "ad_accounts"
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_platform_connections.id", ondelete="SET NULL"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(100))  # Yandex login, VK user id, Google customer id
    manager_id: Mapped[str | None] = mapped_column(String(100))  # the agency / manager calls go through
    name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)  # chosen by the owner for import
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200), default="cpc")
    campaign_tag: Mapped[str] = mapped_column(String(8), default=CAMPAIGN_BY_ID)
    include_vat: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=CONNECTED)
    last_error: Mapped[str | None] = mapped_column(Text)  # the platform's own words (English), a secondary line
    # What went wrong, rendered in the viewer's language (portal.adplatforms.messages): a kind and its parameters
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_params: Mapped[dict | None] = mapped_column(JSONDocument)
    # The account's own tokens, when the connection's cannot read it (a VK Ads agency's or manager's client:
    # `account_tokens()` of the wire client); obtained once, refreshed under a row lock, sealed like the connection's
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedText)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_import_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_daily_on: Mapped[date | None] = mapped_column(Date)  # the workspace's day of the last daily import
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdCampaignTags(TenantOwned, db.Model):
    """The tags one campaign's spend gets instead of the account's defaults."""

    __tablename__ = "ad_campaign_tags"
    __table_args__ = (UniqueConstraint("ad_account_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ad_account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(String(64))
    utm_source: Mapped[str] = mapped_column(String(200))
    utm_medium: Mapped[str] = mapped_column(String(200))
    utm_campaign: Mapped[str] = mapped_column(String(200))


class SpendImport(TenantOwned, db.Model):
    """One import of an account's days first..last: queued, running, waiting (RetryLater), done or failed."""

    __tablename__ = "spend_imports"
    __table_args__ = (Index("ix_spend_imports_account_created", "ad_account_id", "created_at"),
                      Index("ix_spend_imports_status_retry", "status", "retry_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ad_account_id: Mapped[int] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    rows: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)  # the platform's own words (English), a secondary line
    error_kind: Mapped[str | None] = mapped_column(String(32))  # see AdAccount.error_kind
    error_params: Mapped[dict | None] = mapped_column(JSONDocument)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdOAuthState(TenantOwned, db.Model):
    """A single-use OAuth state for connecting an ad platform, bound to workspace, user and platform (hash only)."""

    __tablename__ = "ad_oauth_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
