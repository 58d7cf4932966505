"""The ROI report: leads, deals and ad spend grouped at one level — a drill-down tree source → medium → campaign →
content → term, or a flat table of any level, landing page path and referrer domain included — optionally
compared with the previous period.

How the numbers are made (also shown on the page, see templates/reports/_definitions.html):

- Tags are grouped case-insensitively: a value is trimmed and lower-cased, so "Google", " google" and "google"
  are one row. An empty or missing tag is "(none)".
- Leads: form submissions created in the period, without spam and repeats.
- Deals come from amoCRM (webhooks). A deal that came from our form is attributed to its lead's tags (last touch
  by default, or first touch); a deal that did not is counted under its own UTM tags, or under
  "(amoCRM, no UTM)" when it has none. Deleted deals are left out.
- Date basis "lead created" (cohort): deals of the leads created in the period (a deal not from our form: created
  in the period). Basis "deal closed": deals won or lost in the period, plus open deals created in it.
- Sales switch: all deals, new (each amoCRM contact's first deal by creation, then id; a deal without a contact
  is new) or repeat (a contact's later deals). A later deal not from our form counts under the tags (and cohort
  day) of the lead of the contact's first deal, when that deal came from our form: repeat revenue is credited to
  the channel that brought the customer. Leads and spend are the same under every choice.
- A deal counts in its current state: a reopened deal is open again, a refunded deal moved to "lost" is lost.
- Spend: ad spend rows dated in the period. Formulas: CPL = spend / leads, conversion = won / leads,
  average deal = revenue / won, CPA = spend / won, ROI = (revenue − spend) / spend, ad-cost share =
  spend / revenue. A division by zero is shown as "—".

Performance: the figures are sums of per-day rollups PostgreSQL keeps on every write (portal.reports.rollups), one
grouped query for the rows and one for the series; no cache is involved.
"""
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _

from portal.reports.periods import Period
from portal.reports.rollups import CLOSED, COHORT, LEADS, SPEND, aggregate
from portal.reports.tags import (
    NONE_LABEL,
    normalize_tag,
    tag_label,
)

# The drill-down tree, then the levels shown as flat tables only.
TREE = ("source", "medium", "campaign", "content", "term")
LEVELS = (*TREE, "landing_path", "referrer_domain")
VIEWS = ("tree", "flat")
# Spend is recorded per source / medium / campaign: below that it cannot be split, so no spend-based figure is shown.
SPEND_LEVELS = ("source", "medium", "campaign")
BASES = ("created", "closed")
ATTRIBUTIONS = ("last", "first")
# Which deals the deal figures count: every deal, each customer's first (new), or their later ones (repeat). A
# customer is an amoCRM contact; leads and spend are the same under every choice.
SALES = ("all", "new", "repeat")
ZERO = Decimal("0")


@dataclass(frozen=True)
class ReportQuery:
    """What to show. Tree view: rows of `level` under the filtered tree levels above it (a row drills down to the
    next tree level). Flat view: every row of `level` in the period, named by its path (a campaign with its source
    and medium), no filters."""

    period: Period
    basis: str = "created"
    attribution: str = "last"
    source: str | None = None  # normalised keys; "" is "(none)"; None: not filtered
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None
    chosen_level: str | None = None
    view: str = "tree"
    compare: bool = False  # with the previous period of the same length
    sales: str = "all"

    @property
    def level(self) -> str:
        if self.chosen_level in LEVELS and (self.view == "flat" or self.chosen_level in TREE):
            return self.chosen_level
        for name in TREE:
            if getattr(self, name) is None:
                return name
        return TREE[-1]

    @property
    def filters(self) -> dict[str, str]:
        """The tree levels above the shown level that are filtered (none in the flat view)."""
        if self.view == "flat":
            return {}
        above = TREE[:TREE.index(self.level)]
        return {name: getattr(self, name) for name in above if getattr(self, name) is not None}

    @property
    def group_by(self) -> tuple[str, ...]:
        if self.view == "flat" and self.level in TREE:
            return TREE[:TREE.index(self.level) + 1]
        return (self.level,)

    @property
    def next_level(self) -> str | None:
        """Where a row of the tree view drills down to (None at the bottom and in the flat view)."""
        if self.view == "flat" or self.level not in TREE or self.level == TREE[-1]:
            return None
        return TREE[TREE.index(self.level) + 1]

    @property
    def spend_comparable(self) -> bool:
        return self.level in SPEND_LEVELS

    def drill_filters(self) -> tuple[str | None, ...]:
        return tuple(self.filters.get(name) for name in TREE)


