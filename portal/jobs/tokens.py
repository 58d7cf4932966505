"""Keep idle amoCRM connections alive: a refresh token unused for about 3 months (one report says 30 days)
dies, so connections not refreshed for 7 days are refreshed on a schedule."""
import logging
from datetime import timedelta

from sqlalchemy import func, select

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.token_provider import LONG_LIVED, ConnectionTokens, NotConnected
from portal.extensions import db
from portal.jobs.queues import DEFAULT
from portal.jobs.scheduler import every
from portal.models import AmoCRMConnection
from portal.models.amocrm import CONNECTED
from portal.models.types import utcnow

IDLE_AFTER = timedelta(days=7)

log = logging.getLogger(__name__)


def refresh_idle_connections() -> dict:
    """Refresh every OAuth connection whose last refresh is older than 7 days. Each refresh takes the
    workspace's lock, so it cannot race the workers. A refused refresh marks that connection needs_reauth."""
    cutoff = utcnow() - IDLE_AFTER
    workspace_ids = db.session.scalars(select(AmoCRMConnection.workspace_id).where(
        AmoCRMConnection.status == CONNECTED, AmoCRMConnection.auth_type != LONG_LIVED,
        func.coalesce(AmoCRMConnection.last_refresh_at, AmoCRMConnection.connected_at) < cutoff)).all()
    db.session.rollback()  # end the read; each refresh runs in its own transaction
    outcome = {"refreshed": 0, "failed": 0}
    for workspace_id in workspace_ids:
        try:
            ConnectionTokens(workspace_id).force_refresh()
            outcome["refreshed"] += 1
        except (AmoCRMError, NotConnected) as exc:
            outcome["failed"] += 1
            log.warning("idle amoCRM connection of workspace %s not refreshed: %s", workspace_id,
                        exc.__class__.__name__)
    return outcome


every(6 * 3600, DEFAULT, "portal.jobs.tokens.refresh_idle_connections")
