"""Links between entities (amoCRM entity-links-api; Kommo linking-entities; PHP LinkModel).

``POST /api/v4/{entity}/{id}/link`` ``[{to_entity_id, to_entity_type, metadata?}]`` and
``POST /api/v4/{entity}/link`` ``[{entity_id, to_entity_id, to_entity_type, metadata?}]`` link; the same with
``unlink`` remove; ``GET /api/v4/{entity}/{id}/links`` and ``GET /api/v4/{entity}/links?filter[entity_id][]``
list ``_embedded.links[{entity_id, entity_type, to_entity_id, to_entity_type, metadata}]``. Leads link to
contacts and companies; contacts to companies (and back). ``metadata.is_main`` marks a lead's main contact.
"""

from flask import g

from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .oauth import sandbox
from .parties import store_of
from .validation import MAX_LIMIT, ValidationFailed, collection_body, error, is_int, request_id

bp = api_blueprint("sandbox_links")

ENTITIES = "<any(leads, contacts, companies):entity>"
TARGETS = {
    "leads": ("contacts", "companies"),
    "contacts": ("companies", "leads"),
    "companies": ("contacts", "leads"),
}


def store(entity: str) -> dict:
    return sandbox().state.leads if entity == "leads" else store_of(entity)


def owned(entity: str, entity_id) -> dict | None:
    found = store(entity).get(entity_id) if is_int(entity_id) else None
    return found if found is not None and found["account_id"] == g.account["id"] else None


def links_of(entity: str, item: dict) -> list:
    state = sandbox().state
    found = []
    for target in TARGETS[entity]:
        if target == "leads":
            ids = [
                lead["id"]
                for lead in state.leads.values()
                if any(x["id"] == item["id"] for x in lead["_embedded"][entity])
            ]
            metas = [{} for _ in ids]
        else:
            refs = item["_embedded"].get(target, [])
            ids = [ref["id"] for ref in refs]
            metas = [{"main_contact": ref["is_main"]} if "is_main" in ref else {} for ref in refs]
        found += [
            {
                "entity_id": item["id"],
                "entity_type": entity,
                "to_entity_id": to_id,
                "to_entity_type": target,
                "metadata": meta or None,
            }
            for to_id, meta in zip(ids, metas, strict=True)
        ]
    return found


def change_links(entity: str, items: list, fixed_id=None, linking: bool = True):
    state = sandbox().state
    with state.lock:
        plans, problems = [], []
        for index, item in enumerate(items):
            errors = []
            item = item if isinstance(item, dict) else {}
            source = owned(entity, fixed_id if fixed_id is not None else item.get("entity_id"))
            target_type = item.get("to_entity_type")
            if source is None:
                error(errors, "NotFound", "entity_id", "Entity not found")
            if target_type not in TARGETS[entity]:
                error(
                    errors,
                    "NotSupportedChoice",
                    "to_entity_type",
                    "The value you selected is not a valid choice.",
                )
            elif owned(target_type, item.get("to_entity_id")) is None:
                error(errors, "NotFound", "to_entity_id", "Entity not found")
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            plans.append((source, target_type, item.get("to_entity_id"), item.get("metadata") or {}))
        if problems:
            raise ValidationFailed(problems)
        results = []
        for source, target_type, target_id, metadata in plans:
            holder, held_type, held_id = source, target_type, target_id
            if target_type == "leads":  # lead ↔ party links live on the lead
                holder, held_type, held_id = owned("leads", target_id), entity, source["id"]
            refs = [ref for ref in holder["_embedded"].get(held_type, []) if ref["id"] != held_id]
            if linking:
                ref = {"id": held_id}
                if holder is not source or entity == "leads":
                    if held_type == "contacts":
                        ref["is_main"] = bool(metadata.get("is_main", metadata.get("main_contact", not refs)))
                refs.append(ref)
            holder["_embedded"][held_type] = refs
            results.append(
                {
                    "entity_id": source["id"],
                    "entity_type": entity,
                    "to_entity_id": target_id,
                    "to_entity_type": target_type,
                    "metadata": metadata or None,
                }
            )
    if not linking:
        return no_content()
    return hal({"_links": link(f"{entity}/link"), "_embedded": {"links": results}})


@bp.post(f"/{ENTITIES}/<int:entity_id>/link")
def link_one(entity, entity_id):
    return change_links(entity, collection_body(MAX_LIMIT), entity_id)


@bp.post(f"/{ENTITIES}/link")
def link_many(entity):
    return change_links(entity, collection_body(MAX_LIMIT))


@bp.post(f"/{ENTITIES}/<int:entity_id>/unlink")
def unlink_one(entity, entity_id):
    return change_links(entity, collection_body(MAX_LIMIT), entity_id, linking=False)


@bp.post(f"/{ENTITIES}/unlink")
def unlink_many(entity):
    return change_links(entity, collection_body(MAX_LIMIT), linking=False)


@bp.get(f"/{ENTITIES}/<int:entity_id>/links")
def links_one(entity, entity_id):
    state = sandbox().state
    with state.lock:
        item = owned(entity, entity_id)
        if item is None:
            return no_content()
        found = links_of(entity, item)
    if not found:
        return no_content()
    return hal(
        {
            "_total_items": len(found),
            "_links": link(f"{entity}/{entity_id}/links"),
            "_embedded": {"links": found},
        }
    )


@bp.get(f"/{ENTITIES}/links")
def links_many(entity):
    wanted = arg_values("filter[entity_id]")
    if not wanted:
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "NotBlank",
                            "path": "filter.entity_id",
                            "detail": "This value should not be blank.",
                        }
                    ],
                }
            ]
        )
    state = sandbox().state
    with state.lock:
        found = []
        for raw in wanted:
            item = owned(entity, int(raw)) if raw.isdigit() else None
            found += links_of(entity, item) if item else []
    if not found:
        return no_content()
    return hal({"_total_items": len(found), "_links": link(f"{entity}/links"), "_embedded": {"links": found}})