@dataclass
class Figures:
    spend: Decimal = ZERO
    leads: int = 0
    open: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = ZERO
    # False at levels spend is not recorded at: spend and every figure made from it are unknown, not zero.
    spend_known: bool = True
    # Why ROI is not shown although spend and revenue exist (they are not comparable), else "".
    roi_note: str = ""

    def add(self, other: "Figures") -> None:
        self.spend += other.spend
        self.leads += other.leads
        self.open += other.open
        self.won += other.won
        self.lost += other.lost
        self.revenue += other.revenue

    @property
    def cpl(self) -> Decimal | None:
        return _ratio(self.spend, self.leads) if self.spend_known else None

    @property
    def conversion(self) -> Decimal | None:
        ratio = _ratio(Decimal(self.won), self.leads)
        return None if ratio is None else ratio * 100

    @property
    def average_deal(self) -> Decimal | None:
        return _ratio(self.revenue, self.won)

    @property
    def cpa(self) -> Decimal | None:
        return _ratio(self.spend, self.won) if self.spend_known else None

    @property
    def roi(self) -> Decimal | None:
        if not self.spend_known or self.roi_note:
            return None
        ratio = _ratio(self.revenue - self.spend, self.spend)
        return None if ratio is None else ratio * 100

    @property
    def cost_share(self) -> Decimal | None:
        if not self.spend_known:
            return None
        ratio = _ratio(self.spend, self.revenue)
        return None if ratio is None else ratio * 100

    def as_dict(self) -> dict:
        return {"spend": self.spend if self.spend_known else None, "leads": self.leads, "cpl": self.cpl,
                "open_deals": self.open,
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
    # The row's tags at every level it is keyed by (the query's filters, the flat view's parent levels, its own).
    path: dict[str, str] = field(default_factory=dict)
    previous: Figures | None = None  # the same row in the previous period (with query.compare)

    @property
    def changes(self) -> "dict[str, Change]":
        return changes(self.figures, self.previous)

    @property
    def label(self) -> str:
        return tag_label(self.key)

    @property
    def full_label(self) -> str:
        """The label with its parent levels (the flat view's "google / cpc / brand")."""
        return " / ".join(tag_label(value) for name, value in self.path.items() if name in TREE) or self.label


@dataclass
class SeriesPoint:
    """One bucket of the period. Won deals and revenue by closing day (as on the dashboard), spend by its day."""

    start: date
    leads: int = 0
    won: int = 0
    revenue: Decimal = ZERO
    spend: Decimal = ZERO

    @property
    def roi(self) -> Decimal | None:
        return (self.revenue - self.spend) / self.spend * 100 if self.spend else None


@dataclass
class RoiReport:
    query: ReportQuery
    rows: list[ReportRow]
    totals: Figures
    series: list[SeriesPoint]
    bucket: str
    previous_totals: Figures | None = None  # with query.compare

    @property
    def totals_changes(self) -> "dict[str, Change]":
        return changes(self.totals, self.previous_totals)


# The figures compared with the previous period: (name, kind) — a change of a percentage is in percentage points.
COMPARED = (("spend", "money"), ("leads", "count"), ("won", "count"), ("revenue", "money"), ("roi", "points"))


@dataclass(frozen=True)
class Change:
    """One figure now and in the previous period."""

    current: Decimal | int | None
    previous: Decimal | int | None
    kind: str = "count"

    @property
    def absolute(self) -> Decimal | int | None:
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def percent(self) -> Decimal | None:
        """Relative change; None from zero or for percentages (their change is in points)."""
        if self.kind == "points" or self.absolute is None or not self.previous:
            return None
        return Decimal(self.absolute) / abs(Decimal(self.previous)) * 100

    @property
    def direction(self) -> str | None:
        if self.absolute is None:
            return None
        return "up" if self.absolute > 0 else "down" if self.absolute < 0 else "same"


def changes(current: Figures, previous: Figures | None) -> dict[str, Change]:
    previous = previous or Figures(spend_known=current.spend_known)
    return {name: Change(getattr(current, name) if (name != "spend" or current.spend_known) else None,
                         getattr(previous, name) if (name != "spend" or previous.spend_known) else None, kind)
            for name, kind in COMPARED}


# ---------------------------------------------------------------------------------------------------------------
# The report


def roi_report(workspace_id: int, query: ReportQuery, with_series: bool = True) -> RoiReport:
    period = query.period
    bucket = bucket_for(period)
    block = CLOSED if query.basis == "closed" else COHORT
    filters = query.filters
    group_by = query.group_by
    width = len(group_by)
    # One pass over the rollups gives rows and series alike when rows are few (the tree's upper levels); a flat
    # table of many keys reads its rows and its series separately, so no (key × day) result grows large.
    together = with_series and query.view == "tree" and query.level in SPEND_LEVELS
    if together:
        by_day = aggregate(workspace_id, query.attribution, period, (*group_by, "day"), filters, query.sales)
        series = _series_from(by_day, period, bucket, width)
        summed: dict[tuple, list[int]] = {}
        for result in by_day:
            total = summed.setdefault(tuple(result[:width]), [0] * (len(result) - width - 1))
            for index, value in enumerate(result[width + 1:]):
                total[index] += value
        results = [(*key, *figures) for key, figures in summed.items()]
    else:
        results = aggregate(workspace_id, query.attribution, period, group_by, filters, query.sales)
        series = (over_time(workspace_id, query.attribution, period, bucket, filters, query.sales)
                  if with_series else [])
    rows = {}
    for result in results:
        values, figures = tuple(result[:width]), result[width:]
        spend = figures[SPEND] if query.spend_comparable else 0
        if not (figures[LEADS] or any(figures[block:block + 4]) or spend):
            continue  # only deals of the other date basis (or spend, at a level spend is not recorded at)
        path = {**filters, **dict(zip(group_by, values, strict=True))}
        rows[values] = ReportRow(values[-1], Figures(
            spend=Decimal(spend) / 100, leads=figures[LEADS], open=figures[block], won=figures[block + 1],
            lost=figures[block + 2], revenue=Decimal(figures[block + 3]) / 100,
            spend_known=query.spend_comparable), path)
    for row in rows.values():
        if row.key == "" and row.figures.spend and query.level in SPEND_LEVELS:
            row.figures.roi_note = _("Spend without this tag cannot be matched to the leads and deals without it: "
                                     "give that spend its tags in Ad spend.")
    ordered = sorted(rows.values(), key=lambda row: (-row.figures.revenue, -row.figures.spend,
                                                     -row.figures.leads, row.key))
    totals = Figures(spend_known=query.spend_comparable)
    for row in ordered:
        totals.add(row.figures)
    previous_totals = None
    if query.compare:
        before = roi_report(workspace_id, replace(query, period=period.previous(), compare=False), with_series=False)
        by_path = {tuple(row.path.values()): row for row in ordered}
        for old in before.rows:
            row = by_path.get(tuple(old.path.values()))
            if row is None:  # a row of the previous period only: shown with nothing now
                row = ReportRow(old.key, Figures(spend_known=query.spend_comparable), old.path)
                ordered.append(row)
            row.previous = old.figures
        previous_totals = before.totals
    return RoiReport(query, ordered, totals, series, bucket, previous_totals)


# ---------------------------------------------------------------------------------------------------------------
# Over time


def over_time(workspace_id: int, attribution: str, period: Period, bucket: str,
              filters: dict[str, str] | None = None, sales: str = "all") -> list[SeriesPoint]:
    """Every bucket of the period (empty ones too): leads, won deals, revenue (closing day) and spend."""
    return _series_from(aggregate(workspace_id, attribution, period, ("day",), filters or {}, sales), period,
                        bucket, 0)


def _series_from(results, period: Period, bucket: str, skip: int) -> list[SeriesPoint]:
    """Buckets from aggregate() rows of (skip level values, day, figures)."""
    points: dict[date, SeriesPoint] = {}
    day = bucket_start(period.start, bucket)
    while day <= period.end:
        points[day] = SeriesPoint(day)
        day = _next_bucket(day, bucket)
    for result in results:
        day, figures = result[skip], result[skip + 1:]
        point = points[bucket_start(day, bucket)]
        point.leads += figures[LEADS]
        point.won += figures[CLOSED + 1]
        point.revenue += Decimal(figures[CLOSED + 3]) / 100
        point.spend += Decimal(figures[SPEND]) / 100
    return list(points.values())


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
    tree = {name: _drill_value(args.get(name)) for name in TREE}
    level = args.get("level") if args.get("level") in LEVELS else None
    view = "flat" if args.get("view") == "flat" else "tree"
    compare = args.get("compare") in ("1", "on", "true")
    sales = args.get("sales") if args.get("sales") in SALES else "all"
    return ReportQuery(period, basis, attribution, **tree, chosen_level=level, view=view, compare=compare,
                       sales=sales)


def _drill_value(value) -> str | None:
    if value is None:
        return None
    value = normalize_tag(str(value)[:200])
    return "" if value == NONE_LABEL else value


def drill_argument(key: str) -> str:
    """How a row key travels in a URL ("" would read as "no filter")."""
    return NONE_LABEL if key == "" else key
