from decimal import Decimal

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_pgettext as _p
from flask_login import current_user, login_required

from portal.auth.decorators import permission_required
from portal.auth.permissions import MANAGE_API_TOKENS
from portal.models import ApiToken
from portal.reports.api_tokens import TokenError, create_token, list_tokens, revoke_token
from portal.reports.charts import roi_charts
from portal.reports.csv_output import csv_response
from portal.reports.forms import ApiTokenForm
from portal.reports.periods import PRESETS, parse_period, warn_about_period
from portal.reports.services import (
    LEVELS,
    TREE,
    drill_argument,
    model_comparison,
    model_names,
    parse_report_query,
    roi_report,
)
from portal.templating import group_label
from portal.tenancy import current_workspace_id, get_owned_or_404

bp = Blueprint("reports", __name__)
# Settings → API tokens, for the read-only reports API (mounted under /settings by the settings area).
tokens_bp = Blueprint("api_tokens", __name__, url_prefix="/api-tokens")

# Column names in the reader's language; English keeps the identifiers scripts already read.
CSV_HEADER = [_p("CSV column", "group"), _p("CSV column", "spend"), _p("CSV column", "leads"),
              _p("CSV column", "cpl"), _p("CSV column", "open_deals"), _p("CSV column", "won"),
              _p("CSV column", "lost"), _p("CSV column", "conversion_percent"), _p("CSV column", "revenue"),
              _p("CSV column", "average_deal"), _p("CSV column", "cpa"), _p("CSV column", "roi_percent"),
              _p("CSV column", "cost_share_percent"), _p("CSV column", "visits"), _p("CSV column", "cr1_percent")]
# With "compare": each compared figure in the previous period, its change, and the change in per cent.
CSV_COMPARE_HEADER = [_p("CSV column", "spend_previous"), _p("CSV column", "spend_change"),
                      _p("CSV column", "spend_change_percent"), _p("CSV column", "leads_previous"),
                      _p("CSV column", "leads_change"), _p("CSV column", "leads_change_percent"),
                      _p("CSV column", "won_previous"), _p("CSV column", "won_change"),
                      _p("CSV column", "won_change_percent"), _p("CSV column", "revenue_previous"),
                      _p("CSV column", "revenue_change"), _p("CSV column", "revenue_change_percent"),
                      _p("CSV column", "roi_previous"), _p("CSV column", "roi_change"),
                      _p("CSV column", "roi_change_percent")]


def _query():
    period = parse_period(request.args, current_user.workspace.timezone)
    return parse_report_query(request.args, period)


@bp.get("/reports/roi")
@login_required
def roi():
    warn_about_period(request.args)
    report = roi_report(current_workspace_id(), _query())
    return render_template("reports/roi.html", report=report, presets=PRESETS, drill_argument=drill_argument,
                           model_names=model_names(),
                           charts=roi_charts(report, current_user.workspace.currency), levels=LEVELS,
                           breadcrumbs=_breadcrumbs(report.query),
                           drill_link=lambda row: _drill_link(report.query, row),
                           leads_link=lambda row: leads_link(report.query, row))


def _period_args(query) -> dict:
    period = query.period
    return {"period": period.preset, "from": period.start.isoformat(), "to": period.end.isoformat()}


def _breadcrumbs(query) -> list[tuple[str, str, str]]:
    """(level, value, link) of each tree filter: the link shows the rows under it."""
    crumbs, filters = [], {}
    for name, value in query.filters.items():
        filters[name] = drill_argument(value)
        crumbs.append((name, value, url_for("reports.roi", **_period_args(query), basis=query.basis,
                                            model=query.model, sales=query.sales,
                                            level=TREE[TREE.index(name) + 1],
                                            **filters)))
    return crumbs


def _drill_link(query, row) -> str:
    """The tree view one level down, under this row."""
    filters = {name: drill_argument(value) for name, value in row.path.items()}
    return url_for("reports.roi", **_period_args(query), basis=query.basis, model=query.model,
                   sales=query.sales, level=query.next_level, **filters)


def leads_link(query, row) -> str:
    """The Leads page showing the leads counted in this row: those with any credit under its tags in the report's
    model (exactly the row's leads under first, last and last non-direct; under a split model a lead is part of
    several rows), created in the period, without spam and repeats. The leads column does not depend on the date
    basis."""
    filters = {name: drill_argument(value) for name, value in row.path.items()}
    attribution = {"attribution": "first"} if query.leads_attribution == "first" else {}
    return url_for("leads.index", period="custom", **{"from": query.period.start.isoformat(),
                                                       "to": query.period.end.isoformat()},
                   kind="unique", **attribution, model=query.model, **filters)


@bp.get("/reports/roi/models")
@login_required
def models():
    """One level's rows under every attribution model side by side."""
    comparison = model_comparison(current_workspace_id(), _query())
    return render_template("reports/models.html", comparison=comparison, presets=PRESETS, levels=LEVELS,
                           drill_argument=drill_argument, model_names=model_names())


@bp.get("/reports/roi.csv")
@login_required
def roi_csv():
    report = roi_report(current_workspace_id(), _query(), with_series=False)

    def rows():
        for row in report.rows:
            yield [group_label(row.full_label if report.query.view == "flat" else row.label),
                   *_csv_figures(row.figures), *_csv_changes(report.query, row.changes)]
        yield [_("Total"), *_csv_figures(report.totals), *_csv_changes(report.query, report.totals_changes)]

    period = report.query.period
    header = CSV_HEADER + (CSV_COMPARE_HEADER if report.query.compare else [])
    return csv_response(f"roi-{report.query.level}-{period.start}-{period.end}.csv", header, rows())


def _csv_changes(query, row_changes) -> list:
    if not query.compare:
        return []
    return [_csv_number(value) for change in row_changes.values()
            for value in (change.previous, change.absolute, change.percent)]


def _csv_figures(figures):
    return [_csv_number(value) for value in list(figures.as_dict().values())]


def _csv_number(value):
    if value is None:
        return ""
    return value if isinstance(value, int) else Decimal(value).quantize(Decimal("0.01"))  # split credit too


@tokens_bp.get("")
@login_required
def index():
    return render_template("reports/api_tokens.html", tokens=list_tokens(current_workspace_id()),
                           form=ApiTokenForm(), new_token=None)


@tokens_bp.post("")
@permission_required(MANAGE_API_TOKENS)
def create():
    form = ApiTokenForm()
    new_token = None
    if form.validate_on_submit():
        try:
            _token_row, new_token = create_token(current_workspace_id(), form.name.data)
            flash(_("Token created. Copy it now: it is shown only once."), "success")
        except TokenError as error:
            form.name.errors.append(str(error))
    return render_template("reports/api_tokens.html", tokens=list_tokens(current_workspace_id()), form=form,
                           new_token=new_token), 200 if new_token else 400


@tokens_bp.post("/<int:token_id>/revoke")
@permission_required(MANAGE_API_TOKENS)
def revoke(token_id: int):
    revoke_token(get_owned_or_404(ApiToken, token_id))
    flash(_("Token revoked: requests with it now get 401."), "info")
    return redirect(url_for("settings.api_tokens.index"))
