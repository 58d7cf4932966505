"""Report figures per day and tags: read from the rollups PostgreSQL keeps (portal.models.report_rollup,
portal.reports.rollup_sql), or on SQLite grouped from the base tables; fold, rebuild and check the rollups.

Why rollups: a year of a large workspace is a million leads; grouping them on every view cost seconds, and a Redis
cache of days made the figures depend on the cache's state (cold after a restart, stale after writes outside the
ORM). PostgreSQL triggers now append a delta to the rollups in every writing transaction, so a report sums a few
thousand rows per year, right from its first view, on any web host. Nothing here uses Redis.

SQLite (the demo and the smoke tests) has no triggers: `aggregate` groups its base tables with the same rules
(portal.reports.tags), exact for the demo's few thousand rows. `flask reports check` compares the two ways on
PostgreSQL: the rollups against the base tables, grouped in Python.
"""
import logging
from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import AdSpend, Deal, Lead, ReportRollup, Workspace
from portal.models.deal import LOST, OPEN, WON
from portal.models.report_rollup import (
    BOTH,
    FIRST,
    LAST,
    NEW_SALE,
    NOT_A_SALE,
    REPEAT_SALE,
    ROLLUP_FIGURES,
    ROLLUP_LEVELS,
)
from portal.reports import rollup_sql
from portal.reports.periods import Period
from portal.reports.tags import AMOCRM_NO_UTM_KEY, local_day, normalize_tag, touches

log = logging.getLogger(__name__)

GROUPABLE = (*ROLLUP_LEVELS, "day")
# Positions in a figures list (see ROLLUP_FIGURES): leads, cohort block, closed block, spend. Money in cents.
LEADS, COHORT, CLOSED, SPEND = 0, 1, 5, 9
# One lock key per workspace for folding and rebuilding (pg_advisory_xact_lock's two-int form, class 20).
LOCK_CLASS = 20
COMPACT_EVERY_SECONDS = 60
# The report's sales switch: which deal rows count (lead and spend rows always do). "all": no filter.
SALE_KINDS = {"all": None, "new": (NOT_A_SALE, NEW_SALE), "repeat": (NOT_A_SALE, REPEAT_SALE)}


def uses_rollup_table() -> bool:
    return db.engine.dialect.name == "postgresql"


def aggregate(workspace_id: int, attribution: str, period: Period, group_by: tuple[str, ...],
              filters: dict[str, str] | None = None, sales: str = "all") -> list[tuple]:
    """[(*group values, *figures)] of the period: figures summed per distinct group_by (levels and/or "day"),
    rows filtered by normalised level values; deal figures of new, repeat or all sales (SALE_KINDS). Figures are
    ROLLUP_FIGURES (money in cents)."""
    filters = filters or {}
    if not set(group_by) <= set(GROUPABLE) or not set(filters) <= set(ROLLUP_LEVELS) or sales not in SALE_KINDS:
        raise ValueError("unknown level")
    if uses_rollup_table():
        return _from_rollups(workspace_id, attribution, period, group_by, filters, SALE_KINDS[sales])
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(ROLLUP_FIGURES))
    for (day, tags, kind), figures in base_table_facts(workspace_id, attribution, period).items():
        values = dict(zip(ROLLUP_LEVELS, tags, strict=True), day=day)
        if any(values[name] != wanted for name, wanted in filters.items()):
            continue
        if SALE_KINDS[sales] is not None and kind not in SALE_KINDS[sales]:
            continue
        total = sums[tuple(values[name] for name in group_by)]
        for index, value in enumerate(figures):
            total[index] += value
    return [(*key, *figures) for key, figures in sums.items()]


