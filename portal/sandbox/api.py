"""amoCRM API v4 subset: account, leads, contacts, pipelines, custom fields, webhooks.

Bodies are HAL (``application/hal+json``); errors ``application/problem+json``; 204 with an empty body for an
empty list, a page past the end or a missing entity. The bearer token selects the account.
Lists: ``page`` (from 1), ``limit`` (default 50, > 250 → 422). ``_links.next`` is present whenever the page is
full, so the page after the last full one answers 204, as in amoCRM. ``query`` is a case-insensitive substring
search over names, ids, prices, tag names, custom field values and (for leads) linked contacts — fuzzy on
purpose: a hit for ``lp-12`` may also be ``lp-123``.
Validation errors: 400 ``validation-errors`` with ``request_id`` and ``path``; for ``POST /leads`` and
``PATCH /leads`` the path is relative to the item, for ``/leads/complex`` it starts with the item index
(``0.custom_fields_values.1.field_code``).
"""

import copy
import re
from urllib.parse import urlencode

import jwt
from flask import Blueprint, Response, g, json, request

from . import faults
from .oauth import public_host, sandbox
from .state import LOST_STATUS_ID, WEBHOOK_ACTIONS, WON_STATUS_ID, normalize_phone, now

bp = Blueprint("sandbox_api", __name__, url_prefix="/api/v4")

MAX_LIMIT = 250
MAX_COMPLEX = 50


class ValidationFailed(Exception):
    def __init__(self, entries: list):
        super().__init__("validation failed")
        self.entries = entries


# -- plumbing ------------------------------------------------------------------------------------


def hal(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/hal+json")


def no_content() -> Response:
    return Response(status=204)


def base_url() -> str:
    return f"{request.scheme}://{public_host()}"


def link(path: str) -> dict:
    return {"self": {"href": f"{base_url()}/api/v4/{path}"}}


def validation_problem(entries: list) -> Response:
    return faults.problem(400, "Bad Request", "Request validation failed", **{"validation-errors": entries})


def collection_body(required_max: int):
    """The JSON array of a collection write, or raises ValidationFailed."""
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, list) or not body:
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "InvalidType",
                            "path": "",
                            "detail": "This value should be a non-empty array.",
                        }
                    ],
                }
            ]
        )
    if len(body) > required_max:
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "Count",
                            "path": "",
                            "detail": f"This collection should contain {required_max} elements or less.",
                        }
                    ],
                }
            ]
        )
    return body


@bp.errorhandler(ValidationFailed)
def on_validation_failed(error):
    return validation_problem(error.entries)


@bp.before_request
def guard():
    box = sandbox()
    state = box.state
    if state.faults["block"]:
        state.count("http_403")
        return faults.nginx_page(403, "Forbidden")
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    try:
        claims = box.signer.verify(token)
    except jwt.InvalidTokenError:
        return faults.problem(401, "Unauthorized", "Token is invalid or expired")
    with state.lock:
        record = state.access_tokens.get(claims.get("jti"))
        account = state.account(claims.get("account_id"))
        if record is None or record["revoked"] or account is None:
            return faults.problem(401, "Unauthorized", "Token has been revoked")
        state.count("requests", record["client_id"])
        state.count("requests_by_account", account["id"])
    limited = faults.rate_limited(state, record["client_id"], account["id"])
    if limited is not None:
        return limited
    g.account, g.client_id, g.user_id = account, record["client_id"], int(claims["sub"])
    return faults.before_view(state)


@bp.after_request
def maybe_drop(response):
    if request.method in ("POST", "PATCH", "DELETE") and "account" in g:
        return faults.after_write(sandbox().state, response)
    return response


def int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "InvalidType",
                            "path": name,
                            "detail": "This value should be a positive integer.",
                        }
                    ],
                }
            ]
        )
    return int(raw)


def list_args(prefix: str) -> list[str]:
    """Values of ``filter[id]``, ``filter[id][]``, ``filter[id][0]`` … and comma lists."""
    values = []
    for key in request.args:
        if key == prefix or re.fullmatch(re.escape(prefix) + r"\[\d*\]", key):
            for raw in request.args.getlist(key):
                values += [part for part in raw.split(",") if part]
    return values


