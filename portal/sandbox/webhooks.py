"""Webhook sender: delivers changes to subscribed destinations the way amoCRM does.

Each change event becomes one POST per destination whose ``settings`` include the action (``add_lead``,
``status_lead``, ``add_contact``, ``update_company``, ``add_task``, ``add_unsorted`` … see ``SETTING_CODES``): an
``application/x-www-form-urlencoded`` body with PHP-style keys, v2 field names and every value a string, e.g.
``leads[status][0][id]=…&leads[status][0][old_status_id]=…&account[subdomain]=…&account[id]=…&account[_links][self]=…``.
A PATCH that moves a lead sends ``leads[status]`` and ``leads[update]`` in the same body.

A single background thread delivers, so API requests never wait. A status outside 200–299, a timeout
(``SANDBOX_WEBHOOK_TIMEOUT``) or a connection error is a failure: the delivery is retried after each delay of
``SANDBOX_WEBHOOK_RETRY_DELAYS`` in turn, and the webhook is disabled (``disabled: true``, nothing more is
sent) once it has failed ``SANDBOX_WEBHOOK_DISABLE_AFTER`` times. Re-POSTing the destination re-enables it.
Every attempt is recorded in ``state.deliveries`` (the last 1000).
"""

import heapq
import itertools
import threading
import time

import requests

from .state import now

# The event codes amoCRM accepts in a webhook's ``settings`` (amoCRM webhooks-format; Kommo webhooks-general).
WEBHOOK_ACTIONS = tuple(
    f"{action}_{entity}"
    for entity in ("lead", "contact", "company", "customer")
    for action in ("add", "update", "delete", "restore", "responsible", "note")
) + (
    "status_lead",
    "status_customer",
    "add_task",
    "update_task",
    "delete_task",
    "add_unsorted",
    "update_unsorted",
    "delete_unsorted",
    "add_talk",
    "update_talk",
    "add_chat_template_review",
    "add_message",
)

# (entity kind, change) → the settings code a destination subscribes with (amoCRM webhooks-format).
SETTING_CODES = {
    "leads": {
        "add": "add_lead",
        "update": "update_lead",
        "status": "status_lead",
        "delete": "delete_lead",
        "responsible": "responsible_lead",
        "note": "note_lead",
    },
    "contacts": {
        "add": "add_contact",
        "update": "update_contact",
        "delete": "delete_contact",
        "responsible": "responsible_contact",
        "note": "note_contact",
    },
    "companies": {
        "add": "add_company",
        "update": "update_company",
        "delete": "delete_company",
        "responsible": "responsible_company",
        "note": "note_company",
    },
    "tasks": {"add": "add_task", "update": "update_task", "delete": "delete_task"},
    "unsorted": {"add": "add_unsorted", "update": "update_unsorted", "delete": "delete_unsorted"},
}
# The top-level key of each kind in the body: contacts and companies both arrive under ``contacts[…]`` with
# ``[type]``; tasks under ``task[…]`` (third-party parsers; not in amoCRM's examples).
BODY_KEYS = {
    "leads": "leads",
    "contacts": "contacts",
    "companies": "contacts",
    "tasks": "task",
    "unsorted": "unsorted",
}


def pairs_of(prefix: str, values: dict) -> list:
    return [(f"{prefix}[{key}]", str(value)) for key, value in values.items() if value is not None]


def custom_field_pairs(prefix: str, entity: dict, with_codes: bool) -> list:
    """``[custom_fields][N][id|name|values][M][value|enum]``; ``[code]`` only where amoCRM's captured bodies
    show it (contacts' PHONE / EMAIL), never on leads' tracking fields (amoCRM's example body has none)."""
    pairs = []
    for index, field in enumerate(entity.get("custom_fields_values") or []):
        here = f"{prefix}[custom_fields][{index}]"
        pairs += [(f"{here}[id]", str(field["field_id"])), (f"{here}[name]", field["field_name"])]
        if with_codes and field["field_code"] and field["field_type"] != "tracking_data":
            pairs.append((f"{here}[code]", field["field_code"]))
        for value_index, value in enumerate(field["values"] or []):
            raw = value["value"]
            pairs.append((f"{here}[values][{value_index}][value]", str(int(raw) if raw is True else raw)))
            if value.get("enum_id"):
                pairs.append((f"{here}[values][{value_index}][enum]", str(value["enum_id"])))
    return pairs


