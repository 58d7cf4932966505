"""Where every change goes: the account's event log (``GET /api/v4/events``) and the webhook sender.

``announce(account_id, host_url, changes, kind, user_id)`` takes ``[(action, entity, extra)]`` of one kind
(leads, contacts, companies, tasks, unsorted). Event types follow amoCRM's events API (lead_added,
lead_status_changed with ``leads_statuses`` values, contact_added, company_added, entity_responsible_changed,
lead_deleted, task_added, common_note_added …); ids are strings, as amoCRM's are.
"""

import uuid

from .oauth import sandbox
from .state import now

SINGULAR = {"leads": "lead", "contacts": "contact", "companies": "company", "tasks": "task"}
MAX_EVENTS = 10000


def event_of(kind: str, action: str, entity: dict, extra: dict) -> dict | None:
    name = SINGULAR.get(kind)
    if name is None:
        return None
    before = after = []
    if action == "add":
        event_type = f"{name}_added"
    elif action == "delete":
        event_type = f"{name}_deleted"
    elif action == "status":
        event_type = "lead_status_changed"
        before = [{"lead_status": {"id": extra["old_status_id"], "pipeline_id": extra["old_pipeline_id"]}}]
        after = [{"lead_status": {"id": entity["status_id"], "pipeline_id": entity["pipeline_id"]}}]
    elif action == "responsible":
        event_type = "entity_responsible_changed"
        before = [{"responsible_user": {"id": extra["old_responsible_user_id"]}}]
        after = [{"responsible_user": {"id": entity["responsible_user_id"]}}]
    elif action == "note":
        event_type = f"{entity['note_type']}_note_added"
        after = [{"note": {"id": entity["id"]}}]
    else:
        return None
    target = entity if action != "note" else {"id": entity["entity_id"]}
    return {
        "type": event_type,
        "entity_id": target["id"],
        "entity_type": name,
        "value_before": before,
        "value_after": after,
    }


def announce(account_id: int, host_url: str, changes: list, kind: str, user_id: int) -> None:
    if not changes:
        return
    box = sandbox()
    state = box.state
    with state.lock:
        for action, entity, extra in changes:
            event = event_of(kind, action, entity, extra)
            if event is not None:
                event.update(
                    id=uuid.uuid4().hex[:24], created_by=user_id, created_at=now(), account_id=account_id
                )
                state.events.append(event)
        del state.events[:-MAX_EVENTS]
    box.sender.publish(account_id, host_url, changes, kind)
