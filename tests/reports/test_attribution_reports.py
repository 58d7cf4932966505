"""Attribution models in the report: a visitor's ad visit then a direct return, split by every model; leads not
attributed yet; the rollups equal to the base tables under every model; the API's model parameter, the comparison
view, the lead page's chain, a late form visit, and another workspace's visits never joining a chain."""
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from fixtures.reports import add_lead, add_sale, at
from fixtures.support import post_form, workspace_of
from sqlalchemy import delete, select, text

from portal.extensions import db
from portal.models import Deal, Lead, LeadCredit, Visit
from portal.reports import credits
from portal.reports.attribution import MODELS
from portal.reports.periods import Period
from portal.reports.services import ReportQuery, model_comparison, roi_report

D0 = date.today() - timedelta(days=20)
PERIOD = Period(D0, D0 + timedelta(days=9), "Europe/Moscow")
RANGE = f"period=custom&from={PERIOD.start}&to={PERIOD.end}"


def create_token(client) -> str:
    response = post_form(client, "/settings/api-tokens", {"name": "Looker"})
    return re.search(r'value="(lp_[^"]+)"', response.get_data(as_text=True)).group(1)


def day(offset: int) -> date:
    return D0 + timedelta(days=offset)


def add_visit(app, ws: int, visitor: str, visit: str, started: datetime, **fields) -> None:
    with app.app_context():
        db.session.add(Visit(workspace_id=ws, visitor_id=visitor, visit_id=visit, started_at=started, **fields))
        db.session.commit()


@pytest.fixture
def journey(app, owner, make_user):
    """Ann clicks a Google ad, comes back two days later by typing the address and sends the form; her deal is
    won for 1000. Another lead has no visitor (its first touch was Facebook, its last Yandex). Another workspace
    has a VK visit with Ann's visitor id."""
    ws = workspace_of(app, owner)
    other = workspace_of(app, make_user("other@example.com"))
    add_visit(app, ws, "v-ann", "a1", at(day(1), 7), utm_source="google", utm_medium="cpc", utm_campaign="brand",
              gclid="Cj0K", landing_page="https://shop.example/sale?utm_source=google", device="mobile")
    add_visit(app, ws, "v-ann", "a2", at(day(3), 7), landing_page="https://shop.example/", device="desktop")
    add_visit(app, other, "v-ann", "x1", at(day(2), 7), utm_source="vk", utm_medium="cpc")
    ann = add_lead(app, ws, at(day(3), 8), None, None, None, visitor_id="v-ann", visit_id="a2", name="Ann",
                   landing_page="https://shop.example/")
    bob = add_lead(app, ws, at(day(4)), "yandex", "cpc", "rsya", first=("facebook", "social", "promo"),
                   name="Bob")
    add_sale(app, ws, ann, "won", 1000, at(day(3), 9), at(day(5)))
    add_sale(app, ws, bob, "won", 300, at(day(4), 13), at(day(6)))
    return ws, other, ann, bob


def attribute_all(app, ws: int) -> int:
    with app.app_context():
        return credits.attribute_backlog(ws)


def by_source(app, ws: int, model: str) -> dict[str, tuple]:
    with app.app_context():
        report = roi_report(ws, ReportQuery(PERIOD, model=model))
        rows = {row.key: (row.figures.leads, row.figures.revenue, row.figures.visits) for row in report.rows}
        return rows, (report.totals.leads, report.totals.won, report.totals.revenue, report.totals.visits)


def test_an_ad_visit_then_a_direct_return_under_every_model(app, journey):
    ws, _, _, _ = journey
    assert attribute_all(app, ws) == 2
    rows, _ = by_source(app, ws, "last_non_direct")  # the default
    assert rows["google"] == (1, 1000, 1) and rows[""][:2] == (0, 0)
    rows, _ = by_source(app, ws, "last")
    assert rows["google"][:2] == (0, 0) and rows[""] == (1, 1000, 1)
    rows, _ = by_source(app, ws, "linear")
    assert rows["google"][:2] == rows[""][:2] == (Decimal("0.5"), Decimal("500"))
    rows, _ = by_source(app, ws, "u_shaped")
    assert rows["google"][:2] == (Decimal("0.5"), Decimal("500"))
    rows, _ = by_source(app, ws, "time_decay")  # two days older: a bit less than the return visit
    assert Decimal("0.4") < rows["google"][0] < Decimal("0.5") < rows[""][0]
    rows, _ = by_source(app, ws, "first")
    assert rows["google"][:2] == (1, 1000) and rows["facebook"][:2] == (1, 300)
    # the lead without a visitor: its first touch under first, its last under the others
    assert by_source(app, ws, "linear")[0]["yandex"][:2] == (Decimal("0.5"), Decimal("150"))
    assert by_source(app, ws, "last_non_direct")[0]["yandex"][:2] == (1, 300)
    totals = {model: by_source(app, ws, model)[1] for model in MODELS}
    assert len(set(totals.values())) == 1, totals
    assert totals["linear"] == (2, 2, Decimal("1300"), 2)