def paginate(kind: str, items: list, view) -> Response:
    page, limit = int_arg("page", 1), int_arg("limit", 50)
    if limit > MAX_LIMIT:
        return faults.problem(422, "Unprocessable Entity", "Limit of 250 per page")
    chunk = items[(page - 1) * limit : page * limit]
    if not chunk:
        return no_content()
    args = request.args.to_dict(flat=False)

    def href(target_page):
        args.update(page=[str(target_page)], limit=[str(limit)])
        return {"href": f"{base_url()}{request.path}?{urlencode(args, doseq=True)}"}

    links = {"self": href(page)}
    if len(chunk) == limit:
        links["next"] = href(page + 1)
    links["first"] = href(1)
    if page > 1:
        links["prev"] = href(page - 1)
    return hal({"_page": page, "_links": links, "_embedded": {kind: [view(item) for item in chunk]}})


def matches(entity: dict, needle: str, extra: list) -> bool:
    haystack = [
        entity.get("name"),
        entity.get("first_name"),
        entity.get("last_name"),
        entity["id"],
        entity.get("price"),
    ] + extra
    for field in entity.get("custom_fields_values") or []:
        haystack += [value.get("value") for value in field["values"]]
    for tag in entity["_embedded"].get("tags", []):
        haystack.append(tag["name"])
    needle = needle.lower()
    # A phone-like query also matches other spellings of the number (8… / +7…, spaces, dashes).
    digits = normalize_phone(needle) if re.fullmatch(r"[\d\s()+-]{5,}", needle) else ""
    for item in haystack:
        text = str(item).lower() if item is not None else ""
        if text and (needle in text or (digits and digits[-10:] in normalize_phone(text))):
            return True
    return False


def ordered(items: list) -> list:
    for key, direction in request.args.items():
        found = re.fullmatch(r"order\[(id|created_at|updated_at)\]", key)
        if found:
            return sorted(items, key=lambda item: item[found.group(1)], reverse=direction == "desc")
    return items


def filtered(items: list, key: str) -> list:
    """The items whose `key` is one of the `filter[key]` values; all of them when that filter is absent."""
    wanted = list_args(f"filter[{key}]")
    return [item for item in items if str(item[key]) in wanted] if wanted else items


def in_range(items: list, field: str) -> list:
    for bound, keep in (("from", lambda v, b: v >= b), ("to", lambda v, b: v <= b)):
        raw = request.args.get(f"filter[{field}][{bound}]")
        if raw is not None:
            if not raw.isdigit():
                raise ValidationFailed(
                    [
                        {
                            "request_id": "0",
                            "errors": [
                                {
                                    "code": "InvalidType",
                                    "path": f"filter.{field}.{bound}",
                                    "detail": "Not a timestamp",
                                }
                            ],
                        }
                    ]
                )
            items = [item for item in items if keep(item[field], int(raw))]
    return items


# -- field parsing -------------------------------------------------------------------------------


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def error(errors: list, code: str, path: str, detail: str) -> None:
    errors.append({"code": code, "path": path, "detail": detail})


