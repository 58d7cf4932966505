from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow

OPEN = "open"
WON = "won"
LOST = "lost"
WON_STATUS_ID = 142
LOST_STATUS_ID = 143


def state_for_status(status_id: int | None) -> str:
    return {WON_STATUS_ID: WON, LOST_STATUS_ID: LOST}.get(status_id, OPEN)


class Deal(TenantOwned, db.Model):
    """An amoCRM deal as amoCRM last showed it (webhook or API read): open, won or lost."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "amocrm_lead_id"),
        Index("ix_deals_workspace_closed", "workspace_id", "closed_at"),
        Index("ix_deals_workspace_created", "workspace_id", "created_at"),
        Index("ix_deals_workspace_utm", "workspace_id", "utm_source", "utm_medium", "utm_campaign"),
        Index("ix_deals_workspace_contact", "workspace_id", "amocrm_contact_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    amocrm_lead_id: Mapped[int] = mapped_column(BigInteger)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    pipeline_id: Mapped[int | None] = mapped_column(BigInteger)
    status_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(8), default=OPEN)
    # The deal's main contact in amoCRM (`_embedded.contacts`, is_main), as amoCRM last showed it: which of a
    # customer's deals came first (repeat sales). None: amoCRM has not said (or the deal has no contact).
    amocrm_contact_id: Mapped[int | None] = mapped_column(BigInteger)
    # "n" the contact's first deal (or no contact), "r" a later one: kept by the PostgreSQL rollup triggers
    # (portal.reports.rollup_sql) so a deal's report rows move when an earlier deal arrives; never set in Python.
    sale_kind: Mapped[str] = mapped_column(String(1), server_default="n")
    # A repeat deal not from our form: the lead of its contact's first deal, whose tags it is reported under (kept
    # by the same triggers). None otherwise.
    origin_lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted: Mapped[bool] = mapped_column(default=False)
    # amoCRM's own updated_at / last_modified (unix seconds): an older event never overwrites a newer one.
    amocrm_updated_at: Mapped[int] = mapped_column(BigInteger, default=0)
    # From the deal's tracking fields, for deals that did not come from our form.
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

