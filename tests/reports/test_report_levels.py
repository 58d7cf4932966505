"""Report levels: the drill-down tree down to term, flat tables at any level (landing page, referrer domain), every
row linking to exactly its leads, and spend figures shown only where spend is recorded."""
import re
from datetime import date, timedelta
from html import unescape
from urllib.parse import parse_qsl

from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import workspace_of
from werkzeug.datastructures import MultiDict

from portal.leads.services import count_leads, parse_filters
from portal.reports.periods import Period
from portal.reports.services import ReportQuery, roi_report

D0 = date.today() - timedelta(days=20)
PERIOD = Period(D0, D0 + timedelta(days=9), "Europe/Moscow")
RANGE = f"period=custom&from={PERIOD.start}&to={PERIOD.end}"


def seed(app, ws):
    leads = [
        add_lead(app, ws, at(D0), "google", "cpc", "brand", utm_content="Banner_A", utm_term="shoes",
                 landing_page="https://shop.example/sale?x=1", referrer="https://www.google.com/search"),
        add_lead(app, ws, at(D0 + timedelta(days=1)), "Google", "cpc", "brand", utm_content="banner_a",
                 utm_term="boots", landing_page="https://shop.example/Sale", referrer="https://google.com/"),
        add_lead(app, ws, at(D0 + timedelta(days=2)), "yandex", "cpc", "brand", utm_content="text",
                 landing_page="/home", first=("vk", "social", "feed")),
        add_lead(app, ws, at(D0 + timedelta(days=2)), "google", "cpc", "brand", utm_content="banner_a",
                 is_spam=True),
        add_lead(app, ws, at(D0 + timedelta(days=3)), "google", "cpc", "generic", landing_page="/sale"),
    ]
    add_sale(app, ws, leads[0], "won", 1000, at(D0), at(D0 + timedelta(days=2)))
    add_sale(app, ws, leads[2], "won", 500, at(D0 + timedelta(days=2)), at(D0 + timedelta(days=3)))
    add_spend(app, ws, D0, "google", "cpc", "brand", 300)
    return leads


def rows_of(app, ws, **kwargs):
    with app.app_context():
        report = roi_report(ws, ReportQuery(PERIOD, **kwargs))
    return report, {row.key: row for row in report.rows}


def test_tree_goes_down_to_content_and_term(app, owner):
    ws = workspace_of(app, owner)
    seed(app, ws)
    report, rows = rows_of(app, ws, source="google", medium="cpc", campaign="brand")
    assert report.query.level == "content" and report.query.next_level == "term"
    assert rows["banner_a"].figures.leads == 2 and rows["banner_a"].figures.revenue == 1000
    assert rows["banner_a"].figures.spend is not None and rows["banner_a"].figures.roi is None
    report, rows = rows_of(app, ws, source="google", medium="cpc", campaign="brand", content="banner_a")
    assert report.query.level == "term" and report.query.next_level is None
    assert {key: row.figures.leads for key, row in rows.items()} == {"shoes": 1, "boots": 1}


def test_flat_tables_name_each_row_by_its_path(app, owner):
    ws = workspace_of(app, owner)
    seed(app, ws)
    report, rows = rows_of(app, ws, chosen_level="campaign", view="flat")
    labels = {row.full_label: row.figures.leads for row in report.rows}
    assert labels == {"google / cpc / brand": 2, "yandex / cpc / brand": 1, "google / cpc / generic": 1}
    _, rows = rows_of(app, ws, chosen_level="landing_path", view="flat")
    assert {key: row.figures.leads for key, row in rows.items()} == {"/sale": 3, "/home": 1}
    _, rows = rows_of(app, ws, chosen_level="referrer_domain", view="flat")
    assert {key: row.figures.leads for key, row in rows.items()} == {"google.com": 2, "": 2}
    _, rows = rows_of(app, ws, chosen_level="landing_path", view="flat", attribution="first")
    # the yandex lead's first touch (vk) carries no landing page: it counts under "(none)"
    assert {key: row.figures.leads for key, row in rows.items()} == {"/sale": 3, "": 1}


