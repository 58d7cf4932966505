"""CSV downloads (leads, ROI report, ad spend): the plain file for scripts keeps its bytes (UTF-8, no BOM, `,`,
`.` in numbers); `?excel=1` adds a BOM and, in Russian and Ukrainian, `;` and decimal commas; times are in the
workspace's time zone with their offset."""
import csv
import io
from datetime import UTC, date, datetime

from fixtures.reports import add_lead, add_sale, add_spend
from fixtures.support import workspace_of

BOM = "\ufeff"


def download(client, url: str) -> tuple[bytes, str]:
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return response.data, response.headers["Content-Disposition"]


def test_plain_leads_csv_has_local_times_with_their_offset_and_no_bom(app, owner, owner_client):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "google", name="Anna")
    add_sale(app, ws, lead, "won", "1500.50", datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    body, disposition = download(owner_client, "/leads.csv?period=custom&from=2026-03-01&to=2026-03-02")
    text = body.decode("utf-8")
    assert not text.startswith(BOM) and 'filename="leads.csv"' in disposition
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["id", "created_at"]
    # 09:30 UTC is 12:30 in Moscow (the workspace's zone), and the value says so.
    assert rows[1][1] == "2026-03-01T12:30:00+03:00"
    assert "1500.50" in rows[1]


def test_leads_csv_for_excel_in_russian_has_a_bom_semicolons_and_decimal_commas(app, owner, owner_client):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "google", name="Анна")
    add_sale(app, ws, lead, "won", "1500.50", datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    body, disposition = download(owner_client,
                                 "/leads.csv?excel=1&lang=ru&period=custom&from=2026-03-01&to=2026-03-02")
    assert body.startswith(b"\xef\xbb\xbf") and 'filename="leads-excel.csv"' in disposition
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert len(rows[0]) > 10 and "Анна" in rows[1] and "1500,50" in rows[1]
    assert "2026-03-01T12:30:00+03:00" in rows[1]


def test_spend_csv_for_excel_in_english_keeps_commas(app, owner, owner_client):
    add_spend(app, workspace_of(app, owner), date(2026, 3, 1), "google", "cpc", "brand", "12.5")
    body, _ = download(owner_client, "/reports/spend/export.csv?excel=1&lang=en")
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").splitlines()[1] == '"2026-03-01","google","cpc","brand","12.50"'


def test_plain_spend_csv_bytes_are_unchanged_for_scripts(app, owner, owner_client):
    add_spend(app, workspace_of(app, owner), date(2026, 3, 1), "google", "cpc", "brand", "12.5")
    body, _ = download(owner_client, "/reports/spend/export.csv?lang=ru")
    assert body == (b'"date","utm_source","utm_medium","utm_campaign","amount"\r\n'
                    b'"2026-03-01","google","cpc","brand","12.50"\r\n')


def test_report_csv_for_excel_in_ukrainian(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_spend(app, ws, date(2026, 3, 1), "google", "cpc", "brand", "12.5")
    body, _ = download(owner_client, "/reports/roi.csv?excel=1&lang=uk&period=custom&from=2026-03-01&to=2026-03-01")
    text = body.decode("utf-8-sig")
    assert body.startswith(b"\xef\xbb\xbf") and ";" in text.splitlines()[0]
    assert "12,50" in text


def test_the_pages_offer_both_downloads(owner_client):
    assert 'id="leads-csv-excel"' in owner_client.get("/leads").get_data(as_text=True)
    assert 'id="spend-csv-excel"' in owner_client.get("/reports/spend").get_data(as_text=True)
    assert 'id="roi-csv-excel"' in owner_client.get("/reports/roi").get_data(as_text=True)
