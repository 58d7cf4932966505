"""Repeat sales: a deal is new when it is its amoCRM contact's first (by creation, then id), a repeat otherwise;
the report's sales switch shows new, repeat or all deal figures, leads and spend whole. On PostgreSQL the rollups
keep the split under every write order (an earlier deal arriving late, a contact changing, the first deal deleted);
on SQLite the base tables are grouped with the same rule."""
import csv
import io
import re
from datetime import date, timedelta

import pytest
from fixtures.live_services import wait_until
from fixtures.reports import add_lead, add_sale, add_spend, at
from fixtures.support import post_form, workspace_of
from sqlalchemy import text

from portal.extensions import db
from portal.models import Deal
from portal.reports.periods import Period
from portal.reports.rollups import aggregate, base_table_facts, check, compact, rebuild, rollup_facts

D0 = date.today() - timedelta(days=20)
PERIOD = Period(D0 - timedelta(days=1), D0 + timedelta(days=15), "Europe/Moscow")
# figures: leads, cohort open/won/lost/revenue, closed open/won/lost/revenue, spend
LEADS, COHORT_WON, COHORT_REVENUE, CLOSED_WON, CLOSED_REVENUE, SPEND = 0, 2, 4, 6, 8, 9


def create_token(client) -> str:
    response = post_form(client, "/settings/api-tokens", {"name": "Looker"})
    return re.search(r'value="(lp_[^"]+)"', response.get_data(as_text=True)).group(1)


def day(offset: int) -> date:
    return D0 + timedelta(days=offset)


def by_source(app, ws, sales: str) -> dict:
    with app.app_context():
        return {row[0]: list(row[1:]) for row in aggregate(ws, "last", PERIOD, ("source",), sales=sales)}


def customer(app, ws) -> dict:
    """Contact 77: a first sale from our form (google), then two more deals made in amoCRM (one without tags,
    one won); contact 88: one sale (yandex); a deal without a contact; spend on google."""
    lead = add_lead(app, ws, at(day(0)), "google", "cpc", "brand")
    other = add_lead(app, ws, at(day(1)), "yandex", "cpc", "rsya")
    return {
        "first": add_sale(app, ws, lead, "won", 1000, at(day(0)), at(day(2)), contact=77),
        "again": add_sale(app, ws, None, "won", 400, at(day(5)), at(day(6)), contact=77),
        "third": add_sale(app, ws, None, "won", 250, at(day(8)), at(day(9)), tags=("google", "cpc", "brand"),
                          contact=77),
        "yandex": add_sale(app, ws, other, "won", 300, at(day(1)), at(day(3)), contact=88),
        "anonymous": add_sale(app, ws, None, "won", 50, at(day(4)), at(day(4))),
        "spend": add_spend(app, ws, day(0), "google", "cpc", "brand", 500),
    }


def test_new_repeat_and_all_sales_on_either_database(app, owner):
    ws = workspace_of(app, owner)
    customer(app, ws)
    every, new, repeat = (by_source(app, ws, sales) for sales in ("all", "new", "repeat"))
    # all: every deal where it counts; contact 77's later deals made in amoCRM take its first lead's source
    assert every["google"][CLOSED_WON] == 3 and every["google"][CLOSED_REVENUE] == 165_000
    assert every["(amocrm, no utm)"][CLOSED_REVENUE] == 5_000  # only the deal without a contact
    # new: each contact's first deal, and the deal without a contact
    assert new["google"][CLOSED_WON] == 1 and new["google"][CLOSED_REVENUE] == 100_000
    assert new["yandex"][CLOSED_REVENUE] == 30_000
    assert new["(amocrm, no utm)"][CLOSED_REVENUE] == 5_000
    # repeat: contact 77's later deals only, under google
    assert repeat["google"][CLOSED_WON] == 2 and repeat["google"][CLOSED_REVENUE] == 65_000
    assert repeat.get("(amocrm, no utm)", [0] * 10)[CLOSED_REVENUE] == 0
    assert "yandex" not in repeat or repeat["yandex"][CLOSED_WON] == 0
    # leads and spend stay whole under every switch; new + repeat = all for every deal figure
    for source in every:
        assert new[source][LEADS] == repeat.get(source, [0] * 10)[LEADS] == every[source][LEADS] \
            or every[source][LEADS] == 0
        assert new[source][SPEND] == every[source][SPEND]
        for figure in range(1, 9):
            assert new.get(source, [0] * 10)[figure] + repeat.get(source, [0] * 10)[figure] == every[source][figure]
    with app.app_context():
        with pytest.raises(ValueError):
            aggregate(ws, "last", PERIOD, ("source",), sales="old")


