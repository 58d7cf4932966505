"""Reading deals back from amoCRM before their state or money is written.

amoCRM's account webhooks carry no signature: anyone holding a workspace's webhook URL can post a body saying a
deal was won for any price. So a webhook only says *which* deals changed; what they hold now is read from the
API (`GET /api/v4/leads?filter[id][]=…`, up to 100 deals per call, through the workspace's shared rate limiter).
A forged body can at most cause a re-read.
"""
from collections.abc import Iterable

from portal.amocrm.api.webhook_bodies import DealSnapshot, deal_from_api
from portal.amocrm.connection import client_for
from portal.extensions import db


def read_deals(workspace_id: int, deal_ids: Iterable[int]) -> dict[int, DealSnapshot]:
    """{deal id: the deal as amoCRM holds it now} for every id asked; a deal amoCRM no longer has (deleted, or
    never existed) is a `delete` snapshot. No transaction stays open across the calls.

    Raises NotConnected (no usable connection) and the errors of `portal.amocrm.api.errors`."""
    wanted = set(deal_ids)
    if not wanted:
        return {}
    client = client_for(workspace_id)
    db.session.rollback()
    snapshots: dict[int, DealSnapshot] = {}
    for deal_id, lead in client.get_leads_by_id(wanted).items():
        if lead is None:
            snapshots[deal_id] = DealSnapshot(deal_id, action="delete", is_deleted=True)
            continue
        try:
            snapshots[deal_id] = deal_from_api(lead)
        except ValueError:  # an answer we cannot read says nothing: the deal is left as it is
            continue
    return snapshots
