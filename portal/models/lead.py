from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import JSONDocument, UTCDateTime, utcnow

# sync_status
PENDING = "pending"
SYNCED = "synced"
FAILED = "failed"
SKIPPED = "skipped"  # spam or a repeat: stored, never pushed

# unsorted_state: where a lead delivered to amoCRM's Unsorted stands (None for a lead delivered as a deal)
UNSORTED_WAITING = "waiting"
UNSORTED_ACCEPTED = "accepted"
UNSORTED_DECLINED = "declined"

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_ID_KEYS = ("gclid", "yclid", "fbclid")


class Lead(TenantOwned, db.Model):
    """One form submission: who, its last-touch and first-touch attribution, and its way into amoCRM."""

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_leads_workspace_created", "workspace_id", "created_at", "id"),
        # The push claims a workspace's pending leads in id order: this index gives them in that order, so a
        # claim reads ~50 entries (ordered by next_attempt_at, plans walked the primary key past every lead).
        Index("ix_leads_workspace_sync", "workspace_id", "sync_status", "id"),
        Index("ix_leads_workspace_utm", "workspace_id", "utm_source", "utm_medium", "utm_campaign"),
        Index("ix_leads_workspace_phone", "workspace_id", "phone"),
        Index("ix_leads_workspace_email", "workspace_id", "email"),
        Index("ix_leads_workspace_deal", "workspace_id", "amocrm_lead_id"),
        Index("ix_leads_workspace_visitor", "workspace_id", "visitor_id",
              postgresql_where=text("visitor_id IS NOT NULL"), sqlite_where=text("visitor_id IS NOT NULL")),
        # Only repeats point at a lead (ON DELETE SET NULL looks them up): the others need no entry.
        Index("ix_leads_duplicate_of_id", "duplicate_of_id", postgresql_where=text("duplicate_of_id IS NOT NULL"),
              sqlite_where=text("duplicate_of_id IS NOT NULL")),
        # Deal reads look for the workspace's leads still waiting in Unsorted; most leads never go there.
        Index("ix_leads_workspace_unsorted", "workspace_id", "unsorted_state",
              postgresql_where=text("unsorted_state IS NOT NULL"), sqlite_where=text("unsorted_state IS NOT NULL")),
    )

    # Not indexed alone (as TenantOwned would): every index above starts with it, and each index costs every INSERT.
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    message: Mapped[str] = mapped_column(Text, default="")

    # Last touch (the visit that submitted, or the last non-direct visit before it)
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

    # First touch, as the snippet remembered it
    first_utm_source: Mapped[str | None] = mapped_column(String(200))
    first_utm_medium: Mapped[str | None] = mapped_column(String(200))
    first_utm_campaign: Mapped[str | None] = mapped_column(String(200))
    first_utm_term: Mapped[str | None] = mapped_column(String(200))
    first_utm_content: Mapped[str | None] = mapped_column(String(200))
    first_referrer: Mapped[str | None] = mapped_column(String(2000))
    first_landing_page: Mapped[str | None] = mapped_column(String(2000))
    first_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # The snippet's first-party visitor id and the visit the form was sent in (portal.models.visit).
    visitor_id: Mapped[str | None] = mapped_column(String(36))
    visit_id: Mapped[str | None] = mapped_column(String(36))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # sha256 of the normalised submission the key came with: the same key with another body is refused.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    is_spam: Mapped[bool] = mapped_column(default=False)
    # Made by Settings → amoCRM → "Send a test lead": pushed like any lead, left out of reports and the dashboard.
    is_test: Mapped[bool] = mapped_column(server_default=text("false"))  # a server default only, as deal_merged
    # A repeat from the same phone or e-mail within the duplicate window points at the first lead.
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))

    sync_status: Mapped[str] = mapped_column(String(16), default=PENDING)
    sync_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The batch tag of the last push request whose outcome is unknown: its deals are looked for before resending.
    push_batch: Mapped[str | None] = mapped_column(String(32))
    # When the first request carrying that tag left: the deals list is read back to here to find its deals.
    push_batch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amocrm_lead_id: Mapped[int | None] = mapped_column(BigInteger)
    amocrm_contact_id: Mapped[int | None] = mapped_column(BigInteger)
    # amoCRM's duplicate control merged this lead into a deal that existed before it (`merged: true`): the lead
    # is linked to that deal, but the deal's revenue stays with whoever made it. A server default only: the
    # intake's INSERT writes every column with a Python default itself.
    deal_merged: Mapped[bool] = mapped_column(server_default=text("false"))
    # Delivered to Unsorted: the item's uid and where it stands (waiting, accepted, declined), settled from amoCRM's
    # reads of the lead (`portal.amocrm.unsorted`). The lead's deal id is amocrm_lead_id either way.
    unsorted_uid: Mapped[str | None] = mapped_column(String(64))
    unsorted_state: Mapped[str | None] = mapped_column(String(16))
    # The form's named fields beyond name, phone, e-mail and message ({name: text}, bounded by the intake), and the
    # amoCRM note that carries those not sent to a mapped custom field.
    extra_fields: Mapped[dict | None] = mapped_column(JSONDocument)
    extra_note_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Lead {self.id} {self.sync_status}>"
