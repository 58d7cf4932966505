"""Attribution: the (source, medium, campaign) a lead or deal counts under, and the local day it counts on.

Tags are grouped case-insensitively (trimmed, lower-cased); an empty tag is "(none)". A deal from our form takes
its lead's tags (last or first touch); another deal its own UTM tags, or "(amoCRM, no UTM)" when it has none.
"""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func

from portal.extensions import db

NONE_LABEL = "(none)"
WHITESPACE = " \t\r\n\f\v"
# The same patterns as leadpath_url_path / leadpath_url_domain in portal.reports.rollup_sql.
PATH = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)")
DOMAIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#:]+)")
AMOCRM_NO_UTM = "(amoCRM, no UTM)"
# The key of the "(amoCRM, no UTM)" source row; keys are normalised tag values, so it cannot clash with one.
AMOCRM_NO_UTM_KEY = "(amocrm, no utm)"


def normalize_tag(value: str | None) -> str:
    # No stored text holds a NUL (PostgreSQL refuses them), and a NUL in a query parameter made the query fail (500).
    # Trimmed of the characters PostgreSQL's leadpath_tag trims, and cut where it cuts: the two must agree.
    return (value or "").replace("\x00", "").strip(WHITESPACE).lower()[:200]


def tag_label(key: str) -> str:
    if key == AMOCRM_NO_UTM_KEY:
        return AMOCRM_NO_UTM
    return key or NONE_LABEL


def url_path(value: str | None) -> str:
    """A landing page URL's path ("/" when it has none), lower-cased, without query or fragment."""
    value = (value or "").strip(WHITESPACE)
    if not value:
        return ""
    return (PATH.match(value).group(1) or "/").lower()[:200]


def url_domain(value: str | None) -> str:
    """A referrer URL's host, lower-cased, without "www."; "" when there is none or it is not a URL."""
    match = DOMAIN.match((value or "").strip(WHITESPACE))
    return match.group(1).lower().removeprefix("www.")[:200] if match else ""


def tag_set(values: tuple) -> tuple[str, ...]:
    """Normalised (source, medium, campaign, content, term, landing path, referrer domain) from raw columns."""
    return (*(normalize_tag(value) for value in values[:5]), url_path(values[5]), url_domain(values[6]))


def touches(last: tuple, first: tuple) -> list[tuple[str, tuple[str, ...]]]:
    """A lead's tag sets as the rollups keep them: [("b", tags)] when its first touch equals its last or it has
    none (its submitting visit was its first), else [("l", last tags), ("f", first tags)]. First touch counts when
    any of its first source / medium / campaign is set."""
    last_tags = tag_set(last)
    if not any(value for value in first[:3]):
        return [("b", last_tags)]
    first_tags = tag_set(first)
    return [("b", last_tags)] if first_tags == last_tags else [("l", last_tags), ("f", first_tags)]


def local_day(column, timezone: str):
    """The calendar day of a UTC timestamp column in the workspace's time zone."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone(timezone, column), Date)
    # SQLite (demo, smoke tests): shift by the zone's current UTC offset; exact enough outside DST changes.
    offset = datetime.now(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds())} seconds")
