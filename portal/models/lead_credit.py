from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime

# The weight columns, one per attribution model (portal.reports.attribution.MODELS), in millionths.
CREDIT_WEIGHTS = {"first": "weight_first", "last": "weight_last", "last_non_direct": "weight_last_non_direct",
                  "linear": "weight_linear", "u_shaped": "weight_u_shaped", "time_decay": "weight_time_decay"}


class LeadCredit(db.Model):
    """One touch of an attributed lead's chain and the share of the lead each model gives it.

    Written by portal.reports.credits.attribute_lead only (it moves the lead's rollup rows in the same
    transaction). The tags are copied from the visit (or the lead), normalised as the report groups them, so a
    visit pruned by retention leaves its leads' credit in place. A lead without rows is not attributed yet and
    counts under its own touches (see portal.reports.credit_sql)."""

    __tablename__ = "lead_credits"
    __table_args__ = (UniqueConstraint("lead_id", "position", name="uq_lead_credits_lead_position"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)
    # The chain's visit; None: the lead's own tags stand for it (its visit had not arrived, or it has no visitor).
    visit_id: Mapped[str | None] = mapped_column(String(36))
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    direct: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(200))
    medium: Mapped[str] = mapped_column(String(200))
    campaign: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(String(200))
    term: Mapped[str] = mapped_column(String(200))
    landing_path: Mapped[str] = mapped_column(String(200))
    referrer_domain: Mapped[str] = mapped_column(String(200))
    weight_first: Mapped[int] = mapped_column(Integer)
    weight_last: Mapped[int] = mapped_column(Integer)
    weight_last_non_direct: Mapped[int] = mapped_column(Integer)
    weight_linear: Mapped[int] = mapped_column(Integer)
    weight_u_shaped: Mapped[int] = mapped_column(Integer)
    weight_time_decay: Mapped[int] = mapped_column(Integer)

    def weight(self, model: str) -> int:
        return getattr(self, CREDIT_WEIGHTS[model])
