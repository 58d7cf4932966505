"""CSV exports are safe to open in a spreadsheet: a cell that starts with = + - @ (or a tab or carriage return)
is prefixed so it is read as text, never as a formula. Every CSV the owner's pages offer is checked."""
import csv
import io
import re
from datetime import date

import pytest
from fixtures.abuse import own_objects, owner_pages
from fixtures.support import workspace_of

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
            "\t=1+1", "\r=1+1",
            # Formulas after a delimiter of some locale: a spreadsheet splitting on `;` (ru-RU) or `,` starts a cell
            "x;=cmd|' /C calc'!A0", "y, +1+cmd|' /C calc'!A0", "z;\t@SUM(A1:A2)"]
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?%?")


@pytest.fixture
def formula_rows(app, owner):
    """Leads, sales and ad spend whose every text field starts like a formula."""
    from portal.extensions import db
    from portal.models import AdSpend, Deal, Lead

    workspace_id = workspace_of(app, owner)
    with app.app_context():
        for index, value in enumerate(FORMULAS):
            lead = Lead(workspace_id=workspace_id, name=value, email=f"f{index}@example.com", message=value,
                        utm_source=value, utm_medium=value, utm_campaign=value, utm_term=value, utm_content=value,
                        referrer=value, landing_page=value, sync_status="synced", amocrm_lead_id=1000 + index)
            db.session.add(lead)
            db.session.flush()
            db.session.add(Deal(workspace_id=workspace_id, amocrm_lead_id=1000 + index, lead_id=lead.id, state="won",
                                amount=500, utm_source=value, utm_medium=value, utm_campaign=value))
            db.session.add(AdSpend(workspace_id=workspace_id, date=date.today(), utm_source=value, utm_medium=value,
                                   utm_campaign=value, amount=100 + index))
        db.session.commit()
    return own_objects(app, owner)


def _csv_exports(app, client, ids):
    """Every CSV route, plus the ROI export drilled down to mediums and campaigns (they carry the tags too)."""
    drill = FORMULAS[0].lower()
    for _endpoint, url in owner_pages(app, ids):
        response = client.get(url)
        if response.mimetype == "text/csv":
            yield url, response
            if "roi" in url:
                for query in ({"source": drill}, {"source": drill, "medium": drill}):
                    yield f"{url} {query}", client.get(url, query_string=query)


def test_every_export_neutralises_formula_cells(app, owner_client, formula_rows):
    exports = 0
    for url, response in _csv_exports(app, owner_client, formula_rows):
        exports += 1
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
        assert len(rows) > 1, f"{url}: no data rows"
        cells = [cell for row in rows for cell in row]
        for cell in cells:
            if NUMBER.fullmatch(cell):
                continue  # a negative amount or ROI is a number to a spreadsheet, not a formula
            assert not cell.startswith(DANGEROUS_START), f"{url}: formula cell {cell!r}"
        # The values are there, as text: prefixed, not dropped.
        assert any(cell.lower().endswith('hyperlink("http://evil.example","x")') for cell in cells), (url, rows)
    assert exports >= 5, "leads, ROI (three levels) and ad spend exports expected among the owner's pages"


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_no_delimiter_convention_starts_a_cell_with_a_formula(app, owner_client, formula_rows, delimiter):
    """Read as a spreadsheet of another locale would: with that delimiter, honouring quotes or not."""
    exports = 0
    for url, response in _csv_exports(app, owner_client, formula_rows):
        exports += 1
        text = response.get_data(as_text=True).lstrip("\ufeff")
        quoted = [cell for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) for cell in row]
        naive = [part for line in text.splitlines() for part in line.split(delimiter)]
        for cell in quoted + naive:
            # What a lenient reader evaluates: the cell without its quotes and leading whitespace.
            bare = cell.lstrip(' "\t\r\n')
            if NUMBER.fullmatch(bare.rstrip('"')):
                continue
            assert not bare.startswith(("=", "+", "-", "@")), f"{url}: split on {delimiter!r}, formula cell {cell!r}"
        if delimiter == "," and url.endswith("/leads.csv"):  # the file's own delimiter: one cell, a `;` splits nothing
            assert any(cell.startswith("x;'=cmd") for cell in quoted), url
    assert exports >= 5
