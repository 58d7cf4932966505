from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from portal.dashboard.services import dashboard
from portal.reports.charts import money_charts
from portal.reports.periods import parse_period, warn_about_period
from portal.tenancy import current_workspace_id

bp = Blueprint("dashboard", __name__)

DASHBOARD_PRESETS = [("7d", _l("7 days")), ("30d", _l("30 days")), ("90d", _l("90 days")),
                     ("this_month", _l("This month"))]


@bp.get("/")
@login_required
def index():
    warn_about_period(request.args)
    period = parse_period(request.args, current_user.workspace.timezone)
    data = dashboard(current_workspace_id(), period)
    return render_template("dashboard/index.html", data=data, presets=DASHBOARD_PRESETS,
                           charts=money_charts(data["current"].series, data["current"].bucket,
                                               current_user.workspace.currency))
