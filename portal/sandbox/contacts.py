"""``/api/v4/contacts``: list (search), one, create."""

from flask import g, request

from .filters import apply_filters, apply_order
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .records import account_contacts, build_contact, contact_view, store_contact
from .search import matches
from .validation import MAX_LIMIT, ValidationFailed, collection_body, request_id

bp = api_blueprint("sandbox_contacts")


@bp.get("/contacts")
def contacts_list():
    state = sandbox().state
    with state.lock:
        items = apply_filters("contacts", account_contacts(g.account["id"]))
        query = request.args.get("query", "").strip()
        if query:
            items = [contact for contact in items if matches("contacts", contact, query)]
        return paginate("contacts", apply_order("contacts", items), contact_view)


@bp.get("/contacts/<int:contact_id>")
def contact_one(contact_id):
    state = sandbox().state
    with state.lock:
        contact = state.contacts.get(contact_id)
        if contact is None or contact["account_id"] != g.account["id"]:
            return no_content()
        return hal(contact_view(contact))


@bp.post("/contacts")
def contacts_create():
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        built, problems = [], []
        for index, item in enumerate(items):
            errors = []
            contact = build_contact(g.account, item if isinstance(item, dict) else {}, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            built.append(contact)
        if problems:
            raise ValidationFailed(problems)
        results = [
            {
                "id": store_contact(contact)["id"],
                "request_id": request_id(items[index], index),
                "_links": link(f"contacts/{contact['id']}"),
            }
            for index, contact in enumerate(built)
        ]
    return hal({"_links": link("contacts"), "_embedded": {"contacts": results}})
