"""List endpoints: ``page``/``limit`` paging with ``_links``, ``filter[...]`` and ``order[...]`` arguments."""

import re
from urllib.parse import urlencode

from flask import Response, request

from . import faults
from .hal import base_url, hal, no_content
from .validation import MAX_LIMIT, ValidationFailed, int_arg


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
