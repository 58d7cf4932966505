"""The ROI report: every formula on a hand-computed workspace, both date bases, both attributions, drill-down,
case-insensitive tags, deals not from our form, division by zero, the cache staying fresh, CSV, tenancy."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import workspace_of

from portal.extensions import db
from portal.reports.periods import Period
from portal.reports.services import ReportQuery, roi_report

D0 = date.today() - timedelta(days=40)
PERIOD = Period(D0, D0 + timedelta(days=9), "Europe/Moscow")


def day(offset: int) -> date:
    return D0 + timedelta(days=offset)


@pytest.fixture
def workspace(app, owner):
    """The hand-computed workspace (see the expected figures in each test)."""
    ws = workspace_of(app, owner)
    l1 = add_lead(app, ws, at(day(1)), "google", "cpc", "brand", first=("facebook", "social", "promo"))
    l2 = add_lead(app, ws, at(day(2)), " Google", "CPC", "Brand")
    l3 = add_lead(app, ws, at(day(3)), "yandex", "cpc", "rsya")
    add_lead(app, ws, at(day(3)), "google", "cpc", "generic", is_spam=True)
    add_lead(app, ws, at(day(4)), "google", "cpc", "brand", duplicate_of_id=l1)
    l6 = add_lead(app, ws, at(day(4)))  # no tags
    l7 = add_lead(app, ws, at(day(-5)), "google", "cpc", "brand")  # before the period
    ids = {
        "s1": add_sale(app, ws, l1, "won", 1000, at(day(2)), at(day(5))),
        "s2": add_sale(app, ws, l2, "lost", 500, at(day(2)), at(day(6))),
        "s3": add_sale(app, ws, l3, "open", 700, at(day(4))),
        # won, then reopened in amoCRM: open again, no revenue
        "s4": add_sale(app, ws, l3, "open", 300, at(day(5))),
        "s5": add_sale(app, ws, l7, "won", 2000, at(day(-4)), at(day(7))),
        "s6": add_sale(app, ws, None, "won", 400, at(day(2)), at(day(8)), tags=("Yandex", "cpc", "rsya")),
        "s7": add_sale(app, ws, None, "won", 100, at(day(3)), at(day(3))),
        "s8": add_sale(app, ws, l1, "won", 9999, at(day(2)), at(day(5)), deleted=True),
        "s9": add_sale(app, ws, l6, "won", 50, at(day(4)), at(day(20))),
        # won, then refunded: moved to lost
        "s10": add_sale(app, ws, l2, "lost", 800, at(day(3)), at(day(9))),
    }
    add_spend(app, ws, day(1), "google", "cpc", "brand", 300)
    add_spend(app, ws, day(2), "GOOGLE", "cpc", "brand", 200)
    add_spend(app, ws, day(3), "yandex", "cpc", "rsya", 1000)
    add_spend(app, ws, day(4), "vk", "cpc", "x", 100)
    add_spend(app, ws, day(20), "google", "cpc", "brand", 999)
    return ws, ids


def report(app, ws, **kwargs):
    with app.app_context():
        result = roi_report(ws, ReportQuery(PERIOD, **kwargs))
        return {row.key: row.figures for row in result.rows}, result.totals, result


def test_lead_created_basis_last_touch_every_formula(app, workspace):
    ws, _ = workspace
    rows, totals, _ = report(app, ws)
    google = rows["google"]  # "Google", " google", "GOOGLE" are one row
    assert (google.leads, google.open, google.won, google.lost) == (2, 0, 1, 2)  # spam, repeat, old lead left out
    assert google.revenue == Decimal("1000") and google.spend == Decimal("500")
    assert google.cpl == Decimal("250") and google.conversion == Decimal("50")
    assert google.average_deal == Decimal("1000") and google.cpa == Decimal("500")
    assert google.roi == Decimal("100") and google.cost_share == Decimal("50")

    yandex = rows["yandex"]  # a reopened deal is open; a deal from amoCRM with its own UTM counts here
    assert (yandex.leads, yandex.open, yandex.won, yandex.lost, yandex.revenue) == (1, 2, 1, 0, Decimal("400"))
    assert yandex.roi == Decimal("-60") and yandex.cpa == Decimal("1000") and yandex.conversion == Decimal("100")

    none = rows[""]  # no tags: "(none)"; no spend: ROI undefined, cost share 0
    assert (none.leads, none.won, none.revenue) == (1, 1, Decimal("50"))
    assert none.roi is None and none.cost_share == 0 and none.cpa == 0

    amocrm = rows["(amocrm, no utm)"]
    assert (amocrm.leads, amocrm.won, amocrm.revenue) == (0, 1, Decimal("100"))
    assert amocrm.cpl is None and amocrm.conversion is None

    vk = rows["vk"]  # spend but no leads or deals
    assert vk.leads == 0 and vk.cpl is None and vk.roi == Decimal("-100") and vk.cost_share is None

    assert (totals.spend, totals.leads, totals.open, totals.won, totals.lost, totals.revenue) == (
        Decimal("1600"), 4, 2, 4, 2, Decimal("1550"))


def test_deal_closed_basis_counts_deals_won_or_lost_in_the_period(app, workspace):
    ws, _ = workspace
    rows, totals, _ = report(app, ws, basis="closed")
    # The old lead's deal closed in the period counts; the lead does not.
    assert (rows["google"].leads, rows["google"].won, rows["google"].lost, rows["google"].revenue) == (
        2, 2, 2, Decimal("3000"))
    assert (rows["yandex"].open, rows["yandex"].won) == (2, 1)
    assert rows[""].won == 0  # closed after the period
    assert rows["(amocrm, no utm)"].won == 1
    assert totals.won == 4 and totals.revenue == Decimal("3500")


def test_first_touch_moves_a_lead_and_its_deal_to_its_first_source(app, workspace):
    ws, _ = workspace
    rows, _, _ = report(app, ws, attribution="first")
    assert (rows["facebook"].leads, rows["facebook"].won, rows["facebook"].revenue) == (1, 1, Decimal("1000"))
    # The lead without first-touch tags stays on its last touch; spend stays where it was spent.
    assert (rows["google"].leads, rows["google"].won, rows["google"].lost) == (1, 0, 2)
    assert rows["google"].spend == Decimal("500") and rows["facebook"].spend == 0


def test_drill_down_source_medium_campaign(app, workspace):
    ws, _ = workspace
    rows, totals, result = report(app, ws, source="google")
    assert result.query.level == "medium" and list(rows) == ["cpc"]
    assert totals.leads == 2 and totals.spend == Decimal("500")
    rows, _, result = report(app, ws, source="google", medium="cpc")
    assert result.query.level == "campaign" and rows["brand"].leads == 2 and rows["brand"].won == 1


def test_empty_period_has_no_rows_and_no_errors(app, owner, owner_client):
    response = owner_client.get("/reports/roi?period=custom&from=2020-01-01&to=2020-01-31")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "No leads, deals or spend in this period." in html
    assert "<svg" in html and "No data for this period" in html


def test_page_shows_dashes_for_division_by_zero_and_drill_links(app, workspace, owner_client):
    response = owner_client.get(f"/reports/roi?period=custom&from={PERIOD.start}&to={PERIOD.end}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    vk_row = html[html.index(">vk</a>"):].split("</tr>")[0]
    assert vk_row.count("—") == 6  # CR1 (no visits), CPL, conversion, average deal, CPA, ad-cost share
    assert "(amoCRM, no UTM)" in html and "(none)" in html
    assert "source=google" in html and "How these numbers are counted" in html
    # two charts, each drawn wide and narrow (CSS shows one)
    assert html.count("<svg") == 4 and html.count("chart-wide") == 2 and "<rect class=\"chart-bar\"" in html


def test_a_deal_won_after_the_report_was_read_shows_up_at_once(app, workspace):
    ws, ids = workspace
    assert report(app, ws)[0]["yandex"].won == 1
    from portal.models import Deal

    with app.app_context():
        sale = db.session.get(Deal, ids["s3"])
        sale.state, sale.closed_at = "won", at(day(6))
        db.session.commit()
    rows, _, _ = report(app, ws)
    assert (rows["yandex"].won, rows["yandex"].open, rows["yandex"].revenue) == (2, 1, Decimal("1100"))
    assert report(app, ws, basis="closed")[0]["yandex"].won == 2


def test_time_series_counts_leads_and_won_deals_per_day(app, workspace):
    ws, _ = workspace
    _, _, result = report(app, ws)
    assert result.bucket == "day" and len(result.series) == 10
    by_day = {point.start: point for point in result.series}
    assert by_day[day(1)].leads == 1 and by_day[day(5)].won == 1 and by_day[day(7)].won == 1
    assert sum(point.leads for point in result.series) == 4


def test_csv_export_matches_the_report_and_is_formula_safe(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_lead(app, ws, at(day(1)), "=HYPERLINK(\"http://evil\")", "cpc", "x")
    add_spend(app, ws, day(1), "google", "cpc", "brand", 300)
    response = owner_client.get(f"/reports/roi.csv?period=custom&from={PERIOD.start}&to={PERIOD.end}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["group", "spend", "leads"]
    groups = {row[0]: row for row in rows[1:]}
    assert "'=hyperlink(\"http://evil\")" in groups  # lower-cased by grouping, prefixed so it stays text
    assert groups["google"][1] == "300.00" and groups["google"][11] == "-100.00"  # negative numbers stay numbers
    assert groups["Total"][2] == "1"


@pytest.mark.parametrize("url", ["/reports/roi", "/reports/roi.csv", "/?period=30d"])
def test_reports_never_show_another_workspaces_data(app, make_user, owner, owner_client, url):
    other = workspace_of(app, make_user("other@example.com"))
    today = date.today()
    add_lead(app, other, at(today - timedelta(days=3)), "secretsource", "cpc", "hidden")
    add_spend(app, other, today - timedelta(days=3), "secretsource", "cpc", "hidden", 777)
    response = owner_client.get(url)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "secretsource" not in body and "777" not in body


def test_report_reads_nothing_from_redis(app, workspace, monkeypatch, redis_client):
    """Figures never depend on a cache's state: with Redis gone the report is the same, and it stores nothing."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from portal.extensions import redis_connection

    ws, _ = workspace
    before = report(app, ws)[0]

    class Down:
        def __getattr__(self, name):
            raise RedisConnectionError("down")

    monkeypatch.setattr(type(redis_connection), "client", property(lambda self: Down()), raising=False)
    assert report(app, ws)[0] == before
    assert redis_client.dbsize() == 0


