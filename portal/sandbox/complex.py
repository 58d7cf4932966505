"""``POST /api/v4/leads/complex``: leads with their contact in one call, with duplicate control."""

from flask import g

from .guard import api_blueprint
from .hal import hal
from .oauth import sandbox
from .records import (
    account_contacts,
    build_contact,
    build_lead,
    contact_keys,
    embedded_of,
    publish,
    store_contact,
    store_lead,
)
from .validation import MAX_COMPLEX, ValidationFailed, collection_body, error, is_int, request_id

bp = api_blueprint("sandbox_complex")


@bp.post("/leads/complex")
def leads_complex():
    state = sandbox().state
    items = collection_body(MAX_COMPLEX)
    account = g.account
    with state.lock:
        existing = {}
        if account["duplicate_control"]:
            for contact in account_contacts(account["id"]):
                for key in contact_keys(contact):
                    existing.setdefault(key, contact["id"])
        plans, problems = [], []
        for index, item in enumerate(items):
            errors, path = [], f"{index}."
            lead = contact = None
            contact_id = None
            if not isinstance(item, dict):
                error(errors, "InvalidType", str(index), "This value should be of type object.")
            else:
                lead = build_lead(account, item, errors, path)
                contacts = embedded_of(item).get("contacts", [])
                if not isinstance(contacts, list) or len(contacts) > 1:
                    error(errors, "InvalidType", f"{path}_embedded.contacts", "At most one contact per lead.")
                elif contacts and isinstance(contacts[0], dict) and "id" in contacts[0]:
                    contact_id = contacts[0]["id"]
                    found = state.contacts.get(contact_id) if is_int(contact_id) else None
                    if found is None or found["account_id"] != account["id"]:
                        error(errors, "NotFound", f"{path}_embedded.contacts.0.id", "Contact not found")
                elif contacts:
                    contact = build_contact(
                        account,
                        contacts[0] if isinstance(contacts[0], dict) else {},
                        errors,
                        f"{path}_embedded.contacts.0.",
                    )
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            plans.append((lead, contact, contact_id))
        if problems:
            raise ValidationFailed(problems)
        results = []
        for index, (lead, contact, contact_id) in enumerate(plans):
            merged = False
            if contact is not None:
                duplicate = next(
                    (existing[key] for key in sorted(contact_keys(contact)) if key in existing), None
                )
                if duplicate is not None:
                    contact_id, merged = duplicate, True
                else:
                    contact_id = store_contact(contact)["id"]
            if contact_id is not None:
                lead["_embedded"]["contacts"] = [{"id": contact_id, "is_main": True}]
            store_lead(lead)
            results.append(
                {
                    "id": lead["id"],
                    "contact_id": contact_id,
                    "company_id": None,
                    "request_id": [request_id(items[index], index)],
                    "merged": merged,
                }
            )
        publish([("add", lead, {}) for lead, _, _ in plans])
    return hal(results)
