"""List endpoints' paging: ``page`` (from 1) and ``limit`` (default 50, at most 250 — more is a 422), with
``_links``; ``next`` is present whenever the page is full, so the page after the last full one answers 204."""

from urllib.parse import urlencode

from flask import Response, request

from . import faults
from .hal import base_url, hal, no_content
from .validation import MAX_LIMIT, int_arg


def paginate(
    kind: str,
    items: list,
    view,
    default_limit: int = 50,
    max_limit: int = MAX_LIMIT,
    totals: dict | None = None,
) -> Response:
    """One page of ``items``; ``max_limit`` caps ``limit`` silently when it is below amoCRM's 250 (custom
    fields come 50 a page whatever is asked), ``totals`` adds keys such as ``_total_items``."""
    page, limit = int_arg("page", 1), int_arg("limit", default_limit)
    if limit > MAX_LIMIT:
        return faults.problem(422, "Unprocessable Entity", "Limit of 250 per page")
    limit = min(limit, max_limit)
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
    body = {
        **(totals or {}),
        "_page": page,
        "_links": links,
        "_embedded": {kind: [view(item) for item in chunk]},
    }
    return hal(body)
