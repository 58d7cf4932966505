"""Streamed CSV downloads that spreadsheets cannot execute.

A cell starting with = + - @ (or a tab / carriage return) is read as a formula by Excel and LibreOffice; such a
cell gets a leading apostrophe so it is shown as text (OWASP "CSV injection").
"""
import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from flask import Response, stream_with_context

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """Text for one CSV cell. Numbers are written as they are (a negative number is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed text/csv attachment. Rows are produced lazily, inside the request context."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
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
