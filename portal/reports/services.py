"""The ROI report: leads, deals and ad spend grouped at one level — a drill-down tree source → medium → campaign →
content → term, or a flat table of any level, landing page path and referrer domain included — optionally
compared with the previous period.

How the numbers are made (also shown on the page, see templates/reports/_definitions.html):

- Tags are grouped case-insensitively: a value is trimmed and lower-cased, so "Google", " google" and "google"
  are one row. An empty or missing tag is "(none)".
- Leads: form submissions created in the period, without spam and repeats.
- Attribution models (portal.reports.attribution, docs/attribution.md): a lead's credit is split over its chain of
  visits by the chosen model (last non-direct by default; first, last, linear, U-shaped, time decay), and a deal
  from our form is split by its lead's weights, so leads, deals and revenue can be fractional in a row and sum to
  the same totals under every model. A deal that did not come from our form is counted whole under its own UTM
  tags, or under "(amoCRM, no UTM)" when it has none. Deleted deals are left out.
- Visits: the visits that started in the period, each under its own tags (visits are not attributed). CR1 =
  leads / visits, CR2 (conversion) = won / leads.
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

Performance: the figures are sums of per-day rollups PostgreSQL keeps on every write: visits, leads and deals by
model from credit rollups (portal.reports.credits), spend from report rollups (portal.reports.rollups); two grouped
queries for the rows and two for the series; no cache is involved.
"""
from dataclasses import InitVar, dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _

from portal.reports.attribution import DEFAULT_MODEL, FIRST, LAST, MODELS, WHOLE
from portal.reports.credits import CLOSED, COHORT, LEADS, VISITS, aggregate_credits, compare_models
from portal.reports.periods import Period
from portal.reports.rollups import CLOSED as ROLLUP_CLOSED
from portal.reports.rollups import LEADS as ROLLUP_LEADS
from portal.reports.rollups import SPEND, aggregate
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
# The first/last switch of earlier versions, still accepted: it chooses the first or the last model.
ATTRIBUTIONS = (LAST, FIRST)
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
    model: str = DEFAULT_MODEL
    source: str | None = None  # normalised keys; "" is "(none)"; None: not filtered
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    term: str | None = None
    chosen_level: str | None = None
    view: str = "tree"
    compare: bool = False  # with the previous period of the same length
    sales: str = "all"
    # The first/last switch of earlier versions: "first" or "last" chooses that model.
    attribution: InitVar[str | None] = None

    def __post_init__(self, attribution: str | None) -> None:
        if attribution in ATTRIBUTIONS:
            object.__setattr__(self, "model", attribution)

    @property
    def leads_attribution(self) -> str:
        """The leads list's attribution for a row's link: first-touch tags under the first model, else last."""
        return FIRST if self.model == FIRST else LAST

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
    """One row's figures. Leads and deals are credit under the report's model: whole numbers under first, last and
    last non-direct, fractions of a lead or deal under the split models."""

    spend: Decimal = ZERO
    leads: Decimal | int = 0
    open: Decimal | int = 0
    won: Decimal | int = 0
    lost: Decimal | int = 0
    revenue: Decimal = ZERO
    visits: int = 0
    # False at levels spend is not recorded at: spend and every figure made from it are unknown, not zero.
    spend_known: bool = True
    # Why ROI is not shown although spend and revenue exist (they are not comparable), else "".
    roi_note: str = ""

    def add(self, other: "Figures") -> None:
        self.spend += other.spend
        self.visits += other.visits
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
    def cr1(self) -> Decimal | None:
        """Visit → lead, in per cent."""
        ratio = _ratio(Decimal(self.leads), self.visits)
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
        return {"spend": self.spend if self.spend_known else None, "leads": _count(self.leads), "cpl": self.cpl,
                "open_deals": _count(self.open),
                "won": _count(self.won), "lost": _count(self.lost), "conversion_percent": self.conversion,
                "revenue": self.revenue, "average_deal": self.average_deal, "cpa": self.cpa,
                "roi_percent": self.roi, "cost_share_percent": self.cost_share,
                "visits": self.visits, "cr1_percent": self.cr1}


