"""Ad spend: rows by hand (a day, or a range spread evenly), CSV import with a preview and per-row errors,
re-import updates instead of doubling, export, and other workspaces' rows out of reach."""
import csv
import io
from datetime import date
from decimal import Decimal

from fixtures.reports import add_spend
from fixtures.support import csrf_from, post_form, workspace_of
from sqlalchemy import select

from portal.extensions import db
from portal.models import AdSpend
from portal.spend.services import preview_import, spread_evenly

GOOD_CSV = ("date,utm_source,utm_medium,utm_campaign,amount\n"
            "2026-03-01,google,cpc,brand,1000.50\n"
            "2026-03-02,google,cpc,brand,\"1 200,25\"\n"
            "01.03.2026,yandex,cpc,rsya,300\n")


def spend_rows(app, workspace_id):
    with app.app_context():
        return sorted((row.date.isoformat(), row.utm_source, row.utm_campaign, row.amount)
                      for row in db.session.scalars(select(AdSpend).where(AdSpend.workspace_id == workspace_id)))


def upload(client, content: str, filename="spend.csv"):
    token = csrf_from(client.get("/reports/spend").get_data(as_text=True))
    return client.post("/reports/spend/import", data={"csrf_token": token,
                                                      "file": (io.BytesIO(content.encode()), filename)},
                       content_type="multipart/form-data")


def confirm(client, preview_html: str):
    import html
    import re

    content = re.search(r'name="content" type="hidden" value="([^"]*)"', preview_html) or \
        re.search(r'id="content" name="content" type="hidden" value="([^"]*)"', preview_html)
    assert content, "the preview has no confirm form"
    return client.post("/reports/spend/import/confirm", data={"csrf_token": csrf_from(preview_html),
                                                              "content": html.unescape(content.group(1))})


def test_spread_evenly_keeps_every_cent():
    parts = spread_evenly(Decimal("100.00"), date(2026, 1, 1), date(2026, 1, 3))
    assert [amount for _, amount in parts] == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert sum(amount for _, amount in parts) == Decimal("100.00")


def test_add_a_range_spread_over_its_days_and_saving_again_replaces(app, owner, owner_client):
    data = {"date": "2026-02-01", "date_to": "2026-02-04", "utm_source": " google ", "utm_medium": "cpc",
            "utm_campaign": "brand", "amount": "1000"}
    assert post_form(owner_client, "/reports/spend", data).status_code == 302
    assert post_form(owner_client, "/reports/spend", data).status_code == 302
    rows = spend_rows(app, workspace_of(app, owner))
    assert len(rows) == 4 and {row[1] for row in rows} == {"google"}
    assert sum(row[3] for row in rows) == Decimal("1000")


def test_range_ending_before_it_starts_is_refused(app, owner, owner_client):
    response = post_form(owner_client, "/reports/spend", {"date": "2026-02-04", "date_to": "2026-02-01",
                                                          "amount": "10"})
    assert response.status_code == 400 and "cannot be before" in response.get_data(as_text=True)
    assert spend_rows(app, workspace_of(app, owner)) == []


