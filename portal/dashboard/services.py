"""The home page: the period's leads, won deals, revenue, spend and ROI against the previous period of the same
length, and sync / webhook health at a glance."""
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, SyncLogEntry, WebhookEvent
from portal.models.activity import FAILED as EVENT_FAILED
from portal.models.activity import RECEIVED
from portal.models.lead import FAILED, PENDING
from portal.models.types import utcnow
from portal.reports.periods import Period
from portal.reports.services import SeriesPoint, bucket_for, over_time


@dataclass
class PeriodFigures:
    leads: int
    won: int
    revenue: Decimal
    spend: Decimal
    series: list[SeriesPoint] = field(default_factory=list)  # per bucket: the charts, which add up to the tiles
    bucket: str = "day"

    @property
    def roi(self) -> Decimal | None:
        return (self.revenue - self.spend) / self.spend * 100 if self.spend else None


def period_figures(workspace_id: int, period: Period) -> PeriodFigures:
    """Leads created in the period (no spam, no repeats); deals won in it; spend dated in it. Read from the
    reports' rollups, so the numbers match the ROI report (basis "deal closed")."""
    bucket = bucket_for(period)
    series = over_time(workspace_id, "last", period, bucket)
    return PeriodFigures(sum(point.leads for point in series), sum(point.won for point in series),
                         sum((point.revenue for point in series), Decimal(0)),
                         sum((point.spend for point in series), Decimal(0)), series, bucket)


def change_percent(current, previous) -> Decimal | None:
    if current is None or previous is None or not previous:
        return None
    return (Decimal(current) - Decimal(previous)) / abs(Decimal(previous)) * 100


@dataclass
class Health:
    pending: int
    failed: int
    connection_status: str | None
    last_sync_at: object
    last_webhook_at: object
    sync_errors_24h: int
    webhooks_failed_24h: int
    webhooks_waiting: int


def health(workspace_id: int) -> Health:
    since = utcnow() - timedelta(hours=24)
    # A test lead ("Send a test lead") reports on itself in Settings → amoCRM; it is no lead waiting or failing.
    counts = dict(db.session.execute(select(Lead.sync_status, func.count()).where(
        Lead.workspace_id == workspace_id, Lead.sync_status.in_((PENDING, FAILED)), Lead.is_test.is_(False))
        .group_by(Lead.sync_status)).all())
    connection = db.session.execute(select(AmoCRMConnection.status, AmoCRMConnection.last_sync_at,
                                           AmoCRMConnection.last_webhook_at)
                                    .where(AmoCRMConnection.workspace_id == workspace_id)).first()
    sync_errors = db.session.scalar(select(func.count()).select_from(SyncLogEntry).where(
        SyncLogEntry.workspace_id == workspace_id, SyncLogEntry.created_at >= since, SyncLogEntry.outcome == "error"))
    webhook_counts = dict(db.session.execute(select(WebhookEvent.status, func.count()).where(
        WebhookEvent.workspace_id == workspace_id, WebhookEvent.received_at >= since,
        WebhookEvent.status.in_((EVENT_FAILED, RECEIVED))).group_by(WebhookEvent.status)).all())
    return Health(counts.get(PENDING, 0), counts.get(FAILED, 0), connection[0] if connection else None,
                  connection[1] if connection else None, connection[2] if connection else None, sync_errors or 0,
                  webhook_counts.get(EVENT_FAILED, 0), webhook_counts.get(RECEIVED, 0))


def dashboard(workspace_id: int, period: Period) -> dict:
    current = period_figures(workspace_id, period)
    previous = period_figures(workspace_id, period.previous())
    tiles = [
        (_("Leads"), current.leads, change_percent(current.leads, previous.leads), "count"),
        (_("Won deals"), current.won, change_percent(current.won, previous.won), "count"),
        (_("Revenue"), current.revenue, change_percent(current.revenue, previous.revenue), "money"),
        (_("Ad spend"), current.spend, change_percent(current.spend, previous.spend), "money"),
        ("ROI", current.roi, (current.roi - previous.roi) if current.roi is not None and previous.roi is not None
         else None, "percent"),
    ]
    return {"period": period, "previous": period.previous(), "current": current, "previous_figures": previous,
            "tiles": tiles, "health": health(workspace_id)}
