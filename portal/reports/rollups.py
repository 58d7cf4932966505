"""Per-day report aggregates, cached in Redis for past days and kept fresh by marking changed days dirty.

Why: a year of a large workspace is a million leads; grouping them on every view costs seconds on a busy
PostgreSQL. A past day's aggregates rarely change, so each (workspace, attribution, local day) is computed once —
leads by tags, deals by tags and state for both date bases — and stored in Redis (today for a minute at most).

Freshness: a session hook (below) notes every committed change to a lead's attribution or to a deal — the days it
touches, and for a deal the lead whose cohort it belongs to — in a per-workspace Redis set. The next report reads
that set and drops those days before using the cache; a day computed while a change was being committed is not
kept. An ORM UPDATE/DELETE statement on leads or deals (not row objects) that may change figures bumps a global
generation, which retires every cached day. Changes made outside SQLAlchemy (raw SQL, COPY) are bounded by the
cache TTL; `forget_workspace` drops a workspace's days (the demo-data command calls it). If Redis is unavailable the
report is computed from the database alone: slower, never wrong.
"""
import json
import logging
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import and_, event, inspect, or_, select
from sqlalchemy.orm import Session

from portal.extensions import db, redis_connection
from portal.models import Deal, Lead
from portal.models.deal import LOST, OPEN, WON
from portal.reports.periods import Period
from portal.reports.tags import deal_tags, lead_tag_columns, local_day, pick_tags

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 6 * 3600
TODAY_TTL_SECONDS = 60
KEY_PREFIX = "leadpath:roi:v1"  # bump when the cached row layout changes
LEAD_ATTRIBUTES = ("utm_source", "utm_medium", "utm_campaign", "first_utm_source", "first_utm_medium",
                   "first_utm_campaign", "is_spam", "duplicate_of_id", "created_at")
DEAL_ATTRIBUTES = ("state", "amount", "closed_at", "created_at", "deleted", "lead_id", "utm_source", "utm_medium",
                   "utm_campaign")


# ---------------------------------------------------------------------------------------------------------------
# Computing days from the database


GENERATION_KEY = f"{KEY_PREFIX}:generation"


def _day_key(workspace_id: int, attribution: str, day: date, timezone: str, generation: int) -> str:
    return f"{KEY_PREFIX}:{workspace_id}:g{generation}:{timezone}:{attribution}:{day.isoformat()}"


def _generation() -> int:
    """Bumped by bulk UPDATE/DELETE statements on leads or deals, whose rows the flush hook cannot see."""
    return int(_redis().get(GENERATION_KEY) or 0)


# A day is a list of rows, one per normalised (source, medium, campaign):
# [source, medium, campaign, leads, cohort open, cohort won, cohort lost, cohort revenue in cents,
#  closed open, closed won, closed lost, closed revenue in cents] — "cohort" by lead-created day, "closed" by
# deal-closed day (open deals by their creation day). Revenue is won deals' amounts; cents keep it exact.
LEADS, COHORT, CLOSED = 3, 4, 8