def test_preview_lists_errors_per_row_and_saves_nothing(app, owner, owner_client):
    bad = ("date,utm_source,utm_medium,utm_campaign,amount\n"
           "2026-03-01,google,cpc,brand,100\n"
           "yesterday,google,cpc,brand,100\n"
           "2026-03-02,google,cpc,brand,-5\n"
           "2026-03-03,google,cpc,brand,lots\n"
           "2026-03-01,google,cpc,brand,7\n")
    response = upload(owner_client, bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Rows ready to import: 1; <strong class=\"error\">with errors: 4</strong>" in html
    assert "date: use YYYY-MM-DD" in html and "cannot be negative" in html and "not a number" in html
    assert "repeats line 2" in html
    assert spend_rows(app, workspace_of(app, owner)) == []


def test_file_without_the_columns_is_refused():
    preview = preview_import("day,cost\n2026-01-01,5\n")
    assert preview.file_errors and "missing: date, utm_source" in preview.file_errors[0]
    assert preview_import("").file_errors


def test_import_then_reimport_updates_instead_of_doubling(app, owner, owner_client):
    preview = upload(owner_client, GOOD_CSV)
    assert confirm(owner_client, preview.get_data(as_text=True)).status_code == 302
    ws = workspace_of(app, owner)
    first = spend_rows(app, ws)
    assert first == [("2026-03-01", "google", "brand", Decimal("1000.50")),
                     ("2026-03-01", "yandex", "rsya", Decimal("300.00")),
                     ("2026-03-02", "google", "brand", Decimal("1200.25"))]
    changed = GOOD_CSV.replace("1000.50", "999")
    confirm(owner_client, upload(owner_client, changed).get_data(as_text=True))
    second = spend_rows(app, ws)
    assert len(second) == 3 and second[0][3] == Decimal("999.00")


def test_export_round_trips_and_escapes_formulas(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_spend(app, ws, date(2026, 3, 1), "=cmd|' /C calc'!A0", "cpc", "x", 10)
    response = owner_client.get("/reports/spend/export.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["date", "utm_source", "utm_medium", "utm_campaign", "amount"]
    assert rows[1] == ["2026-03-01", "'=cmd|' /C calc'!A0", "cpc", "x", "10.00"]


def test_edit_and_delete_a_row(app, owner, owner_client):
    ws = workspace_of(app, owner)
    spend_id = add_spend(app, ws, date(2026, 3, 1), "google", "cpc", "x", 10)
    response = post_form(owner_client, f"/reports/spend/{spend_id}/edit", {
        "date": "2026-03-02", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "x", "amount": "25"})
    assert response.status_code == 302
    assert spend_rows(app, ws) == [("2026-03-02", "google", "x", Decimal("25.00"))]
    post_form(owner_client, f"/reports/spend/{spend_id}/delete", {}, page="/reports/spend")
    assert spend_rows(app, ws) == []


def test_other_workspaces_spend_is_invisible_and_untouchable(app, make_user, owner, owner_client):
    other = workspace_of(app, make_user("other@example.com"))
    spend_id = add_spend(app, other, date.today(), "secretsource", "cpc", "x", 10)
    assert "secretsource" not in owner_client.get("/reports/spend").get_data(as_text=True)
    assert "secretsource" not in owner_client.get("/reports/spend/export.csv").get_data(as_text=True)
    assert owner_client.get(f"/reports/spend/{spend_id}/edit").status_code == 404
    assert post_form(owner_client, f"/reports/spend/{spend_id}/delete", {}, page="/reports/spend").status_code == 404
    assert len(spend_rows(app, other)) == 1


def test_spend_without_a_source_is_refused_unless_one_is_assigned_in_the_preview(app, owner, owner_client):
    import html as html_module
    import re

    blank = ("date,utm_source,utm_medium,utm_campaign,amount\n"
             "2026-03-01,google,cpc,brand,100\n"
             "2026-03-02,,cpc,,800\n"
             "2026-03-03,  ,,,50\n")
    response = upload(owner_client, blank)
    page = response.get_data(as_text=True)
    assert "Rows ready to import: 1;" in page and "with errors: 2" in page
    assert "spend without a source matches no leads" in page and 'id="assign-source"' in page
    ws = workspace_of(app, owner)
    confirm(owner_client, page)
    assert spend_rows(app, ws) == [("2026-03-01", "google", "brand", Decimal("100.00"))]  # the blank rows refused

    content = html_module.unescape(re.search(r'name="content" value="([^"]*)"', page).group(1))
    again = owner_client.post("/reports/spend/import/assign", data={
        "csrf_token": csrf_from(page), "content": content, "assigned_source": " yandex "})
    page = again.get_data(as_text=True)
    assert again.status_code == 200 and "Rows ready to import: 3." in page and "“yandex”" in page
    assert 'name="assigned_source" value="yandex"' in page
    response = owner_client.post("/reports/spend/import/confirm", data={
        "csrf_token": csrf_from(page), "content": content, "assigned_source": "yandex"})
    assert response.status_code == 302
    assert ("2026-03-02", "yandex", "", Decimal("800.00")) in spend_rows(app, ws)
    # the confirm step checks again: without the assigned source the blank rows are skipped, not saved blank
    owner_client.post("/reports/spend/import/confirm", data={"csrf_token": csrf_from(page), "content": content})
    assert all(row[1] for row in spend_rows(app, ws))


def test_spend_by_hand_needs_a_source(app, owner, owner_client):
    page = owner_client.get("/reports/spend").get_data(as_text=True)
    response = owner_client.post("/reports/spend", data={"csrf_token": csrf_from(page), "date": "2026-03-01",
                                                         "utm_source": " ", "amount": "800"})
    assert response.status_code == 400 and "Enter the source" in response.get_data(as_text=True)
    assert spend_rows(app, workspace_of(app, owner)) == []
