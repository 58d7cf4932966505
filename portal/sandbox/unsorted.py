"""Unsorted ("Неразобранное"; amoCRM unsorted-api, PHP EntitiesServices/Unsorted, Kommo unsorted).

- ``POST /api/v4/leads/unsorted/forms`` ``[{source_name*, source_uid*, pipeline_id, created_at, metadata*,
  _embedded{leads: [one lead], contacts, companies}, request_id}]``: ``metadata`` (form_id, form_name,
  form_page, ip, form_sent_at, referer…) is top-level and required. The lead lands in the pipeline's incoming
  status; its contacts stay hidden from contact lists and search until the item is accepted. A
  ``source_uid`` that is already waiting in Unsorted is refused (amoCRM: re-adding the same data is an error).
- ``GET /api/v4/leads/unsorted`` (``filter[uid]``, ``filter[category][]``, ``filter[pipeline_id]``,
  ``order[created_at]``), ``…/unsorted/{uid}``, ``…/unsorted/summary``.
- ``POST …/{uid}/accept`` ``{user_id?, status_id?}``: the lead moves to ``status_id`` (default the first
  working status) and its contacts become visible; ``DELETE …/{uid}/decline`` ``{user_id?}``: the lead is
  deleted. Both answer ``{uid, category, pipeline_id, created_at, _embedded{leads[{id}], contacts, companies}}``.
  The decline's method is DELETE in Kommo's reference and the PHP SDK; one public client sends POST: the
  account setting ``unsorted_decline_methods`` (default ``["DELETE"]``) says which are served, and
  ``unsorted_decline_outcome`` what a decline does to the lead: ``delete`` (default) or ``lost`` (status 143),
  a variant reported but not documented.
- ``metadata`` of a form item (PHP SDK FormsMetadata, amoCRM unsorted-api): ``form_id`` and ``form_name`` (text),
  ``form_page`` (text), ``form_sent_at`` (unix seconds) are required; ``ip``, ``referer``, ``visitor_uid``,
  ``form_type`` optional text.
- The control API (``/_sandbox/unsorted/<uid>/accept|decline``) lets a "manager" do the same, with the same
  webhooks.
- Webhooks: ``add_unsorted`` on create; ``delete_unsorted`` with ``[action]=accept|decline`` and
  ``[accept_result]`` / ``[decline_result]`` lead ids when it leaves Unsorted (bodies from third-party parsers;
  amoCRM does not publish an example).
"""

import copy
import uuid

from flask import abort, g, request

from . import faults
from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .parties import build_party, store_party
from .records import build_lead, finish_update, publish, store_lead
from .search import drop_from_index, index_entity
from .state import LOST_STATUS_ID, now
from .validation import MAX_LIMIT, ValidationFailed, collection_body, error, fail, is_int, request_id

bp = api_blueprint("sandbox_unsorted")

CATEGORIES = ("sip", "mail", "forms", "chats")


def item_view(item: dict) -> dict:
    return dict(copy.deepcopy(item), _links=link(f"leads/unsorted/{item['uid']}"))


def refs(item: dict) -> dict:
    return {
        key: [{"id": entity["id"]} for entity in item["_embedded"][key]]
        for key in ("leads", "contacts", "companies")
    }


