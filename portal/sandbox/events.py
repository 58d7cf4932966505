"""``GET /api/v4/events`` (amoCRM events-and-notes; Kommo events-filtration; PHP EventsFilter) and the users.

Events: ``limit`` ≤ 100; ``filter[id]``, ``filter[created_at]`` (a timestamp means "after", or
``[from]/[to]``), ``filter[created_by][]`` (≤ 10), ``filter[entity][]`` (lead, contact, company, task),
``filter[entity_id][]`` (≤ 10, needs exactly one ``filter[entity]``), ``filter[type][]``,
``filter[value_after|value_before][leads_statuses][N][pipeline_id|status_id]``. Newest first; 204 when none.
Users: ``GET /api/v4/users`` and ``/users/{id}`` with their rights.
"""

import re

from flask import g, request

from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .validation import fail

bp = api_blueprint("sandbox_events")

MAX_EVENTS_PAGE = 100


def statuses_wanted(side: str) -> set:
    pairs = {}
    for key in request.args:
        found = re.fullmatch(rf"filter\[{side}\]\[leads_statuses\]\[(\d+)\]\[(pipeline_id|status_id)\]", key)
        if found:
            pairs.setdefault(found.group(1), {})[found.group(2)] = request.args[key]
    return {(pair.get("pipeline_id"), pair.get("status_id")) for pair in pairs.values()}


def status_pairs(values: list) -> set:
    return {
        (str(value["lead_status"]["pipeline_id"]), str(value["lead_status"]["id"]))
        for value in values
        if "lead_status" in value
    }


@bp.get("/events")
def events_list():
    if request.args.get("limit", "").isdigit() and int(request.args["limit"]) > MAX_EVENTS_PAGE:
        fail("Range", "limit", f"This value should be {MAX_EVENTS_PAGE} or less.")
    state = sandbox().state
    with state.lock:
        events = [event for event in state.events if event["account_id"] == g.account["id"]][::-1]
        entities = arg_values("filter[entity]")
        entity_ids = arg_values("filter[entity_id]")
        creators = arg_values("filter[created_by]")
        if len(entity_ids) > 10 or len(creators) > 10:
            fail("Count", "filter", "At most 10 values per filter.")
        if entity_ids and len(entities) != 1:
            fail("NotBlank", "filter.entity", "filter[entity_id] needs exactly one filter[entity].")
        for values, key in ((entities, "entity_type"), (entity_ids, "entity_id"), (creators, "created_by")):
            if values:
                events = [event for event in events if str(event[key]) in values]
        wanted_ids = arg_values("filter[id]")
        if wanted_ids:
            events = [event for event in events if event["id"] in wanted_ids]
        types = arg_values("filter[type]")
        if types:
            events = [event for event in events if event["type"] in types]
        after = request.args.get("filter[created_at]")
        if after and after.isdigit():
            events = [event for event in events if event["created_at"] >= int(after)]
        for bound, keep in (("from", lambda v, b: v >= b), ("to", lambda v, b: v <= b)):
            raw = request.args.get(f"filter[created_at][{bound}]")
            if raw is not None and raw.isdigit():
                events = [event for event in events if keep(event["created_at"], int(raw))]
        for side in ("value_after", "value_before"):
            wanted = statuses_wanted(side)
            if wanted:
                events = [event for event in events if status_pairs(event[side]) & wanted]
        return paginate(
            "events", events, lambda event: dict(event, _links=link(f"events/{event['id']}")), max_limit=100
        )


def user_view(user: dict) -> dict:
    return dict(user, _links=link(f"users/{user['id']}"))


@bp.get("/users")
def users_list():
    return paginate("users", g.account["users"], user_view)


@bp.get("/users/<int:user_id>")
def user_one(user_id):
    user = next((user for user in g.account["users"] if user["id"] == user_id), None)
    return hal(user_view(user)) if user else no_content()
