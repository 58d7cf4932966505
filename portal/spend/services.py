"""Ad spend: rows entered by hand (a day or a range spread evenly), CSV import with a preview, CSV export.

A row is unique per (workspace, date, source, medium, campaign): saving or importing the same key again updates
the amount instead of adding a second row, so re-importing a file is harmless. Tags are stored trimmed; the
reports group them case-insensitively. Rows imported from an ad account (`portal.adplatforms.importer`) live beside
these with their own uniqueness and are read-only here: the next import would overwrite an edit.
"""
import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AdSpend
from portal.reports.periods import Period

COLUMNS = ("date", "utm_source", "utm_medium", "utm_campaign", "amount")
# A file may leave out medium and campaign (spend for a whole source); date, source and amount it must have.
REQUIRED_COLUMNS = ("date", "utm_source", "amount")
# Header names as people and ad cabinets write them, in the languages Leadpath speaks, after normalise_header().
# "day" and "cost" are left out on purpose: in exports they often mean something else (a weekday, a cost per click).
HEADER_ALIASES = {
    "date": ("date", "дата", "день"),
    "utm_source": ("utm_source", "source", "источник", "джерело", "площадка", "майданчик"),
    "utm_medium": ("utm_medium", "medium", "канал", "тип трафика", "тип трафіку", "channel"),
    "utm_campaign": ("utm_campaign", "campaign", "кампания", "кампанія", "рекламная кампания",
                     "рекламна кампанія"),
    "amount": ("amount", "spend", "сумма", "сума", "расход", "расходы", "витрати", "витрата"),
}
HEADER_COLUMN = {alias: column for column, aliases in HEADER_ALIASES.items() for alias in aliases}
MAX_IMPORT_ROWS = 20000
MAX_AMOUNT = Decimal("100000000000")
CENT = Decimal("0.01")


class SpendError(Exception):
    pass


def _tags(source: str | None, medium: str | None, campaign: str | None) -> tuple[str, str, str]:
    return (source or "").strip()[:200], (medium or "").strip()[:200], (campaign or "").strip()[:200]


def spread_evenly(amount: Decimal, first: date, last: date) -> list[tuple[date, Decimal]]:
    """The amount over the days first..last in cents; the remainder cents go to the first days, so the parts sum
    exactly to the amount."""
    days = (last - first).days + 1
    share = (amount / days).quantize(CENT, rounding=ROUND_DOWN)
    remainder_cents = int(((amount - share * days) / CENT).to_integral_value())
    return [(first + timedelta(days=index), share + (CENT if index < remainder_cents else 0))
            for index in range(days)]


def _upsert(workspace_id: int, rows: list[tuple[date, str, str, str, Decimal]]) -> tuple[int, int]:
    """Insert or update rows by their unique key; returns (created, updated). Does not commit."""
    if not rows:
        return 0, 0
    dates = {row[0] for row in rows}
    existing = {(spend.date, spend.utm_source, spend.utm_medium, spend.utm_campaign): spend
                for spend in db.session.scalars(select(AdSpend).where(AdSpend.workspace_id == workspace_id,
                                                                      AdSpend.ad_account_id.is_(None),
                                                                      AdSpend.date.in_(dates)))}
    created = updated = 0
    for day, source, medium, campaign, amount in rows:
        spend = existing.get((day, source, medium, campaign))
        if spend is None:
            spend = AdSpend(workspace_id=workspace_id, date=day, utm_source=source, utm_medium=medium,
                            utm_campaign=campaign, amount=amount)
            db.session.add(spend)
            existing[(day, source, medium, campaign)] = spend
            created += 1
        else:
            spend.amount = amount
            updated += 1
    return created, updated


def add_spend(workspace_id: int, first: date, last: date | None, source, medium, campaign,
              amount: Decimal) -> tuple[int, int]:
    tags = _tags(source, medium, campaign)
    parts = spread_evenly(Decimal(amount), first, last or first)
    result = _upsert(workspace_id, [(day, *tags, part) for day, part in parts])
    db.session.commit()
    return result


def update_spend(spend: AdSpend, day: date, source, medium, campaign, amount: Decimal) -> None:
    tags = _tags(source, medium, campaign)
    clash = db.session.scalar(select(AdSpend.id).where(
        AdSpend.workspace_id == spend.workspace_id, AdSpend.date == day, AdSpend.utm_source == tags[0],
        AdSpend.utm_medium == tags[1], AdSpend.utm_campaign == tags[2], AdSpend.id != spend.id,
        AdSpend.ad_account_id.is_(None)))
    if clash:
        raise SpendError(_("Another row already has this date, source, medium and campaign; edit that one."))
    spend.date, (spend.utm_source, spend.utm_medium, spend.utm_campaign), spend.amount = day, tags, amount
    db.session.commit()