def compute_days(workspace_id: int, attribution: str, timezone: str, first: date, last: date) -> dict[date, list]:
    """The rows of each local day first..last (every day present, maybe empty)."""
    period = Period(first, last, timezone)
    # {day: {(source, medium, campaign): [leads, cohort open, won, lost, revenue cents, closed open, won, lost,
    #  revenue cents]}}
    result: dict[date, dict] = defaultdict(lambda: defaultdict(lambda: [0] * 9))

    def as_day(value) -> date:
        return date.fromisoformat(value) if isinstance(value, str) else value

    lead_columns = lead_tag_columns(attribution)
    lead_day = local_day(Lead.created_at, timezone)
    leads = (select(lead_day, *lead_columns, db.func.count())
             .where(Lead.workspace_id == workspace_id, Lead.created_at >= period.starts_at,
                    Lead.created_at < period.ends_at, Lead.is_spam.is_(False), Lead.duplicate_of_id.is_(None),
                    Lead.is_test.is_(False))
             .group_by(lead_day, *lead_columns))
    for day, *values, count in db.session.execute(leads):
        result[as_day(day)][pick_tags(tuple(values), attribution)][0] += count

    deal_columns = (Deal.utm_source, Deal.utm_medium, Deal.utm_campaign)
    aggregates = (Deal.state, db.func.count(), db.func.coalesce(db.func.sum(Deal.amount), 0))
    alive = (Deal.workspace_id == workspace_id, Deal.deleted.is_(False))
    from_form = (select(lead_day, *lead_columns, *aggregates).join(Deal, Deal.lead_id == Lead.id)
                 .where(Lead.workspace_id == workspace_id, Lead.created_at >= period.starts_at,
                        Lead.created_at < period.ends_at, Lead.is_test.is_(False), *alive)
                 .group_by(lead_day, *lead_columns, Deal.state))
    for day, *values, state, count, amount in db.session.execute(from_form):
        _add(result[as_day(day)][pick_tags(tuple(values), attribution)], COHORT, state, count, amount)
    created_day = local_day(Deal.created_at, timezone)
    external = (select(created_day, *deal_columns, *aggregates)
                .where(*alive, Deal.lead_id.is_(None), Deal.created_at >= period.starts_at,
                       Deal.created_at < period.ends_at)
                .group_by(created_day, *deal_columns, Deal.state))
    for day, *values, state, count, amount in db.session.execute(external):
        _add(result[as_day(day)][deal_tags((), tuple(values), True, attribution)], COHORT, state, count, amount)

    # Deal-closed basis: won/lost on their closing day (ix_deals_workspace_closed), open deals on their creation
    # day (ix_deals_workspace_created). Two queries rather than one OR, so each reads through its own index.
    width = len(lead_columns)
    for day_column, states in ((Deal.closed_at, (WON, LOST)), (Deal.created_at, (OPEN,))):
        basis_day = local_day(day_column, timezone)
        closed = (select(basis_day, *lead_columns, *deal_columns, Deal.lead_id.is_(None), *aggregates)
                  .outerjoin(Lead, and_(Lead.id == Deal.lead_id, Lead.workspace_id == workspace_id))
                  .where(*alive, Deal.state.in_(states), day_column >= period.starts_at,
                         day_column < period.ends_at, or_(Lead.id.is_(None), Lead.is_test.is_(False)))
                  .group_by(basis_day, *lead_columns, *deal_columns, Deal.lead_id.is_(None), Deal.state))
        for row in db.session.execute(closed):
            tags = deal_tags(tuple(row[1:1 + width]), tuple(row[1 + width:4 + width]), row[4 + width],
                             attribution)
            _add(result[as_day(row[0])][tags], CLOSED, row[-3], row[-2], row[-1])

    days = {}
    day = first
    while day <= last:
        days[day] = [[*tags, *figures] for tags, figures in result.get(day, {}).items()]
        day += timedelta(days=1)
    return days


def _add(figures: list, row_offset: int, state: str, count: int, amount) -> None:
    """Add deals to a day's figures (the row without its three tags) at the cohort or closed block."""
    offset = row_offset - 3
    position = offset + {OPEN: 0, WON: 1, LOST: 2}.get(state, 0)
    figures[position] += count
    if state == WON:
        figures[offset + 3] += int(Decimal(amount) * 100)


# ---------------------------------------------------------------------------------------------------------------
# The cache


def _redis():
    return redis_connection.client


def load_days(workspace_id: int, attribution: str, timezone: str, first: date, last: date,
              today: date) -> dict[date, list]:
    """Aggregates of first..last from the cache (filled as needed). Today is cached only briefly (TODAY_TTL):
    committed ORM changes drop it at once, inserts made without the ORM show within that time."""
    days: dict[date, list] = {}
    cached_last = min(last, today)
    if first <= cached_last:
        days.update(_cached_days(workspace_id, attribution, timezone, first, cached_last, today))
    live_first = max(first, today + timedelta(days=1))
    if live_first <= last:  # days after today: nothing to cache
        days.update(compute_days(workspace_id, attribution, timezone, live_first, last))
    return days