def parse_custom_fields(definitions: list, raw, path: str, errors: list) -> list:
    if not isinstance(raw, list):
        error(errors, "InvalidType", path, "This value should be of type array.")
        return []
    parsed = []
    for index, item in enumerate(raw):
        here = f"{path}.{index}"
        if not isinstance(item, dict):
            error(errors, "InvalidType", here, "This value should be of type object.")
            continue
        if "field_id" in item:
            field = next((f for f in definitions if f["id"] == item["field_id"]), None)
            if field is None:
                error(
                    errors,
                    "NotSupportedChoice",
                    f"{here}.field_id",
                    "The value you selected is not a valid choice.",
                )
                continue
        else:
            field = next((f for f in definitions if f["code"] and f["code"] == item.get("field_code")), None)
            if field is None:
                error(
                    errors,
                    "NotSupportedChoice",
                    f"{here}.field_code",
                    "The value you selected is not a valid choice.",
                )
                continue
        values = item.get("values")
        if values is None:
            parsed.append({"field_id": field["id"], "values": None})
            continue
        if not isinstance(values, list):
            error(errors, "InvalidType", f"{here}.values", "This value should be of type array.")
            continue
        clean = []
        for value_index, value in enumerate(values):
            value_path = f"{here}.values.{value_index}"
            if (
                not isinstance(value, dict)
                or not isinstance(value.get("value"), (str, int, float))
                or isinstance(value.get("value"), bool)
            ):
                error(errors, "InvalidType", f"{value_path}.value", "This value should be of type string.")
                continue
            entry = {"value": value["value"] if field["type"] != "tracking_data" else str(value["value"])}
            if field["enums"]:
                enum = next(
                    (
                        e
                        for e in field["enums"]
                        if e["value"] == value.get("enum_code", "WORK") or e["id"] == value.get("enum_id")
                    ),
                    None,
                )
                if enum is None:
                    error(
                        errors,
                        "NotSupportedChoice",
                        f"{value_path}.enum_code",
                        "The value you selected is not a valid choice.",
                    )
                    continue
                entry.update(enum_id=enum["id"], enum_code=enum["value"])
            clean.append(entry)
        parsed.append(
            {
                "field_id": field["id"],
                "field_name": field["name"],
                "field_code": field["code"],
                "field_type": field["type"],
                "values": clean,
            }
        )
    return parsed


def merge_custom_fields(current: list | None, changes: list) -> list | None:
    """amoCRM replaces the values of the fields it is given and keeps the others; empty values clear a
    field."""
    result = {field["field_id"]: field for field in current or []}
    for field in changes:
        if field["values"]:
            result[field["field_id"]] = field
        else:
            result.pop(field["field_id"], None)
    return list(result.values()) or None


def parse_tags(account: dict, raw, path: str, errors: list) -> list:
    if not isinstance(raw, list):
        error(errors, "InvalidType", path, "This value should be of type array.")
        return []
    tags = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip():
            error(errors, "InvalidType", f"{path}.{index}.name", "This value should be of type string.")
            continue
        registry = account.setdefault("tags", {})
        if name.lower() not in registry:
            registry[name.lower()] = {"id": sandbox().state.next_id("tag"), "name": name, "color": None}
        tags.append(dict(registry[name.lower()]))
    return tags


def resolve_status(account: dict, item: dict, current: dict | None, errors: list, path: str):
    """(pipeline_id, status_id) for a create (current None) or an update; errors appended on bad ids."""
    state = sandbox().state
    pipeline_id, status_id = item.get("pipeline_id"), item.get("status_id")
    for key, value in (("pipeline_id", pipeline_id), ("status_id", status_id)):
        if value is not None and not is_int(value):
            error(errors, "InvalidType", f"{path}{key}", "This value should be of type int.")
            return None
    if pipeline_id is not None:
        pipeline = state.pipeline(account, pipeline_id)
        if pipeline is None:
            error(
                errors,
                "NotSupportedChoice",
                f"{path}pipeline_id",
                "The value you selected is not a valid choice.",
            )
            return None
    elif status_id is not None and status_id not in (WON_STATUS_ID, LOST_STATUS_ID):
        pipeline = next(
            (p for p in account["pipelines"] if any(s["id"] == status_id for s in p["statuses"])), None
        )
    elif current is not None:
        pipeline = state.pipeline(account, current["pipeline_id"])
    else:
        pipeline = state.main_pipeline(account)
    if status_id is None:
        if current is not None and pipeline["id"] == current["pipeline_id"]:
            return pipeline["id"], current["status_id"]
        status_id = next(s["id"] for s in pipeline["statuses"] if s["type"] == 0)
    status = next((s for s in (pipeline or {}).get("statuses", []) if s["id"] == status_id), None)
    if status is None:
        error(
            errors, "NotSupportedChoice", f"{path}status_id", "The value you selected is not a valid choice."
        )
        return None
    if status["type"] == 1 and (current is None or current["status_id"] != status_id):
        error(
            errors, "NotSupportedChoice", f"{path}status_id", "Leads cannot be moved to the incoming status."
        )
        return None
    return pipeline["id"], status_id


