"""Report periods: presets and custom ranges in the workspace's time zone, turned into UTC bounds."""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

PRESETS = [("7d", _l("Last 7 days")), ("30d", _l("Last 30 days")), ("90d", _l("Last 90 days")),
           ("this_month", _l("This month")), ("last_month", _l("Last month")), ("this_year", _l("This year")),
           ("365d", _l("Last 365 days")), ("custom", _l("Custom"))]
DEFAULT_PRESET = "30d"
MAX_DAYS = 3 * 366
# Dates outside these are typos or probes; within them every period, its previous one and its UTC bounds exist.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2199, 12, 31)


@dataclass(frozen=True)
class Period:
    """Inclusive local dates [start, end] and the matching half-open UTC range [starts_at, ends_at)."""

    start: date
    end: date
    timezone: str
    preset: str = "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, ZoneInfo(self.timezone)).astimezone(UTC)

    def previous(self) -> "Period":
        """The period of the same length just before this one (for "change vs previous")."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.timezone)


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def preset_period(preset: str, timezone: str) -> Period:
    today = today_in(timezone)
    if preset == "this_month":
        return Period(today.replace(day=1), today, timezone, preset)
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return Period(end.replace(day=1), end, timezone, preset)
    if preset == "this_year":
        return Period(today.replace(month=1, day=1), today, timezone, preset)
    days = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}.get(preset, 30)
    return Period(today - timedelta(days=days - 1), today, timezone, preset if preset in dict(PRESETS) else "30d")


def parse_period(args, timezone: str, default: str = DEFAULT_PRESET) -> Period:
    """A period from query arguments: `period=<preset>`, or `from`/`to` (YYYY-MM-DD). Bad input falls back to
    the default preset rather than failing: a report link with a typo still shows a report."""
    start, end = _parse_date(args.get("from")), _parse_date(args.get("to"))
    if start and end and (args.get("period") in (None, "", "custom")):
        if end < start:
            start, end = end, start
        if (end - start).days >= MAX_DAYS:
            start = end - timedelta(days=MAX_DAYS - 1)
        return Period(start, end, timezone, "custom")
    preset = args.get("period") or default
    return preset_period(preset if preset in dict(PRESETS) and preset != "custom" else default, timezone)


def period_warnings(args) -> list[str]:
    """What parse_period could not use and replaced by the default period, as sentences for the page: a link
    with a typo still shows a report, and says which part was ignored."""
    warnings = []
    preset = args.get("period")
    if preset and preset not in dict(PRESETS):
        warnings.append(_("Unknown period “%(value)s”: the default period is shown instead.", value=preset[:40]))
    for name in ("from", "to"):
        value = args.get(name)
        if value and _parse_date(value) is None:
            warnings.append(_("“%(value)s” is not a date between 1970 and 2199 (YYYY-MM-DD): the default period is "
                              "shown instead.", value=value[:40]))
    start, end = _parse_date(args.get("from")), _parse_date(args.get("to"))
    if preset in (None, "", "custom") and (start is None) != (end is None) and not warnings:
        warnings.append(_("A custom range needs both dates, from and to: the default period is shown instead."))
    if start and end and preset in (None, "", "custom"):
        if end < start:
            warnings.append(_("The range ended before it started: its dates were swapped."))
        elif (end - start).days >= MAX_DAYS:
            warnings.append(_("A range can cover at most %(days)s days: the last %(days)s days of it are shown.",
                              days=MAX_DAYS))
    return warnings


def warn_about_period(args) -> None:
    """On a page (not a CSV or the API, which have no place to show it): flash what the period ignored."""
    for warning in period_warnings(args):
        flash(warning, "error")


def _parse_date(value) -> date | None:
    if not value:
        return None
    try:
        parsed = date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
    return parsed if EARLIEST_DATE <= parsed <= LATEST_DATE else None