def test_writes_made_outside_the_orm_show_at_once(app, workspace):
    from sqlalchemy import text

    ws, ids = workspace
    with app.app_context():
        db.session.execute(text("UPDATE deals SET state = 'won', closed_at = :at WHERE id = :id"),
                           {"at": at(day(6)), "id": ids["s4"]})
        db.session.execute(text("UPDATE leads SET sync_status = 'synced' WHERE workspace_id = :ws"), {"ws": ws})
        db.session.commit()
    rows, _, _ = report(app, ws)
    assert (rows["yandex"].won, rows["yandex"].revenue) == (2, Decimal("700"))


def test_charts_escape_tag_values_and_handle_empty_data():
    from portal.reports.charts import PALETTE, Series, grouped_bar_chart, line_chart

    svg = grouped_bar_chart(["<script>alert(1)</script>"], [Series("Revenue", [10], PALETTE[0])], "t")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'height="0.0"' not in svg  # the only bar fills its scale
    empty = line_chart([], [Series("Leads", [], PALETTE[0])], "empty")
    assert empty.startswith("<svg") and "<polyline" not in empty


def test_a_source_with_only_deals_of_the_other_basis_gets_no_empty_row(app, owner):
    ws = workspace_of(app, owner)
    old_lead = add_lead(app, ws, at(day(-30)), "email", "newsletter", "digest")
    add_sale(app, ws, old_lead, "won", 100, at(day(-30)), at(day(2)))
    assert "email" not in report(app, ws)[0]  # cohort: the lead is older than the period
    assert report(app, ws, basis="closed")[0]["email"].won == 1


