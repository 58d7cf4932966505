"""Tasks (amoCRM tasks-api; PHP TaskModel): ``POST /api/v4/tasks`` ``[{text, complete_till, entity_id,
entity_type, task_type_id, responsible_user_id}]`` — ``complete_till`` and ``responsible_user_id`` are required
here, as the docs mark them; ``PATCH /api/v4/tasks`` and ``/tasks/{id}`` (``is_completed``, ``result.text``);
``GET /api/v4/tasks`` with ``filter[responsible_user_id|is_completed|task_type|entity_type|entity_id|id]`` and
``filter[updated_at][from|to]`` (``entity_id`` needs ``entity_type``). Changes trigger ``add_task`` /
``update_task`` webhooks.
"""

import copy

from flask import g, request

from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .parties import store_of
from .records import publish
from .state import now
from .validation import (
    MAX_LIMIT,
    ValidationFailed,
    collection_body,
    error,
    fail,
    is_int,
    object_body,
    request_id,
)

bp = api_blueprint("sandbox_tasks")

TASK_TYPES = (1, 2)  # 1 call ("Связаться"), 2 meeting ("Встреча")
ENTITY_TYPES = ("leads", "contacts", "companies", "customers")


def task_view(task: dict) -> dict:
    return dict(task, _links=link(f"tasks/{task['id']}"))


def check_target(item: dict, errors: list) -> None:
    entity_type, entity_id = item.get("entity_type"), item.get("entity_id")
    if entity_type is None and entity_id is None:
        return
    if entity_type not in ENTITY_TYPES[:3]:
        error(errors, "NotSupportedChoice", "entity_type", "The value you selected is not a valid choice.")
        return
    store = sandbox().state.leads if entity_type == "leads" else store_of(entity_type)
    target = store.get(entity_id) if is_int(entity_id) else None
    if target is None or target["account_id"] != g.account["id"]:
        error(errors, "NotFound", "entity_id", "Entity not found")


def check_task(item: dict, errors: list, creating: bool) -> None:
    users = [user["id"] for user in g.account["users"]]
    if creating or "text" in item:
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            error(errors, "NotBlank", "text", "This value should not be blank.")
    if creating or "complete_till" in item:
        if not is_int(item.get("complete_till")):
            error(errors, "InvalidType", "complete_till", "This value should be of type int.")
    if creating or "responsible_user_id" in item:
        if item.get("responsible_user_id") not in users:
            error(
                errors,
                "NotSupportedChoice",
                "responsible_user_id",
                "The value you selected is not a valid choice.",
            )
    if "task_type_id" in item and item["task_type_id"] not in TASK_TYPES:
        error(errors, "NotSupportedChoice", "task_type_id", "The value you selected is not a valid choice.")
    if "is_completed" in item and not isinstance(item["is_completed"], bool):
        error(errors, "InvalidType", "is_completed", "This value should be of type bool.")
    check_target(item, errors)


@bp.post("/tasks")
def tasks_create():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        problems = []
        for index, item in enumerate(items):
            errors = []
            check_task(item if isinstance(item, dict) else {}, errors, creating=True)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
        if problems:
            raise ValidationFailed(problems)
        results, added = [], []
        for index, item in enumerate(items):
            moment = now()
            task = {
                "id": state.next_id("task"),
                "created_by": g.user_id,
                "updated_by": g.user_id,
                "created_at": moment,
                "updated_at": moment,
                "responsible_user_id": item["responsible_user_id"],
                "group_id": 0,
                "entity_id": item.get("entity_id"),
                "entity_type": item.get("entity_type"),
                "duration": item.get("duration", 0),
                "is_completed": bool(item.get("is_completed", False)),
                "task_type_id": item.get("task_type_id", 1),
                "text": item["text"],
                "result": [],
                "complete_till": item["complete_till"],
                "account_id": g.account["id"],
            }
            state.tasks[task["id"]] = task
            added.append(("add", task, {}))
            results.append(
                {
                    "id": task["id"],
                    "request_id": request_id(item, index),
                    "_links": link(f"tasks/{task['id']}"),
                }
            )
        publish(added, "tasks")
    return hal({"_links": link("tasks"), "_embedded": {"tasks": results}})