def test_spend_is_shown_only_at_levels_it_is_recorded_at(app, owner, owner_client):
    ws = workspace_of(app, owner)
    seed(app, ws)
    report, rows = rows_of(app, ws, chosen_level="landing_path", view="flat")
    assert all(row.figures.spend is not None for row in report.rows)
    assert report.totals.roi is None and report.totals.as_dict()["spend"] is None
    html = owner_client.get(f"/reports/roi?{RANGE}&level=landing_path&view=flat").get_data(as_text=True)
    assert 'id="spend-note"' in html
    html = owner_client.get(f"/reports/roi?{RANGE}").get_data(as_text=True)
    assert 'id="spend-note"' not in html


def test_every_row_links_to_exactly_its_leads(app, owner, owner_client):
    ws = workspace_of(app, owner)
    seed(app, ws)
    for args in ("", "&source=google", "&source=google&medium=cpc&campaign=brand",
                 "&source=google&medium=cpc&campaign=brand&content=banner_a", "&level=landing_path&view=flat",
                 "&level=referrer_domain&view=flat", "&level=campaign&view=flat&attribution=first",
                 "&attribution=first&basis=closed"):
        html = owner_client.get(f"/reports/roi?{RANGE}{args}").get_data(as_text=True)
        table = html[html.index('id="roi-table"'):]
        links = re.findall(r'<a href="([^"]+)" class="leads-link"[^>]*>([\d\s\u202f\xa0,]+)</a>', table)
        assert links, args
        for href, shown in links:
            path, _, query = unescape(href).partition("?")
            assert path == "/leads"
            response = owner_client.get(unescape(href))
            assert response.status_code == 200
            total = re.search(r'id="leads-total">Leads found: ([^<]+)<', response.get_data(as_text=True)).group(1)
            assert total == shown, (args, href)  # the page's own total, from the same rollups
            with app.app_context():
                filters = parse_filters(MultiDict(parse_qsl(query, keep_blank_values=True)), "Europe/Moscow")
                assert count_leads(ws, filters) == int(re.sub(r"\D", "", shown)), (args, href)


def test_compare_with_the_previous_period_on_the_page_and_in_the_csv(app, owner, owner_client):
    import csv
    import io
    from decimal import Decimal

    ws = workspace_of(app, owner)
    seed(app, ws)
    before = PERIOD.previous().start
    add_lead(app, ws, at(before), "google", "cpc", "brand")
    add_lead(app, ws, at(before + timedelta(days=1)), "bing", "cpc", "old")  # nothing from bing now
    add_spend(app, ws, before, "google", "cpc", "brand", 100)
    report, rows = rows_of(app, ws, compare=True)
    google = rows["google"].changes
    assert (google["leads"].previous, google["leads"].current, google["leads"].absolute) == (1, 3, 2)
    assert google["leads"].percent == 200 and google["leads"].direction == "up"
    assert (google["spend"].absolute, google["roi"].kind) == (Decimal("200"), "points")
    assert google["roi"].previous == Decimal("-100") and google["roi"].percent is None
    assert rows["bing"].figures.leads == 0 and rows["bing"].changes["leads"].direction == "down"
    assert report.totals_changes["leads"].previous == 2

    html = owner_client.get(f"/reports/roi?{RANGE}&compare=1").get_data(as_text=True)
    assert "Leads vs previous" in html and "delta-up" in html and "delta-down" in html
    assert 'class="visually-hidden">up<' in html
    response = owner_client.get(f"/reports/roi.csv?{RANGE}&compare=1")
    table = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header = table[0]
    google_row = next(row for row in table if row[0] == "google")
    assert header[-3:] == ["roi_previous", "roi_change", "roi_change_percent"]
    assert google_row[header.index("leads_previous")] == "1"
    assert google_row[header.index("leads_change")] == "2"
    assert google_row[header.index("leads_change_percent")] == "200.00"
    plain = list(csv.reader(io.StringIO(owner_client.get(f"/reports/roi.csv?{RANGE}").get_data(as_text=True))))
    assert "leads_previous" not in plain[0]
