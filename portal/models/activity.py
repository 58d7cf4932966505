"""What happened between Leadpath and amoCRM: received webhooks and the sync log."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import JSONDocument, UTCDateTime, utcnow

RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"
IGNORED = "ignored"


class WebhookEvent(TenantOwned, db.Model):
    """A raw amoCRM webhook body, stored before it is acknowledged and processed by a job."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_dedupe", "workspace_id", "body_sha256", "received_at"),
        Index("ix_webhook_events_status", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body_sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(16), default=RECEIVED)
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # What could not be read of the body (a repeated key, a key both value and group, a deal without a usable
    # id…) and the body as received: kept, flagged, and processed as far as it could be read.
    unreadable: Mapped[dict | None] = mapped_column(JSONDocument)


class WebhookReceipt(db.Model):
    """The claim of one webhook body in its workspace: concurrent deliveries of the same body race for this row
    (INSERT … ON CONFLICT), so exactly one of them stores an event. Taken again when the body comes back after
    the dedupe window."""

    __tablename__ = "webhook_receipts"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SyncLogEntry(TenantOwned, db.Model):
    """One amoCRM call or processed webhook; request and response are stored masked."""

    __tablename__ = "amocrm_sync_log"
    __table_args__ = (Index("ix_amocrm_sync_log_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    direction: Mapped[str] = mapped_column(String(8))  # outbound | inbound
    operation: Mapped[str] = mapped_column(String(120))
    lead_ids: Mapped[list | None] = mapped_column(JSONDocument)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | error | retry
    http_status: Mapped[int | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column()
    request: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(64))
