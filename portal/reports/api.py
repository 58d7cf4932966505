"""Read-only JSON API: `GET /api/reports/roi`, `GET /api/leads` with `Authorization: Bearer <workspace token>`.

Same filters as the pages. The token alone chooses the workspace; no session, so no CSRF. Personal data is
masked in the lead list, as on the Leads page.
"""
from decimal import Decimal
from functools import wraps

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from portal.errors import error_response
from portal.extensions import db
from portal.leads.services import CursorError, deal_link, lead_page, parse_filters
from portal.masking import mask_email, mask_phone
from portal.models import Workspace
from portal.reports.api_tokens import authenticate
from portal.reports.periods import parse_period
from portal.reports.services import ATTRIBUTIONS, model_comparison, parse_report_query, roi_report

# Bearer workspace token, read-only: CSRF-exempt (no session to forge), set by portal.register_blueprints.
api_bp = Blueprint("reports_api", __name__, url_prefix="/api")


def token_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        token = authenticate(request.headers.get("Authorization"))
        if token is None:
            response = error_response(401, "A valid workspace API token is required (Authorization: Bearer …).")
            response[0].headers["WWW-Authenticate"] = 'Bearer realm="leadpath"'
            return response
        g.api_workspace = db.session.scalar(select(Workspace).where(Workspace.id == token.workspace_id))
        return view(*args, **kwargs)

    return wrapped


def _number(value):
    if value is None:
        return None
    return float(round(value, 2)) if isinstance(value, Decimal) else value


@api_bp.get("/reports/roi")
@token_required
def roi():
    workspace = g.api_workspace
    query = parse_report_query(request.args, parse_period(request.args, workspace.timezone))
    report = roi_report(workspace.id, query, with_series=False)
    return jsonify({
        "success": True,
        "currency": workspace.currency,
        "period": {"from": query.period.start.isoformat(), "to": query.period.end.isoformat(),
                   "timezone": query.period.timezone},
        "basis": query.basis, "model": query.model,
        "attribution": query.model if query.model in ATTRIBUTIONS else None,
        "sales": query.sales, "level": query.level,
        "view": query.view, "filters": query.filters,
        "source": query.source, "medium": query.medium,
        "rows": [{"key": row.key, "label": row.label, "path": row.path,
                  **{name: _number(value) for name, value in row.figures.as_dict().items()}} for row in report.rows],
        "totals": {name: _number(value) for name, value in report.totals.as_dict().items()},
    })


@api_bp.get("/reports/models")
@token_required
def models():
    """One level's leads, revenue and ROI under every attribution model."""
    workspace = g.api_workspace
    query = parse_report_query(request.args, parse_period(request.args, workspace.timezone))
    comparison = model_comparison(workspace.id, query)

    def figures(by_model):
        return {model: {"leads": _number(f.leads), "revenue": _number(f.revenue), "roi_percent": _number(f.roi),
                        "spend": _number(f.spend) if f.spend_known else None}
                for model, f in by_model.items()}

    return jsonify({
        "success": True, "currency": workspace.currency,
        "period": {"from": query.period.start.isoformat(), "to": query.period.end.isoformat(),
                   "timezone": query.period.timezone},
        "basis": query.basis, "sales": query.sales, "level": query.level, "filters": query.filters,
        "models": list(comparison.models),
        "rows": [{"key": row.key, "label": row.label, "path": row.path, "models": figures(row.by_model)}
                 for row in comparison.rows],
        "totals": figures(comparison.totals),
    })


@api_bp.get("/leads")
@token_required
def leads():
    workspace = g.api_workspace
    filters = parse_filters(request.args, workspace.timezone)
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
    except ValueError:
        return error_response(400, "limit must be a number from 1 to 500.")
    try:
        page = lead_page(workspace.id, filters, request.args.get("after"), limit)
    except CursorError:
        return error_response(400, "The `after` cursor is not valid.")
    items = []
    for lead in page.leads:
        deal = page.deals.get(lead.id)
        items.append({
            "id": lead.id, "created_at": lead.created_at.isoformat(), "name": lead.name,
            "phone": mask_phone(lead.phone), "email": mask_email(lead.email),
            "utm_source": lead.utm_source, "utm_medium": lead.utm_medium, "utm_campaign": lead.utm_campaign,
            "utm_term": lead.utm_term, "utm_content": lead.utm_content,
            "first_touch": {"utm_source": lead.first_utm_source, "utm_medium": lead.first_utm_medium,
                            "utm_campaign": lead.first_utm_campaign},
            "sync_status": lead.sync_status, "is_spam": lead.is_spam, "duplicate_of_id": lead.duplicate_of_id,
            "amocrm_lead_id": lead.amocrm_lead_id,
            "amocrm_url": deal_link(page.deal_base_url, lead.amocrm_lead_id),
            "deal": ({"state": deal.state, "amount": _number(deal.amount),
                      "closed_at": deal.closed_at.isoformat() if deal.closed_at else None} if deal else None),
        })
    return jsonify({"success": True, "leads": items, "next_cursor": page.next_cursor})
