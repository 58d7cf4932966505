from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_pgettext as _p
from flask_login import current_user, login_required

from portal.auth.decorators import permission_required
from portal.auth.permissions import CHANGE_LEADS
from portal.leads.services import (
    COUNT_LIMIT,
    DEAL_STATES,
    KINDS,
    SYNC_STATES,
    CursorError,
    count_leads,
    counted_by_rollups,
    deal_link,
    iter_leads,
    lead_detail,
    lead_page,
    parse_filters,
)
from portal.leads.spam import mark_lead_spam
from portal.masking import mask_email, mask_phone
from portal.models import Lead
from portal.reports.csv_output import csv_response, local_timestamp
from portal.reports.periods import PRESETS, warn_about_period
from portal.reports.services import model_names
from portal.tenancy import current_workspace_id, get_owned_or_404

bp = Blueprint("leads", __name__)

# Column names in the reader's language; English keeps the identifiers scripts already read. (UTM tags keep
# their own names: they are what the ads are tagged with.)
CSV_HEADER = [_p("CSV column", "id"), _p("CSV column", "created_at"), _p("CSV column", "name"),
              _p("CSV column", "phone"), _p("CSV column", "email"), "utm_source", "utm_medium", "utm_campaign",
              "utm_term", "utm_content", "first_utm_source", "first_utm_medium", "first_utm_campaign",
              _p("CSV column", "sync_status"), _p("CSV column", "amocrm_lead_id"), _p("CSV column", "deal_state"),
              _p("CSV column", "deal_amount"), _p("CSV column", "is_spam"), _p("CSV column", "duplicate_of_id"),
              _p("CSV column", "landing_page")]


@bp.get("/leads")
@login_required
def index():
    warn_about_period(request.args)
    filters = parse_filters(request.args, current_user.workspace.timezone)
    try:
        page = lead_page(current_workspace_id(), filters, request.args.get("after"))
    except CursorError:
        abort(400, _("This page link is not valid any more; start from the first page."))
    return render_template("leads/index.html", page=page, filters=filters, presets=PRESETS,
                           total=count_leads(current_workspace_id(), filters),
                           count_limit=None if counted_by_rollups(filters) else COUNT_LIMIT,
                           sync_states=SYNC_STATES, deal_states=DEAL_STATES, kinds=KINDS, mask_phone=mask_phone,
                           mask_email=mask_email, deal_link=deal_link, first_page=not request.args.get("after"))


@bp.get("/leads.csv")
@login_required
def export_csv():
    workspace_id = current_workspace_id()
    timezone = current_user.workspace.timezone
    filters = parse_filters(request.args, timezone)

    def rows():
        for lead, deal in iter_leads(workspace_id, filters):
            yield [lead.id, local_timestamp(lead.created_at, timezone), lead.name, lead.phone, lead.email,
                   lead.utm_source, lead.utm_medium, lead.utm_campaign, lead.utm_term, lead.utm_content,
                   lead.first_utm_source, lead.first_utm_medium, lead.first_utm_campaign, lead.sync_status,
                   lead.amocrm_lead_id,
                   deal.state if deal else "", deal.amount if deal else "", _("yes") if lead.is_spam else _("no"),
                   lead.duplicate_of_id or "", lead.landing_page]

    return csv_response("leads.csv", CSV_HEADER, rows())


@bp.get("/leads/<int:lead_id>")
@login_required
def detail(lead_id: int):
    detail = lead_detail(get_owned_or_404(Lead, lead_id))
    return render_template("leads/detail.html", detail=detail, lead=detail.lead, deal_link=deal_link,
                           model_names=model_names())


@bp.post("/leads/<int:lead_id>/spam")
@permission_required(CHANGE_LEADS)
def spam(lead_id: int):
    """Mark a lead as spam (its open deal is closed as lost in amoCRM) or take the mark back."""
    lead = get_owned_or_404(Lead, lead_id)
    spam = request.form.get("spam") != "0"
    mark_lead_spam(lead.workspace_id, lead.id, spam)
    flash(_("Marked as spam; its open deal in amoCRM will be closed as lost.") if spam and lead.amocrm_lead_id else
          _("Marked as spam.") if spam else _("No longer marked as spam."), "info")
    return redirect(url_for("leads.detail", lead_id=lead.id))
