"""Validating API bodies the way amoCRM reports problems: 400 ``validation-errors`` entries, each with a
``request_id`` and ``errors`` of ``{code, path, detail}``."""

from datetime import datetime

from flask import Response, request

from . import faults
from .oauth import sandbox
from .state import LOST_STATUS_ID, WON_STATUS_ID

MAX_LIMIT = 250
MAX_COMPLEX = 50
# amoCRM takes at most 40 custom-field values per entity in one write (Kommo complex-leads).
MAX_FIELDS_PER_ENTITY = 40


class ValidationFailed(Exception):
    def __init__(self, entries: list):
        super().__init__("validation failed")
        self.entries = entries


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def error(errors: list, code: str, path: str, detail: str) -> None:
    errors.append({"code": code, "path": path, "detail": detail})


def fail(code: str, path: str, detail: str, request_id_: str = "0"):
    """Raise a one-error 400 for the whole request."""
    raise ValidationFailed(
        [{"request_id": request_id_, "errors": [{"code": code, "path": path, "detail": detail}]}]
    )


def validation_problem(entries: list) -> Response:
    return faults.problem(400, "Bad Request", "Request validation failed", **{"validation-errors": entries})


def collection_body(required_max: int):
    """The JSON array of a collection write, or raises ValidationFailed."""
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, list) or not body:
        fail("InvalidType", "", "This value should be a non-empty array.")
    if len(body) > required_max:
        fail("Count", "", f"This collection should contain {required_max} elements or less.")
    return body


def object_body() -> dict:
    """The JSON object of a single-entity write, or raises ValidationFailed."""
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        fail("InvalidType", "", "This value should be of type object.")
    return body


def request_id(item: dict, index: int) -> str:
    return (
        str(item["request_id"])
        if isinstance(item, dict) and item.get("request_id") is not None
        else str(index)
    )


def int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        fail("InvalidType", name, "This value should be a positive integer.")
    return int(raw)


NOT_A_CHOICE = "The value you selected is not a valid choice."
SCALAR_TYPES = ("text", "textarea", "url", "streetaddress", "tracking_data", "monetary", "numeric")
ENUM_TYPES = ("select", "radiobutton", "multiselect", "multitext", "category")
DATE_TYPES = ("date", "date_time", "birthday")


def parse_date(raw):
    """A date field's value: a Unix timestamp, or an RFC 3339 string (what amoCRM's PHP SDK sends)."""
    if is_int(raw):
        return raw
    if isinstance(raw, str):
        try:
            return int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


def parse_value(field: dict, value, path: str, errors: list) -> dict | None:
    """One entry of a field's ``values`` checked against the field's type, as stored (or None + error)."""
    kind = field["type"]
    if not isinstance(value, dict):
        error(errors, "InvalidType", path, "This value should be of type object.")
        return None
    raw = value.get("value")
    if kind in ENUM_TYPES:
        enums = field["enums"] or []
        if "enum_id" in value:
            enum = next((e for e in enums if e["id"] == value["enum_id"]), None)
            where = "enum_id"
        elif kind == "multitext":
            enum = next((e for e in enums if e["value"] == value.get("enum_code", "WORK")), None)
            where = "enum_code"
        elif "enum_code" in value:
            enum = next((e for e in enums if e.get("code") and e["code"] == value["enum_code"]), None)
            where = "enum_code"
        else:
            enum = next((e for e in enums if e["value"] == raw), None)
            where = "value"
        if enum is None:
            error(errors, "NotSupportedChoice", f"{path}.{where}", NOT_A_CHOICE)
            return None
        if kind == "multitext":
            if not isinstance(raw, (str, int)) or isinstance(raw, bool) or str(raw).strip() == "":
                error(errors, "InvalidType", f"{path}.value", "This value should be of type string.")
                return None
            return {"value": str(raw), "enum_id": enum["id"], "enum_code": enum["value"]}
        return {"value": enum["value"], "enum_id": enum["id"], "enum_code": enum.get("code")}
    if kind == "checkbox":
        if not isinstance(raw, bool):
            error(errors, "InvalidType", f"{path}.value", "This value should be of type bool.")
            return None
        return {"value": raw}
    if kind in DATE_TYPES:
        stamp = parse_date(raw)
        if stamp is None:
            error(errors, "InvalidType", f"{path}.value", "This value should be a timestamp or a date.")
            return None
        return {"value": stamp}
    if kind == "numeric":
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            error(errors, "InvalidType", f"{path}.value", "This value should be of type numeric.")
            return None
        try:
            float(raw)
        except ValueError:
            error(errors, "InvalidType", f"{path}.value", "This value should be of type numeric.")
            return None
        return {"value": str(raw)}
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        error(errors, "InvalidType", f"{path}.value", "This value should be of type string.")
        return None
    if kind == "url" and not str(raw).startswith(("http://", "https://")):
        error(errors, "InvalidUrl", f"{path}.value", "This value is not a valid URL.")
        return None
    return {"value": str(raw) if kind == "tracking_data" else raw}