def model_names() -> dict[str, tuple[str, str]]:
    """Each attribution model's name and one-line explanation, in the reader's language."""
    return {
        "last_non_direct": (_("Last non-direct"), _("All credit to the last visit with a source (tags, a click id "
                                                    "or another site); direct returns are skipped.")),
        "first": (_("First visit"), _("All credit to the visit that first brought the visitor.")),
        "last": (_("Last visit"), _("All credit to the visit the form was sent in, even a direct one.")),
        "linear": (_("Linear"), _("Credit split equally over every visit.")),
        "u_shaped": (_("U-shaped"), _("40% to the first visit, 40% to the last, 20% shared by the visits "
                                      "between.")),
        "time_decay": (_("Time decay"), _("More credit to visits closer to the lead: a visit a week earlier gets "
                                          "half as much.")),
    }


def _count(value: Decimal | int) -> Decimal | int:
    """A lead or deal credit: an int when whole (every lead of the row counted whole), else the exact fraction."""
    return int(value) if value == int(value) else value


def _ratio(numerator: Decimal, denominator) -> Decimal | None:
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


class TaggedRow:
    """A row keyed by one tag value (`key`), with its tags at every level it is keyed by (`path`)."""

    key: str
    path: dict[str, str]

    @property
    def label(self) -> str:
        return tag_label(self.key)

    @property
    def full_label(self) -> str:
        """The label with its parent levels (the flat view's "google / cpc / brand")."""
        return " / ".join(tag_label(value) for name, value in self.path.items() if name in TREE) or self.label


@dataclass
class ReportRow(TaggedRow):
    key: str
    figures: Figures = field(default_factory=Figures)
    # The row's tags at every level it is keyed by (the query's filters, the flat view's parent levels, its own).
    path: dict[str, str] = field(default_factory=dict)
    previous: Figures | None = None  # the same row in the previous period (with query.compare)

    @property
    def changes(self) -> "dict[str, Change]":
        return changes(self.figures, self.previous)


@dataclass
class SeriesPoint:
    """One bucket of the period. Won deals and revenue by closing day (as on the dashboard), spend by its day."""

    start: date
    leads: Decimal | int = 0
    won: Decimal | int = 0
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
    def value(figures: Figures, name: str, kind: str):
        if name == "spend" and not figures.spend_known:
            return None
        return _count(getattr(figures, name)) if kind == "count" else getattr(figures, name)

    return {name: Change(value(current, name, kind), value(previous, name, kind), kind) for name, kind in COMPARED}


# ---------------------------------------------------------------------------------------------------------------
# The report


def roi_report(workspace_id: int, query: ReportQuery, with_series: bool = True) -> RoiReport:
    period = query.period
    bucket = bucket_for(period)
    filters = query.filters
    group_by = query.group_by
    width = len(group_by)
    # One pass over each rollup table gives rows and series alike when rows are few (the tree's upper levels); a
    # flat table of many keys reads its rows and its series separately, so no (key × day) result grows large.
    together = with_series and query.view == "tree" and query.level in SPEND_LEVELS
    if together:
        credited_by_day = aggregate_credits(workspace_id, query.model, period, (*group_by, "day"), filters,
                                            query.sales)
        spend_by_day = aggregate(workspace_id, LAST, period, (*group_by, "day"), filters, query.sales)
        by_key = _without_day(credited_by_day, width)
        spend = {key: figures[SPEND] for key, figures in _without_day(spend_by_day, width).items()
                 if figures[SPEND]}
        series = _series_of(credited_by_day, spend_by_day, width, period, bucket)
    else:
        credited = aggregate_credits(workspace_id, query.model, period, group_by, filters, query.sales)
        spend = _spend_by(workspace_id, query, group_by) if query.spend_comparable else {}
        by_key = {tuple(result[:width]): result[width:] for result in credited}
        series = model_series(workspace_id, query, bucket) if with_series else []
    found = []
    for key in set(by_key) | set(spend):
        figures = _figures(by_key.get(key), spend.get(key, 0), query)
        if figures.visits or figures.leads or figures.open or figures.won or figures.lost or figures.spend:
            # (a key with only deals of the other date basis is no row)
            found.append(ReportRow(key[-1], figures, {**filters, **dict(zip(group_by, key, strict=True))}))
    for row in found:
        if row.key == "" and row.figures.spend and query.level in SPEND_LEVELS:
            row.figures.roi_note = _("Spend without this tag cannot be matched to the leads and deals without it: "
                                     "give that spend its tags in Ad spend.")
    ordered = sorted(found, key=lambda row: (-row.figures.revenue, -row.figures.spend, -row.figures.leads,
                                             -row.figures.visits, row.key))
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


