"""``/api/v4/leads``: list (filters, order, search), one, create, update (batch and single)."""

import copy

from flask import g, request

from . import faults
from .filters import apply_filters, apply_order
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .records import account_leads, apply_update, build_lead, embedded_of, lead_view, publish, store_lead
from .search import matches
from .validation import MAX_LIMIT, ValidationFailed, collection_body, error, is_int, request_id

bp = api_blueprint("sandbox_leads")


@bp.get("/leads")
def leads_list():
    state = sandbox().state
    with state.lock:
        items = apply_filters("leads", account_leads(g.account["id"]))
        query = request.args.get("query", "").strip()
        if query:
            items = [lead for lead in items if matches("leads", lead, query)]
        with_ = request.args.get("with", "").split(",")
        if "only_deleted" in with_:
            return no_content()  # deleted deals are not kept for restoring here
        return paginate("leads", apply_order("leads", items), lambda lead: lead_view(lead, with_))


@bp.get("/leads/<int:lead_id>")
def lead_one(lead_id):
    state = sandbox().state
    with state.lock:
        lead = state.leads.get(lead_id)
        if lead is None or lead["account_id"] != g.account["id"]:
            return no_content()
        return hal(lead_view(lead, request.args.get("with", "").split(",")))


@bp.post("/leads")
def leads_create():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        built, problems = [], []
        for index, item in enumerate(items):
            errors = []
            if not isinstance(item, dict):
                error(errors, "InvalidType", "", "This value should be of type object.")
                lead = None
            else:
                lead = build_lead(g.account, item, errors)
                contacts = embedded_of(item).get("contacts", [])
                contacts = contacts if isinstance(contacts, list) else []
                contact_ids = [c.get("id") for c in contacts if isinstance(c, dict)]
                for position, contact_id in enumerate(contact_ids):
                    contact = state.contacts.get(contact_id) if is_int(contact_id) else None
                    if contact is None or contact["account_id"] != g.account["id"]:
                        error(errors, "NotFound", f"_embedded.contacts.{position}.id", "Contact not found")
                if lead is not None:
                    lead["_embedded"]["contacts"] = [
                        {"id": cid, "is_main": pos == 0} for pos, cid in enumerate(contact_ids)
                    ]
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            built.append(lead)
        if problems:
            raise ValidationFailed(problems)
        results = []
        for index, lead in enumerate(built):
            store_lead(lead)
            results.append(
                {
                    "id": lead["id"],
                    "request_id": request_id(items[index], index),
                    "_links": link(f"leads/{lead['id']}"),
                }
            )
        publish([("add", lead, {}) for lead in built])
    return hal({"_links": link("leads"), "_embedded": {"leads": results}})


@bp.patch("/leads")
def leads_update():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        snapshot = copy.deepcopy(state.leads)
        problems, changes, results = [], [], []
        for index, item in enumerate(items):
            errors = []
            lead = (
                state.leads.get(item.get("id")) if isinstance(item, dict) and is_int(item.get("id")) else None
            )
            if lead is None or lead["account_id"] != g.account["id"]:
                error(errors, "NotFound", "id", "Entity not found")
            else:
                changes += apply_update(lead, item, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            elif lead is not None:
                results.append(
                    {
                        "id": lead["id"],
                        "updated_at": lead["updated_at"],
                        "request_id": request_id(item, index),
                        "_links": link(f"leads/{lead['id']}"),
                    }
                )
        if problems:
            state.leads = snapshot  # all or nothing, like amoCRM's batch validation
            raise ValidationFailed(problems)
        publish(changes)
    return hal({"_links": link("leads"), "_embedded": {"leads": results}})


@bp.patch("/leads/<int:lead_id>")
def lead_update(lead_id):
    state = sandbox().state
    item = request.get_json(silent=True, force=True)
    if not isinstance(item, dict):
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {"code": "InvalidType", "path": "", "detail": "This value should be of type object."}
                    ],
                }
            ]
        )
    with state.lock:
        lead = state.leads.get(lead_id)
        if lead is None or lead["account_id"] != g.account["id"]:
            return faults.problem(404, "Not Found", "Entity not found")
        before, errors = copy.deepcopy(lead), []
        changes = apply_update(lead, item, errors)
        if errors:
            state.leads[lead_id] = before
            raise ValidationFailed([{"request_id": "0", "errors": errors}])
        publish(changes)
        return hal({"id": lead["id"], "updated_at": lead["updated_at"], "_links": link(f"leads/{lead_id}")})