def check_scalars(item: dict, account: dict, errors: list, path: str) -> None:
    if "name" in item and not isinstance(item["name"], str):
        error(errors, "InvalidType", f"{path}name", "This value should be of type string.")
    if "price" in item and item["price"] is not None and (not is_int(item["price"]) or item["price"] < 0):
        error(errors, "InvalidType", f"{path}price", "This value should be of type int.")
    for key in ("created_at", "updated_at", "closed_at"):
        if key in item and not is_int(item[key]):
            error(errors, "InvalidType", f"{path}{key}", "This value should be of type int.")
    if "responsible_user_id" in item and item["responsible_user_id"] not in [
        u["id"] for u in account["users"]
    ]:
        error(
            errors,
            "NotSupportedChoice",
            f"{path}responsible_user_id",
            "The value you selected is not a valid choice.",
        )


# -- entities ------------------------------------------------------------------------------------


def lead_view(lead: dict, with_contacts: bool = False) -> dict:
    view = copy.deepcopy(lead)
    embedded = view["_embedded"]
    if with_contacts:
        embedded["contacts"] = [dict(c, _links=link(f"contacts/{c['id']}")) for c in embedded["contacts"]]
    else:
        del embedded["contacts"]
    view["_links"] = link(f"leads/{lead['id']}")
    return view


def contact_view(contact: dict) -> dict:
    view = copy.deepcopy(contact)
    view["_links"] = link(f"contacts/{contact['id']}")
    return view


def embedded_of(item: dict) -> dict:
    embedded = item.get("_embedded")
    return embedded if isinstance(embedded, dict) else {}


def build_lead(account: dict, item: dict, errors: list, path: str = "") -> dict | None:
    """A new lead (not stored yet) from an API item, or None with errors appended."""
    check_scalars(item, account, errors, path)
    resolved = resolve_status(account, item, None, errors, path)
    fields = parse_custom_fields(
        account["lead_fields"], item.get("custom_fields_values", []), f"{path}custom_fields_values", errors
    )
    embedded = embedded_of(item)
    tags = parse_tags(account, embedded.get("tags", []), f"{path}_embedded.tags", errors)
    if errors or resolved is None:
        return None
    moment = now()
    user_id = g.user_id
    status_id = resolved[1]
    return {
        "id": None,
        "name": item.get("name") or "",
        "price": item.get("price") or 0,
        "responsible_user_id": item.get("responsible_user_id", user_id),
        "group_id": 0,
        "status_id": status_id,
        "pipeline_id": resolved[0],
        "loss_reason_id": None,
        "created_by": user_id,
        "updated_by": user_id,
        "created_at": item.get("created_at", moment),
        "updated_at": item.get("updated_at", moment),
        "closed_at": item.get("closed_at", moment) if status_id in (WON_STATUS_ID, LOST_STATUS_ID) else None,
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": merge_custom_fields(None, fields),
        "score": None,
        "account_id": account["id"],
        "labor_cost": None,
        "_embedded": {"tags": tags, "companies": [], "contacts": []},
    }


def store_lead(lead: dict) -> dict:
    state = sandbox().state
    lead["id"] = state.next_id("lead")
    if not lead["name"]:
        lead["name"] = f"Сделка #{lead['id']}"
    state.leads[lead["id"]] = lead
    return lead


