"""The home page (period figures with change vs the previous period, sync and webhook health) and the demo-data
command that fills a workspace for demos and benchmarks."""
from datetime import date, timedelta

from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import workspace_of
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AdSpend, Deal, Lead, Workspace


def test_dashboard_compares_with_the_previous_period_and_shows_health(app, owner, owner_client):
    ws = workspace_of(app, owner)
    today = date.today()
    for offset in (2, 3, 4):  # this week: 3 leads
        add_lead(app, ws, at(today - timedelta(days=offset)), "google", "cpc", "x")
    add_lead(app, ws, at(today - timedelta(days=9)), "google", "cpc", "x")  # the week before: 1 lead
    add_lead(app, ws, at(today - timedelta(days=2)), "google", "cpc", "x", sync_status="failed")
    lead = add_lead(app, ws, at(today - timedelta(days=2)), sync_status="pending")
    add_sale(app, ws, lead, "won", 3000, at(today - timedelta(days=2)), at(today - timedelta(days=2)))
    add_spend(app, ws, today - timedelta(days=2), "google", "cpc", "x", 1000)

    html = owner_client.get("/?period=7d").get_data(as_text=True)
    tiles = html[html.index('id="dashboard-tiles"'):html.index('id="health"')]
    assert "5" in tiles and "+400%" in tiles  # 5 leads vs 1
    assert "RUB\u00a03,000" in tiles and "200%" in tiles  # revenue; ROI (3000 − 1000) / 1000
    counts = html[html.index('id="dashboard-chart"'):].split("</section>")[0]
    assert counts.count("<polyline") == 4  # leads and won deals per day, drawn wide and narrow
    health = html[html.index('id="health"'):]
    # add_lead leaves leads pending unless told otherwise: 5 pending, 1 failed
    assert "waiting to sync: 5" in health and "failed: 1" in health and "not connected" in health


def test_demo_data_fills_a_workspace_by_id_or_public_id(app, owner, runner):
    ws = workspace_of(app, owner)
    result = runner.invoke(args=["demo-data", str(ws), "--leads", "400", "--sales", "60", "--spend-rows", "300",
                                 "--days", "60", "--seed", "3"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        public_id = db.session.get(Workspace, ws).public_id
        assert db.session.scalar(select(func.count()).select_from(Lead).where(Lead.workspace_id == ws)) == 400
        assert db.session.scalar(select(func.count()).select_from(Deal).where(Deal.workspace_id == ws)) == 60
        assert db.session.scalar(select(func.count()).select_from(AdSpend).where(AdSpend.workspace_id == ws)) == 300
        sources = set(db.session.scalars(select(Lead.utm_source).where(Lead.workspace_id == ws).distinct()))
        assert {"google", "yandex", "facebook", None} <= sources
        # Deals from the form point at synced leads carrying the same amoCRM id.
        linked = db.session.execute(select(Deal.amocrm_lead_id, Lead.amocrm_lead_id, Lead.sync_status)
                                    .join(Lead, Lead.id == Deal.lead_id)).all()
        assert linked and all(deal == lead and status == "synced" for deal, lead, status in linked)
    again = runner.invoke(args=["demo-data", public_id, "--leads", "10", "--days", "60"])
    assert again.exit_code == 0, again.output
    assert runner.invoke(args=["demo-data", "no-such-workspace"]).exit_code != 0


def test_demo_seed_gives_the_first_screen_numbers(app, owner, owner_client):
    from portal.reports.demo_data import seed_demo_data

    with app.app_context():
        seed_demo_data(workspace_of(app, owner))
    html = owner_client.get("/reports/roi?period=90d").get_data(as_text=True)
    assert "google" in html and "yandex" in html and html.count("chart-bar") > 4


def test_dashboard_charts_revenue_spend_and_roi_with_the_same_numbers_as_its_table(app, owner, owner_client):
    import re
    from datetime import date, timedelta

    from fixtures.reports import add_lead, add_sale, add_spend, at

    ws = workspace_of(app, owner)
    day = date.today() - timedelta(days=2)
    lead = add_lead(app, ws, at(day), "google", "cpc", "brand")
    add_sale(app, ws, lead, "won", 3000, at(day), at(day))
    add_spend(app, ws, day, "google", "cpc", "brand", 1000)
    html = owner_client.get("/?period=7d").get_data(as_text=True)
    for chart in ("chart-money", "chart-roi", "dashboard-chart"):
        section = html[html.index(f'id="{chart}"'):].split("</section>")[0]
        assert section.count("<svg") == 2  # wide and narrow
    money = html[html.index('id="chart-money"'):].split("</section>")[0]
    # the point of that day carries its exact revenue and spend, and ROI 200 %
    assert re.search(r"Revenue, RUB: 3,000 · Spend, RUB: 1,000", money)
    roi = html[html.index('id="chart-roi"'):].split("</section>")[0]
    assert "ROI: 200 %" in roi and 'tabindex="0"' in roi
    table = html[html.index('id="chart-numbers"'):].split("</details>")[0]
    assert "3,000" in table and "1,000" in table and "200%" in table
