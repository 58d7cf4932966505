"""Attribution: the (source, medium, campaign) a lead or deal counts under, and the local day it counts on.

Tags are grouped case-insensitively (trimmed, lower-cased); an empty tag is "(none)". A deal from our form takes
its lead's tags (last or first touch); another deal its own UTM tags, or "(amoCRM, no UTM)" when it has none.
"""
import re
import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, event, func, or_
from sqlalchemy.engine import Engine

from portal.extensions import db
from portal.models import Lead

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


LEAD_LEVEL_COLUMNS = {
    "source": ("utm_source", "first_utm_source", "leadpath_tag"),
    "medium": ("utm_medium", "first_utm_medium", "leadpath_tag"),
    "campaign": ("utm_campaign", "first_utm_campaign", "leadpath_tag"),
    "content": ("utm_content", "first_utm_content", "leadpath_tag"),
    "term": ("utm_term", "first_utm_term", "leadpath_tag"),
    "landing_path": ("landing_page", "first_landing_page", "leadpath_url_path"),
    "referrer_domain": ("referrer", "first_referrer", "leadpath_url_domain"),
}


def lead_level(name: str, attribution: str):
    """SQL for a lead's normalised value at a report level, as the rollups count it (the same SQL functions on
    PostgreSQL; on SQLite the same rules as Python functions, see register_sqlite_functions)."""
    last, first, function = LEAD_LEVEL_COLUMNS[name]
    value = getattr(func, function)(getattr(Lead, last))
    if attribution != "first":
        return value
    has_first = or_(*(func.coalesce(column, "") != "" for column in
                      (Lead.first_utm_source, Lead.first_utm_medium, Lead.first_utm_campaign)))
    return case((has_first, getattr(func, function)(getattr(Lead, first))), else_=value)


@event.listens_for(Engine, "connect")
def register_sqlite_functions(dbapi_connection, connection_record) -> None:
    """SQLite gets the PostgreSQL functions the leads filters use, written in Python."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("leadpath_tag", 1, normalize_tag, deterministic=True)
        dbapi_connection.create_function("leadpath_url_path", 1, url_path, deterministic=True)
        dbapi_connection.create_function("leadpath_url_domain", 1, url_domain, deterministic=True)


def local_day(column, timezone: str):
    """The calendar day of a UTC timestamp column in the workspace's time zone."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone(timezone, column), Date)
    # SQLite (demo, smoke tests): shift by the zone's current UTC offset; exact enough outside DST changes.
    offset = datetime.now(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds())} seconds")