def check_form(account: dict, body: dict, errors: list) -> None:
    for key in ("source_name", "source_uid"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            error(errors, "NotBlank", key, "This value should not be blank.")
    if not isinstance(body.get("metadata"), dict):
        error(errors, "FieldMissing", "metadata", "This field is missing.")
    else:
        check_metadata(body["metadata"], errors)
    pipeline_id = body.get("pipeline_id")
    if pipeline_id is not None and sandbox().state.pipeline(account, pipeline_id) is None:
        error(errors, "NotSupportedChoice", "pipeline_id", "The value you selected is not a valid choice.")
    leads = (
        (body.get("_embedded") or {}).get("leads", [{}]) if isinstance(body.get("_embedded"), dict) else [{}]
    )
    if not isinstance(leads, list) or len(leads) != 1:
        error(errors, "Count", "_embedded.leads", "This collection should contain exactly 1 element.")
    waiting = {
        item["source_uid"]
        for item in sandbox().state.unsorted.values()
        if item["account_id"] == account["id"] and item["status"] == "new"
    }
    if body.get("source_uid") in waiting:
        error(errors, "NotUnique", "source_uid", "This data is already in Unsorted.")


METADATA_TEXT = ("form_id", "form_name", "form_page")
METADATA_OPTIONAL_TEXT = ("ip", "referer", "visitor_uid", "form_type")


def check_metadata(metadata: dict, errors: list) -> None:
    for key in METADATA_TEXT:
        value = metadata.get(key)
        if value is None:
            error(errors, "FieldMissing", f"metadata.{key}", "This field is missing.")
        elif not isinstance(value, str | int) or isinstance(value, bool):
            error(errors, "InvalidType", f"metadata.{key}", "This value should be of type string.")
    sent_at = metadata.get("form_sent_at")
    if sent_at is None:
        error(errors, "FieldMissing", "metadata.form_sent_at", "This field is missing.")
    elif not is_int(sent_at):
        error(errors, "InvalidType", "metadata.form_sent_at", "This value should be of type int.")
    for key in METADATA_OPTIONAL_TEXT:
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            error(errors, "InvalidType", f"metadata.{key}", "This value should be of type string.")


@bp.post("/leads/unsorted/forms")
def forms_create():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    account = g.account
    with state.lock:
        plans, problems = [], []
        for index, body in enumerate(items):
            errors = []
            body = body if isinstance(body, dict) else {}
            check_form(account, body, errors)
            embedded = body.get("_embedded") if isinstance(body.get("_embedded"), dict) else {}
            pipeline = state.pipeline(account, body.get("pipeline_id")) or state.main_pipeline(account)
            incoming = next(s["id"] for s in pipeline["statuses"] if s["type"] == 1)
            lead_item = (embedded.get("leads") or [{}])[0]
            lead_item = dict(lead_item if isinstance(lead_item, dict) else {}, pipeline_id=pipeline["id"])
            lead_item.pop("status_id", None)
            lead = build_lead(account, lead_item, errors, "_embedded.leads.0.")
            parties = {}
            for kind in ("contacts", "companies"):
                given = embedded.get(kind) or []
                parties[kind] = [
                    build_party(
                        kind,
                        account,
                        party if isinstance(party, dict) else {},
                        errors,
                        f"_embedded.{kind}.{n}.",
                    )
                    for n, party in enumerate(given if isinstance(given, list) else [])
                ]
            if errors:
                problems.append({"request_id": request_id(body, index), "errors": errors})
            plans.append((body, pipeline, incoming, lead, parties))
        if problems:
            raise ValidationFailed(problems)
        results, added = [], []
        for index, (body, pipeline, incoming, lead, parties) in enumerate(plans):
            lead["status_id"] = incoming
            for contact in parties["contacts"]:
                contact["is_unsorted"] = True
            stored = {kind: [store_party(kind, party) for party in parties[kind]] for kind in parties}
            for kind in ("contacts", "companies"):
                for party in stored[kind]:
                    drop_from_index(kind, party["id"])  # hidden until accepted
            lead["_embedded"]["contacts"] = [
                {"id": c["id"], "is_main": n == 0} for n, c in enumerate(stored["contacts"])
            ]
            lead["_embedded"]["companies"] = [{"id": c["id"]} for c in stored["companies"]]
            store_lead(lead)
            item = {
                "uid": uuid.uuid4().hex,
                "source_uid": body["source_uid"],
                "source_name": body["source_name"],
                "category": "forms",
                "pipeline_id": pipeline["id"],
                "created_at": body["created_at"] if is_int(body.get("created_at")) else now(),
                "metadata": body["metadata"],
                "account_id": account["id"],
                "status": "new",
                "_embedded": {
                    "leads": [lead],
                    "contacts": stored["contacts"],
                    "companies": stored["companies"],
                },
            }
            state.unsorted[item["uid"]] = item
            added.append(("add", item, {}))
            results.append(
                {
                    "uid": item["uid"],
                    "account_id": account["id"],
                    "source_uid": item["source_uid"],
                    "category": "forms",
                    "request_id": request_id(body, index),
                    "_embedded": refs(item),
                }
            )
        publish(added, "unsorted")
    return hal(
        {
            "_total_items": len(results),
            "_links": link("leads/unsorted/forms"),
            "_embedded": {"unsorted": results},
        }
    )


def waiting_items() -> list:
    items = [
        item
        for item in sandbox().state.unsorted.values()
        if item["account_id"] == g.account["id"] and item["status"] == "new"
    ]
    for key, field in (("uid", "uid"), ("category", "category"), ("pipeline_id", "pipeline_id")):
        wanted = arg_values(f"filter[{key}]")
        if wanted:
            items = [item for item in items if str(item[field]) in wanted]
    direction = request.args.get("order[created_at]")
    if direction in ("asc", "desc"):
        items = sorted(items, key=lambda item: item["created_at"], reverse=direction == "desc")
    return items


@bp.get("/leads/unsorted")
def unsorted_list():
    state = sandbox().state
    with state.lock:
        return paginate("unsorted", waiting_items(), item_view)


@bp.get("/leads/unsorted/summary")
def unsorted_summary():
    state = sandbox().state
    with state.lock:
        mine = [item for item in state.unsorted.values() if item["account_id"] == g.account["id"]]
        counts = {
            status: sum(item["status"] == status for item in mine)
            for status in ("new", "accepted", "declined")
        }
        categories = {
            category: sum(item["category"] == category and item["status"] == "new" for item in mine)
            for category in CATEGORIES
        }
    return hal(
        {
            "total": len(mine),
            "accepted": counts["accepted"],
            "declined": counts["declined"],
            "average_sort_time": 0,
            "categories": categories,
            "_links": link("leads/unsorted/summary"),
        }
    )


@bp.get("/leads/unsorted/<uid>")
def unsorted_one(uid):
    state = sandbox().state
    with state.lock:
        item = state.unsorted.get(uid)
        if item is None or item["account_id"] != g.account["id"] or item["status"] != "new":
            return no_content()
        return hal(item_view(item))


def take_waiting(uid: str) -> dict:
    """The item still waiting in Unsorted, or a 404 problem answer."""
    item = sandbox().state.unsorted.get(uid)
    if item is None or item["account_id"] != g.account["id"] or item["status"] != "new":
        abort(faults.problem(404, "Not Found", "Unsorted item not found"))
    return item


def answer(item: dict) -> dict:
    return {
        "uid": item["uid"],
        "category": item["category"],
        "pipeline_id": item["pipeline_id"],
        "created_at": item["created_at"],
        "_embedded": refs(item),
    }


def accept(item: dict, status_id) -> dict:
    """A waiting item accepted (by the API or a manager, as ``g.account`` / ``g.user_id``): its lead moves to
    ``status_id`` (default the pipeline's first working status), its contacts become visible, webhooks go."""
    state = sandbox().state
    lead = state.leads.get(item["_embedded"]["leads"][0]["id"])
    pipeline = state.pipeline(g.account, item["pipeline_id"])
    working = [s["id"] for s in pipeline["statuses"] if s["type"] == 0]
    if status_id is not None and status_id not in working:
        fail("NotSupportedChoice", "status_id", "The value you selected is not a valid choice.")
    changes = []
    if lead is not None:
        before = copy.deepcopy(lead)
        lead["status_id"] = status_id or working[0]
        changes = finish_update(lead, before)
    for contact in item["_embedded"]["contacts"]:
        stored = state.contacts.get(contact["id"])
        if stored is not None:
            stored["is_unsorted"] = False
            index_entity("contacts", stored)
    item["status"] = "accepted"
    publish(changes)
    publish(
        [("delete", item, {"action": "accept", "result": {"leads": [lead["id"]] if lead else []}})],
        "unsorted",
    )
    return answer(item)


def decline(item: dict) -> dict:
    """A waiting item declined: its lead deleted (or closed as lost, per the account's
    ``unsorted_decline_outcome``), webhooks go."""
    state = sandbox().state
    lead_id = item["_embedded"]["leads"][0]["id"]
    if g.account["settings"].get("unsorted_decline_outcome", "delete") == "lost":
        lead = state.leads.get(lead_id)
        if lead is not None:
            before = copy.deepcopy(lead)
            lead["status_id"] = LOST_STATUS_ID
            publish(finish_update(lead, before))
    else:
        lead = state.leads.pop(lead_id, None)
        if lead is not None:
            drop_from_index("leads", lead["id"])
            publish([("delete", lead, {})])
    item["status"] = "declined"
    publish(
        [("delete", item, {"action": "decline", "result": {"leads": [lead["id"]] if lead else []}})],
        "unsorted",
    )
    return answer(item)


@bp.post("/leads/unsorted/<uid>/accept")
def unsorted_accept(uid):
    body = request.get_json(silent=True, force=True) or {}
    state = sandbox().state
    with state.lock:
        item = take_waiting(uid)
        status_id = body.get("status_id") if isinstance(body, dict) else None
        return hal(accept(item, status_id))


@bp.route("/leads/unsorted/<uid>/decline", methods=["DELETE", "POST"])
def unsorted_decline(uid):
    if request.method not in g.account["settings"].get("unsorted_decline_methods", ["DELETE"]):
        abort(faults.problem(405, "Method Not Allowed", "Method Not Allowed"))
    state = sandbox().state
    with state.lock:
        return hal(decline(take_waiting(uid)))