def build_contact(account: dict, item: dict, errors: list, path: str = "") -> dict | None:
    for key in ("name", "first_name", "last_name"):
        if key in item and not isinstance(item[key], str):
            error(errors, "InvalidType", f"{path}{key}", "This value should be of type string.")
    fields = parse_custom_fields(
        account["contact_fields"], item.get("custom_fields_values", []), f"{path}custom_fields_values", errors
    )
    if errors:
        return None
    moment = now()
    first, last = item.get("first_name", ""), item.get("last_name", "")
    return {
        "id": None,
        "name": item.get("name") or f"{first} {last}".strip(),
        "first_name": first,
        "last_name": last,
        "responsible_user_id": item.get("responsible_user_id", g.user_id),
        "group_id": 0,
        "created_by": g.user_id,
        "updated_by": g.user_id,
        "created_at": moment,
        "updated_at": moment,
        "closest_task_at": None,
        "is_deleted": False,
        "is_unsorted": False,
        "custom_fields_values": merge_custom_fields(None, fields),
        "account_id": account["id"],
        "_embedded": {"tags": [], "companies": []},
    }


def store_contact(contact: dict) -> dict:
    state = sandbox().state
    contact["id"] = state.next_id("contact")
    if not contact["name"]:
        contact["name"] = f"Контакт #{contact['id']}"
    state.contacts[contact["id"]] = contact
    return contact


def contact_keys(contact: dict) -> set:
    keys = set()
    for field in contact.get("custom_fields_values") or []:
        for value in field["values"]:
            if field["field_code"] == "PHONE" and normalize_phone(value["value"]):
                keys.add(("phone", normalize_phone(value["value"])))
            elif field["field_code"] == "EMAIL":
                keys.add(("email", str(value["value"]).strip().lower()))
    return keys


def account_contacts(account_id: int) -> list:
    return [c for c in sandbox().state.contacts.values() if c["account_id"] == account_id]


def account_leads(account_id: int) -> list:
    return [lead for lead in sandbox().state.leads.values() if lead["account_id"] == account_id]


def publish(changes: list) -> None:
    """Hand lead changes ``[(action, lead, extra)]`` to the webhook sender (it copies what it needs)."""
    if changes:
        sandbox().sender.publish(g.account["id"], base_url(), changes)


def request_id(item: dict, index: int) -> str:
    return (
        str(item["request_id"])
        if isinstance(item, dict) and item.get("request_id") is not None
        else str(index)
    )


# -- account, pipelines, custom fields -----------------------------------------------------------


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


@bp.get("/leads/pipelines/<int:pipeline_id>")
def pipeline_one(pipeline_id):
    pipeline = sandbox().state.pipeline(g.account, pipeline_id)
    if pipeline is None:
        return no_content()
    view = {key: value for key, value in pipeline.items() if key != "statuses"}
    view.update(_links=link(f"leads/pipelines/{pipeline_id}"), _embedded={"statuses": pipeline["statuses"]})
    return hal(view)


@bp.get("/<any(leads, contacts):entity>/custom_fields")
def custom_fields(entity):
    fields = g.account["lead_fields" if entity == "leads" else "contact_fields"]
    items = [dict(f, _links=link(f"{entity}/custom_fields/{f['id']}")) for f in fields]
    return paginate("custom_fields", items, lambda item: item)


# -- leads ---------------------------------------------------------------------------------------


@bp.get("/leads")
def leads_list():
    state = sandbox().state
    with state.lock:
        items = account_leads(g.account["id"])
        for key in ("id", "pipeline_id", "status_id"):
            items = filtered(items, key)
        items = in_range(in_range(items, "updated_at"), "created_at")
        query = request.args.get("query", "").strip()
        if query:
            contacts = state.contacts
            items = [
                lead
                for lead in items
                if matches(
                    lead,
                    query,
                    [
                        value
                        for c in lead["_embedded"]["contacts"]
                        for value in contact_search_values(contacts[c["id"]])
                    ],
                )
            ]
        with_contacts = "contacts" in request.args.get("with", "").split(",")
        return paginate("leads", ordered(items), lambda lead: lead_view(lead, with_contacts))


def contact_search_values(contact: dict) -> list:
    values = [contact["name"]]
    for field in contact.get("custom_fields_values") or []:
        values += [value["value"] for value in field["values"]]
    return values


@bp.get("/leads/<int:lead_id>")
def lead_one(lead_id):
    state = sandbox().state
    with state.lock:
        lead = state.leads.get(lead_id)
        if lead is None or lead["account_id"] != g.account["id"]:
            return no_content()
        return hal(lead_view(lead, "contacts" in request.args.get("with", "").split(",")))


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


