"""Webhook sender: delivers lead changes to subscribed destinations the way amoCRM does.

Each change event becomes one POST per destination whose ``settings`` include the action
(``add_lead``, ``update_lead``, ``status_lead``, ``delete_lead``, ``responsible_lead``): an
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

ACTIONS = {
    "add": "add_lead",
    "update": "update_lead",
    "status": "status_lead",
    "delete": "delete_lead",
    "responsible": "responsible_lead",
}


def lead_pairs(prefix: str, lead: dict, extra: dict, action: str, field_codes: dict) -> list:
    if action == "delete":
        keys = {"id": lead["id"], "status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"]}
    else:
        keys = {
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
        }
    pairs = [(f"{prefix}[{key}]", str(value)) for key, value in keys.items() if value is not None]
    if action == "delete":
        return pairs
    for index, tag in enumerate(lead["_embedded"]["tags"]):
        pairs += [
            (f"{prefix}[tags][{index}][id]", str(tag["id"])),
            (f"{prefix}[tags][{index}][name]", tag["name"]),
        ]
    for index, field in enumerate(lead["custom_fields_values"] or []):
        here = f"{prefix}[custom_fields][{index}]"
        pairs += [(f"{here}[id]", str(field["field_id"])), (f"{here}[name]", field["field_name"])]
        if field_codes.get(field["field_id"]):
            pairs.append((f"{here}[code]", field_codes[field["field_id"]]))
        for value_index, value in enumerate(field["values"]):
            pairs.append((f"{here}[values][{value_index}][value]", str(value["value"])))
            if "enum_id" in value:
                pairs.append((f"{here}[values][{value_index}][enum]", str(value["enum_id"])))
    return pairs


def encode_event(account: dict, host_url: str, changes: list) -> list:
    """Form pairs for ``changes`` = ``[(action, lead, extra)]`` (already filtered for one destination)."""
    field_codes = {field["id"]: field["code"] for field in account["lead_fields"]}
    pairs, counters = [], {}
    for action, lead, extra in changes:
        index = counters.get(action, 0)
        counters[action] = index + 1
        pairs += lead_pairs(f"leads[{action}][{index}]", lead, extra, action, field_codes)
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

    def publish(self, account_id: int, host_url: str, changes: list) -> None:
        """Snapshot the event for every interested webhook and queue it; called with or without the lock."""
        state = self.state
        with state.lock:
            account = state.accounts[account_id]
            for hook in state.webhooks.values():
                if hook["account_id"] != account_id or hook["disabled"]:
                    continue
                wanted = [change for change in changes if ACTIONS[change[0]] in hook["settings"]]
                if not wanted:
                    continue
                job = {
                    "hook_id": hook["id"],
                    "destination": hook["destination"],
                    "attempt": 1,
                    "generation": state.generation,
                    "event_id": state.next_id("event"),
                    "actions": sorted({action for action, _, _ in wanted}),
                    "pairs": encode_event(account, host_url, wanted),
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
