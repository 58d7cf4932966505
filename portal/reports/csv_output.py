"""Streamed CSV downloads that spreadsheets cannot execute.

A cell starting with = + - @ (or a tab / carriage return) is read as a formula by Excel and LibreOffice; such a
cell gets a leading apostrophe so it is shown as text (OWASP "CSV injection"). Spreadsheets split a line on the
delimiter of their locale (`;` in ru-RU and much of Europe, `,` elsewhere, sometimes a tab), and not every import
honours quotes: so every field is quoted (a `;` inside never splits a CSV-aware reader), and within a field every
part that follows a `;`, `,`, tab or line break and would start like a formula gets the apostrophe too.

Two flavours of every download (documented in docs/api.md):
- plain (the default, for scripts): UTF-8 without a BOM, `,` between fields, `.` in numbers — unchanged bytes;
- "for Excel" (`?excel=1`): a UTF-8 BOM (without it Excel reads UTF-8 as the system's code page), and in Russian
  and Ukrainian, whose Excel splits on `;` and reads `1234,5` as a number, `;` between fields and decimal commas.
Times are written in the workspace's time zone with their offset (ISO 8601: 2026-03-01T13:05:00+03:00), so a
script reads the same instant and a person reads the local time.
"""
import codecs
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Response, request, stream_with_context
from flask_babel import get_locale

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A delimiter of some locale (or a line break, for readers that split lines inside quotes), spaces, then a formula's
# first character: the apostrophe goes before that character.
_FORMULA_AFTER_DELIMITER = re.compile(r"([;,\t\r\n][ \t\r\n]*)(?=[=+\-@])")


# Locales whose Excel uses `;` between fields and a decimal comma.
SEMICOLON_LOCALES = ("ru", "uk")


@dataclass(frozen=True)
class CsvFlavour:
    delimiter: str = ","
    byte_order_mark: bool = False
    decimal_comma: bool = False


PLAIN = CsvFlavour()


def requested_flavour() -> CsvFlavour:
    """`?excel=1` asks for the Excel flavour of the reader's language; anything else gets the plain file."""
    if request.args.get("excel") != "1":
        return PLAIN
    semicolon = str(get_locale() or "en").split("_")[0] in SEMICOLON_LOCALES
    return CsvFlavour(delimiter=";" if semicolon else ",", byte_order_mark=True, decimal_comma=semicolon)


def local_timestamp(value: datetime | None, timezone: str) -> str:
    """A stored UTC time as ISO 8601 in the workspace's zone, with its offset (full precision, as before)."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).isoformat()


def safe_cell(value, flavour: CsvFlavour = PLAIN) -> str:
    """Text for one CSV cell. Numbers are written as they are (a negative number is not a formula)."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value).replace(".", ",") if flavour.decimal_comma else str(value)
    text = _FORMULA_AFTER_DELIMITER.sub(r"\1'", str(value))
    return "'" + text if text.lstrip(" ").startswith(FORMULA_PREFIXES) else text


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A streamed text/csv attachment in the flavour the request asked for (plain or for Excel). Rows are
    produced lazily, inside the request context."""
    flavour = requested_flavour()

    def generate():
        buffer = io.StringIO()
        if flavour.byte_order_mark:
            buffer.write(codecs.BOM_UTF8.decode())
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, delimiter=flavour.delimiter)
        writer.writerow(header)
        for count, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(cell, flavour) for cell in row])
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    if flavour is not PLAIN:
        filename = filename.removesuffix(".csv") + "-excel.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