def apply_update(lead: dict, item: dict, errors: list) -> list:
    """Validate and apply a PATCH item; returns webhook changes."""
    account = g.account
    check_scalars(item, account, errors, "")
    resolved = resolve_status(account, item, lead, errors, "")
    fields = None
    if "custom_fields_values" in item:
        fields = parse_custom_fields(
            account["lead_fields"], item["custom_fields_values"] or [], "custom_fields_values", errors
        )
    embedded = embedded_of(item)
    tags = parse_tags(account, embedded["tags"], "_embedded.tags", errors) if "tags" in embedded else None
    if errors or resolved is None:
        return []
    before = dict(lead)
    for key in ("name", "price", "responsible_user_id"):
        if key in item:
            lead[key] = item[key] if item[key] is not None else (0 if key == "price" else lead[key])
    lead["pipeline_id"], lead["status_id"] = resolved
    if fields is not None:
        lead["custom_fields_values"] = merge_custom_fields(lead["custom_fields_values"], fields)
    if tags is not None:
        lead["_embedded"]["tags"] = tags
    return finish_update(lead, before, item.get("closed_at"))


def finish_update(lead: dict, before: dict, closed_at=None) -> list:
    """Stamp ``updated_at``/``closed_at`` after a change and say which webhook actions it triggers."""
    lead["updated_at"] = now()
    lead["updated_by"] = g.get("user_id", 0)
    closed = lead["status_id"] in (WON_STATUS_ID, LOST_STATUS_ID)
    status_changed = (lead["status_id"], lead["pipeline_id"]) != (before["status_id"], before["pipeline_id"])
    if closed and (status_changed or closed_at):
        lead["closed_at"] = closed_at or lead["updated_at"]
    elif not closed:
        lead["closed_at"] = None
    changes = [("update", lead, {})]
    if status_changed:
        changes.insert(
            0,
            (
                "status",
                lead,
                {"old_status_id": before["status_id"], "old_pipeline_id": before["pipeline_id"]},
            ),
        )
    if lead["responsible_user_id"] != before["responsible_user_id"]:
        changes.append(("responsible", lead, {"old_responsible_user_id": before["responsible_user_id"]}))
    return changes


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


@bp.post("/leads/complex")
def leads_complex():
    state = sandbox().state
    items = collection_body(MAX_COMPLEX)
    account = g.account
    with state.lock:
        existing = {}
        if account["duplicate_control"]:
            for contact in account_contacts(account["id"]):
                for key in contact_keys(contact):
                    existing.setdefault(key, contact["id"])
        plans, problems = [], []
        for index, item in enumerate(items):
            errors, path = [], f"{index}."
            lead = contact = None
            contact_id = None
            if not isinstance(item, dict):
                error(errors, "InvalidType", str(index), "This value should be of type object.")
            else:
                lead = build_lead(account, item, errors, path)
                contacts = embedded_of(item).get("contacts", [])
                if not isinstance(contacts, list) or len(contacts) > 1:
                    error(errors, "InvalidType", f"{path}_embedded.contacts", "At most one contact per lead.")
                elif contacts and isinstance(contacts[0], dict) and "id" in contacts[0]:
                    contact_id = contacts[0]["id"]
                    found = state.contacts.get(contact_id) if is_int(contact_id) else None
                    if found is None or found["account_id"] != account["id"]:
                        error(errors, "NotFound", f"{path}_embedded.contacts.0.id", "Contact not found")
                elif contacts:
                    contact = build_contact(
                        account,
                        contacts[0] if isinstance(contacts[0], dict) else {},
                        errors,
                        f"{path}_embedded.contacts.0.",
                    )
            if errors:
                problems.append({"request_id": request_id(item, index), "errors": errors})
            plans.append((lead, contact, contact_id))
        if problems:
            raise ValidationFailed(problems)
        results = []
        for index, (lead, contact, contact_id) in enumerate(plans):
            merged = False
            if contact is not None:
                duplicate = next(
                    (existing[key] for key in sorted(contact_keys(contact)) if key in existing), None
                )
                if duplicate is not None:
                    contact_id, merged = duplicate, True
                else:
                    contact_id = store_contact(contact)["id"]
            if contact_id is not None:
                lead["_embedded"]["contacts"] = [{"id": contact_id, "is_main": True}]
            store_lead(lead)
            results.append(
                {
                    "id": lead["id"],
                    "contact_id": contact_id,
                    "company_id": None,
                    "request_id": [request_id(items[index], index)],
                    "merged": merged,
                }
            )
        publish([("add", lead, {}) for lead, _, _ in plans])
    return hal(results)