def delete_spend(spend: AdSpend) -> None:
    db.session.delete(spend)
    db.session.commit()


PAGE_SIZE = 100


def spend_page(workspace_id: int, period: Period, page: int) -> tuple[list[AdSpend], int, Decimal]:
    conditions = (AdSpend.workspace_id == workspace_id, AdSpend.date >= period.start, AdSpend.date <= period.end)
    total_rows, total_amount = db.session.execute(
        select(func.count(AdSpend.id), func.coalesce(func.sum(AdSpend.amount), 0)).where(*conditions)).one()
    rows = db.session.scalars(select(AdSpend).where(*conditions)
                              .order_by(AdSpend.date.desc(), AdSpend.utm_source, AdSpend.utm_medium,
                                        AdSpend.utm_campaign, AdSpend.id)
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows), total_rows, Decimal(total_amount)


def iter_spend(workspace_id: int, period: Period | None):
    statement = select(AdSpend).where(AdSpend.workspace_id == workspace_id)
    if period is not None:
        statement = statement.where(AdSpend.date >= period.start, AdSpend.date <= period.end)
    statement = statement.order_by(AdSpend.date, AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign)
    yield from db.session.scalars(statement.execution_options(yield_per=1000))


# ---------------------------------------------------------------------------------------------------------------
# CSV import


@dataclass
class ImportRow:
    line: int
    values: dict
    errors: list[str] = field(default_factory=list)
    parsed: tuple | None = None


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    file_errors: list[str]
    assigned_source: str = ""  # the source the user gave the rows without one

    @property
    def without_source(self) -> list[ImportRow]:
        """Rows refused only for lacking a source (the user may assign one in the preview)."""
        return [row for row in self.rows if row.errors == [NO_SOURCE_ERROR()]]

    @property
    def valid(self) -> list[ImportRow]:
        return [row for row in self.rows if not row.errors]

    @property
    def invalid(self) -> list[ImportRow]:
        return [row for row in self.rows if row.errors]


def parse_date(text: str) -> date:
    """yyyy-mm-dd, dd.mm.yyyy or dd/mm/yyyy; a time after the date (Excel writes "01.03.2026 0:00") is ignored."""
    text = text.strip().split(" ")[0].split("T")[0]
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError


# Currency marks a spreadsheet may leave in a money cell; spaces of any kind group thousands («1 234,50»).
_CURRENCY_MARKS = re.compile(r"(?i)[₽$€₴]|руб\.?|грн\.?|rub|uah|usd|eur")
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']")


def parse_amount(text: str) -> Decimal:
    """An amount as spreadsheets write it: 1234.5, 1 234,50, 1.234,50, 1,234.50, 1234,5 ₽.

    With both a comma and a dot, the later one is the decimal mark; a lone comma is a decimal comma (the Russian
    and Ukrainian way: «1234,5»)."""
    cleaned = _SPACES.sub("", _CURRENCY_MARKS.sub("", text))
    if "," in cleaned and "." in cleaned:
        decimal_mark = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        grouping = "." if decimal_mark == "," else ","
        cleaned = cleaned.replace(grouping, "").replace(decimal_mark, ".")
    elif "," in cleaned:
        if cleaned.count(",") > 1:  # 1,234,567: only thousands
            cleaned = cleaned.replace(",", "")
        else:
            cleaned = cleaned.replace(",", ".")
    amount = Decimal(cleaned)
    if not amount.is_finite():
        raise InvalidOperation
    return amount


def decode_upload(data: bytes) -> str:
    """The text of an uploaded file in the encodings Excel saves: UTF-8 with or without a BOM ("CSV UTF-8"),
    UTF-16 with a BOM ("Unicode text", tab separated), and Windows-1251 (a Russian Windows' "CSV")."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SpendError(_("The file starts like UTF-16 text but cannot be read as such; save it again as "
                               "“CSV UTF-8”.")) from None
    if b"\x00" in data[:4096]:
        raise SpendError(_("The file is not text (UTF-8, UTF-16 or Windows-1251 expected): save it from the "
                           "spreadsheet as “CSV UTF-8”."))
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SpendError(_("The file is not text (UTF-8, UTF-16 or Windows-1251 expected): save it from the "
                       "spreadsheet as “CSV UTF-8”."))


def normalise_header(name: str) -> str:
    """"  Расход (руб.) " → "расход"; "UTM_Source" → "utm_source"; "Рекламная  кампания" → "рекламная кампания"."""
    name = re.sub(r"\(.*?\)|\[.*?\]", "", name.replace("\ufeff", ""))
    name = re.sub(r"[\s\u00a0]+", " ", name).strip(" :,.;*").lower()
    return name.replace("ё", "е")


def header_positions(header: list[str]) -> dict[str, int]:
    """Our column name → its position, for the header names we recognise (the first of each wins)."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        column = HEADER_COLUMN.get(normalise_header(name))
        if column and column not in positions:
            positions[column] = index
    return positions