def kinds(app, ws) -> dict:
    """{deal id: "n" | "r"} as the base tables say (the rule both sides follow)."""
    with app.app_context():
        return {deal_id: kind for deal_id, kind in db.session.execute(
            text("SELECT id, leadpath_deal_kind(d) FROM deals d WHERE workspace_id = :ws"), {"ws": ws})}


def assert_agree(app, ws):
    with app.app_context():
        assert check(ws) == []
        for attribution in ("last", "first"):
            expected = {key: value for key, value in base_table_facts(ws, attribution, None).items() if any(value)}
            assert rollup_facts(ws, attribution) == expected


@pytest.mark.integration
def test_an_earlier_deal_arriving_late_turns_the_first_arrived_into_a_repeat(app, owner):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, at(day(0)), "google", "cpc", "brand")
    late = add_sale(app, ws, None, "won", 400, at(day(5)), at(day(6)), contact=77)
    assert by_source(app, ws, "new")["(amocrm, no utm)"][CLOSED_REVENUE] == 40_000
    # The webhook of the contact's earlier deal comes after: the deal that came first is now a repeat.
    early = add_sale(app, ws, lead, "won", 1000, at(day(0)), at(day(2)), contact=77)
    assert kinds(app, ws) == {early: "n", late: "r"}
    new, repeat = by_source(app, ws, "new"), by_source(app, ws, "repeat")
    assert new["google"][CLOSED_REVENUE] == 100_000 and new.get("(amocrm, no utm)", [0] * 10)[CLOSED_REVENUE] == 0
    # ... and, made in amoCRM without tags, it is credited to the source of the customer's first lead
    assert repeat["google"][CLOSED_REVENUE] == 40_000 and repeat.get("(amocrm, no utm)", [0] * 10)[CLOSED_WON] == 0
    assert_agree(app, ws)
    with app.app_context():
        # Equal creation times: the lower id comes first
        db.session.execute(text("UPDATE deals SET created_at = :at WHERE id IN (:a, :b)"),
                           {"at": at(day(3)), "a": early, "b": late})
        db.session.commit()
    assert kinds(app, ws) == {late: "n", early: "r"}
    assert_agree(app, ws)
    with app.app_context():
        db.session.execute(text("UPDATE deals SET created_at = :at WHERE id = :id"), {"at": at(day(0)), "id": early})
        db.session.commit()
    assert kinds(app, ws) == {early: "n", late: "r"}
    assert_agree(app, ws)
    with app.app_context():
        # The first deal deleted in amoCRM: the other is the contact's first again
        db.session.get(Deal, early).deleted = True
        db.session.commit()
    assert by_source(app, ws, "new")["(amocrm, no utm)"][CLOSED_REVENUE] == 40_000
    assert_agree(app, ws)
    with app.app_context():
        db.session.get(Deal, early).deleted = False
        db.session.commit()
        # amoCRM moves the late deal to another contact: both are firsts
        db.session.get(Deal, late).amocrm_contact_id = 99
        db.session.commit()
    assert by_source(app, ws, "repeat").get("(amocrm, no utm)", [0] * 10)[CLOSED_REVENUE] == 0
    assert_agree(app, ws)
    with app.app_context():
        # Raw SQL, outside the ORM: back to contact 77, then the first deal removed outright, then its lead's tags
        db.session.execute(text("UPDATE deals SET amocrm_contact_id = 77 WHERE id = :id"), {"id": late})
        db.session.commit()
    assert kinds(app, ws) == {early: "n", late: "r"}
    assert_agree(app, ws)
    with app.app_context():
        # The first lead's tags change: the repeat credited to it moves along
        db.session.execute(text("UPDATE leads SET utm_source = 'bing' WHERE id = :id"), {"id": lead})
        db.session.commit()
    assert by_source(app, ws, "repeat")["bing"][CLOSED_REVENUE] == 40_000
    assert_agree(app, ws)
    with app.app_context():
        # The first lead deleted: neither deal came from our form any more
        db.session.execute(text("DELETE FROM leads WHERE id = :id"), {"id": lead})
        db.session.commit()
    assert by_source(app, ws, "repeat")["(amocrm, no utm)"][CLOSED_REVENUE] == 40_000
    assert_agree(app, ws)
    with app.app_context():
        db.session.execute(text("DELETE FROM deals WHERE id = :id"), {"id": early})
        db.session.commit()
    assert kinds(app, ws) == {late: "n"}
    assert_agree(app, ws)


