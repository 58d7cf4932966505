"""``/api/v4/contacts`` and ``/api/v4/companies``: list (filters, order, search), one, create, update.

``PATCH /{entity}`` takes an array, ``PATCH /{entity}/{id}`` one object (an array there is a 405, PHP SDK #329).
Changes are sent to webhooks as ``contacts[add|update|responsible][N]`` with ``[type]=contact|company``.
"""

import copy

from flask import g, request

from . import faults
from .filters import apply_filters, apply_order
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .parties import account_parties, build_party, party_view, store_of, store_party, update_party
from .records import publish
from .search import matches
from .validation import MAX_LIMIT, ValidationFailed, collection_body, error, is_int, request_id

bp = api_blueprint("sandbox_contacts")

ENTITIES = "<any(contacts, companies):entity>"


@bp.get(f"/{ENTITIES}")
def parties_list(entity):
    state = sandbox().state
    with state.lock:
        # Contacts of an Unsorted item stay hidden until it is accepted (amoCRM unsorted-api).
        visible = [
            party for party in account_parties(entity, g.account["id"]) if not party.get("is_unsorted")
        ]
        items = apply_filters("contacts", visible)
        query = request.args.get("query", "").strip()
        if query:
            items = [party for party in items if matches(entity, party, query)]
        return paginate(entity, apply_order("contacts", items), lambda party: party_view(entity, party))


@bp.get(f"/{ENTITIES}/<int:party_id>")
def party_one(entity, party_id):
    state = sandbox().state
    with state.lock:
        party = store_of(entity).get(party_id)
        if party is None or party["account_id"] != g.account["id"]:
            return no_content()
        return hal(party_view(entity, party))


@bp.post(f"/{ENTITIES}")
def parties_create(entity):
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        built, problems = [], []
        for index, item in enumerate(items):
            errors = []
            party = build_party(entity, g.account, item if isinstance(item, dict) else {}, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            built.append(party)
        if problems:
            raise ValidationFailed(problems)
        results = []
        for index, party in enumerate(built):
            store_party(entity, party)
            results.append(
                {
                    "id": party["id"],
                    "request_id": request_id(items[index], index),
                    "_links": link(f"{entity}/{party['id']}"),
                }
            )
        publish([("add", party, {}) for party in built], entity)
    return hal({"_links": link(entity), "_embedded": {entity: results}})


@bp.patch(f"/{ENTITIES}")
def parties_update(entity):
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        snapshot = copy.deepcopy(store_of(entity))
        problems, changes, results = [], [], []
        for index, item in enumerate(items):
            errors = []
            party_id = item.get("id") if isinstance(item, dict) else None
            party = store_of(entity).get(party_id) if is_int(party_id) else None
            if party is None or party["account_id"] != g.account["id"]:
                error(errors, "NotFound", "id", "Entity not found")
            else:
                changes += update_party(entity, party, item, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            else:
                results.append(
                    {
                        "id": party["id"],
                        "updated_at": party["updated_at"],
                        "request_id": request_id(item, index),
                        "_links": link(f"{entity}/{party['id']}"),
                    }
                )
        if problems:
            store_of(entity).clear()
            store_of(entity).update(snapshot)  # all or nothing
            raise ValidationFailed(problems)
        publish(changes, entity)
    return hal({"_links": link(entity), "_embedded": {entity: results}})


@bp.patch(f"/{ENTITIES}/<int:party_id>")
def party_update(entity, party_id):
    item = request.get_json(silent=True, force=True)
    if isinstance(item, list):
        return faults.problem(405, "Method Not Allowed", "Method Not Allowed")
    if not isinstance(item, dict):
        raise ValidationFailed(
            [{"request_id": "0", "errors": [{"code": "InvalidType", "path": "", "detail": "Not an object."}]}]
        )
    state = sandbox().state
    with state.lock:
        party = store_of(entity).get(party_id)
        if party is None or party["account_id"] != g.account["id"]:
            return faults.problem(404, "Not Found", "Entity not found")
        before, errors = copy.deepcopy(party), []
        changes = update_party(entity, party, item, errors)
        if errors:
            store_of(entity)[party_id] = before
            raise ValidationFailed([{"request_id": "0", "errors": errors}])
        publish(changes, entity)
        return hal(
            {"id": party_id, "updated_at": party["updated_at"], "_links": link(f"{entity}/{party_id}")}
        )
