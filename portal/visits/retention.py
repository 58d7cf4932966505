"""How long a workspace keeps its visits (Settings → Workspace), and the daily job that deletes older ones.

Deleting is done in batches of PRUNE_BATCH rows, each its own short transaction (found by the
(workspace_id, started_at) index, deleted by primary key): a workspace with millions of old visits never holds
locks for long, and a job stopped halfway leaves the rest for the next run.
"""
import logging
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, select

from portal.extensions import db
from portal.models import Visit, Workspace
from portal.models.types import utcnow

log = logging.getLogger(__name__)

MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 30, 1095  # a month; three years
PRUNE_BATCH = 5000
PRUNE_EVERY_SECONDS = 24 * 3600


class RetentionInvalid(ValueError):
    pass


def check_retention_days(days: int | None) -> int:
    """The number of days when it is within the allowed range, else RetentionInvalid with a message to show."""
    if days is None or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise RetentionInvalid(_("Keep visits for %(min)s to %(max)s days.", min=MIN_RETENTION_DAYS,
                                 max=MAX_RETENTION_DAYS))
    return days


def prune_visits() -> int:
    """Daily job: delete each workspace's visits that started more than its `visit_retention_days` ago. Returns
    the number deleted."""
    now = utcnow()
    workspaces = db.session.execute(select(Workspace.id, Workspace.visit_retention_days)).all()
    db.session.rollback()
    total = 0
    for workspace_id, days in workspaces:
        total += prune_workspace_visits(workspace_id, now - timedelta(days=days))
    if total:
        log.info("Pruned %s visits past their workspaces' retention", total)
    return total


def prune_workspace_visits(workspace_id: int, cutoff, batch: int = PRUNE_BATCH) -> int:
    """Delete the workspace's visits started before `cutoff`, `batch` rows per transaction."""
    deleted = 0
    while True:
        oldest = (select(Visit.id).where(Visit.workspace_id == workspace_id, Visit.started_at < cutoff)
                  .limit(batch).scalar_subquery())
        count = db.session.execute(delete(Visit).where(Visit.id.in_(oldest))).rowcount
        db.session.commit()
        deleted += count
        if count < batch:
            return deleted