@pytest.mark.parametrize("args, expected_days, preset", [
    ({}, 30, "30d"),
    ({"period": "7d"}, 7, "7d"),
    ({"period": "nonsense"}, 30, "30d"),
    ({"period": "custom", "from": "2026-03-10", "to": "2026-03-01"}, 10, "custom"),  # reversed: swapped
    ({"from": "2026-03-01", "to": "not-a-date"}, 30, "30d"),
    ({"period": "custom", "from": "2000-01-01", "to": "2026-01-01"}, 3 * 366, "custom"),  # capped
])
def test_period_arguments_never_fail(args, expected_days, preset):
    from portal.reports.periods import parse_period

    period = parse_period(args, "Europe/Moscow")
    assert period.days == expected_days and period.preset == preset
    assert period.previous().days == period.days and period.previous().end == period.start - timedelta(days=1)


def test_period_bounds_follow_the_workspace_time_zone():
    period = Period(date(2026, 3, 1), date(2026, 3, 1), "Europe/Moscow")
    assert period.starts_at.isoformat() == "2026-02-28T21:00:00+00:00"
    assert period.ends_at.isoformat() == "2026-03-01T21:00:00+00:00"


def test_todays_figures_are_cached_briefly_and_a_new_lead_shows_at_once(app, owner):
    from portal.models import Lead
    from portal.reports.periods import preset_period

    ws = workspace_of(app, owner)
    query = ReportQuery(preset_period("7d", "Europe/Moscow"))
    with app.app_context():
        assert roi_report(ws, query).totals.leads == 0
        db.session.add(Lead(workspace_id=ws, name="Just now", utm_source="google"))  # created_at by default
        db.session.commit()
        assert roi_report(ws, query).totals.leads == 1
