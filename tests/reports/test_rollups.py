"""Report rollups in PostgreSQL: every write path keeps them equal to the base tables (ORM, raw SQL, deletes,
a lead's tags changing under its deals, spend edits, a time zone change); folding, rebuild and check."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import workspace_of
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.models import AdSpend, Deal, Lead, ReportRollup, Workspace
from portal.reports.periods import Period
from portal.reports.rollups import aggregate, base_table_facts, check, compact, rebuild, rollup_facts
from portal.reports.tags import url_domain, url_path

pytestmark = pytest.mark.integration
D0 = date.today() - timedelta(days=30)


def busy_workspace(app, ws) -> dict:
    """Leads with every level set, first touch differing, deals of every kind, spend."""
    ids = {
        "l1": add_lead(app, ws, at(D0), "Google", "cpc", "brand", first=("facebook", "social", "promo"),
                       utm_content="Banner_A", utm_term="buy shoes", landing_page="https://shop.example/Sale?x=1",
                       referrer="https://www.google.com/search?q=x", first_landing_page="/home",
                       first_referrer="http://m.facebook.com/"),
        "l2": add_lead(app, ws, at(D0 + timedelta(days=1)), "yandex", "cpc", "rsya", landing_page="shop.example",
                       referrer="not a url"),
        "l3": add_lead(app, ws, at(D0 + timedelta(days=2)), "vk", None, None, is_spam=True),
    }
    ids["d1"] = add_sale(app, ws, ids["l1"], "won", 1200, at(D0), at(D0 + timedelta(days=3)))
    ids["d2"] = add_sale(app, ws, ids["l2"], "open", 300, at(D0 + timedelta(days=1)))
    ids["d3"] = add_sale(app, ws, ids["l3"], "lost", 50, at(D0 + timedelta(days=2)), at(D0 + timedelta(days=4)))
    ids["d4"] = add_sale(app, ws, None, "won", 99.99, at(D0), at(D0 + timedelta(days=1)), tags=("Email", "x", "y"))
    ids["d5"] = add_sale(app, ws, None, "won", 10, at(D0), at(D0 + timedelta(days=1)))
    ids["s1"] = add_spend(app, ws, D0, "google", "cpc", "brand", 800)
    ids["s2"] = add_spend(app, ws, D0, "vk", "cpc", "feed", 120.5)
    return ids


def assert_agree(app, ws):
    with app.app_context():
        assert check(ws) == []
        for attribution in ("last", "first"):
            expected = {key: value for key, value in base_table_facts(ws, attribution, None).items() if any(value)}
            assert rollup_facts(ws, attribution) == expected


def test_every_write_path_keeps_rollups_equal_to_the_base_tables(app, owner):
    ws = workspace_of(app, owner)
    ids = busy_workspace(app, ws)
    assert_agree(app, ws)
    with app.app_context():
        # ORM updates: tags of a lead that has a deal, a deal reopened, spam unmarked, spend changed
        lead = db.session.get(Lead, ids["l1"])
        lead.utm_source, lead.created_at = "bing", at(D0 + timedelta(days=5))
        deal = db.session.get(Deal, ids["d1"])
        deal.state, deal.closed_at = "open", None
        db.session.get(Lead, ids["l3"]).is_spam = False
        db.session.get(AdSpend, ids["s1"]).amount = Decimal("900")
        db.session.commit()
    assert_agree(app, ws)
    with app.app_context():
        # Raw SQL, outside the ORM: a deal moved to another lead, a lead deleted (its deals lose their lead),
        # a deal deleted, spend deleted, a repeat marked
        db.session.execute(text("UPDATE deals SET lead_id = :lead WHERE id = :id"),
                           {"lead": ids["l2"], "id": ids["d3"]})
        db.session.execute(text("DELETE FROM leads WHERE id = :id"), {"id": ids["l1"]})
        db.session.execute(text("DELETE FROM deals WHERE id = :id"), {"id": ids["d5"]})
        db.session.execute(text("DELETE FROM ad_spend WHERE id = :id"), {"id": ids["s2"]})
        db.session.execute(text("UPDATE leads SET duplicate_of_id = :of WHERE id = :id"),
                           {"of": ids["l2"], "id": ids["l3"]})
        db.session.commit()
    assert_agree(app, ws)
    with app.app_context():
        assert db.session.get(Deal, ids["d1"]).lead_id is None
        db.session.get(Workspace, ws).timezone = "America/Los_Angeles"  # every local day moves
        db.session.commit()
    assert_agree(app, ws)


def test_folding_and_rebuilding_leave_the_figures_as_they_were(app, owner):
    ws = workspace_of(app, owner)
    busy_workspace(app, ws)
    period = Period(D0 - timedelta(days=1), D0 + timedelta(days=10), "Europe/Moscow")
    with app.app_context():
        before = sorted(aggregate(ws, "first", period, ("source", "day")))
        deltas = db.session.scalar(select(func.count()).where(ReportRollup.workspace_id == ws,
                                                              ReportRollup.merged.is_(False)))
        compact(ws)
        assert db.session.scalar(select(func.count()).where(ReportRollup.workspace_id == ws,
                                                            ReportRollup.merged.is_(False))) == 0
        merged = db.session.scalar(select(func.count()).where(ReportRollup.workspace_id == ws))
        assert 0 < merged < deltas
        assert sorted(aggregate(ws, "first", period, ("source", "day"))) == before
        assert rebuild(ws) == merged
        assert sorted(aggregate(ws, "first", period, ("source", "day"))) == before
    assert_agree(app, ws)


def test_check_command_finds_a_tampered_rollup_and_rebuild_repairs_it(app, owner, runner):
    ws = workspace_of(app, owner)
    busy_workspace(app, ws)
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    assert result.exit_code == 0 and "agree" in result.output
    with app.app_context():
        db.session.execute(text("INSERT INTO report_rollups (workspace_id, day, attribution, source, leads) "
                                "VALUES (:ws, :day, 'b', 'google', 5)"), {"ws": ws, "day": D0})
        db.session.commit()
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    # one difference for last touch, one for first
    assert result.exit_code == 1 and "google" in result.output and "2 differences" in result.output
    result = runner.invoke(args=["reports", "rebuild"])
    assert result.exit_code == 0 and f"workspace {ws}:" in result.output
    assert runner.invoke(args=["reports", "check"]).exit_code == 0


def test_levels_are_normalised_alike_in_postgresql_and_python(app):
    urls = [None, "", "  ", "https://Shop.example/Sale/?utm=1#x", "shop.example", "/landing?x", "//cdn.example/a",
            "http://user:pw@WWW.Example.COM:8080/p", "mailto:x@example.com", "not a url", "https://www.", "\tb\x0b"]
    with app.app_context():
        for url in urls:
            row = db.session.execute(text("SELECT leadpath_url_path(:u), leadpath_url_domain(:u), leadpath_tag(:u)"),
                                     {"u": url}).one()
            from portal.reports.tags import normalize_tag

            assert tuple(row) == (url_path(url), url_domain(url), normalize_tag(url)), url
    assert url_path("https://Shop.example/Sale/?utm=1") == "/sale/" and url_path("https://shop.example") == "/"
    assert url_domain("http://user:pw@WWW.Example.COM:8080/p") == "example.com" and url_domain("/x") == ""


def test_a_lead_from_the_public_intake_is_in_the_report_at_once(app, client):
    """The intake's own INSERT (beneath the ORM) and a repeat of it: counted once, right away."""
    from fixtures.intake import SEED_000_PAYLOAD, make_workspace, post_lead

    from portal.reports.periods import today_in

    workspace_id, public_id = make_workspace(app)
    payload = {**SEED_000_PAYLOAD, "landing_page": "https://shop.example/Spring?utm_source=google",
               "utm_content": "Banner"}
    assert post_lead(client, public_id, **payload).status_code == 201
    assert post_lead(client, public_id, **payload).status_code in (200, 201)  # a repeat: not counted again
    with app.app_context():
        today = today_in("Europe/Moscow")
        period = Period(today - timedelta(days=1), today, "Europe/Moscow")
        assert aggregate(workspace_id, "last", period, ("source", "content", "landing_path")) == [
            ("google", "banner", "/spring", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    assert_agree(app, workspace_id)