def test_before_attribution_a_lead_counts_under_its_own_touches_in_every_model(app, journey):
    ws, _, _, _ = journey
    for model in MODELS:
        rows, totals = by_source(app, ws, model)
        assert totals[:3] == (2, 2, Decimal("1300")), model
        assert rows[""][:2] == (1, 1000), model  # Ann's lead carries no tags of its own
        assert rows["facebook" if model == "first" else "yandex"][:2] == (1, 300), model


def test_another_workspace_with_the_same_visitor_id_never_joins_the_chain(app, journey):
    ws, other, ann, _ = journey
    attribute_all(app, ws)
    with app.app_context():
        chain = db.session.scalars(select(LeadCredit).where(LeadCredit.lead_id == ann)
                                   .order_by(LeadCredit.position)).all()
        assert [credit.visit_id for credit in chain] == ["a1", "a2"]
        assert "vk" not in {credit.source for credit in chain}
        assert {credit.workspace_id for credit in chain} == {ws}
        assert db.session.scalar(select(LeadCredit).where(LeadCredit.workspace_id == other)) is None
        assert roi_report(other, ReportQuery(PERIOD)).totals.visits == 1


def test_the_models_side_by_side(app, journey, owner_client):
    ws, _, _, _ = journey
    attribute_all(app, ws)
    with app.app_context():
        comparison = model_comparison(ws, ReportQuery(PERIOD))
    google = next(row for row in comparison.rows if row.key == "google")
    assert [google.by_model[model].leads for model in MODELS][:3] == [1, 1, 0]  # last non-direct, first, last
    assert google.by_model["linear"].revenue == 500
    assert len({(totals.leads, totals.revenue) for totals in comparison.totals.values()}) == 1

    html = owner_client.get(f"/reports/roi/models?{RANGE}").get_data(as_text=True)
    assert 'id="models-table"' in html and "Last non-direct" in html and "U-shaped" in html
    assert re.search(r'class="[^"]*table-wrap" role="region" tabindex="0"', html)
    totals = html[html.index('id="models-totals"'):]
    leads = re.findall(r'data-figure="leads">([^<]+)<', totals)
    assert leads == ["2"] * len(MODELS)
    google_row = html[html.index('data-key="google"'):].split("</tr>")[0]
    assert re.findall(r'data-model="linear" data-figure="leads">([^<]+)<', google_row) == ["0.5"]

    page = owner_client.get(f"/reports/roi?{RANGE}&model=linear").get_data(as_text=True)
    assert '<option value="linear" title=' in page and 'selected>Linear' in page
    assert "Credit split equally over every visit." in page
    assert 'href="/reports/roi/models?' in page


def test_the_api_takes_a_model_and_still_takes_first_or_last(app, journey, owner_client):
    ws, _, _, _ = journey
    attribute_all(app, ws)
    headers = {"Authorization": f"Bearer {create_token(owner_client)}"}
    client = app.test_client()
    roi = client.get(f"/api/reports/roi?{RANGE}&model=linear", headers=headers).get_json()
    rows = {row["key"]: row for row in roi["rows"]}
    assert roi["model"] == "linear" and rows["google"]["leads"] == 0.5 and rows["google"]["revenue"] == 500
    assert roi["totals"]["leads"] == 2 and roi["totals"]["visits"] == 2 and roi["totals"]["cr1_percent"] == 100
    default = client.get(f"/api/reports/roi?{RANGE}", headers=headers).get_json()
    assert default["model"] == "last_non_direct" and {r["key"]: r["leads"] for r in default["rows"]}["google"] == 1
    first = client.get(f"/api/reports/roi?{RANGE}&attribution=first", headers=headers).get_json()
    assert first["model"] == "first" and first["attribution"] == "first"
    bogus = client.get(f"/api/reports/roi?{RANGE}&model=data_driven' OR 1=1", headers=headers)
    assert bogus.status_code == 200 and bogus.get_json()["model"] == "last_non_direct"
    models = client.get(f"/api/reports/models?{RANGE}", headers=headers).get_json()
    assert models["models"] == list(MODELS)
    google = next(row for row in models["rows"] if row["key"] == "google")
    assert google["models"]["linear"]["leads"] == 0.5 and google["models"]["first"]["revenue"] == 1000
    assert client.get(f"/api/reports/models?{RANGE}").status_code == 401

    csv_text = owner_client.get(f"/reports/roi.csv?{RANGE}&model=linear").get_data(as_text=True)
    google_line = next(line for line in csv_text.splitlines() if line.startswith('"google"'))
    assert '"0.50"' in google_line and '"500.00"' in google_line