def _spend_by(workspace_id: int, query: ReportQuery, group_by: tuple[str, ...]) -> dict[tuple, int]:
    """Spend in cents per group (report rollups; spend is the same under every model)."""
    width = len(group_by)
    return {tuple(result[:width]): result[width + SPEND]
            for result in aggregate(workspace_id, LAST, query.period, group_by, query.filters, query.sales)
            if result[width + SPEND]}


def _figures(credited, spend_cents: int, query: ReportQuery) -> Figures:
    """Figures from credit rollup sums (millionths) and spend (cents)."""
    block = CLOSED if query.basis == "closed" else COHORT
    credited = credited or [0] * 10
    return Figures(spend=Decimal(spend_cents) / 100, visits=credited[VISITS], leads=_credit(credited[LEADS]),
                   open=_credit(credited[block]), won=_credit(credited[block + 1]),
                   lost=_credit(credited[block + 2]), revenue=Decimal(credited[block + 3]) / (100 * WHOLE),
                   spend_known=query.spend_comparable)


def _credit(millionths: int) -> Decimal:
    return Decimal(millionths) / WHOLE


# ---------------------------------------------------------------------------------------------------------------
# The models side by side


@dataclass
class ComparisonRow(TaggedRow):
    key: str
    path: dict[str, str]
    by_model: dict[str, Figures]


@dataclass
class ModelComparison:
    query: ReportQuery
    models: tuple[str, ...]
    rows: list[ComparisonRow]
    totals: dict[str, Figures]


def model_comparison(workspace_id: int, query: ReportQuery) -> ModelComparison:
    """One level's rows with leads, revenue and ROI under every model (spend is the same under each)."""
    group_by = query.group_by
    width = len(group_by)
    by_model = compare_models(workspace_id, MODELS, query.period, group_by, query.filters, query.sales)
    spend = _spend_by(workspace_id, query, group_by) if query.spend_comparable else {}
    keys = set(spend)
    sums = {}
    for model, results in by_model.items():
        sums[model] = {tuple(result[:width]): result[width:] for result in results}
        keys |= set(sums[model])
    rows = []
    for key in keys:
        figures = {model: _figures(sums[model].get(key), spend.get(key, 0), query) for model in MODELS}
        if not any(f.visits or f.leads or f.open or f.won or f.lost or f.spend for f in figures.values()):
            continue
        rows.append(ComparisonRow(key[-1], {**query.filters, **dict(zip(group_by, key, strict=True))}, figures))
    rows.sort(key=lambda row: (-row.by_model[query.model].revenue, -row.by_model[query.model].leads, row.key))
    totals = {model: Figures(spend_known=query.spend_comparable) for model in MODELS}
    for row in rows:
        for model in MODELS:
            totals[model].add(row.by_model[model])
    return ModelComparison(query, MODELS, rows, totals)


# ---------------------------------------------------------------------------------------------------------------
# Over time


