"""``/api/v4/account``, pipelines and custom-field definitions."""

from flask import abort, g, request

from . import faults
from .filters import arg_values
from .guard import api_blueprint
from .hal import hal, link, no_content
from .listing import paginate
from .oauth import sandbox
from .validation import ENUM_TYPES, MAX_LIMIT, ValidationFailed, collection_body, error, request_id

# The custom-field types amoCRM lets an integration create (amoCRM custom-fields API, type list).
FIELD_TYPES = (
    "text",
    "numeric",
    "checkbox",
    "select",
    "multiselect",
    "date",
    "url",
    "textarea",
    "radiobutton",
    "streetaddress",
    "smart_address",
    "birthday",
    "legal_entity",
    "date_time",
    "price",
    "category",
    "items",
    "tracking_data",
    "linked_entity",
    "chained_list",
    "monetary",
    "file",
    "payer",
    "supplier",
    "multitext",
)

bp = api_blueprint("sandbox_account")


@bp.get("/account")
def account_info():
    account = g.account
    with_ = request.args.get("with", "").split(",")
    embedded = {}
    if "datetime_settings" in with_:
        embedded["datetime_settings"] = {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": account["timezone"],
            "timezone_offset": account["timezone_offset"],
        }
    if "users_groups" in with_:
        embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
    if "task_types" in with_:
        embedded["task_types"] = [
            {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
            {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
        ]
    if "entity_names" in with_:
        embedded["entity_names"] = {
            "leads": {"ru": {"gender": "f", "plural_form": {"dative": "сделкам"}}},
        }
    if "amojo_rights" in with_:
        embedded["amojo_rights"] = {"can_direct": False, "can_create_groups": False}
    body = {
        "id": account["id"],
        "name": account["name"],
        "subdomain": account["subdomain"],
        "created_at": account["created_at"],
        "created_by": account["users"][0]["id"],
        "updated_at": account["created_at"],
        "updated_by": account["users"][0]["id"],
        "current_user_id": g.user_id,
        "country": account["country"],
        "currency": account["currency"],
        "currency_symbol": account["currency_symbol"],
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "_links": link("account"),
    }
    # Top-level extras a `with=` value adds (Kommo account API: amojo_id, version, drive_url,
    # is_api_filter_enabled — the last says whether this account applies list filters).
    if "amojo_id" in with_:
        body["amojo_id"] = f"{account['id']:08x}-0000-4000-8000-000000000000"
    if "version" in with_:
        body["version"] = 1
    if "drive_url" in with_:
        body["drive_url"] = f"https://drive-b.amocrm.ru/{account['id']}"
    if "is_api_filter_enabled" in with_:
        body["is_api_filter_enabled"] = account["settings"]["list_filters"] == "applied"
    if embedded:
        body["_embedded"] = embedded
    return hal(body)


@bp.get("/leads/pipelines")
def pipelines():
    items = []
    for pipeline in g.account["pipelines"]:
        view = {key: value for key, value in pipeline.items() if key != "statuses"}
        view["_links"] = link(f"leads/pipelines/{pipeline['id']}")
        view["_embedded"] = {
            "statuses": [
                dict(s, _links=link(f"leads/pipelines/{pipeline['id']}/statuses/{s['id']}"))
                for s in pipeline["statuses"]
            ]
        }
        items.append(view)
    return hal(
        {"_total_items": len(items), "_links": link("leads/pipelines"), "_embedded": {"pipelines": items}}
    )


def status_view(pipeline_id: int, status: dict) -> dict:
    return dict(status, _links=link(f"leads/pipelines/{pipeline_id}/statuses/{status['id']}"))


def pipeline_or_404(pipeline_id: int):
    pipeline = sandbox().state.pipeline(g.account, pipeline_id)
    if pipeline is None:
        abort(faults.problem(404, "Not Found", "Pipeline not found"))
    return pipeline


@bp.get("/leads/pipelines/<int:pipeline_id>")
def pipeline_one(pipeline_id):
    pipeline = pipeline_or_404(pipeline_id)
    view = {key: value for key, value in pipeline.items() if key != "statuses"}
    statuses = [status_view(pipeline_id, status) for status in pipeline["statuses"]]
    view.update(_links=link(f"leads/pipelines/{pipeline_id}"), _embedded={"statuses": statuses})
    return hal(view)


@bp.get("/leads/pipelines/<int:pipeline_id>/statuses")
def pipeline_statuses(pipeline_id):
    pipeline = pipeline_or_404(pipeline_id)
    statuses = [status_view(pipeline_id, status) for status in pipeline["statuses"]]
    return hal(
        {
            "_total_items": len(statuses),
            "_links": link(f"leads/pipelines/{pipeline_id}/statuses"),
            "_embedded": {"statuses": statuses},
        }
    )


@bp.get("/leads/pipelines/<int:pipeline_id>/statuses/<int:status_id>")
def pipeline_status(pipeline_id, status_id):
    pipeline = pipeline_or_404(pipeline_id)
    status = next((s for s in pipeline["statuses"] if s["id"] == status_id), None)
    if status is None:
        return faults.problem(404, "Not Found", "Status not found")
    return hal(status_view(pipeline_id, status))


FIELD_LISTS = {"leads": "lead_fields", "contacts": "contact_fields", "companies": "company_fields"}
# amoCRM pages custom-field lists by 50 (amoCRM custom-fields API).
FIELDS_PER_PAGE = 50


@bp.get("/<any(leads, contacts, companies):entity>/custom_fields")
def custom_fields(entity):
    fields = g.account[FIELD_LISTS[entity]]
    types = arg_values("filter[type]")
    if types:
        fields = [field for field in fields if field["type"] in types]
    items = [dict(f, _links=link(f"{entity}/custom_fields/{f['id']}")) for f in fields]
    page_count = max(1, -(-len(items) // FIELDS_PER_PAGE))
    return paginate(
        "custom_fields",
        items,
        lambda item: item,
        default_limit=FIELDS_PER_PAGE,
        max_limit=FIELDS_PER_PAGE,
        totals={"_total_items": len(items), "_page_count": page_count},
    )


@bp.get("/<any(leads, contacts, companies):entity>/custom_fields/<int:field_id>")
def custom_field_one(entity, field_id):
    field = next((f for f in g.account[FIELD_LISTS[entity]] if f["id"] == field_id), None)
    if field is None:
        return no_content()
    return hal(dict(field, _links=link(f"{entity}/custom_fields/{field_id}")))


@bp.delete("/<any(leads, contacts, companies):entity>/custom_fields/<int:field_id>")
def custom_field_delete(entity, field_id):
    """Admin only; 204. A predefined field (tracking, phone, e-mail) cannot be deleted (403)."""
    state = sandbox().state
    with state.lock:
        fields = g.account[FIELD_LISTS[entity]]
        field = next((f for f in fields if f["id"] == field_id), None)
        if field is None:
            return faults.problem(404, "Not Found", "Custom field not found")
        if field.get("is_predefined") or field["type"] == "tracking_data" or field.get("code") in ("PHONE", "EMAIL"):
            return faults.problem(403, "Forbidden", "This field cannot be deleted")
        fields.remove(field)
    return no_content()


@bp.post("/<any(leads, contacts, companies):entity>/custom_fields")
def custom_fields_create(entity):
    """Admin only (the guard answers 403 otherwise); 201 with the created fields (Kommo errors page)."""
    state = sandbox().state
    items = collection_body(MAX_LIMIT)
    with state.lock:
        built, problems = [], []
        for index, item in enumerate(items):
            errors = []
            field = build_field(g.account, entity, item if isinstance(item, dict) else {}, errors)
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            built.append(field)
        if problems:
            raise ValidationFailed(problems)
        g.account[FIELD_LISTS[entity]] += built
        views = [
            dict(
                field,
                request_id=request_id(items[n], n),
                _links=link(f"{entity}/custom_fields/{field['id']}"),
            )
            for n, field in enumerate(built)
        ]
    return hal({"_total_items": len(views), "_embedded": {"custom_fields": views}}, 201)


def build_field(account: dict, entity: str, item: dict, errors: list) -> dict | None:
    kind, name, code = item.get("type"), item.get("name"), item.get("code")
    if kind not in FIELD_TYPES:
        error(errors, "NotSupportedChoice", "type", "The value you selected is not a valid choice.")
    if not isinstance(name, str) or not name.strip():
        error(errors, "NotBlank", "name", "This value should not be blank.")
    if code is not None and (not isinstance(code, str) or not code.strip()):
        error(errors, "InvalidType", "code", "This value should be of type string.")
    elif code and any(f["code"] == code for f in account[FIELD_LISTS[entity]]):
        error(errors, "NotUnique", "code", "This value is already used.")
    enums = item.get("enums") or []
    if kind in ENUM_TYPES and kind != "multitext" and not enums:
        error(errors, "NotBlank", "enums", "This value should not be blank.")
    if not isinstance(enums, list) or not all(
        isinstance(e, dict) and isinstance(e.get("value"), str) for e in enums
    ):
        error(errors, "InvalidType", "enums", "Each enum needs a string value.")
    if errors:
        return None
    state = sandbox().state
    field = state.new_field(account["id"], entity, name, kind, code, [e["value"] for e in enums] or None)
    field.update(is_api_only=bool(item.get("is_api_only", False)), sort=item.get("sort", 500))
    field.update(is_deletable=True, is_predefined=False)
    return field