def test_a_split_row_links_to_the_leads_with_any_credit_there(app, journey, owner_client):
    ws, _, ann, _ = journey
    attribute_all(app, ws)
    html = owner_client.get(f"/reports/roi?{RANGE}&model=linear").get_data(as_text=True)
    table = html[html.index('id="roi-table"'):]
    links = [(shown, unescape(href)) for href, shown in
             re.findall(r'<a href="([^"]+)" class="leads-link"[^>]*>([^<]+)</a>', table)]
    assert ("0.5" in dict(links)) and len(links) == 4  # split leads are shown with one decimal
    for _, href in links:
        assert "model=linear" in href
    page = owner_client.get(next(href for _, href in links if "source=google" in href))
    text = page.get_data(as_text=True)
    assert "Ann" in text and "Bob" not in text and 'id="model-hint"' in text


def test_the_lead_page_shows_the_chain_with_each_visit_s_credit(app, journey, owner_client):
    ws, _, ann, bob = journey
    html = owner_client.get(f"/leads/{ann}").get_data(as_text=True)
    assert 'id="chain-pending"' in html  # not attributed yet: worked out now
    attribute_all(app, ws)
    html = owner_client.get(f"/leads/{ann}").get_data(as_text=True)
    assert 'id="chain-pending"' not in html
    chain = html[html.index('id="chain-table"'):html.index("</table>", html.index('id="chain-table"'))]
    rows = chain.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 2
    assert "google / cpc / brand" in rows[0] and "mobile" in rows[0] and "https://shop.example/sale" in rows[0]
    assert "(direct)" in rows[1] and "desktop" in rows[1]
    assert re.search(r'data-model="linear">50%<', rows[0]) and re.search(r'data-model="last">0%<', rows[0])
    assert re.search(r'data-model="last_non_direct">100%<', rows[0])
    assert 'class="table-wrap" role="region" tabindex="0"' in html
    bob_page = owner_client.get(f"/leads/{bob}").get_data(as_text=True)
    assert "facebook / social / promo" in bob_page and "yandex / cpc / rsya" in bob_page


def test_a_late_form_visit_is_taken_in_by_the_periodic_job(app, owner):
    ws = workspace_of(app, owner)
    now = datetime.now(UTC)
    add_visit(app, ws, "v-bob", "b1", now - timedelta(hours=3), utm_source="vk", utm_medium="cpc")
    lead = add_lead(app, ws, now - timedelta(minutes=5), "yandex", "cpc", None, visitor_id="v-bob", visit_id="b2")
    fresh = add_lead(app, ws, now, "yandex", "cpc", None, visitor_id="v-bob", visit_id="b3")
    with app.app_context():
        assert credits.attribute_pending_leads() == 1  # the fresh lead waits for its visit a little
        chain = db.session.scalars(select(LeadCredit).where(LeadCredit.lead_id == lead)
                                   .order_by(LeadCredit.position)).all()
        assert [(credit.visit_id, credit.source) for credit in chain] == [("b1", "vk"), (None, "yandex")]
        assert credits.attribute_pending_leads() == 0
    add_visit(app, ws, "v-bob", "b2", now - timedelta(minutes=6), utm_source="yandex", utm_medium="cpc",
              utm_campaign="retarget")
    with app.app_context():
        assert credits.attribute_pending_leads() == 1
        chain = db.session.scalars(select(LeadCredit).where(LeadCredit.lead_id == lead)
                                   .order_by(LeadCredit.position)).all()
        assert [(credit.visit_id, credit.campaign) for credit in chain] == [("b1", ""), ("b2", "retarget")]
        assert credits.attribute_pending_leads() == 0
        assert db.session.scalar(select(LeadCredit).where(LeadCredit.lead_id == fresh)) is None


def test_a_very_long_chain_keeps_its_first_and_latest_touches(app, owner):
    ws = workspace_of(app, owner)
    for index in range(credits.MAX_CHAIN + 20):
        add_visit(app, ws, "v-kiosk", f"k{index}", at(day(1)) + timedelta(minutes=index),
                  utm_source="first" if index == 0 else f"s{index}")
    lead = add_lead(app, ws, at(day(2)), None, None, None, visitor_id="v-kiosk",
                    visit_id=f"k{credits.MAX_CHAIN + 19}")
    attribute_all(app, ws)
    with app.app_context():
        chain = db.session.scalars(select(LeadCredit).where(LeadCredit.lead_id == lead)
                                   .order_by(LeadCredit.position)).all()
        assert len(chain) == credits.MAX_CHAIN
        assert chain[0].source == "first" and chain[1].source == "s21" and chain[-1].visit_id == "k119"
        assert sum(credit.weight_linear for credit in chain) == 1_000_000