def apply_task_update(task: dict, item: dict, errors: list) -> list:
    check_task(item, errors, creating=False)
    if errors:
        return []
    for key in (
        "text",
        "complete_till",
        "responsible_user_id",
        "task_type_id",
        "is_completed",
        "entity_id",
        "entity_type",
    ):
        if key in item:
            task[key] = item[key]
    if isinstance(item.get("result"), dict) and isinstance(item["result"].get("text"), str):
        task["result"] = {"text": item["result"]["text"]}
    task["updated_at"], task["updated_by"] = now(), g.user_id
    return [("update", task, {})]


@bp.patch("/tasks")
def tasks_update():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        snapshot = copy.deepcopy(state.tasks)
        problems, changes, results = [], [], []
        for index, item in enumerate(items):
            errors = []
            task_id = item.get("id") if isinstance(item, dict) else None
            task = state.tasks.get(task_id) if is_int(task_id) else None
            if task is None or task["account_id"] != g.account["id"]:
                error(errors, "NotFound", "id", "Entity not found")
            else:
                changes += apply_task_update(task, item, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            else:
                results.append(
                    {"id": task_id, "updated_at": task["updated_at"], "request_id": request_id(item, index)}
                )
        if problems:
            state.tasks = snapshot
            raise ValidationFailed(problems)
        publish(changes, "tasks")
    return hal({"_links": link("tasks"), "_embedded": {"tasks": results}})


@bp.patch("/tasks/<int:task_id>")
def task_update(task_id):
    item = object_body()
    state = sandbox().state
    with state.lock:
        task = state.tasks.get(task_id)
        if task is None or task["account_id"] != g.account["id"]:
            fail("NotFound", "id", "Entity not found")
        before, errors = copy.deepcopy(task), []
        changes = apply_task_update(task, item, errors)
        if errors:
            state.tasks[task_id] = before
            raise ValidationFailed([{"request_id": "0", "errors": errors}])
        publish(changes, "tasks")
        return hal({"id": task_id, "updated_at": task["updated_at"], "_links": link(f"tasks/{task_id}")})


@bp.get("/tasks")
def tasks_list():
    state = sandbox().state
    with state.lock:
        tasks = [task for task in state.tasks.values() if task["account_id"] == g.account["id"]]
        if arg_values("filter[entity_id]") and not arg_values("filter[entity_type]"):
            fail("NotBlank", "filter.entity_type", "filter[entity_id] needs filter[entity_type].")
        for key, field in (
            ("id", "id"),
            ("responsible_user_id", "responsible_user_id"),
            ("task_type", "task_type_id"),
            ("entity_type", "entity_type"),
            ("entity_id", "entity_id"),
        ):
            wanted = arg_values(f"filter[{key}]")
            if wanted:
                tasks = [task for task in tasks if str(task[field]) in wanted]
        completed = request.args.get("filter[is_completed]")
        if completed is not None:
            tasks = [task for task in tasks if task["is_completed"] == (completed in ("1", "true"))]
        for bound, keep in (("from", lambda v, b: v >= b), ("to", lambda v, b: v <= b)):
            raw = request.args.get(f"filter[updated_at][{bound}]")
            if raw is not None and raw.isdigit():
                tasks = [task for task in tasks if keep(task["updated_at"], int(raw))]
        return paginate("tasks", tasks, task_view)


@bp.get("/tasks/<int:task_id>")
def task_one(task_id):
    state = sandbox().state
    with state.lock:
        task = state.tasks.get(task_id)
        if task is None or task["account_id"] != g.account["id"]:
            return no_content()
        return hal(task_view(task))