def _cached_days(workspace_id: int, attribution: str, timezone: str, first: date, last: date,
                 today: date) -> dict[date, list]:
    wanted = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    try:
        apply_dirty_marks(workspace_id, timezone)
        generation = _generation()
        stored = _redis().mget([_day_key(workspace_id, attribution, day, timezone, generation) for day in wanted])
    except RedisError as error:
        log.warning("report cache unavailable (%s); computing from the database", error.__class__.__name__)
        return compute_days(workspace_id, attribution, timezone, first, last)
    days = {day: json.loads(raw) for day, raw in zip(wanted, stored, strict=True) if raw is not None}
    for run_first, run_last in _missing_runs(wanted, days):
        changes_before = _change_count(workspace_id)
        computed = compute_days(workspace_id, attribution, timezone, run_first, run_last)
        days.update(computed)
        try:
            if _change_count(workspace_id) != changes_before:
                continue  # something committed while we read: these figures may predate it, so don't keep them
            pipeline = _redis().pipeline(transaction=False)
            for day, entry in computed.items():
                key = _day_key(workspace_id, attribution, day, timezone, generation)
                pipeline.set(key, json.dumps(entry), ex=TODAY_TTL_SECONDS if day >= today else CACHE_TTL_SECONDS)
            pipeline.execute()
        except RedisError:
            pass
    return days


def refresh_days(workspace_id: int, attribution: str, timezone: str, first: date, last: date, today: date) -> int:
    """Recompute first..last and store them afresh (new TTL), so reports never meet an expired, cold cache.
    Returns the days stored (none when a change was committed meanwhile: the next refresh stores them)."""
    last = min(last, today)
    changes_before = _change_count(workspace_id)
    apply_dirty_marks(workspace_id, timezone)
    generation = _generation()
    computed = compute_days(workspace_id, attribution, timezone, first, last)
    if _change_count(workspace_id) != changes_before:
        return 0
    pipeline = _redis().pipeline(transaction=False)
    for day, entry in computed.items():
        key = _day_key(workspace_id, attribution, day, timezone, generation)
        pipeline.set(key, json.dumps(entry), ex=TODAY_TTL_SECONDS if day >= today else CACHE_TTL_SECONDS)
    pipeline.execute()
    return len(computed)


def _missing_runs(wanted: list[date], present: dict) -> list[tuple[date, date]]:
    runs, start, previous = [], None, None
    for day in wanted:
        if day in present:
            if start is not None:
                runs.append((start, previous))
                start = None
        elif start is None:
            start = day
        previous = day
    if start is not None:
        runs.append((start, previous))
    return runs


def forget_workspace(workspace_id: int) -> None:
    """Drop every cached day of a workspace (after bulk loads or raw SQL changes)."""
    try:
        client = _redis()
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}:{workspace_id}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
    except RedisError:
        log.warning("could not drop the report cache of workspace %s", workspace_id)


def _dirty_key(workspace_id: int) -> str:
    return f"{KEY_PREFIX}-dirty:{workspace_id}"


def _changes_key(workspace_id: int) -> str:
    return f"{KEY_PREFIX}-changes:{workspace_id}"


def _change_count(workspace_id: int) -> int:
    try:
        return int(_redis().get(_changes_key(workspace_id)) or 0)
    except RedisError:
        return -1


def apply_dirty_marks(workspace_id: int, timezone: str) -> None:
    """Drop the cached days that changed since the last report of this workspace."""
    client = _redis()
    pipeline = client.pipeline(transaction=True)
    pipeline.smembers(_dirty_key(workspace_id))
    pipeline.delete(_dirty_key(workspace_id))
    marks = pipeline.execute()[0]
    if not marks:
        return
    zone = ZoneInfo(timezone)
    days: set[date] = set()
    lead_ids: set[int] = set()
    for mark in marks:
        kind, _, value = (mark.decode() if isinstance(mark, bytes) else mark).partition(":")
        if kind == "t":
            days.add(datetime.fromisoformat(value).astimezone(zone).date())
        elif kind == "l" and value.isdigit():
            lead_ids.add(int(value))
    if lead_ids:
        for created_at in db.session.scalars(select(Lead.created_at).where(Lead.workspace_id == workspace_id,
                                                                           Lead.id.in_(lead_ids))):
            days.add(created_at.astimezone(zone).date())
    generation = _generation()
    keys = [_day_key(workspace_id, attribution, day, timezone, generation) for day in days
            for attribution in ("last", "first")]
    if keys:
        client.delete(*keys)


# ---------------------------------------------------------------------------------------------------------------
# Change tracking: which days does a flush touch?