# -- contacts ------------------------------------------------------------------------------------


@bp.get("/contacts")
def contacts_list():
    state = sandbox().state
    with state.lock:
        items = account_contacts(g.account["id"])
        items = filtered(items, "id")
        items = in_range(items, "updated_at")
        query = request.args.get("query", "").strip()
        if query:
            items = [contact for contact in items if matches(contact, query, [])]
        return paginate("contacts", ordered(items), contact_view)


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


# -- webhooks ------------------------------------------------------------------------------------


def webhook_view(hook: dict) -> dict:
    return {key: value for key, value in hook.items() if key not in ("failures",)}


@bp.get("/webhooks")
def webhooks_list():
    state = sandbox().state
    with state.lock:
        hooks = [webhook_view(h) for h in state.webhooks.values() if h["account_id"] == g.account["id"]]
    destination = request.args.get("filter[destination]")
    if destination:
        hooks = [h for h in hooks if h["destination"] == destination]
    if not hooks:
        return no_content()
    return hal({"_total_items": len(hooks), "_links": link("webhooks"), "_embedded": {"webhooks": hooks}})


@bp.post("/webhooks")
def webhook_subscribe():
    state = sandbox().state
    body = request.get_json(silent=True, force=True)
    errors = []
    if not isinstance(body, dict):
        body = {}
    destination, settings = body.get("destination"), body.get("settings")
    if not isinstance(destination, str) or not re.match(r"https?://[^/\s]+", destination):
        error(errors, "InvalidType", "destination", "This value is not a valid URL.")
    if not isinstance(settings, list) or not settings or not all(s in WEBHOOK_ACTIONS for s in settings):
        error(errors, "NotSupportedChoice", "settings", "One or more of the given values is invalid.")
    if "sort" in body and not is_int(body["sort"]):
        error(errors, "InvalidType", "sort", "This value should be of type int.")
    if errors:
        raise ValidationFailed([{"request_id": "0", "errors": errors}])
    with state.lock:
        hook = next(
            (
                h
                for h in state.webhooks.values()
                if h["account_id"] == g.account["id"] and h["destination"] == destination
            ),
            None,
        )
        moment = now()
        if hook is None:
            hook = {
                "id": state.next_id("webhook"),
                "destination": destination,
                "created_at": moment,
                "account_id": g.account["id"],
                "created_by": g.user_id,
            }
            state.webhooks[hook["id"]] = hook
        # Re-POSTing a destination updates it and re-enables it.
        hook.update(
            updated_at=moment, sort=body.get("sort", 1), disabled=False, settings=list(settings), failures=0
        )
        return hal(webhook_view(hook))


@bp.delete("/webhooks")
def webhook_unsubscribe():
    state = sandbox().state
    body = request.get_json(silent=True, force=True)
    destination = body.get("destination") if isinstance(body, dict) else None
    if not isinstance(destination, str):
        raise ValidationFailed(
            [
                {
                    "request_id": "0",
                    "errors": [
                        {
                            "code": "InvalidType",
                            "path": "destination",
                            "detail": "This value should not be blank.",
                        }
                    ],
                }
            ]
        )
    with state.lock:
        for hook_id, hook in list(state.webhooks.items()):
            if hook["account_id"] == g.account["id"] and hook["destination"] == destination:
                del state.webhooks[hook_id]
    return no_content()
