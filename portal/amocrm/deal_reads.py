"""Reading deals back from amoCRM before their state or money is written.

amoCRM's account webhooks carry no signature: anyone holding a workspace's webhook URL can post a body saying a
deal was won for any price. So a webhook only says *which* deals changed; what they hold now is read from the
API (`GET /api/v4/leads?filter[id][]=…`, up to 100 deals per call, through the workspace's shared rate limiter).
A forged body can at most cause a re-read.

API filtering is a per-account feature: an account without it ignores `filter[id][]` and answers its unfiltered
list. The client notices (leads not asked for come back) and looks for the deals among the account's recently
updated ones instead, a page of 250 per call (`AmoCRMClient.get_leads_by_id`). That an account ignores filters is
remembered here for FILTERS_IGNORED_TTL, so the next batches page at once without a wasted filtered call; the
expiry lets an account that gains the feature be noticed.
"""
from collections.abc import Iterable

from redis.exceptions import RedisError
from sqlalchemy import select

from portal.amocrm.api.webhook_bodies import DealSnapshot, deal_from_api
from portal.amocrm.connection import client_for
from portal.extensions import db, redis_connection
from portal.models import AmoCRMConnection

FILTERS_IGNORED_TTL = 3600  # seconds


def read_deals(workspace_id: int, deal_ids: Iterable[int], changed_since: int | None = None
               ) -> dict[int, DealSnapshot]:
    """{deal id: the deal as amoCRM holds it now} for every id asked; a deal amoCRM no longer has (deleted, or
    never existed) is a `delete` snapshot. `changed_since` (unix seconds, amoCRM's clock) is the oldest change
    the caller is after: on an account without list filters, recently updated deals are looked through down to it
    (the ids not found by then are read one by one). No transaction stays open across the calls.

    Raises NotConnected (no usable connection) and the errors of `portal.amocrm.api.errors`."""
    wanted = set(deal_ids)
    if not wanted:
        return {}
    client = client_for(workspace_id)
    cache_key = _filters_ignored_key(workspace_id)
    db.session.rollback()
    known_ignored = _known_to_ignore_filters(cache_key)
    answer = client.get_leads_by_id(wanted, changed_since=changed_since, filters_ignored=known_ignored)
    if answer.filters_ignored and not known_ignored:
        _remember_filters_ignored(cache_key)
    snapshots: dict[int, DealSnapshot] = {}
    for deal_id, lead in answer.leads.items():
        if lead is None:
            snapshots[deal_id] = DealSnapshot(deal_id, action="delete", is_deleted=True)
            continue
        try:
            snapshots[deal_id] = deal_from_api(lead)
        except ValueError:  # an answer we cannot read says nothing: the deal is left as it is
            continue
    return snapshots


def _filters_ignored_key(workspace_id: int) -> str:
    """Per amoCRM account (and integration, as the rate limiter keys it): a workspace reconnected to another
    account starts afresh."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    account = f"{connection.client_id}:{connection.amocrm_account_id}" if connection else f"workspace:{workspace_id}"
    return f"leadpath:amocrm-list-filters-ignored:{account}"


def _known_to_ignore_filters(key: str) -> bool:
    try:
        return bool(redis_connection.client.exists(key))
    except RedisError:  # unknown: one filtered call finds out again
        return False


def _remember_filters_ignored(key: str) -> None:
    try:
        redis_connection.client.set(key, "1", ex=FILTERS_IGNORED_TTL)
    except RedisError:
        pass
