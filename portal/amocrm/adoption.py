"""Finding the deals that push requests with an unknown outcome created — without amoCRM's search.

A push request that timed out, lost its connection or got a 5xx/504 may have been applied. Before its leads are
sent again, the deals it may have made are looked for, and adopted when found.

Not by search: `query=` is documented as a full-text search over an entity's filled fields — not over tags, not
exact, not instant (a deal made a second ago may not be indexed yet). A guarantee cannot rest on it.

By the deals list, newest first (`order[created_at]=desc`, documented for every account, served without a search
index), read back to a little before the first request that carried the leads. Every item is checked here for our
markers, so an account that ignores list filters (it silently answers the unfiltered list) only costs more pages;
an account that ignores the order is read to the end.

The marker: the tags each deal is created with, which come back in every list item's `_embedded.tags` with no
`with=` and no setup — `lp-<lead id>` names the lead, `lpb-<batch>` the request that first carried it (a lead keeps
that batch tag on every resend until it is synced). A deal is the lead's only when it carries both; the batch tag is
random, so a manager's deal, or another installation's with the same lead id, never matches. Tags rather than a
custom field of our own created at connect: creating a field needs an administrator's rights (403 for anyone
else), spends one of the account's fields and is gone when someone deletes it, while the tags travel inside the
very request that creates the deal, so whatever amoCRM applied carries them.

Unsorted: an item whose request had an unknown outcome is looked for first among the form items waiting in Unsorted
(newest first, back to the same bound) by its `source_uid`, which names the lead and its batch; one a manager has
accepted since is a deal in the deals list with the same tags. One a manager declined in the meantime is gone (its
lead deleted) and is sent again — the one case the read cannot see (see docs/amocrm.md).

No Flask, no database: the push (`portal.amocrm.push`) stores what is found.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from portal.amocrm.api import payloads

# Our clock decides where the read stops, amoCRM's clock stamps created_at: read this much further back.
CLOCK_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class CreatedDeal:
    deal_id: int
    contact_id: int | None
    status_id: int | None = None
    uid: str | None = None  # the Unsorted item still waiting, when found there


def find_created_deals(client, wanted: Mapping[int, str], since: int) -> dict[int, CreatedDeal]:
    """The deals amoCRM made for the `wanted` leads (lead id → its batch), created no earlier than `since` (unix
    seconds: when the first request carrying any of them left) minus CLOCK_MARGIN_SECONDS. Newest first; stops as
    soon as every wanted lead is found. Raises the client's errors."""
    found: dict[int, CreatedDeal] = {}
    if not wanted:
        return found
    deals = client.iter_leads(created_from=since - CLOCK_MARGIN_SECONDS, newest_first_by="created_at",
                              with_=("contacts",))
    for deal in deals:
        lead_id = payloads.lead_id_from_tags(deal)
        if lead_id not in wanted or lead_id in found or not isinstance(deal.get("id"), int):
            continue
        if payloads.batch_tag(wanted[lead_id]) not in tag_names(deal):
            continue
        contacts = (deal.get("_embedded") or {}).get("contacts") or []
        contact_id = contacts[0].get("id") if contacts and isinstance(contacts[0], dict) else None
        status_id = deal.get("status_id")
        found[lead_id] = CreatedDeal(deal["id"], contact_id if isinstance(contact_id, int) else None,
                                     status_id if isinstance(status_id, int) else None)
        if len(found) == len(wanted):
            break
    return found


def tag_names(deal: dict) -> set[str]:
    tags = (deal.get("_embedded") or {}).get("tags") or []
    return {str(tag.get("name")) for tag in tags if isinstance(tag, dict)}


def find_waiting_unsorted(client, wanted: Mapping[int, str], since: int,
                          pipeline_id: int | None = None) -> dict[int, CreatedDeal]:
    """The form items waiting in Unsorted that requests for the `wanted` leads (lead id → its batch) made, by their
    `source_uid`, newest first back to `since` minus CLOCK_MARGIN_SECONDS. Raises the client's errors."""
    found: dict[int, CreatedDeal] = {}
    uids = {payloads.unsorted_source_uid(lead_id, batch): lead_id for lead_id, batch in wanted.items()}
    if not uids:
        return found
    for item in client.iter_unsorted_forms(pipeline_id=pipeline_id):
        created_at = item.get("created_at")
        if isinstance(created_at, int) and created_at < since - CLOCK_MARGIN_SECONDS:
            break
        lead_id = uids.get(item.get("source_uid"))
        if lead_id is None or lead_id in found:
            continue
        embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
        leads = [entry for entry in embedded.get("leads") or [] if isinstance(entry, dict)]
        contacts = [entry for entry in embedded.get("contacts") or [] if isinstance(entry, dict)]
        deal_id = leads[0].get("id") if leads else None
        if not isinstance(deal_id, int) or not isinstance(item.get("uid"), str):
            continue
        contact_id = contacts[0].get("id") if contacts else None
        found[lead_id] = CreatedDeal(deal_id, contact_id if isinstance(contact_id, int) else None,
                                     leads[0].get("status_id"), item["uid"][:64])
        if len(found) == len(uids):
            break
    return found
