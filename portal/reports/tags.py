"""Attribution: the (source, medium, campaign) a lead or deal counts under, and the local day it counts on.

Tags are grouped case-insensitively (trimmed, lower-cased); an empty tag is "(none)". A deal from our form takes
its lead's tags (last or first touch); another deal its own UTM tags, or "(amoCRM, no UTM)" when it has none.
"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func

from portal.extensions import db
from portal.models import Lead

NONE_LABEL = "(none)"
AMOCRM_NO_UTM = "(amoCRM, no UTM)"
# The key of the "(amoCRM, no UTM)" source row; keys are normalised tag values, so it cannot clash with one.
AMOCRM_NO_UTM_KEY = "(amocrm, no utm)"


def normalize_tag(value: str | None) -> str:
    # No stored text holds a NUL (PostgreSQL refuses them), and a NUL in a query parameter made the query fail (500).
    return (value or "").replace("\x00", "").strip().lower()


def tag_label(key: str) -> str:
    if key == AMOCRM_NO_UTM_KEY:
        return AMOCRM_NO_UTM
    return key or NONE_LABEL


def lead_tag_columns(attribution: str):
    last = (Lead.utm_source, Lead.utm_medium, Lead.utm_campaign)
    first = (Lead.first_utm_source, Lead.first_utm_medium, Lead.first_utm_campaign)
    return last + first if attribution == "first" else last


def pick_tags(values: tuple, attribution: str) -> tuple[str, str, str]:
    """Normalised (source, medium, campaign) of a lead. First touch falls back to the last touch when the lead
    carries no first-touch tags at all (its submitting visit was its first)."""
    if attribution == "first" and any(values[3:6]):
        values = values[3:6]
    return normalize_tag(values[0]), normalize_tag(values[1]), normalize_tag(values[2])


def deal_tags(lead_values: tuple, deal_values: tuple, external: bool, attribution: str) -> tuple[str, str, str]:
    if not external:
        return pick_tags(tuple(lead_values), attribution)
    tags = tuple(normalize_tag(value) for value in deal_values)
    return tags if any(tags) else (AMOCRM_NO_UTM_KEY, "", "")


def local_day(column, timezone: str):
    """The calendar day of a UTC timestamp column in the workspace's time zone."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone(timezone, column), Date)
    # SQLite (demo, smoke tests): shift by the zone's current UTC offset; exact enough outside DST changes.
    offset = datetime.now(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds())} seconds")
