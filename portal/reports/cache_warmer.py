"""Keeping the report cache warm. Cached days expire (so writes made outside the ORM show up eventually); without
this job the first report after they expire — or after a deploy or a Redis restart — would compute a year of a
large workspace while the marketer waits. The scheduler runs it on start and every WARM_EVERY_SECONDS, below the
cache's lifetime, recomputing each active workspace's recent days in the background."""
from datetime import timedelta

from sqlalchemy import select, union

from portal.extensions import db
from portal.jobs.queues import DEFAULT, PendingJob, send
from portal.models import Deal, Lead, Workspace
from portal.models.types import utcnow
from portal.reports.periods import today_in
from portal.reports.rollups import CACHE_TTL_SECONDS, refresh_days
from portal.reports.services import ATTRIBUTIONS

WARM_DAYS = 400  # a full-year report and its previous-period comparison
WARM_EVERY_SECONDS = CACHE_TTL_SECONDS * 2 // 3


def warm_report_caches() -> int:
    """One warm-up job per workspace with leads or deals in the warmed span. Returns how many."""
    since = utcnow() - timedelta(days=WARM_DAYS)
    active = union(select(Lead.workspace_id).where(Lead.created_at >= since),
                   select(Deal.workspace_id).where(Deal.updated_at >= since))
    workspace_ids = db.session.scalars(select(active.subquery().c.workspace_id)).all()
    for workspace_id in workspace_ids:
        send(PendingJob(DEFAULT, "portal.reports.cache_warmer.warm_workspace", (workspace_id,),
                        job_id=f"warm-reports-{workspace_id}"))
    return len(workspace_ids)


def warm_workspace(workspace_id: int) -> int:
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None:
        return 0
    today = today_in(workspace.timezone)
    return sum(refresh_days(workspace_id, attribution, workspace.timezone, today - timedelta(days=WARM_DAYS),
                            today, today) for attribution in ATTRIBUTIONS)
