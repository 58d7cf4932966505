"""Notes on leads, contacts and companies (PHP SDK NoteModel, EntityNotes; Kommo notes API).

``POST /api/v4/{entity}/notes`` ``[{entity_id, note_type, params, request_id}]`` or
``POST /api/v4/{entity}/{id}/notes`` without ``entity_id`` → ``_embedded.notes[{id, entity_id, request_id}]``;
``GET`` the same paths list them (``filter[note_type][]``), ``GET /api/v4/{entity}/notes/{id}`` one.
``common`` notes need ``params.text``. A note triggers ``note_lead`` / ``note_contact`` / ``note_company``.
"""

from flask import g, request

from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .parties import store_of
from .records import publish
from .state import now
from .validation import MAX_LIMIT, ValidationFailed, collection_body, error, is_int, request_id

bp = api_blueprint("sandbox_notes")

ENTITIES = "<any(leads, contacts, companies):entity>"
NOTE_TYPES = (
    "common",
    "call_in",
    "call_out",
    "service_message",
    "extended_service_message",
    "message_cashier",
    "sms_in",
    "sms_out",
    "attachment",
    "geolocation",
)


def entity_store(entity: str) -> dict:
    return sandbox().state.leads if entity == "leads" else store_of(entity)


def note_view(entity: str, note: dict) -> dict:
    return dict(note, _links=link(f"{entity}/{note['entity_id']}/notes/{note['id']}"))


def build_note(entity: str, item: dict, entity_id, errors: list) -> dict | None:
    owner = entity_store(entity).get(entity_id) if is_int(entity_id) else None
    if owner is None or owner["account_id"] != g.account["id"]:
        error(errors, "NotFound", "entity_id", "Entity not found")
    note_type = item.get("note_type")
    if note_type not in NOTE_TYPES:
        error(errors, "NotSupportedChoice", "note_type", "The value you selected is not a valid choice.")
    params = item.get("params")
    if not isinstance(params, dict):
        error(errors, "InvalidType", "params", "This value should be of type object.")
    elif note_type == "common" and not (isinstance(params.get("text"), str) and params["text"].strip()):
        error(errors, "NotBlank", "params.text", "This value should not be blank.")
    if errors:
        return None
    moment = now()
    return {
        "id": None,
        "entity_id": entity_id,
        "entity_type": entity,
        "note_type": note_type,
        "params": params,
        "created_by": item.get("created_by", g.user_id),
        "updated_by": g.user_id,
        "created_at": moment,
        "updated_at": moment,
        "responsible_user_id": item.get("responsible_user_id", g.user_id),
        "group_id": 0,
        "account_id": g.account["id"],
    }


def create_notes(entity: str, fixed_entity_id=None):
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        built, problems = [], []
        for index, item in enumerate(items):
            errors = []
            item = item if isinstance(item, dict) else {}
            entity_id = fixed_entity_id if fixed_entity_id is not None else item.get("entity_id")
            built.append(build_note(entity, item, entity_id, errors))
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
        if problems:
            raise ValidationFailed(problems)
        results = []
        for index, note in enumerate(built):
            note["id"] = state.next_id("note")
            state.notes[note["id"]] = note
            results.append(
                {
                    "id": note["id"],
                    "entity_id": note["entity_id"],
                    "request_id": request_id(items[index], index),
                }
            )
        publish([("note", note, {}) for note in built], entity)
    return hal({"_links": link(f"{entity}/notes"), "_embedded": {"notes": results}})


def list_notes(entity: str, entity_id=None):
    state = sandbox().state
    with state.lock:
        notes = [
            note
            for note in state.notes.values()
            if note["account_id"] == g.account["id"]
            and note["entity_type"] == entity
            and (entity_id is None or note["entity_id"] == entity_id)
        ]
        types = arg_values("filter[note_type]")
        if types:
            notes = [note for note in notes if note["note_type"] in types]
        wanted = arg_values("filter[entity_id]")
        if wanted:
            notes = [note for note in notes if str(note["entity_id"]) in wanted]
        if request.args.get("order[id]") == "desc":
            notes = notes[::-1]
        return paginate("notes", notes, lambda note: note_view(entity, note))


@bp.post(f"/{ENTITIES}/notes")
def notes_create(entity):
    return create_notes(entity)


@bp.post(f"/{ENTITIES}/<int:entity_id>/notes")
def entity_notes_create(entity, entity_id):
    return create_notes(entity, entity_id)


@bp.get(f"/{ENTITIES}/notes")
def notes_list(entity):
    return list_notes(entity)


@bp.get(f"/{ENTITIES}/<int:entity_id>/notes")
def entity_notes_list(entity, entity_id):
    return list_notes(entity, entity_id)


@bp.get(f"/{ENTITIES}/notes/<int:note_id>")
def note_one(entity, note_id):
    state = sandbox().state
    with state.lock:
        note = state.notes.get(note_id)
        if note is None or note["account_id"] != g.account["id"] or note["entity_type"] != entity:
            return no_content()
        return hal(note_view(entity, note))