def _changed(obj, names) -> bool:
    """Was any of these attributes set since the last flush? (Set to its old value counts too: a harmless extra
    mark. Reading each attribute's history instead cost the sync engine more than its own work per lead.)"""
    committed = inspect(obj).committed_state
    return any(name in committed for name in names)


def _values(obj, name) -> list:
    history = inspect(obj).attrs[name].history
    return [value for value in (*history.added, *history.unchanged, *history.deleted) if value is not None]


def _marks_for(obj, deleted: bool) -> set[str]:
    if isinstance(obj, Lead):
        if deleted or _changed(obj, LEAD_ATTRIBUTES) or inspect(obj).pending or inspect(obj).transient:
            # A new lead without created_at gets "now" from the column default at flush.
            return {f"t:{value.astimezone(UTC).isoformat()}"
                    for value in _values(obj, "created_at") or [datetime.now(UTC)]}
    elif isinstance(obj, Deal):
        if deleted or _changed(obj, DEAL_ATTRIBUTES):
            marks = {f"t:{value.astimezone(UTC).isoformat()}" for name in ("created_at", "closed_at")
                     for value in _values(obj, name)}
            if not _values(obj, "created_at"):
                marks.add(f"t:{datetime.now(UTC).isoformat()}")
            marks |= {f"l:{value}" for value in _values(obj, "lead_id")}
            return marks
    return set()


@event.listens_for(Session, "before_flush")
def _collect_changes(session, flush_context, instances) -> None:
    pending = session.info.setdefault("roi_dirty", defaultdict(set))
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Lead | Deal) and obj.workspace_id is not None:
            pending[obj.workspace_id] |= _marks_for(obj, False)
    for obj in session.deleted:
        if isinstance(obj, Lead | Deal) and obj.workspace_id is not None:
            pending[obj.workspace_id] |= _marks_for(obj, True)


@event.listens_for(Session, "do_orm_execute")
def _collect_bulk_changes(orm_execute_state) -> None:
    """UPDATE/DELETE statements on leads or deals (not row objects) that may touch report figures."""
    if not (orm_execute_state.is_update or orm_execute_state.is_delete):
        return
    mapper = orm_execute_state.bind_mapper
    if mapper is None or mapper.class_ not in (Lead, Deal):
        return
    relevant = LEAD_ATTRIBUTES if mapper.class_ is Lead else DEAL_ATTRIBUTES
    if orm_execute_state.is_update and not _updates_any(orm_execute_state, relevant):
        return  # e.g. the sync engine setting sync_status: no report figure changes
    orm_execute_state.session.info["roi_dirty_all"] = True


def _updates_any(orm_execute_state, names) -> bool:
    statement = orm_execute_state.statement
    values = getattr(statement, "_values", None) or dict(getattr(statement, "_ordered_values", None) or ())
    keys = {getattr(key, "key", key) for key in values}
    for params in (orm_execute_state.parameters if isinstance(orm_execute_state.parameters, list)
                   else [orm_execute_state.parameters or {}]):
        keys |= set(params)
    return not keys or bool(keys & set(names))


@event.listens_for(Session, "after_commit")
def _publish_changes(session) -> None:
    pending = session.info.pop("roi_dirty", None)
    if session.info.pop("roi_dirty_all", False):
        try:
            _redis().incr(GENERATION_KEY)
        except (RedisError, RuntimeError) as error:
            log.warning("could not invalidate the report cache (%s)", error.__class__.__name__)
    if not pending:
        return
    try:
        client = _redis()
        pipeline = client.pipeline(transaction=False)
        for workspace_id, marks in pending.items():
            if marks:
                pipeline.sadd(_dirty_key(workspace_id), *marks)
                pipeline.expire(_dirty_key(workspace_id), CACHE_TTL_SECONDS)
                pipeline.incr(_changes_key(workspace_id))
        pipeline.execute()
    except (RedisError, RuntimeError) as error:  # RuntimeError: no app context (scripts)
        log.warning("could not mark report days dirty (%s)", error.__class__.__name__)


@event.listens_for(Session, "after_rollback")
def _drop_changes(session) -> None:
    session.info.pop("roi_dirty", None)
    session.info.pop("roi_dirty_all", None)
