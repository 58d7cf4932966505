from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow


class AdSpend(TenantOwned, db.Model):
    """Money spent on one day for one source / medium / campaign."""

    __tablename__ = "ad_spend"
    __table_args__ = (
        UniqueConstraint("workspace_id", "date", "utm_source", "utm_medium", "utm_campaign"),
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
