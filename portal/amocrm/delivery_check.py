"""Settings → amoCRM → "Send a test lead": one lead marked `is_test`, named "Leadpath test lead", pushed through the
normal path (committed pending, then the `push_leads` job), so the owner sees a deal appear in amoCRM or the reason
it did not. Test leads are left out of reports and the dashboard (`portal.reports.rollups`).
"""
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from portal.amocrm.api.payloads import TEST_DEAL_NAME
from portal.amocrm.connection import ConnectError, account_link, connection_of
from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.models import Lead
from portal.models.amocrm import CONNECTED
from portal.models.lead import FAILED, PENDING, SYNCED

TEST_SOURCE, TEST_MEDIUM = "leadpath", "test"


@dataclass(frozen=True)
class DeliveryCheck:
    """What became of the newest test lead: `state` is pending, synced or failed."""

    lead: Lead
    state: str
    deal_id: int | None
    deal_url: str | None
    error: str | None
    advice: str | None


def send_test_lead(workspace_id: int) -> Lead:
    """Store a test lead and schedule the push. Raises ConnectError when there is nowhere to send it."""
    connection = connection_of(workspace_id)
    if connection is None or connection.status != CONNECTED:
        raise ConnectError(_("Connect amoCRM first: a test lead needs somewhere to go."))
    lead = Lead(workspace_id=workspace_id, name=TEST_DEAL_NAME, is_test=True, sync_status=PENDING,
                utm_source=TEST_SOURCE, utm_medium=TEST_MEDIUM,
                message=_("Sent from Leadpath's Settings → amoCRM to check delivery. You can delete this deal."))
    db.session.add(lead)
    db.session.commit()  # the push job reads the row: scheduled only once it is committed
    schedule_push(workspace_id)
    return lead


def latest_test_lead(workspace_id: int) -> DeliveryCheck | None:
    """The newest test lead of the workspace and what became of it, for the settings page."""
    lead = db.session.scalar(select(Lead).where(Lead.workspace_id == workspace_id, Lead.is_test.is_(True))
                             .order_by(Lead.id.desc()).limit(1))
    if lead is None:
        return None
    if lead.sync_status == SYNCED and lead.amocrm_lead_id:
        url = account_link(connection_of(workspace_id), f"/leads/detail/{lead.amocrm_lead_id}")
        return DeliveryCheck(lead, SYNCED, lead.amocrm_lead_id, url, None, None)
    if lead.sync_status == FAILED:
        return DeliveryCheck(lead, FAILED, None, None, lead.last_error,
                              _("Fix what amoCRM says above (rights of the connected user, the pipeline, a required "
                                "field), then send another test lead. If the connection is broken, reconnect."))
    advice = None
    if lead.last_error:
        advice = _("amoCRM did not take it yet; Leadpath tries again by itself. Reload this page in a minute.")
    elif not _connected(workspace_id):
        advice = _("amoCRM is not connected, so the test lead waits. Connect again to send it.")
    return DeliveryCheck(lead, PENDING, None, None, lead.last_error, advice)


def _connected(workspace_id: int) -> bool:
    connection = connection_of(workspace_id)
    return connection is not None and connection.status == CONNECTED
