"""In real Chromium: the ROI report renders its SVG charts, a filter changes the numbers, the CSV downloads."""
from datetime import date, timedelta

import pytest
from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import PASSWORD, workspace_of

pytestmark = pytest.mark.browser


def test_roi_report_charts_filter_and_csv(app, owner, live_server, page):
    ws = workspace_of(app, owner)
    recent, old = date.today() - timedelta(days=3), date.today() - timedelta(days=200)
    lead = add_lead(app, ws, at(recent), "google", "cpc", "brand")
    add_sale(app, ws, lead, "won", 5000, at(recent), at(recent))
    add_spend(app, ws, recent, "google", "cpc", "brand", 1000)
    for _ in range(3):
        add_lead(app, ws, at(old), "yandex", "cpc", "rsya")

    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/reports/roi")

    bars = page.locator("#chart-channels svg.chart-wide rect.chart-bar")
    assert bars.count() >= 2 and float(bars.first.get_attribute("height")) > 0
    assert page.locator("#chart-over-time svg.chart-wide polyline").count() == 2
    totals = page.locator("#roi-totals")
    assert totals.locator("td").nth(2).inner_text() == "1"  # leads in the last 30 days (after visits and CR1)

    page.select_option("#period", "365d")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**period=365d**")
    assert page.locator("#roi-totals td").nth(2).inner_text() == "4"
    assert "yandex" in page.locator("#roi-table").inner_text()

    with page.expect_download() as download_info:
        page.click("#roi-csv")
    download = download_info.value
    content = open(download.path(), encoding="utf-8").read()
    assert download.suggested_filename.endswith(".csv") and content.startswith('"group","spend","leads"')
    assert "yandex" in content and "Total" in content


@pytest.mark.parametrize("width", [1280, 390])
def test_dashboard_charts_are_legible_and_show_full_labels_on_focus(app, owner, live_server, page, width):
    ws = workspace_of(app, owner)
    recent = date.today() - timedelta(days=3)
    lead = add_lead(app, ws, at(recent), "google", "cpc", "brand")
    add_sale(app, ws, lead, "won", 5000, at(recent), at(recent))
    add_spend(app, ws, recent, "google", "cpc", "brand", 1000)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", "owner@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/?period=7d")

    shown = page.locator("#chart-money svg.chart-wide" if width > 640 else "#chart-money svg.chart-narrow")
    assert shown.is_visible()
    assert page.locator("#chart-roi svg polyline, #chart-roi svg circle").count() >= 1
    # every axis and legend text of the visible charts renders at 12 px or more
    smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#dashboard-charts svg')]
        .filter(svg => svg.getBoundingClientRect().width > 0)
        .flatMap(svg => [...svg.querySelectorAll('text.chart-axis, text.chart-legend')])
        .map(text => text.getBoundingClientRect().height).filter(height => height > 0))""")
    assert smallest >= 12, smallest
    # nothing sticks out of its chart card
    overflow = page.evaluate("""() => [...document.querySelectorAll('#dashboard-charts .chart-card')]
        .some(card => card.scrollWidth > card.clientWidth + 1)""")
    assert not overflow
    # Tab reaches a point in time, whose tip shows the full date and the exact revenue
    mark = shown.locator("g.chart-mark").nth(3)  # 7 days up to today: the fourth is 3 days ago
    mark.focus()
    tip = mark.locator(".chart-tip")
    assert tip.is_visible()
    assert "Revenue, RUB: 5,000" in tip.text_content() and "Spend, RUB: 1,000" in tip.text_content()
