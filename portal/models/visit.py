import re
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import UTCDateTime, utcnow

# device: the class the snippet reads off the screen and the user agent
DESKTOP = "desktop"
MOBILE = "mobile"
TABLET = "tablet"
DEVICE_CLASSES = (DESKTOP, MOBILE, TABLET)

# Visitor and visit ids as the snippet makes them: 32 hex digits (128 random bits), or a UUID written with hyphens
# (a site's own ids). Stored in lower case; anything else is refused, so an id is never a place for other data.
ID_PATTERN = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ID_FORMAT_MESSAGE = "Must be 32 hexadecimal digits or a UUID."


def visit_id_or_none(value) -> str | None:
    """The id in lower case when it has the format, else None (a value of another type included)."""
    if not isinstance(value, str) or len(value) > 36:
        return None
    value = value.lower()
    return value if ID_PATTERN.fullmatch(value) else None


class Visit(TenantOwned, db.Model):
    """One arrival of a visitor with a source: new tags, a click id or an external referrer, or a return after
    30 minutes idle. The snippet numbers visits (visit_id) and visitors (a first-party visitor_id); a lead carries
    its visitor_id, so a lead's chain of visits is the visitor's visits up to the lead."""

    __tablename__ = "visits"
    __table_args__ = (
        # One row per visit whatever the snippet resends (a beacon and its fallback, a retry).
        UniqueConstraint("workspace_id", "visit_id", name="uq_visits_workspace_visit"),
        # A lead's chain: its visitor's visits in time order.
        Index("ix_visits_workspace_visitor_started", "workspace_id", "visitor_id", "started_at"),
        # Reports by day and retention's pruning.
        Index("ix_visits_workspace_started", "workspace_id", "started_at"),
    )

    # Not indexed alone: every index above starts with it.
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(db.Integer, "sqlite"), primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(36))
    visit_id: Mapped[str] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    gclid: Mapped[str | None] = mapped_column(String(200))
    yclid: Mapped[str | None] = mapped_column(String(200))
    fbclid: Mapped[str | None] = mapped_column(String(200))
    referrer: Mapped[str | None] = mapped_column(String(2000))
    landing_page: Mapped[str | None] = mapped_column(String(2000))
    device: Mapped[str | None] = mapped_column(String(8))
    # No raw IP is kept: a hash of it with a salt that changes every day (portal.visits.beacon.ip_hash).
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
