"""Validating API bodies the way amoCRM reports problems: 400 ``validation-errors`` entries, each with a
``request_id`` and ``errors`` of ``{code, path, detail}``."""

from flask import Response, request

from . import faults
from .oauth import sandbox
from .state import LOST_STATUS_ID, WON_STATUS_ID

MAX_LIMIT = 250
MAX_COMPLEX = 50


class ValidationFailed(Exception):
    def __init__(self, entries: list):
        super().__init__("validation failed")
        self.entries = entries


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def error(errors: list, code: str, path: str, detail: str) -> None:
    errors.append({"code": code, "path": path, "detail": detail})


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