def find_field(definitions: list, item: dict, here: str, errors: list) -> dict | None:
    if "field_id" in item:
        field = next((f for f in definitions if f["id"] == item["field_id"]), None)
        key = "field_id"
    else:
        field = next((f for f in definitions if f["code"] and f["code"] == item.get("field_code")), None)
        key = "field_code"
    if field is None:
        error(errors, "NotSupportedChoice", f"{here}.{key}", NOT_A_CHOICE)
    return field


def parse_custom_fields(definitions: list, raw, path: str, errors: list) -> list:
    if not isinstance(raw, list):
        error(errors, "InvalidType", path, "This value should be of type array.")
        return []
    if len(raw) > MAX_FIELDS_PER_ENTITY:
        error(
            errors, "Count", path, f"This collection should contain {MAX_FIELDS_PER_ENTITY} elements or less."
        )
        return []
    parsed = []
    for index, item in enumerate(raw):
        here = f"{path}.{index}"
        if not isinstance(item, dict):
            error(errors, "InvalidType", here, "This value should be of type object.")
            continue
        field = find_field(definitions, item, here, errors)
        if field is None:
            continue
        values = item.get("values")
        if values is None:
            parsed.append({"field_id": field["id"], "values": None})
            continue
        if not isinstance(values, list):
            error(errors, "InvalidType", f"{here}.values", "This value should be of type array.")
            continue
        single = field["type"] not in ("multiselect", "multitext", "smart_address")
        if single and len(values) > 1:
            error(errors, "Count", f"{here}.values", "This collection should contain 1 element or less.")
            continue
        clean = [parse_value(field, value, f"{here}.values.{n}", errors) for n, value in enumerate(values)]
        parsed.append(
            {
                "field_id": field["id"],
                "field_name": field["name"],
                "field_code": field["code"],
                "field_type": field["type"],
                "values": [value for value in clean if value is not None],
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
    """Tags given as ``{"name"}`` (created on first use) or ``{"id"}`` of an existing tag."""
    if not isinstance(raw, list):
        error(errors, "InvalidType", path, "This value should be of type array.")
        return []
    registry = account.setdefault("tags", {})
    tags = []
    for index, item in enumerate(raw):
        item = item if isinstance(item, dict) else {}
        if "id" in item and "name" not in item:
            found = next((tag for tag in registry.values() if tag["id"] == item["id"]), None)
            if found is None:
                error(errors, "NotSupportedChoice", f"{path}.{index}.id", NOT_A_CHOICE)
            else:
                tags.append(dict(found))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            error(errors, "InvalidType", f"{path}.{index}.name", "This value should be of type string.")
            continue
        if name.lower() not in registry:
            registry[name.lower()] = {"id": sandbox().state.next_id("tag"), "name": name, "color": None}
        tags.append(dict(registry[name.lower()]))
    return tags


def parse_tag_refs(raw, path: str, errors: list) -> set:
    """``tags_to_delete``: tag ids and lower-cased names."""
    if not isinstance(raw, list):
        error(errors, "InvalidType", path, "This value should be of type array.")
        return set()
    refs = set()
    for index, item in enumerate(raw):
        item = item if isinstance(item, dict) else {}
        if is_int(item.get("id")):
            refs.add(item["id"])
        elif isinstance(item.get("name"), str):
            refs.add(item["name"].lower())
        else:
            error(errors, "InvalidType", f"{path}.{index}", "A tag needs an id or a name.")
    return refs


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
