"""Ad spend import reads the files spreadsheets really save: `;` or `,` or tab separated, Russian, Ukrainian or
English headers, UTF-8 with or without a BOM, Windows-1251, Excel's UTF-16 "Unicode text", decimal commas with
thousands spaces, dates as dd.mm.yyyy or yyyy-mm-dd. A header it cannot use is explained in the reader's language.

The files in fixtures/spend_files are byte-exact: the same three rows in each encoding Excel writes."""
import io
from decimal import Decimal
from pathlib import Path

import pytest
from fixtures.support import csrf_from, workspace_of
from test_reports_spend import confirm, spend_rows

from portal.spend.services import SpendError, decode_upload, parse_amount, preview_import

FILES = Path(__file__).parent.parent / "fixtures" / "spend_files"
EXPECTED = [("2026-03-01", "yandex", "Весна", Decimal("1234.50")),
            ("2026-03-02", "yandex", "Весна", Decimal("1000.00")),
            ("2026-03-03", "vk", "Весна", Decimal("99.90"))]


def upload_bytes(client, data: bytes, filename: str, lang: str = "en"):
    token = csrf_from(client.get("/reports/spend").get_data(as_text=True))
    return client.post(f"/reports/spend/import?lang={lang}",
                       data={"csrf_token": token, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("filename", ["excel_csv_utf8_bom.csv", "excel_csv_cp1251.csv",
                                      "excel_unicode_text_utf16.txt", "plain_utf8.csv"])
def test_each_excel_encoding_imports_the_same_rows(app, owner, owner_client, filename):
    data = (FILES / filename).read_bytes()
    preview = upload_bytes(owner_client, data, filename)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Rows ready to import: 3. Nothing is saved yet." in html, html
    assert confirm(owner_client, html).status_code == 302
    assert spend_rows(app, workspace_of(app, owner)) == EXPECTED


def test_the_fixtures_are_the_encodings_they_claim():
    assert (FILES / "excel_csv_utf8_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (FILES / "excel_unicode_text_utf16.txt").read_bytes().startswith(b"\xff\xfe")
    cp1251 = (FILES / "excel_csv_cp1251.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        cp1251.decode("utf-8")
    assert decode_upload(cp1251).startswith("Дата;Источник")


@pytest.mark.parametrize("text, amount", [("1 234,50", "1234.50"), ("1\u00a0234,50", "1234.50"),
                                          ("1\u202f234,5", "1234.5"), ("1.234,50", "1234.50"),
                                          ("1,234.50", "1234.50"), ("1234,5 ₽", "1234.5"), ("99.9", "99.9"),
                                          ("12 345 руб.", "12345")])
def test_amounts_as_spreadsheets_write_them(text, amount):
    assert parse_amount(text) == Decimal(amount)


def test_english_headers_with_commas_and_no_medium_or_campaign():
    preview = preview_import("Date,Source,Spend\n2026-03-01,google,\"1,500.00\"\n")
    assert not preview.file_errors and len(preview.valid) == 1
    assert preview.valid[0].parsed[1:] == ("google", "", "", Decimal("1500.00"))


def test_decimal_commas_do_not_confuse_the_separator():
    # Every data cell has a comma; the header has none: `;` is the separator.
    preview = preview_import("utm_source;date;amount\ngoogle;01.03.2026;1,5\ngoogle;02.03.2026;2,5\n")
    assert [row.parsed[-1] for row in preview.valid] == [Decimal("1.50"), Decimal("2.50")]


def test_missing_headers_are_named_with_what_was_found_in_english(owner_client):
    html = upload_bytes(owner_client, b"Day;Cost\n01.03.2026;5\n", "x.csv").get_data(as_text=True)
    assert "missing: date, utm_source, amount" in html and "found: «Day», «Cost»" in html


def test_missing_headers_are_explained_in_russian(owner_client):
    data = "Число;Деньги\n01.03.2026;5\n".encode("cp1251")
    html = upload_bytes(owner_client, data, "x.csv", lang="ru").get_data(as_text=True)
    assert 'id="file-errors"' in html
    assert "нет столбцов: date, utm_source, amount" in html and "найдены: «Число», «Деньги»" in html


def test_binary_garbage_is_refused_with_a_message(owner_client):
    response = upload_bytes(owner_client, b"PK\x03\x04\x00\x00binary", "book.xlsx")
    assert response.status_code == 302
    assert "not text" in owner_client.get("/reports/spend").get_data(as_text=True)


def test_a_broken_utf16_file_is_refused_with_a_message():
    with pytest.raises(SpendError, match="UTF-16"):
        decode_upload(b"\xff\xfe" + "Дата\tСумма".encode("utf-16-le") + b"\x00")
