"""Streamed CSV downloads that spreadsheets cannot execute.

A cell starting with = + - @ (or a tab / carriage return) is read as a formula by Excel and LibreOffice; such a
cell gets a leading apostrophe so it is shown as text (OWASP "CSV injection"). Spreadsheets split a line on the
delimiter of their locale (`;` in ru-RU and much of Europe, `,` elsewhere, sometimes a tab), and not every import
honours quotes: so every field is quoted (a `;` inside never splits a CSV-aware reader), and within a field every
part that follows a `;`, `,`, tab or line break and would start like a formula gets the apostrophe too.
"""
import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal

from flask import Response, stream_with_context

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A delimiter of some locale (or a line break, for readers that split lines inside quotes), spaces, then a formula's
# first character: the apostrophe goes before that character.
_FORMULA_AFTER_DELIMITER = re.compile(r"([;,\t\r\n][ \t\r\n]*)(?=[=+\-@])")


def safe_cell(value) -> str:
    """Text for one CSV cell. Numbers are written as they are (a negative number is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = _FORMULA_AFTER_DELIMITER.sub(r"\1'", str(value))
    return "'" + text if text.lstrip(" ").startswith(FORMULA_PREFIXES) else text


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed text/csv attachment. Rows are produced lazily, inside the request context."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
        writer.writerow(header)
        for count, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(cell) for cell in row])
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
