"""Leads as stored: building them from API items, storing them, views, updates, webhook hand-off."""

import copy

from flask import g

from .changes import announce
from .hal import base_url, link
from .oauth import sandbox
from .search import index_entity
from .state import LOST_STATUS_ID, WON_STATUS_ID, now
from .validation import (
    check_scalars,
    merge_custom_fields,
    parse_custom_fields,
    parse_tag_refs,
    parse_tags,
    resolve_status,
)


def lead_view(lead: dict, with_: tuple | list = ()) -> dict:
    """A lead as the API shows it; ``with_`` are the documented ``with=`` values (Kommo leads-list): contacts,
    loss_reason, source_id, is_price_modified_by_robot (catalog_elements: none here)."""
    view = copy.deepcopy(lead)
    embedded = view["_embedded"]
    if "contacts" in with_:
        embedded["contacts"] = [dict(c, _links=link(f"contacts/{c['id']}")) for c in embedded["contacts"]]
    else:
        del embedded["contacts"]
    if "loss_reason" in with_:
        embedded["loss_reason"] = []
    if "source_id" in with_:
        view["source_id"] = None
    if "is_price_modified_by_robot" in with_:
        view["is_price_modified_by_robot"] = False
    view["_links"] = link(f"leads/{lead['id']}")
    return view


def embedded_of(item: dict) -> dict:
    embedded = item.get("_embedded")
    return embedded if isinstance(embedded, dict) else {}


def build_lead(account: dict, item: dict, errors: list, path: str = "") -> dict | None:
    """A new lead (not stored yet) from an API item, or None with errors appended."""
    check_scalars(item, account, errors, path)
    resolved = resolve_status(account, item, None, errors, path)
    fields = parse_custom_fields(
        account["lead_fields"], item.get("custom_fields_values", []), f"{path}custom_fields_values", errors
    )
    embedded = embedded_of(item)
    tags = parse_tags(account, embedded.get("tags", []), f"{path}_embedded.tags", errors)
    if errors or resolved is None:
        return None
    moment = now()
    user_id = g.user_id
    status_id = resolved[1]
    return {
        "id": None,
        "name": item.get("name") or "",
        "price": item.get("price") or 0,
        "responsible_user_id": item.get("responsible_user_id", user_id),
        "group_id": 0,
        "status_id": status_id,
        "pipeline_id": resolved[0],
        "loss_reason_id": None,
        "created_by": user_id,
        "updated_by": user_id,
        "created_at": item.get("created_at", moment),
        "updated_at": item.get("updated_at", moment),
        "closed_at": item.get("closed_at", moment) if status_id in (WON_STATUS_ID, LOST_STATUS_ID) else None,
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": merge_custom_fields(None, fields),
        "score": None,
        "account_id": account["id"],
        "labor_cost": None,
        "_embedded": {"tags": tags, "companies": [], "contacts": []},
    }


def store_lead(lead: dict) -> dict:
    state = sandbox().state
    lead["id"] = state.next_id("lead")
    if not lead["name"]:
        lead["name"] = f"Сделка #{lead['id']}"
    state.leads[lead["id"]] = lead
    index_entity("leads", lead)
    return lead


def account_leads(account_id: int) -> list:
    return [lead for lead in sandbox().state.leads.values() if lead["account_id"] == account_id]


def publish(changes: list, kind: str = "leads") -> None:
    """Hand changes ``[(action, entity, extra)]`` of ``kind`` (leads, contacts, companies, tasks) to the
    webhook sender (it copies what it needs)."""
    announce(g.account["id"], base_url(), changes, kind, g.get("user_id", 0))


def apply_update(lead: dict, item: dict, errors: list) -> list:
    """Validate and apply a PATCH item; returns webhook changes."""
    account = g.account
    check_scalars(item, account, errors, "")
    resolved = resolve_status(account, item, lead, errors, "")
    fields = None
    if "custom_fields_values" in item:
        fields = parse_custom_fields(
            account["lead_fields"], item["custom_fields_values"] or [], "custom_fields_values", errors
        )
    embedded = embedded_of(item)
    tags = parse_tags(account, embedded["tags"], "_embedded.tags", errors) if "tags" in embedded else None
    # Kommo leads-api: tags_to_add / tags_to_delete change the tag list without replacing it.
    to_add = parse_tags(account, item["tags_to_add"], "tags_to_add", errors) if "tags_to_add" in item else []
    to_delete = (
        parse_tag_refs(item["tags_to_delete"], "tags_to_delete", errors) if "tags_to_delete" in item else []
    )
    if errors or resolved is None:
        return []
    before = dict(lead)
    for key in ("name", "price", "responsible_user_id"):
        if key in item:
            lead[key] = item[key] if item[key] is not None else (0 if key == "price" else lead[key])
    lead["pipeline_id"], lead["status_id"] = resolved
    if fields is not None:
        lead["custom_fields_values"] = merge_custom_fields(lead["custom_fields_values"], fields)
    if tags is not None:
        lead["_embedded"]["tags"] = tags
    current = lead["_embedded"]["tags"]
    current += [tag for tag in to_add if tag["id"] not in {t["id"] for t in current}]
    lead["_embedded"]["tags"] = [
        tag for tag in current if tag["id"] not in to_delete and tag["name"].lower() not in to_delete
    ]
    return finish_update(lead, before, item.get("closed_at"))


def finish_update(lead: dict, before: dict, closed_at=None) -> list:
    """Stamp ``updated_at``/``closed_at`` after a change and say which webhook actions it triggers."""
    lead["updated_at"] = now()
    lead["updated_by"] = g.get("user_id", 0)
    index_entity("leads", lead)
    closed = lead["status_id"] in (WON_STATUS_ID, LOST_STATUS_ID)
    status_changed = (lead["status_id"], lead["pipeline_id"]) != (before["status_id"], before["pipeline_id"])
    if closed and (status_changed or closed_at):
        lead["closed_at"] = closed_at or lead["updated_at"]
    elif not closed:
        lead["closed_at"] = None
    changes = [("update", lead, {})]
    if status_changed:
        changes.insert(
            0,
            (
                "status",
                lead,
                {"old_status_id": before["status_id"], "old_pipeline_id": before["pipeline_id"]},
            ),
        )
    if lead["responsible_user_id"] != before["responsible_user_id"]:
        changes.append(("responsible", lead, {"old_responsible_user_id": before["responsible_user_id"]}))
    return changes
