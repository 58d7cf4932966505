"""Contacts and companies as stored ("parties"): built from API items, stored, updated, viewed, and matched
by duplicate control. Both carry ``custom_fields_values`` from their own field lists (``contact_fields`` /
``company_fields``); a contact has first and last names, a company only a name."""

import copy

from flask import g

from .hal import link
from .oauth import sandbox
from .search import index_entity
from .state import normalize_phone, now
from .validation import error, merge_custom_fields, parse_custom_fields, parse_tags

FIELD_LISTS = {"contacts": "contact_fields", "companies": "company_fields"}
ID_KINDS = {"contacts": "contact", "companies": "company"}
DEFAULT_NAMES = {"contacts": "Контакт #{id}", "companies": "Компания #{id}"}


def store_of(kind: str) -> dict:
    state = sandbox().state
    return state.contacts if kind == "contacts" else state.companies


def party_view(kind: str, party: dict) -> dict:
    view = copy.deepcopy(party)
    view["_links"] = link(f"{kind}/{party['id']}")
    return view


def contact_view(contact: dict) -> dict:
    return party_view("contacts", contact)


def check_names(kind: str, item: dict, errors: list, path: str) -> None:
    keys = ("name", "first_name", "last_name") if kind == "contacts" else ("name",)
    for key in keys:
        if key in item and not isinstance(item[key], str):
            error(errors, "InvalidType", f"{path}{key}", "This value should be of type string.")
    users = [user["id"] for user in g.account["users"]]
    if "responsible_user_id" in item and item["responsible_user_id"] not in users:
        error(
            errors,
            "NotSupportedChoice",
            f"{path}responsible_user_id",
            "The value you selected is not a valid choice.",
        )


def build_party(kind: str, account: dict, item: dict, errors: list, path: str = "") -> dict | None:
    """A new contact or company (not stored yet) from an API item, or None with errors appended."""
    check_names(kind, item, errors, path)
    fields = parse_custom_fields(
        account[FIELD_LISTS[kind]],
        item.get("custom_fields_values", []),
        f"{path}custom_fields_values",
        errors,
    )
    embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
    tags = parse_tags(account, embedded.get("tags", []), f"{path}_embedded.tags", errors)
    if errors:
        return None
    moment = now()
    party = {
        "id": None,
        "name": item.get("name") or "",
        "responsible_user_id": item.get("responsible_user_id", g.user_id),
        "group_id": 0,
        "created_by": g.user_id,
        "updated_by": g.user_id,
        "created_at": moment,
        "updated_at": moment,
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": merge_custom_fields(None, fields),
        "account_id": account["id"],
        "_embedded": {"tags": tags, "companies": []}
        if kind == "contacts"
        else {"tags": tags, "contacts": []},
    }
    if kind == "contacts":
        first, last = item.get("first_name", ""), item.get("last_name", "")
        party.update(first_name=first, last_name=last, is_unsorted=False)
        party["name"] = party["name"] or f"{first} {last}".strip()
    return party


def build_contact(account: dict, item: dict, errors: list, path: str = "") -> dict | None:
    return build_party("contacts", account, item, errors, path)


def store_party(kind: str, party: dict) -> dict:
    state = sandbox().state
    party["id"] = state.next_id(ID_KINDS[kind])
    if not party["name"]:
        party["name"] = DEFAULT_NAMES[kind].format(id=party["id"])
    store_of(kind)[party["id"]] = party
    index_entity(kind, party)
    return party


def store_contact(contact: dict) -> dict:
    return store_party("contacts", contact)


def update_party(kind: str, party: dict, item: dict, errors: list, path: str = "") -> list:
    """Validate and apply a PATCH item to a contact or company; returns webhook changes."""
    account = g.account
    check_names(kind, item, errors, path)
    fields = None
    if "custom_fields_values" in item:
        fields = parse_custom_fields(
            account[FIELD_LISTS[kind]],
            item["custom_fields_values"] or [],
            f"{path}custom_fields_values",
            errors,
        )
    embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
    tags = (
        parse_tags(account, embedded["tags"], f"{path}_embedded.tags", errors) if "tags" in embedded else None
    )
    if errors:
        return []
    before = copy.deepcopy(party)
    for key in ("name", "first_name", "last_name", "responsible_user_id"):
        if key in item and (key != "first_name" and key != "last_name" or kind == "contacts"):
            party[key] = item[key]
    if kind == "contacts" and ("first_name" in item or "last_name" in item) and "name" not in item:
        party["name"] = f"{party['first_name']} {party['last_name']}".strip() or party["name"]
    if fields is not None:
        party["custom_fields_values"] = merge_custom_fields(party["custom_fields_values"], fields)
    if tags is not None:
        party["_embedded"]["tags"] = tags
    party["updated_at"], party["updated_by"] = now(), g.user_id
    index_entity(kind, party)
    changes = [("update", party, {})]
    if party["responsible_user_id"] != before["responsible_user_id"]:
        changes.append(("responsible", party, {"old_responsible_user_id": before["responsible_user_id"]}))
    return changes


def contact_keys(contact: dict, rules=("phone", "email")) -> set:
    """What duplicate control matches a contact by: normalised phones and lower-cased e-mails."""
    keys = set()
    for field in contact.get("custom_fields_values") or []:
        for value in field["values"] or []:
            if field["field_code"] == "PHONE" and "phone" in rules and normalize_phone(value["value"]):
                keys.add(("phone", normalize_phone(value["value"])))
            elif field["field_code"] == "EMAIL" and "email" in rules:
                keys.add(("email", str(value["value"]).strip().lower()))
    return keys


def account_parties(kind: str, account_id: int) -> list:
    return [party for party in store_of(kind).values() if party["account_id"] == account_id]


def account_contacts(account_id: int) -> list:
    return account_parties("contacts", account_id)