@pytest.mark.integration
def test_credit_rollups_equal_the_base_tables_under_every_model_through_every_write(app, journey):
    ws, other, ann, bob = journey

    def agree():
        with app.app_context():
            assert credits.check(ws) == []
            assert credits.check(other) == []

    agree()
    attribute_all(app, ws)
    agree()
    with app.app_context():
        deal = db.session.scalar(select(Deal).where(Deal.lead_id == ann))
        deal.amount = Decimal("1234.56")
        db.session.get(Lead, bob).is_spam = True
        db.session.commit()
    agree()
    with app.app_context():
        db.session.get(Lead, bob).is_spam = False
        db.session.execute(delete(Visit).where(Visit.workspace_id == ws, Visit.visit_id == "a1"))
        db.session.commit()
        credits.attribute_lead(ws, ann)  # its chain is now the return visit alone
        credits.compact(ws)
    agree()
    rows, _ = by_source(app, ws, "linear")
    assert rows[""][:2] == (1, Decimal("1234.56")) and "google" not in rows
    with app.app_context():
        before = {model: credits.credit_rollup_facts(ws, model) for model in MODELS}
        credits.rebuild(ws)
        assert {model: credits.credit_rollup_facts(ws, model) for model in MODELS} == before
        db.session.delete(db.session.get(Lead, ann))
        db.session.commit()
    agree()


@pytest.mark.integration
def test_random_chains_keep_every_model_s_totals_equal_in_the_rollups(app, owner):
    """A seeded random workspace: visitors with chains of visits, leads, won deals; every model's totals equal the
    others' exactly, and the rollups equal the base tables."""
    import random

    generator = random.Random(42)
    ws = workspace_of(app, owner)
    sources = ["google", "yandex", "vk", None]
    expected_revenue = Decimal(0)
    for person in range(40):
        visitor = f"v{person}"
        visits = generator.randint(0, 5)
        for index in range(visits):
            source = generator.choice(sources)
            add_visit(app, ws, visitor, f"{visitor}-{index}", at(day(1 + index), 6 + person % 5),
                      utm_source=source, utm_medium="cpc" if source else None,
                      referrer=generator.choice([None, "https://news.example/a"]))
        lead = add_lead(app, ws, at(day(1 + visits), 20), generator.choice(sources), None, None,
                        visitor_id=visitor, visit_id=f"{visitor}-{visits - 1}" if visits else None)
        if generator.random() < 0.5:
            amount = Decimal(generator.randint(1, 10**6)) / 100
            expected_revenue += amount
            add_sale(app, ws, lead, "won", amount, at(day(1 + visits), 21), at(day(9)))
    attribute_all(app, ws)
    with app.app_context():
        assert credits.check(ws) == []
        comparison = model_comparison(ws, ReportQuery(PERIOD))
    assert {(totals.leads, totals.won, totals.revenue) for totals in comparison.totals.values()} == {
        (40, comparison.totals["first"].won, expected_revenue)}


@pytest.mark.integration
def test_the_commands_attribute_the_backlog_and_check_and_rebuild_the_credit_rollups(app, journey, runner):
    ws, _, ann, _ = journey
    result = runner.invoke(args=["reports", "attribute", "--workspace", str(ws)])
    assert result.exit_code == 0 and f"workspace {ws}: 2 leads attributed" in result.output
    assert runner.invoke(args=["reports", "attribute", "--workspace", str(ws)]).output.endswith(
        f"workspace {ws}: 0 leads attributed\n")
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    assert result.exit_code == 0 and "agree" in result.output
    with app.app_context():
        db.session.execute(text("INSERT INTO credit_rollups (workspace_id, grain, day, model, source, leads) "
                                "VALUES (:ws, 'n', :day, 'A', 'google', 5)"), {"ws": ws, "day": D0})
        db.session.commit()
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    assert result.exit_code == 1 and "model linear, grain n" in result.output and "1 differences" in result.output
    result = runner.invoke(args=["reports", "rebuild", "--workspace", str(ws)])
    assert result.exit_code == 0 and "credit rollup rows" in result.output
    assert runner.invoke(args=["reports", "check", "--workspace", str(ws)]).exit_code == 0
    assert runner.invoke(args=["reports", "compact", "--workspace", str(ws)]).exit_code == 0


@pytest.mark.parametrize("query", ["model=%00", "model=linear&level=<script>&view=flat", "period=custom&from=x&to=y",
                                   "source=" + "a" * 5000, "model[]=first&basis=closed&sales=repeat"])
def test_hostile_arguments_never_break_the_pages(app, owner, owner_client, query):
    for path in ("/reports/roi", "/reports/roi/models", "/reports/roi.csv"):
        response = owner_client.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query)