def _from_rollups(workspace_id, attribution, period, group_by, filters, kinds) -> list[tuple]:
    columns = [getattr(ReportRollup, name) for name in group_by]
    statement = (select(*columns, *[func.sum(getattr(ReportRollup, name)) for name in ROLLUP_FIGURES])
                 .where(ReportRollup.workspace_id == workspace_id, ReportRollup.day >= period.start,
                        ReportRollup.day <= period.end,
                        ReportRollup.attribution.in_((BOTH, FIRST if attribution == "first" else LAST)),
                        *[getattr(ReportRollup, name) == value for name, value in filters.items()],
                        *([] if kinds is None else [ReportRollup.sale_kind.in_(kinds)]))
                 .group_by(*columns))
    return [tuple(row[:len(group_by)]) + tuple(int(value or 0) for value in row[len(group_by):])
            for row in db.session.execute(statement)]


# ---------------------------------------------------------------------------------------------------------------
# The base tables, grouped in Python (SQLite, and the reference `check` compares the rollups with)

LAST_COLUMNS = (Lead.utm_source, Lead.utm_medium, Lead.utm_campaign, Lead.utm_content, Lead.utm_term,
                Lead.landing_page, Lead.referrer)
FIRST_COLUMNS = (Lead.first_utm_source, Lead.first_utm_medium, Lead.first_utm_campaign, Lead.first_utm_content,
                 Lead.first_utm_term, Lead.first_landing_page, Lead.first_referrer)
DEAL_COLUMNS = (Deal.utm_source, Deal.utm_medium, Deal.utm_campaign, Deal.utm_content, Deal.utm_term)


def _lead_tags(values: tuple, attribution: str) -> tuple | None:
    """The tags a lead counts under for one attribution, from its 14 raw tag columns."""
    found = touches(values[:7], values[7:14])
    for kind, tags in found:
        if kind == BOTH or kind == (FIRST if attribution == "first" else LAST):
            return tags
    return None


def deal_own_tags(values: tuple) -> tuple:
    tags = tuple(normalize_tag(value) for value in values)
    if not any(tags[:3]):
        return (AMOCRM_NO_UTM_KEY, "", "", "", "", "", "")
    return (*tags, "", "")


def _earlier_deals_of_the_contact():
    """The deals of the same amoCRM contact before the deal (created_at, then id), deleted ones left out."""
    earlier = aliased(Deal)
    return earlier, select(earlier.id).where(
        earlier.workspace_id == Deal.workspace_id, earlier.amocrm_contact_id == Deal.amocrm_contact_id,
        earlier.deleted.is_(False), earlier.id != Deal.id,
        or_(earlier.created_at < Deal.created_at, and_(earlier.created_at == Deal.created_at, earlier.id < Deal.id)))


def sale_kind_column():
    """A deal's sale kind as a column: "r" when its amoCRM contact has an earlier deal, else "n" — the rule of
    leadpath_deal_kind in portal.reports.rollup_sql."""
    _, earlier = _earlier_deals_of_the_contact()
    return case((and_(Deal.amocrm_contact_id.is_not(None), earlier.exists()), REPEAT_SALE), else_=NEW_SALE)


def deal_lead_column():
    """The lead whose tags a deal counts under: its own, or for a deal not from our form that is a later deal of
    its contact, the contact's first deal's lead (leadpath_deal_origin in portal.reports.rollup_sql)."""
    first, earlier = _earlier_deals_of_the_contact()
    origin = earlier.with_only_columns(first.lead_id).order_by(first.created_at, first.id).limit(1)
    return case((and_(Deal.lead_id.is_(None), Deal.amocrm_contact_id.is_not(None)), origin.scalar_subquery()),
                else_=Deal.lead_id)


