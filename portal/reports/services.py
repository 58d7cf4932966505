"""The ROI report: leads, deals and ad spend grouped by source → medium → campaign.

How the numbers are made (also shown on the page, see templates/reports/_definitions.html):

- Tags are grouped case-insensitively: a value is trimmed and lower-cased, so "Google", " google" and "google"
  are one row. An empty or missing tag is "(none)".
- Leads: form submissions created in the period, without spam and repeats.
- Deals come from amoCRM (webhooks). A deal that came from our form is attributed to its lead's tags (last touch
  by default, or first touch); a deal that did not is counted under its own UTM tags, or under
  "(amoCRM, no UTM)" when it has none. Deleted deals are left out.
- Date basis "lead created" (cohort): deals of the leads created in the period (a deal not from our form: created
  in the period). Basis "deal closed": deals won or lost in the period, plus open deals created in it.
- A deal counts in its current state: a reopened deal is open again, a refunded deal moved to "lost" is lost.
- Spend: ad spend rows dated in the period. Formulas: CPL = spend / leads, conversion = won / leads,
  average deal = revenue / won, CPA = spend / won, ROI = (revenue − spend) / spend, ad-cost share =
  spend / revenue. A division by zero is shown as "—".

Performance: the figures are sums of per-day rollups PostgreSQL keeps on every write (portal.reports.rollups), one
grouped query for the rows and one for the series; no cache is involved.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from portal.reports.periods import Period
from portal.reports.rollups import CLOSED, COHORT, LEADS, SPEND, aggregate
from portal.reports.tags import (
    NONE_LABEL,
    normalize_tag,
    tag_label,
)

LEVELS = ("source", "medium", "campaign")
BASES = ("created", "closed")
ATTRIBUTIONS = ("last", "first")
ZERO = Decimal("0")


@dataclass(frozen=True)
class ReportQuery:
    period: Period
    basis: str = "created"
    attribution: str = "last"
    source: str | None = None  # normalised keys; "" is "(none)"
    medium: str | None = None

    @property
    def level(self) -> str:
        if self.source is None:
            return "source"
        return "medium" if self.medium is None else "campaign"

    def drill_filters(self) -> tuple[str | None, ...]:
        return (self.source, self.medium if self.source is not None else None)


@dataclass
class Figures:
    spend: Decimal = ZERO
    leads: int = 0
    open: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = ZERO

    def add(self, other: "Figures") -> None:
        self.spend += other.spend
        self.leads += other.leads
        self.open += other.open
        self.won += other.won
        self.lost += other.lost
        self.revenue += other.revenue

    @property
    def cpl(self) -> Decimal | None:
        return _ratio(self.spend, self.leads)

    @property
    def conversion(self) -> Decimal | None:
        ratio = _ratio(Decimal(self.won), self.leads)
        return None if ratio is None else ratio * 100

    @property
    def average_deal(self) -> Decimal | None:
        return _ratio(self.revenue, self.won)

    @property
    def cpa(self) -> Decimal | None:
        return _ratio(self.spend, self.won)

    @property
    def roi(self) -> Decimal | None:
        ratio = _ratio(self.revenue - self.spend, self.spend)
        return None if ratio is None else ratio * 100

    @property
    def cost_share(self) -> Decimal | None:
        ratio = _ratio(self.spend, self.revenue)
        return None if ratio is None else ratio * 100

    def as_dict(self) -> dict:
        return {"spend": self.spend, "leads": self.leads, "cpl": self.cpl, "open_deals": self.open,
                "won": self.won, "lost": self.lost, "conversion_percent": self.conversion,
                "revenue": self.revenue, "average_deal": self.average_deal, "cpa": self.cpa,
                "roi_percent": self.roi, "cost_share_percent": self.cost_share}


def _ratio(numerator: Decimal, denominator) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


@dataclass
class ReportRow:
    key: str
    figures: Figures = field(default_factory=Figures)

    @property
    def label(self) -> str:
        return tag_label(self.key)


@dataclass
class SeriesPoint:
    start: date
    leads: int = 0
    won: int = 0


@dataclass
class RoiReport:
    query: ReportQuery
    rows: list[ReportRow]
    totals: Figures
    series: list[SeriesPoint]
    bucket: str


# ---------------------------------------------------------------------------------------------------------------
# The report


def roi_report(workspace_id: int, query: ReportQuery, with_series: bool = True) -> RoiReport:
    period = query.period
    bucket = bucket_for(period)
    block = CLOSED if query.basis == "closed" else COHORT
    filters = {name: value for name, value in zip(LEVELS, query.drill_filters(), strict=False) if value is not None}
    rows = {}
    for key, *figures in aggregate(workspace_id, query.attribution, period, (query.level,), filters):
        if not (figures[LEADS] or any(figures[block:block + 4]) or figures[SPEND]):
            continue  # only deals of the other date basis
        rows[key] = ReportRow(key, Figures(spend=Decimal(figures[SPEND]) / 100, leads=figures[LEADS],
                                           open=figures[block], won=figures[block + 1], lost=figures[block + 2],
                                           revenue=Decimal(figures[block + 3]) / 100))
    ordered = sorted(rows.values(), key=lambda row: (-row.figures.revenue, -row.figures.spend,
                                                     -row.figures.leads, row.key))
    totals = Figures()
    for row in ordered:
        totals.add(row.figures)
    series = []
    if with_series:
        points: dict[date, SeriesPoint] = {}
        day = bucket_start(period.start, bucket)
        while day <= period.end:
            points[day] = SeriesPoint(day)
            day = _next_bucket(day, bucket)
        for day, *figures in aggregate(workspace_id, query.attribution, period, ("day",), filters):
            point = points[bucket_start(day, bucket)]
            point.leads += figures[LEADS]
            point.won += figures[CLOSED + 1]
        series = list(points.values())
    return RoiReport(query, ordered, totals, series, bucket)


# ---------------------------------------------------------------------------------------------------------------
# Leads and won deals over time


def bucket_for(period: Period) -> str:
    if period.days <= 62:
        return "day"
    return "week" if period.days <= 366 else "month"


def bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_bucket(day: date, bucket: str) -> date:
    if bucket == "week":
        return day + timedelta(days=7)
    if bucket == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def parse_report_query(args, period: Period) -> ReportQuery:
    """ReportQuery from request arguments (the page, its CSV and the API share this)."""
    basis = args.get("basis") if args.get("basis") in BASES else "created"
    attribution = args.get("attribution") if args.get("attribution") in ATTRIBUTIONS else "last"
    source = _drill_value(args.get("source"))
    medium = _drill_value(args.get("medium")) if source is not None else None
    return ReportQuery(period, basis, attribution, source, medium)


def _drill_value(value) -> str | None:
    if value is None:
        return None
    value = normalize_tag(str(value)[:200])
    return "" if value == NONE_LABEL else value


def drill_argument(key: str) -> str:
    """How a row key travels in a URL ("" would read as "no filter")."""
    return NONE_LABEL if key == "" else key
