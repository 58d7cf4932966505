"""Jobs that talk to amoCRM about deals: re-read the pipelines, close a spam lead's deal as lost."""
import logging

from portal.amocrm import inbox as services
from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.connection import ConnectError, NotConnected
from portal.amocrm.connection import refresh_pipelines as read_pipelines

log = logging.getLogger(__name__)


def refresh_pipelines(workspace_id: int) -> bool:
    """Store the workspace's pipelines again (a webhook named a pipeline or status we did not know)."""
    try:
        read_pipelines(workspace_id)
    except ConnectError as exc:
        log.warning("pipelines of workspace %s not refreshed: %s", workspace_id, exc)
        return False
    return True


def close_spam_deal(workspace_id: int, lead_id: int) -> str:
    """PATCH the deal of a lead marked as spam to lost (143) in its pipeline. Idempotent; see
    `services.close_spam_deal`."""
    try:
        return services.close_spam_deal(workspace_id, lead_id)
    except NotConnected:
        log.warning("deal of spam lead %s not closed: amoCRM is not connected", lead_id)
        return "not_connected"
    except AmoCRMError:
        raise  # recorded in the sync log by the service; RQ's Retry tries again