def base_table_facts(workspace_id: int, attribution: str, period: Period | None) -> dict[tuple, list[int]]:
    """{(day, tags, sale kind): figures} from leads, deals and spend; period None: all of the workspace's
    history."""
    timezone = db.session.scalar(select(Workspace.timezone).where(Workspace.id == workspace_id)) \
        if period is None else period.timezone
    facts: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(ROLLUP_FIGURES))

    def within(column):
        return [] if period is None else [column >= period.starts_at, column < period.ends_at]

    def as_day(value) -> date:
        return date.fromisoformat(value) if isinstance(value, str) else value

    lead_day = local_day(Lead.created_at, timezone)
    leads = (select(lead_day, *LAST_COLUMNS, *FIRST_COLUMNS, func.count())
             .where(Lead.workspace_id == workspace_id, *within(Lead.created_at), Lead.is_spam.is_(False),
                    Lead.duplicate_of_id.is_(None), Lead.is_test.is_(False))
             .group_by(lead_day, *LAST_COLUMNS, *FIRST_COLUMNS))
    for day, *values, count in db.session.execute(leads):
        facts[(as_day(day), _lead_tags(tuple(values), attribution), NOT_A_SALE)][LEADS] += count

    kind, deal_lead = sale_kind_column(), deal_lead_column()
    aggregates = (kind, Deal.state, func.count(), func.coalesce(func.sum(Deal.amount), 0))
    alive = (Deal.workspace_id == workspace_id, Deal.deleted.is_(False))
    from_form = (select(lead_day, *LAST_COLUMNS, *FIRST_COLUMNS, *aggregates).join(Deal, deal_lead == Lead.id)
                 .where(Lead.workspace_id == workspace_id, *within(Lead.created_at), Lead.is_test.is_(False), *alive)
                 .group_by(lead_day, *LAST_COLUMNS, *FIRST_COLUMNS, kind, Deal.state))
    for day, *values, sale, state, count, amount in db.session.execute(from_form):
        _add(facts[(as_day(day), _lead_tags(tuple(values), attribution), sale)], COHORT, state, count, amount)
    created_day = local_day(Deal.created_at, timezone)
    external = (select(created_day, *DEAL_COLUMNS, *aggregates)
                .outerjoin(Lead, and_(Lead.id == deal_lead, Lead.workspace_id == workspace_id))
                .where(*alive, Lead.id.is_(None), *within(Deal.created_at))
                .group_by(created_day, *DEAL_COLUMNS, kind, Deal.state))
    for day, *values, sale, state, count, amount in db.session.execute(external):
        _add(facts[(as_day(day), deal_own_tags(tuple(values)), sale)], COHORT, state, count, amount)

    for day_column, states in ((Deal.closed_at, (WON, LOST)), (Deal.created_at, (OPEN,))):
        basis_day = local_day(day_column, timezone)
        closed = (select(basis_day, *LAST_COLUMNS, *FIRST_COLUMNS, *DEAL_COLUMNS, Lead.id.is_(None), *aggregates)
                  .outerjoin(Lead, and_(Lead.id == deal_lead, Lead.workspace_id == workspace_id))
                  .where(*alive, Deal.state.in_(states), day_column.is_not(None), *within(day_column),
                         or_(Lead.id.is_(None), Lead.is_test.is_(False)))
                  .group_by(basis_day, *LAST_COLUMNS, *FIRST_COLUMNS, *DEAL_COLUMNS, Lead.id.is_(None), kind,
                            Deal.state))
        for row in db.session.execute(closed):
            external_deal = row[20]
            tags = deal_own_tags(tuple(row[15:20])) if external_deal else _lead_tags(tuple(row[1:15]), attribution)
            _add(facts[(as_day(row[0]), tags, row[-4])], CLOSED, row[-3], row[-2], row[-1])

    spend = (select(AdSpend.date, AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign,
                    func.coalesce(func.sum(AdSpend.amount), 0))
             .where(AdSpend.workspace_id == workspace_id,
                    *([] if period is None else [AdSpend.date >= period.start, AdSpend.date <= period.end]))
             .group_by(AdSpend.date, AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign))
    for day, source, medium, campaign, amount in db.session.execute(spend):
        tags = (normalize_tag(source), normalize_tag(medium), normalize_tag(campaign), "", "", "", "")
        facts[(as_day(day), tags, NOT_A_SALE)][SPEND] += int(Decimal(amount) * 100)
    return facts


def _add(figures: list, block: int, state: str, count: int, amount) -> None:
    """Add deals to a fact's cohort or closed block: open, won, lost, revenue of won deals."""
    position = block + {OPEN: 0, WON: 1, LOST: 2}.get(state, 0)
    figures[position] += count
    if state == WON:
        figures[block + 3] += int(Decimal(amount) * 100)


