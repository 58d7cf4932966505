"""Tags (Kommo tags API): ``GET /api/v4/{entity}/tags`` (``filter[id][]``, ``filter[name]``, ``query``) and
``POST /api/v4/{entity}/tags`` ``[{name, color?, request_id?}]`` → ``_embedded.tags[{id, name, color,
request_id}]``; a name that exists already answers the existing tag. Tags are kept per account (one registry
for every entity type here; amoCRM keeps one per entity type, which our client never relies on)."""

from flask import g, request

from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link
from .listing import paginate
from .oauth import sandbox
from .validation import MAX_LIMIT, ValidationFailed, collection_body, parse_tags, request_id

bp = api_blueprint("sandbox_tags")

ENTITIES = "<any(leads, contacts, companies, customers):entity>"


@bp.get(f"/{ENTITIES}/tags")
def tags_list(entity):
    state = sandbox().state
    with state.lock:
        tags = sorted(g.account.get("tags", {}).values(), key=lambda tag: tag["id"])
        ids = arg_values("filter[id]")
        if ids:
            tags = [tag for tag in tags if str(tag["id"]) in ids]
        name = request.args.get("filter[name]")
        if name:
            tags = [tag for tag in tags if tag["name"].lower() == name.lower()]
        query = request.args.get("query", "").strip().lower()
        if query:
            tags = [tag for tag in tags if query in tag["name"].lower()]
        return paginate("tags", tags, lambda tag: dict(tag))


@bp.post(f"/{ENTITIES}/tags")
def tags_create(entity):
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        errors = []
        created = parse_tags(
            g.account, [item if isinstance(item, dict) else {} for item in items], "", errors
        )
        if errors:
            for entry in errors:
                entry["path"] = entry["path"].lstrip(".")
            raise ValidationFailed([{"request_id": "0", "errors": errors}])
        for tag, item in zip(created, items, strict=True):
            if isinstance(item.get("color"), str) and tag["color"] is None:
                g.account["tags"][tag["name"].lower()]["color"] = item["color"]
                tag["color"] = item["color"]
        views = [dict(tag, request_id=request_id(items[n], n)) for n, tag in enumerate(created)]
    return hal({"_links": link(f"{entity}/tags"), "_embedded": {"tags": views}})
