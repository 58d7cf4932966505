from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow


class AdSpend(TenantOwned, db.Model):
    """Money spent on one day for one source / medium / campaign: typed or from CSV (no ad account; one row per
    day and tags), or imported from an ad account (one row per day and campaign, whatever its tags — two campaigns
    may share tags). `amount` is in the workspace's currency; an imported row keeps what the platform said in
    `original_amount` / `original_currency`."""

    __tablename__ = "ad_spend"
    __table_args__ = (
        Index("uq_ad_spend_manual", "workspace_id", "date", "utm_source", "utm_medium", "utm_campaign", unique=True,
              postgresql_where=text("ad_account_id IS NULL"), sqlite_where=text("ad_account_id IS NULL")),
        Index("uq_ad_spend_imported", "ad_account_id", "date", "campaign_id", unique=True,
              postgresql_where=text("ad_account_id IS NOT NULL"), sqlite_where=text("ad_account_id IS NOT NULL")),
        Index("ix_ad_spend_workspace_utm", "workspace_id", "utm_source", "utm_medium", "utm_campaign"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[date] = mapped_column(Date)
    utm_source: Mapped[str] = mapped_column(String(200), default="")
    utm_medium: Mapped[str] = mapped_column(String(200), default="")
    utm_campaign: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Imported rows only
    ad_account_id: Mapped[int | None] = mapped_column(ForeignKey("ad_accounts.id", ondelete="CASCADE"))
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    campaign_name: Mapped[str | None] = mapped_column(String(255))
    original_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    original_currency: Mapped[str | None] = mapped_column(String(3))
    vat_included: Mapped[bool | None] = mapped_column(Boolean)

    @property
    def imported(self) -> bool:
        return self.ad_account_id is not None
