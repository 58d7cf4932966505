"""``filter[...]`` and ``order[...]`` on the lead and contact lists, as amoCRM documents them.

amoCRM documents API list filtering as a feature enabled per account: on an account without it every
``filter[...]`` is silently ignored and the whole list comes back (amoCRM filters-api; PHP SDK issues #71,
#348). The account's ``list_filters`` setting picks: ``"applied"`` or ``"ignored"``. ``query`` and
``order[...]`` are not filters and always work.

Documented lead filters: ``id``, ``name`` (one or several, OR-ed), ``price`` (value or ``[from]/[to]``),
``statuses[N][pipeline_id]`` + ``[status_id]`` (both per item, items OR-ed), ``pipeline_id``, ``created_by``,
``updated_by``, ``responsible_user_id``, ``created_at|updated_at|closed_at|closest_task_at`` (value or
``[from]/[to]``), ``custom_fields_values[FIELD_ID][]`` / ``[FIELD_ID][from|to]``. Contacts: the same minus
price, statuses, pipeline_id and closed_at. Order: leads ``order[created_at|updated_at|id]=asc|desc``,
contacts ``order[updated_at|id]``; any other order key is ignored.
"""

import re

from flask import g, request

from .validation import fail

LEAD_LISTS = ("id", "name", "pipeline_id", "created_by", "updated_by", "responsible_user_id")
LEAD_RANGES = ("price", "created_at", "updated_at", "closed_at", "closest_task_at")
CONTACT_LISTS = ("id", "name", "created_by", "updated_by", "responsible_user_id")
CONTACT_RANGES = ("created_at", "updated_at", "closest_task_at")
ORDER_KEYS = {"leads": ("created_at", "updated_at", "id"), "contacts": ("updated_at", "id")}


def arg_values(prefix: str) -> list[str]:
    """Values of ``prefix``, ``prefix[]``, ``prefix[0]`` … and comma lists."""
    values = []
    for key in request.args:
        if key == prefix or re.fullmatch(re.escape(prefix) + r"\[\d*\]", key):
            for raw in request.args.getlist(key):
                values += [part for part in raw.split(",") if part]
    return values


def number(raw: str, path: str) -> float:
    try:
        return float(raw)
    except ValueError:
        fail("InvalidType", path, "This value should be a number.")


def in_range(items: list, key: str, value_of) -> list:
    exact = request.args.get(f"filter[{key}]")
    if exact is not None:
        target = number(exact, f"filter.{key}")
        items = [item for item in items if value_of(item) is not None and float(value_of(item)) == target]
    for bound in ("from", "to"):
        raw = request.args.get(f"filter[{key}][{bound}]")
        if raw is None:
            continue
        limit = number(raw, f"filter.{key}.{bound}")
        if bound == "from":
            items = [item for item in items if value_of(item) is not None and float(value_of(item)) >= limit]
        else:
            items = [item for item in items if value_of(item) is not None and float(value_of(item)) <= limit]
    return items


def field_values(item: dict, field_id: int) -> list:
    for field in item.get("custom_fields_values") or []:
        if field["field_id"] == field_id:
            return [value["value"] for value in field["values"] or []]
    return []


def by_custom_fields(items: list) -> list:
    ids = {
        int(found.group(1))
        for key in request.args
        if (found := re.match(r"filter\[custom_fields_values\]\[(\d+)\]", key))
    }
    for field_id in ids:
        prefix = f"filter[custom_fields_values][{field_id}]"
        wanted = arg_values(prefix)
        if wanted:
            items = [item for item in items if {str(v) for v in field_values(item, field_id)} & set(wanted)]
        bounds = {b: request.args.get(f"{prefix}[{b}]") for b in ("from", "to")}
        for bound, raw in bounds.items():
            if raw is None:
                continue
            limit = number(raw, f"filter.custom_fields_values.{field_id}.{bound}")

            def inside(item, limit=limit, bound=bound, field_id=field_id):
                numbers = [float(v) for v in field_values(item, field_id) if _numeric(v)]
                return any(n >= limit if bound == "from" else n <= limit for n in numbers)

            items = [item for item in items if inside(item)]
    return items


def _numeric(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def by_statuses(items: list) -> list:
    pairs = {}
    for key in request.args:
        found = re.fullmatch(r"filter\[statuses\]\[(\d+)\]\[(pipeline_id|status_id)\]", key)
        if found:
            pairs.setdefault(found.group(1), {})[found.group(2)] = request.args[key]
    if not pairs:
        return items
    wanted = set()
    for index, pair in pairs.items():
        if set(pair) != {"pipeline_id", "status_id"}:
            missing = "status_id" if "pipeline_id" in pair else "pipeline_id"
            fail("NotBlank", f"filter.statuses.{index}.{missing}", "This value should not be blank.")
        wanted.add((pair["pipeline_id"], pair["status_id"]))
    return [item for item in items if (str(item["pipeline_id"]), str(item["status_id"])) in wanted]


def apply_filters(kind: str, items: list) -> list:
    """The list after the account's filtering (``kind`` is "leads" or "contacts")."""
    if g.account["settings"]["list_filters"] != "applied":
        return items
    lists, ranges = (LEAD_LISTS, LEAD_RANGES) if kind == "leads" else (CONTACT_LISTS, CONTACT_RANGES)
    for key in lists:
        wanted = arg_values(f"filter[{key}]")
        if wanted:
            items = [item for item in items if str(item.get(key)) in wanted]
    for key in ranges:
        items = in_range(items, key, lambda item, key=key: item.get(key))
    if kind == "leads":
        items = by_statuses(items)
    return by_custom_fields(items)


def apply_order(kind: str, items: list) -> list:
    for key, direction in request.args.items():
        found = re.fullmatch(r"order\[(\w+)\]", key)
        if found and found.group(1) in ORDER_KEYS[kind]:
            field = found.group(1)
            return sorted(items, key=lambda item: (item[field], item["id"]), reverse=direction == "desc")
    return items