# ---------------------------------------------------------------------------------------------------------------
# Upkeep (PostgreSQL): fold deltas, rebuild, check


def lock_workspace(workspace_id: int) -> None:
    db.session.execute(text("SELECT pg_advisory_xact_lock(:kind, :workspace)"),
                       {"kind": LOCK_CLASS, "workspace": workspace_id})


def fold_deltas(workspace_id: int, fold: str, drop_empty: str) -> None:
    """Fold a workspace's delta rows of one rollup table into one merged row per key (reports are equal before
    and after), then drop merged rows that sum to nothing; `fold` and `drop_empty` are that table's statements."""
    lock_workspace(workspace_id)
    db.session.execute(text(fold), {"workspace": workspace_id})
    db.session.execute(text(drop_empty), {"workspace": workspace_id})
    db.session.commit()


def workspaces_with_deltas(table) -> list[int]:
    """The workspaces that have delta rows in a rollup table (ReportRollup, CreditRollup)."""
    if not uses_rollup_table():
        return []
    return list(db.session.scalars(select(table.workspace_id).where(table.merged.is_(False)).distinct()))


def rebuild_with(function: str, workspace_id: int) -> int:
    """Run a rollup table's rebuild function (leadpath_rebuild_…(workspace)) in one snapshot: writes committed
    after it stay as their own deltas, writes before it are in the result. Returns the rows written."""
    db.session.commit()
    db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    lock_workspace(workspace_id)
    written = db.session.scalar(text(f"SELECT {function}(:workspace)"), {"workspace": workspace_id})
    db.session.commit()
    return int(written or 0)


def compact(workspace_id: int) -> None:
    fold_deltas(workspace_id, rollup_sql.COMPACT, rollup_sql.DROP_EMPTY)


def compact_all() -> int:
    """The periodic job: fold the deltas of every workspace that has some. Returns how many were folded."""
    workspace_ids = workspaces_with_deltas(ReportRollup)
    for workspace_id in workspace_ids:
        compact(workspace_id)
    return len(workspace_ids)


def rebuild(workspace_id: int) -> int:
    """Recompute a workspace's rollups from its base tables (see rebuild_with)."""
    return rebuild_with("leadpath_rebuild_rollups", workspace_id)


def rollup_facts(workspace_id: int, attribution: str) -> dict[tuple, list[int]]:
    """{(day, tags, sale kind): figures} as the rollups hold them, for one attribution, without zero rows."""
    columns = [getattr(ReportRollup, name) for name in ROLLUP_LEVELS]
    statement = (select(ReportRollup.day, *columns, ReportRollup.sale_kind,
                        *[func.sum(getattr(ReportRollup, name)) for name in ROLLUP_FIGURES])
                 .where(ReportRollup.workspace_id == workspace_id,
                        ReportRollup.attribution.in_((BOTH, FIRST if attribution == "first" else LAST)))
                 .group_by(ReportRollup.day, *columns, ReportRollup.sale_kind))
    width = len(ROLLUP_LEVELS)
    return {(row[0], tuple(row[1:1 + width]), row[1 + width]): [int(value) for value in row[2 + width:]]
            for row in db.session.execute(statement) if any(row[2 + width:])}


def check(workspace_id: int) -> list[str]:
    """Differences between the rollups and the base tables, as sentences (none: they agree)."""
    problems = []
    for attribution in ("last", "first"):
        expected = {key: figures for key, figures in base_table_facts(workspace_id, attribution, None).items()
                    if any(figures)}
        actual = rollup_facts(workspace_id, attribution)
        for key in sorted(set(expected) | set(actual), key=str):
            if expected.get(key) != actual.get(key):
                sale = {NEW_SALE: ", new sale", REPEAT_SALE: ", repeat sale"}.get(key[2], "")
                problems.append(f"workspace {workspace_id}, {attribution} touch, {key[0]} {'/'.join(key[1])}{sale}: "
                                f"base tables {expected.get(key)}, rollups {actual.get(key)}")
    return problems