def lead_pairs(prefix: str, lead: dict, extra: dict, action: str) -> list:
    if action == "delete":
        return pairs_of(
            prefix, {"id": lead["id"], "status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}
        )
    pairs = pairs_of(
        prefix,
        {
            "id": lead["id"],
            "name": lead["name"],
            "status_id": lead["status_id"],
            "old_status_id": extra.get("old_status_id"),
            "price": lead["price"],
            "responsible_user_id": lead["responsible_user_id"],
            "old_responsible_user_id": extra.get("old_responsible_user_id"),
            "last_modified": lead["updated_at"],
            "modified_user_id": lead["updated_by"],
            "created_user_id": lead["created_by"],
            "date_create": lead["created_at"],
            "created_at": lead["created_at"],
            "updated_at": lead["updated_at"],
            "account_id": lead["account_id"],
            "pipeline_id": lead["pipeline_id"],
            "old_pipeline_id": extra.get("old_pipeline_id"),
        },
    )
    for index, tag in enumerate(lead["_embedded"]["tags"]):
        pairs += [
            (f"{prefix}[tags][{index}][id]", str(tag["id"])),
            (f"{prefix}[tags][{index}][name]", tag["name"]),
        ]
    return pairs + custom_field_pairs(prefix, lead, with_codes=False)


def party_pairs(prefix: str, party: dict, extra: dict, action: str, kind: str, linked_leads: list) -> list:
    party_type = "contact" if kind == "contacts" else "company"
    if action == "delete":
        return pairs_of(prefix, {"id": party["id"], "type": party_type})
    pairs = pairs_of(
        prefix,
        {
            "id": party["id"],
            "name": party["name"],
            "responsible_user_id": party["responsible_user_id"],
            "old_responsible_user_id": extra.get("old_responsible_user_id"),
            "date_create": party["created_at"],
            "last_modified": party["updated_at"],
            "created_user_id": party["created_by"],
            "modified_user_id": party["updated_by"],
            "created_at": party["created_at"],
            "updated_at": party["updated_at"],
            "account_id": party["account_id"],
            "type": party_type,
        },
    )
    for lead_id in linked_leads:
        pairs.append((f"{prefix}[linked_leads_id][{lead_id}][ID]", str(lead_id)))
    for index, tag in enumerate(party["_embedded"]["tags"]):
        pairs += [
            (f"{prefix}[tags][{index}][id]", str(tag["id"])),
            (f"{prefix}[tags][{index}][name]", tag["name"]),
        ]
    return pairs + custom_field_pairs(prefix, party, with_codes=True)


def task_pairs(prefix: str, task: dict, action: str) -> list:
    if action == "delete":
        return pairs_of(prefix, {"id": task["id"]})
    return pairs_of(
        prefix,
        {
            "id": task["id"],
            "element_id": task["entity_id"],
            "element_type": ELEMENT_TYPES.get(task["entity_type"]),
            "task_type": task["task_type_id"],
            "text": task["text"],
            "status": int(task["is_completed"]),
            "date_create": task["created_at"],
            "last_modified": task["updated_at"],
            "complete_till": task["complete_till"],
            "responsible_user_id": task["responsible_user_id"],
            "created_user_id": task["created_by"],
            "account_id": task["account_id"],
        },
    )


def unsorted_pairs(prefix: str, item: dict, extra: dict, action: str) -> list:
    pairs = pairs_of(
        prefix,
        {
            "uid": item["uid"],
            "source_uid": item["source_uid"],
            "source_name": item["source_name"],
            "category": item["category"],
            "pipeline_id": item["pipeline_id"],
            "created_at": item["created_at"],
            "account_id": item["account_id"],
            "action": extra.get("action"),
        },
    )
    for key in ("leads", "contacts", "companies"):
        for index, entity in enumerate(item["_embedded"].get(key, [])):
            pairs.append((f"{prefix}[data][{key}][{index}][id]", str(entity["id"])))
    result = extra.get("result")
    if result:
        for key, ids in result.items():
            for index, entity_id in enumerate(ids):
                pairs.append((f"{prefix}[{extra['action']}_result][{key}][{index}]", str(entity_id)))
    return pairs


# amoCRM's v2 numeric note types (4 text, 10/11 calls in/out; docs/amocrm.md §4).
NOTE_TYPE_CODES = {
    "common": 4,
    "call_in": 10,
    "call_out": 11,
    "service_message": 25,
    "sms_in": 102,
    "sms_out": 103,
}


def note_pairs(prefix: str, note: dict) -> list:
    """``{entity}[note][N][note][id|note_type|text|element_id|element_type|created_by|timestamp_x]``."""
    return pairs_of(
        f"{prefix}[note]",
        {
            "id": note["id"],
            "note_type": NOTE_TYPE_CODES.get(note["note_type"], 4),
            "text": note["params"].get("text", ""),
            "element_id": note["entity_id"],
            "element_type": ELEMENT_TYPES[note["entity_type"]],
            "created_by": note["created_by"],
            "timestamp_x": note["created_at"],
            "account_id": note["account_id"],
        },
    )


# amoCRM's v2 element types, used by task and note bodies.
ELEMENT_TYPES = {"contacts": 1, "leads": 2, "companies": 3, "customers": 12}


def encode_event(state, account: dict, host_url: str, kind: str, changes: list) -> list:
    """Form pairs for ``changes`` = ``[(action, entity, extra)]`` of one kind, for one destination."""
    pairs, counters = [], {}
    top = BODY_KEYS[kind]
    for action, entity, extra in changes:
        index = counters.get(action, 0)
        counters[action] = index + 1
        prefix = f"{top}[{action}][{index}]"
        if action == "note":
            pairs += note_pairs(prefix, entity)
        elif kind == "leads":
            pairs += lead_pairs(prefix, entity, extra, action)
        elif kind in ("contacts", "companies"):
            linked = [
                lead["id"]
                for lead in state.leads.values()
                if any(link["id"] == entity["id"] for link in lead["_embedded"][kind])
            ]
            pairs += party_pairs(prefix, entity, extra, action, kind, linked)
        elif kind == "tasks":
            pairs += task_pairs(prefix, entity, action)
        else:
            pairs += unsorted_pairs(prefix, entity, extra, action)
    pairs += [
        ("account[subdomain]", account["subdomain"]),
        ("account[id]", str(account["id"])),
        ("account[_links][self]", host_url),
    ]
    return pairs


class WebhookSender:
    def __init__(self, state):
        self.state = state
        self.queue: list = []
        self.order = itertools.count()
        self.condition = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self.run, name="sandbox-webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify_all()

    def pending(self) -> int:
        with self.condition:
            return len(self.queue)

    def publish(self, account_id: int, host_url: str, changes: list, kind: str = "leads") -> None:
        """Snapshot the event for every interested webhook and queue it; called with or without the lock."""
        state = self.state
        with state.lock:
            account = state.accounts[account_id]
            for hook in state.webhooks.values():
                if hook["account_id"] != account_id or hook["disabled"]:
                    continue
                codes = SETTING_CODES[kind]
                wanted = [change for change in changes if codes.get(change[0]) in hook["settings"]]
                if not wanted:
                    continue
                job = {
                    "hook_id": hook["id"],
                    "destination": hook["destination"],
                    "attempt": 1,
                    "generation": state.generation,
                    "event_id": state.next_id("event"),
                    "actions": sorted({action for action, _, _ in wanted}),
                    "pairs": encode_event(state, account, host_url, kind, wanted),
                }
                self.schedule(job, 0)

    def schedule(self, job: dict, delay: float) -> None:
        with self.condition:
            heapq.heappush(self.queue, (time.monotonic() + delay, next(self.order), job))
            self.condition.notify()

    def run(self) -> None:
        session = requests.Session()
        while True:
            with self.condition:
                while not self.stopped and (not self.queue or self.queue[0][0] > time.monotonic()):
                    self.condition.wait(self.queue[0][0] - time.monotonic() if self.queue else None)
                if self.stopped:
                    return
                job = heapq.heappop(self.queue)[2]
            self.deliver(session, job)

    def deliver(self, session, job: dict) -> None:
        state = self.state
        with state.lock:
            hook = state.webhooks.get(job["hook_id"])
            if (
                job["generation"] != state.generation
                or hook is None
                or hook["disabled"]
                or hook["destination"] != job["destination"]
            ):
                return
            timeout = state.config["SANDBOX_WEBHOOK_TIMEOUT"]
        try:
            response = session.post(
                job["destination"],
                data=job["pairs"],
                timeout=timeout,
                headers={"User-Agent": "amoCRM-Webhooks/3.0"},
            )
            status = response.status_code
        except requests.Timeout:
            status = "timeout"
        except requests.RequestException:
            status = "error"
        succeeded = isinstance(status, int) and 200 <= status < 300
        with state.lock:
            if job["generation"] != state.generation:
                return
            state.deliveries.append(
                {
                    "id": state.next_id("delivery"),
                    "webhook_id": job["hook_id"],
                    "destination": job["destination"],
                    "event_id": job["event_id"],
                    "actions": job["actions"],
                    "status": status,
                    "attempt": job["attempt"],
                    "body": dict(job["pairs"]),
                    "at": now(),
                }
            )
            state.count("webhook_deliveries")
            if succeeded:
                return
            state.count("webhook_failures")
            hook["failures"] = hook.get("failures", 0) + 1
            if hook["failures"] >= state.config["SANDBOX_WEBHOOK_DISABLE_AFTER"]:
                hook["disabled"] = True
                state.count("webhooks_disabled")
                return
            delays = state.config["SANDBOX_WEBHOOK_RETRY_DELAYS"]
            if job["attempt"] <= len(delays):
                self.schedule(dict(job, attempt=job["attempt"] + 1), float(delays[job["attempt"] - 1]))
