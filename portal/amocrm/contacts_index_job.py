"""The job that builds a workspace's contacts index at connect (`portal.amocrm.contacts_index`)."""
import logging

from sqlalchemy import select

from portal.amocrm.contacts_index import index_contacts
from portal.amocrm.errors import AmoCRMError
from portal.connection.services import NotConnected, client_for
from portal.extensions import db
from portal.models import AmoCRMConnection
from portal.models.amocrm import CONNECTED

log = logging.getLogger(__name__)


def build_contacts_index(workspace_id: int) -> dict:
    """The job run at connect: every contact of the account into the index. Idempotent; safe to run again."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None or connection.status != CONNECTED:
        db.session.rollback()
        return {"skipped": "not connected"}
    try:
        client = client_for(workspace_id)
    except NotConnected:
        return {"skipped": "not connected"}
    db.session.rollback()
    try:
        read = index_contacts(workspace_id, client.contact_pages())
    except AmoCRMError:
        db.session.rollback()
        log.warning("the contacts index of workspace %s could not be built; reconciliation fills it", workspace_id)
        raise
    log.info("contacts index of workspace %s built from %d contacts", workspace_id, read)
    return {"contacts": read}