def _without_day(results, width: int) -> dict[tuple, list[int]]:
    """aggregate() rows of (width keys, day, figures) summed over the day."""
    summed: dict[tuple, list[int]] = {}
    for result in results:
        total = summed.setdefault(tuple(result[:width]), [0] * (len(result) - width - 1))
        for index, value in enumerate(result[width + 1:]):
            total[index] += value
    return summed


def _series_of(credited_by_day, spend_by_day, width: int, period: Period, bucket: str) -> list[SeriesPoint]:
    """The series from rows of (width keys, day, figures) of the credit and the report rollups."""
    points = _empty_points(period, bucket)
    for result in credited_by_day:
        day, figures = result[width], result[width + 1:]
        point = points[bucket_start(day, bucket)]
        point.leads += _credit(figures[LEADS])
        point.won += _credit(figures[CLOSED + 1])
        point.revenue += Decimal(figures[CLOSED + 3]) / (100 * WHOLE)
    for result in spend_by_day:
        points[bucket_start(result[width], bucket)].spend += Decimal(result[width + 1 + SPEND]) / 100
    return list(points.values())


def model_series(workspace_id: int, query: ReportQuery, bucket: str) -> list[SeriesPoint]:
    """Every bucket of the period under the report's model: leads (creation day), won deals and revenue (closing
    day), spend."""
    points = _empty_points(query.period, bucket)
    for day, *figures in aggregate_credits(workspace_id, query.model, query.period, ("day",), query.filters,
                                           query.sales):
        point = points[bucket_start(day, bucket)]
        point.leads += _credit(figures[LEADS])
        point.won += _credit(figures[CLOSED + 1])
        point.revenue += Decimal(figures[CLOSED + 3]) / (100 * WHOLE)
    if query.level in SPEND_LEVELS:
        for day, *figures in aggregate(workspace_id, LAST, query.period, ("day",), query.filters, query.sales):
            points[bucket_start(day, bucket)].spend += Decimal(figures[SPEND]) / 100
    return list(points.values())


def over_time(workspace_id: int, attribution: str, period: Period, bucket: str,
              filters: dict[str, str] | None = None, sales: str = "all") -> list[SeriesPoint]:
    """Every bucket of the period (empty ones too): leads, won deals, revenue (closing day) and spend, by first or
    last touch (the dashboard's series)."""
    points = _empty_points(period, bucket)
    for day, *figures in aggregate(workspace_id, attribution, period, ("day",), filters or {}, sales):
        point = points[bucket_start(day, bucket)]
        point.leads += figures[ROLLUP_LEADS]
        point.won += figures[ROLLUP_CLOSED + 1]
        point.revenue += Decimal(figures[ROLLUP_CLOSED + 3]) / 100
        point.spend += Decimal(figures[SPEND]) / 100
    return list(points.values())


def _empty_points(period: Period, bucket: str) -> dict[date, SeriesPoint]:
    points: dict[date, SeriesPoint] = {}
    day = bucket_start(period.start, bucket)
    while day <= period.end:
        points[day] = SeriesPoint(day)
        day = _next_bucket(day, bucket)
    return points


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
    model = args.get("model") if args.get("model") in MODELS else (
        args.get("attribution") if args.get("attribution") in ATTRIBUTIONS else DEFAULT_MODEL)
    tree = {name: _drill_value(args.get(name)) for name in TREE}
    level = args.get("level") if args.get("level") in LEVELS else None
    view = "flat" if args.get("view") == "flat" else "tree"
    compare = args.get("compare") in ("1", "on", "true")
    sales = args.get("sales") if args.get("sales") in SALES else "all"
    return ReportQuery(period, basis, model, **tree, chosen_level=level, view=view, compare=compare,
                       sales=sales)


def _drill_value(value) -> str | None:
    if value is None:
        return None
    value = normalize_tag(str(value)[:200])
    return "" if value == NONE_LABEL else value


def drill_argument(key: str) -> str:
    """How a row key travels in a URL ("" would read as "no filter")."""
    return NONE_LABEL if key == "" else key