def sniff_delimiter(content: str) -> str:
    """The delimiter of the header line: tab (Excel's "Unicode text"), `;` (Excel in ru/uk locales) or `,`. Read
    from the header, not the data: data cells hold decimal commas («1 234,50») that fool a general sniffer."""
    first_line = next((line for line in content.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in ("\t", ";", ",")}
    best = max(counts, key=lambda delimiter: counts[delimiter])  # ties: the order above
    return best if counts[best] else ","


def NO_SOURCE_ERROR() -> str:  # noqa: N802 — a message, translated when asked for
    return _("utm_source: empty — spend without a source matches no leads, so its ROI would be meaningless; "
             "fill it in, or assign a source to these rows above")


def preview_import(content: str, assigned_source: str = "") -> ImportPreview:
    """Check every row; nothing is saved. Rows with errors are reported with their line number. A row without a
    source is refused unless the user assigned one for such rows (assigned_source)."""
    # newline="": the csv module then reads \r\n, \n and old Mac \r line ends alike, and newlines inside quotes.
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=sniff_delimiter(content))
    assigned_source = (assigned_source or "").strip()[:200]
    try:
        preview = _preview_rows(reader, assigned_source)
        preview.assigned_source = assigned_source
        return preview
    except csv.Error as error:  # a field over csv's 128 KiB limit, a stray quote in a strict dialect
        return ImportPreview([], [_("Line %(line)s cannot be read as CSV: %(error)s.", line=reader.line_num,
                                    error=error)])


def missing_columns_message(header: list[str], missing: list[str]) -> str:
    """Which columns the file lacks, which it has, and the names we understand, in the reader's language."""
    expected = _("date, utm_source, amount (utm_medium and utm_campaign are optional; Russian or Ukrainian names "
                 "such as «Дата», «Источник», «Канал», «Кампания», «Сумма» or «Расход» work too)")
    found = ", ".join(f"«{name[:60]}»" for name in header if name) or _("nothing")
    if not any(header):
        return _("The file has no header line. Expected columns: %(expected)s.", expected=expected)
    return _("The header must name the columns %(expected)s; missing: %(missing)s; found: %(found)s.",
             expected=expected, missing=", ".join(missing), found=found)


def _preview_rows(reader, assigned_source: str) -> ImportPreview:
    header = [name.strip() for name in next(reader, [])]
    positions = header_positions(header)
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if not any(header) or missing:
        return ImportPreview([], [missing_columns_message(header, missing)])
    rows: list[ImportRow] = []
    seen: dict[tuple, int] = {}
    for line, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) >= MAX_IMPORT_ROWS:
            return ImportPreview(rows, [_("The file has more than %(count)s rows; split it.", count=MAX_IMPORT_ROWS)])
        values = {name: (record[positions[name]] if positions.get(name, len(record)) < len(record) else "")
                  for name in COLUMNS}
        row = ImportRow(line, values)
        rows.append(row)
        try:
            day = parse_date(values["date"])
        except ValueError:
            row.errors.append(_("date: use YYYY-MM-DD (or DD.MM.YYYY)"))
            day = None
        try:
            amount = parse_amount(values["amount"])
            if amount < 0:
                row.errors.append(_("amount: cannot be negative"))
            elif amount >= MAX_AMOUNT:
                row.errors.append(_("amount: too large"))
            amount = amount.quantize(CENT)
        except (InvalidOperation, ValueError):
            row.errors.append(_("amount: not a number"))
            amount = None
        for name in ("utm_source", "utm_medium", "utm_campaign"):
            if len(values[name].strip()) > 200:
                row.errors.append(_("%(column)s: longer than 200 characters", column=name))
        if not values["utm_source"].strip():
            if assigned_source:
                values["utm_source"] = assigned_source
            else:
                row.errors.append(NO_SOURCE_ERROR())
        if row.errors:
            continue
        key = (day, *_tags(values["utm_source"], values["utm_medium"], values["utm_campaign"]))
        if key in seen:
            row.errors.append(_("repeats line %(line)s (same date, source, medium and campaign)", line=seen[key]))
            continue
        seen[key] = line
        row.parsed = (*key, amount)
    if not rows:
        return ImportPreview([], [_("The file has no data rows.")])
    return ImportPreview(rows, [])


def import_spend(workspace_id: int, content: str, assigned_source: str = "") -> tuple[int, int, int]:
    """Save the valid rows of a previewed file (checked again: the preview is not trusted). Returns
    (created, updated, skipped)."""
    preview = preview_import(content, assigned_source)
    if preview.file_errors:
        raise SpendError(preview.file_errors[0])
    created, updated = _upsert(workspace_id, [row.parsed for row in preview.valid])
    db.session.commit()
    return created, updated, len(preview.invalid)
