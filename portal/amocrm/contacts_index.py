"""Returning customers: the workspace's amoCRM contacts by normalised phone (E.164) and e-mail, so a lead from a
person amoCRM already knows is linked to that contact with no lookup call per lead (one search per lead would cut
the push's throughput about fifty-fold, and search is neither exact nor instant).

The index is the `amocrm_contacts` map (workspace, key → contact id), where a key is an E.164 phone or a lower-case
e-mail. It is filled only from amoCRM's own data:
- at connect, `portal.amocrm.jobs.build_contacts_index` pages through every contact
  (`GET /api/v4/contacts`, 250 per call, each call through the workspace's shared rate limiter);
- by the push, from amoCRM's answers (the contact each lead got);
- by contact webhooks (`contacts[add|update]` replace a contact's keys, `contacts[delete]` removes them);
- by reconciliation (`refresh_contacts_index`: contacts changed since, newest first, re-checked here).

Verified at use, at no extra cost: a contact deleted in amoCRM makes amoCRM refuse the push that names it (400 on
`_embedded.contacts.0.id`); the push then forgets it and sends the lead with a new contact.

Phones are read as a manager types them (`8 912 345-67-89`, `+7 (912) 345-67-89`) in the workspace's region.
"""
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import delete, select, text

from portal.amocrm.push import remember_contacts
from portal.extensions import db
from portal.models import AmoCRMContact, Workspace


def normalised_phone(raw: str, region: str) -> str | None:
    """E.164 for a phone as typed in amoCRM, None when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def keys_of(phones: Iterable[str], emails: Iterable[str], region: str) -> set[str]:
    keys = {phone for phone in (normalised_phone(str(raw), region) for raw in phones) if phone}
    keys |= {str(email).strip().lower() for email in emails if "@" in str(email)}
    return {key for key in keys if len(key) <= 254}


def keys_of_api_contact(contact: dict, region: str) -> set[str]:
    """The keys of an API v4 contact (`custom_fields_values` with field_code PHONE / EMAIL)."""
    phones, emails = [], []
    for custom_field in contact.get("custom_fields_values") or []:
        if not isinstance(custom_field, dict):
            continue
        values = [value.get("value") for value in custom_field.get("values") or [] if isinstance(value, dict)]
        if custom_field.get("field_code") == "PHONE":
            phones += [value for value in values if value]
        elif custom_field.get("field_code") == "EMAIL":
            emails += [value for value in values if value]
    return keys_of(phones, emails, region)


def replace_contact(workspace_id: int, contact_id: int, keys: set[str]) -> None:
    """The contact's keys are now exactly `keys` (a phone a manager removed stops matching). The caller commits."""
    forget_contact(workspace_id, contact_id)
    remember_contacts(workspace_id, dict.fromkeys(keys, contact_id))


def forget_contact(workspace_id: int, contact_id: int) -> None:
    db.session.execute(delete(AmoCRMContact).where(AmoCRMContact.workspace_id == workspace_id,
                                                   AmoCRMContact.amocrm_contact_id == contact_id))


def apply_contact_events(workspace_id: int, events, region: str) -> int:
    """Contact webhook events (`EntityEvent`s of entity "contact") into the index. Companies are not people: they
    are left out. The caller commits. Returns the number applied."""
    applied = 0
    for event in events:
        if event.entity != "contact" or event.entity_id is None:
            continue
        if event.action == "delete":
            forget_contact(workspace_id, event.entity_id)
        elif event.action in ("add", "update", "restore"):
            replace_contact(workspace_id, event.entity_id, keys_of(event.phones, event.emails, region))
        else:
            continue
        applied += 1
    return applied


def workspace_region(workspace_id: int) -> str:
    return db.session.scalar(select(Workspace.country).where(Workspace.id == workspace_id)) or ""


def index_contacts(workspace_id: int, pages: Iterable[list[dict]]) -> int:
    """Store the keys of API contacts, page by page: one DELETE of the page's contacts' old keys and one upsert of
    their keys now, committed per page. Returns how many contacts were read."""
    region = workspace_region(workspace_id)
    read = 0
    for number, page in enumerate(pages, start=1):
        contacts = {contact["id"]: contact for contact in page if isinstance(contact.get("id"), int)}
        if contacts:
            db.session.execute(delete(AmoCRMContact).where(AmoCRMContact.workspace_id == workspace_id,
                                                           AmoCRMContact.amocrm_contact_id.in_(list(contacts))))
            remember_contacts(workspace_id, {key: contact_id for contact_id, contact in contacts.items()
                                             for key in keys_of_api_contact(contact, region)})
            db.session.commit()
            if number & (number - 1) == 0:  # pages 1, 2, 4, 8…: a few times, whatever the account's size
                refresh_statistics()
        read += len(page)
    refresh_statistics()
    return read


def refresh_statistics() -> None:
    """ANALYZE the index's table on PostgreSQL. Built from nothing to 100,000 rows in minutes, it outgrows its
    statistics; plans cached for the look-ups by key and by contact (prepared statements) then scan every row of the
    workspace per call (measured: 0.7 s per page while building, ~0.3 s per push). ANALYZE also invalidates those
    cached plans."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE amocrm_contacts"))
        db.session.commit()


def refresh_contacts_index(client, workspace_id: int, since: int) -> int:
    """Contacts changed since `since` (unix seconds), newest first, into the index (reconciliation)."""
    return index_contacts(workspace_id, client.contact_pages(updated_from=since))