@pytest.mark.integration
def test_folding_rebuild_and_the_check_command_keep_the_split(app, owner, runner):
    ws = workspace_of(app, owner)
    customer(app, ws)
    before = {sales: by_source(app, ws, sales) for sales in ("all", "new", "repeat")}
    with app.app_context():
        compact(ws)
    assert {sales: by_source(app, ws, sales) for sales in ("all", "new", "repeat")} == before
    with app.app_context():
        rebuild(ws)
    assert {sales: by_source(app, ws, sales) for sales in ("all", "new", "repeat")} == before
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    assert result.exit_code == 0 and "agree" in result.output
    with app.app_context():  # a repeat counted as new: the check names both
        for kind, sign in (("r", -1), ("n", 1)):
            db.session.execute(text("INSERT INTO report_rollups (workspace_id, day, attribution, sale_kind, source, "
                                    "medium, campaign, closed_won) VALUES (:ws, :day, 'b', :kind, 'google', 'cpc', "
                                    "'brand', :won)"), {"ws": ws, "day": day(9), "kind": kind, "won": sign})
        db.session.commit()
    result = runner.invoke(args=["reports", "check", "--workspace", str(ws)])
    assert result.exit_code == 1 and "repeat sale" in result.output and "new sale" in result.output


def test_the_switch_on_the_page_its_csv_and_the_api(app, owner, owner_client):
    ws = workspace_of(app, owner)
    customer(app, ws)
    dates = f"period=custom&from={PERIOD.start}&to={PERIOD.end}&basis=closed"
    page = owner_client.get(f"/reports/roi?{dates}&sales=repeat").get_data(as_text=True)
    assert 'name="sales"' in page and '<option value="repeat" selected>' in page
    # drilling down and the breadcrumbs keep the switch; the row's lead count still opens its leads
    assert "sales=repeat" in page and "/leads?" in page

    def csv_totals(sales: str) -> list[str]:
        text_ = owner_client.get(f"/reports/roi.csv?{dates}&sales={sales}").get_data(as_text=True)
        return next(row for row in csv.reader(io.StringIO(text_)) if row[0] == "Total")

    # columns: group, spend, leads, cpl, open_deals, won, lost, conversion, revenue
    assert (csv_totals("all")[5], csv_totals("all")[8]) == ("5", "2000.00")
    assert (csv_totals("new")[5], csv_totals("new")[8]) == ("3", "1350.00")
    assert (csv_totals("repeat")[5], csv_totals("repeat")[8]) == ("2", "650.00")
    assert csv_totals("repeat")[1:3] == csv_totals("all")[1:3]  # spend and leads stay whole

    headers = {"Authorization": f"Bearer {create_token(owner_client)}"}
    client = app.test_client()
    roi = client.get(f"/api/reports/roi?{dates}&sales=new", headers=headers).get_json()
    assert roi["sales"] == "new" and roi["totals"]["won"] == 3 and roi["totals"]["revenue"] == 1350
    assert roi["totals"]["leads"] == 2 and roi["totals"]["spend"] == 500
    odd = client.get(f"/api/reports/roi?{dates}&sales=<script>", headers=headers).get_json()
    assert odd["sales"] == "all" and odd["totals"]["won"] == 5


@pytest.mark.integration
def test_two_transactions_adding_deals_of_one_contact_at_once_agree(app, owner):
    """Two writers insert a contact's deals concurrently, the later-made deal first: the second waits for the
    first on the workspace's lock, then sees its deal, so exactly one is new."""
    import threading

    ws = workspace_of(app, owner)
    insert = text("INSERT INTO deals (workspace_id, amocrm_lead_id, name, state, amount, currency, deleted, "
                  "amocrm_updated_at, amocrm_contact_id, created_at, updated_at, closed_at) VALUES (:ws, :number, "
                  "'', 'won', 100, 'RUB', false, 0, 55, :at, :at, :at) RETURNING id")
    with app.app_context():
        engine = db.engine
    first = engine.connect()
    first.begin()
    later_id = first.execute(insert, {"ws": ws, "number": 9_000_001, "at": at(day(6))}).scalar()
    done = {}

    def second_writer():
        with engine.begin() as connection:
            done["id"] = connection.execute(insert, {"ws": ws, "number": 9_000_002, "at": at(day(1))}).scalar()

    thread = threading.Thread(target=second_writer)
    thread.start()
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 21 AND NOT granted")
    with engine.connect() as probe:  # the second writer queues on the first one's lock
        wait_until(lambda: probe.execute(waiting).scalar(), message="the second writer to wait for the lock")
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert kinds(app, ws) == {done["id"]: "n", later_id: "r"}
    assert by_source(app, ws, "repeat")["(amocrm, no utm)"][CLOSED_WON] == 1
    assert_agree(app, ws)
