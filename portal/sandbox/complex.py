"""``POST /api/v4/leads/complex``: up to 50 leads, each with at most one contact and one company, in one call.

The answer is a bare array ``[{id, contact_id, company_id, request_id: [..], merged}]`` (Kommo complex-leads).
A new contact and a new company of one item are linked to each other and to the lead. A contact or company
given by ``id`` is linked as it is.

Duplicate control (an account setting here; in amoCRM a per-pipeline rule set for the integration as a
source): a new contact matching an existing one by the account's ``duplicate_rules`` (phone, e-mail) is not
created — the item answers ``merged: true`` with the existing ``contact_id``; and when that contact has an
open deal in the item's pipeline the new lead is merged into it — the answer carries that deal's ``id`` and
no new deal is created (its tags are added, its empty fields filled). Items of one call are never matched
against each other, only against data that existed before the call.
"""

import copy

from flask import g

from .guard import api_blueprint
from .hal import hal
from .oauth import sandbox
from .parties import account_contacts, build_party, contact_keys, store_of, store_party
from .records import build_lead, embedded_of, finish_update, publish, store_lead
from .state import LOST_STATUS_ID, WON_STATUS_ID
from .validation import (
    MAX_COMPLEX,
    ValidationFailed,
    collection_body,
    error,
    is_int,
    merge_custom_fields,
    request_id,
)

bp = api_blueprint("sandbox_complex")


def embedded_party(kind: str, item: dict, errors: list):
    """(new party or None, existing id or None) for ``_embedded.{kind}`` of one item."""
    account = g.account
    given = embedded_of(item).get(kind, [])
    if not isinstance(given, list) or len(given) > 1:
        error(errors, "Count", f"_embedded.{kind}", "This collection should contain 1 element or less.")
        return None, None
    if not given:
        return None, None
    party = given[0] if isinstance(given[0], dict) else {}
    if "id" in party:
        found = store_of(kind).get(party["id"]) if is_int(party["id"]) else None
        if found is None or found["account_id"] != account["id"]:
            error(errors, "NotFound", f"_embedded.{kind}.0.id", "Entity not found")
        return None, party["id"]
    return build_party(kind, account, party, errors, f"_embedded.{kind}.0."), None


def open_deal_of(contact_id: int, pipeline_id: int) -> dict | None:
    """The newest open deal of the contact in the pipeline (what duplicate control merges into)."""
    deals = [
        lead
        for lead in sandbox().state.leads.values()
        if lead["pipeline_id"] == pipeline_id
        and lead["status_id"] not in (WON_STATUS_ID, LOST_STATUS_ID)
        and any(link["id"] == contact_id for link in lead["_embedded"]["contacts"])
    ]
    return max(deals, key=lambda lead: lead["id"], default=None)


def merge_into(deal: dict, lead: dict) -> list:
    """Duplicate control folds the new lead into the open deal: tags added, empty fields filled."""
    before = copy.deepcopy(deal)
    known = {tag["id"] for tag in deal["_embedded"]["tags"]}
    deal["_embedded"]["tags"] += [tag for tag in lead["_embedded"]["tags"] if tag["id"] not in known]
    present = {field["field_id"] for field in deal["custom_fields_values"] or []}
    missing = [field for field in lead["custom_fields_values"] or [] if field["field_id"] not in present]
    deal["custom_fields_values"] = merge_custom_fields(deal["custom_fields_values"], missing)
    return finish_update(deal, before)


@bp.post("/leads/complex")
def leads_complex():
    state = sandbox().state
    items = collection_body(MAX_COMPLEX)
    account = g.account
    with state.lock:
        rules = account["settings"]["duplicate_rules"]
        existing = {}
        if account["duplicate_control"]:
            for contact in account_contacts(account["id"]):
                for key in contact_keys(contact, rules):
                    existing.setdefault(key, contact["id"])
        plans, problems = [], []
        for index, item in enumerate(items):
            errors, plan = [], None
            if not isinstance(item, dict):
                error(errors, "InvalidType", "", "This value should be of type object.")
            else:
                lead = build_lead(account, item, errors)
                contact = embedded_party("contacts", item, errors)
                company = embedded_party("companies", item, errors)
                plan = (lead, contact, company)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            plans.append(plan)
        if problems:
            raise ValidationFailed(problems)
        results, added, updated, contacts_added, companies_added = [], [], [], [], []
        for index, (lead, (contact, contact_id), (company, company_id)) in enumerate(plans):
            merged, deal = False, None
            if contact is not None:
                duplicate = next(
                    (existing[key] for key in sorted(contact_keys(contact, rules)) if key in existing), None
                )
                if duplicate is not None:
                    contact_id, merged = duplicate, True
                    deal = open_deal_of(duplicate, lead["pipeline_id"])
                else:
                    contact_id = store_party("contacts", contact)["id"]
                    contacts_added.append(contact)
            if company is not None:
                company_id = store_party("companies", company)["id"]
                companies_added.append(company)
            if contact_id is not None and company_id is not None and contact is not None and not merged:
                contact["_embedded"]["companies"] = [{"id": company_id}]
                company["_embedded"]["contacts"] = [{"id": contact_id}] if company is not None else []
            if deal is not None:
                updated += merge_into(deal, lead)
                lead = deal
            else:
                if contact_id is not None:
                    lead["_embedded"]["contacts"] = [{"id": contact_id, "is_main": True}]
                if company_id is not None:
                    lead["_embedded"]["companies"] = [{"id": company_id}]
                store_lead(lead)
                added.append(("add", lead, {}))
            results.append(
                {
                    "id": lead["id"],
                    "contact_id": contact_id,
                    "company_id": company_id,
                    "request_id": [request_id(items[index], index)],
                    "merged": merged,
                }
            )
        publish(added + updated)
        publish([("add", contact, {}) for contact in contacts_added], "contacts")
        publish([("add", company, {}) for company in companies_added], "companies")
    return hal(results)
