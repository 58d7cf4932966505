"""A lead's chain of touches, its attribution (lead_credits), and report figures by attribution model.

The chain (see docs/attribution.md): the visitor's visits of the same workspace that started within LOOKBACK
before the lead, in time order, ending with the visit the form was sent in (leads.visit_id; visits after it are
left out). If that visit's row has not arrived, the lead's own last-touch tags stand for it at the lead's time.
A lead without a visitor, or whose visitor has no visits stored, has its own touches: its first-touch tags (when
they differ from its last) then its last-touch tags — so the first and last models agree with the first/last
touch report for leads from before visits were stored.

Attribution runs after intake, never on the intake's INSERT: `attribute_pending_leads` (periodic) attributes
leads at least ATTRIBUTE_AFTER old (the snippet's visit beacon comes first), and attributes again a lead whose
form visit arrived after it was attributed. Until then a lead counts whole under its own touches in every model
(portal.reports.credit_sql), so totals are exact at every moment. `flask reports attribute` does the backlog.

Report figures: `aggregate_credits` sums credit rollups on PostgreSQL; on SQLite (demo, smoke tests) it groups the
base tables with `credit_facts`, which is also the reference `check` compares the rollups with.
"""
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, delete, exists, func, literal, or_, select, text, union_all

from portal.extensions import db
from portal.models import CreditRollup, Deal, Lead, LeadCredit, Visit, Workspace
from portal.models.lead_credit import CREDIT_WEIGHTS
from portal.models.report_rollup import (
    CREDIT_FIGURES,
    NARROW,
    NARROW_LEVELS,
    NOT_A_SALE,
    ROLLUP_LEVELS,
    WIDE,
    model_codes,
)
from portal.models.types import utcnow
from portal.reports import credit_sql
from portal.reports.attribution import FIRST, MODELS, WHOLE, Touch, all_weights, is_direct
from portal.reports.periods import Period
from portal.reports.rollups import (
    DEAL_COLUMNS,
    FIRST_COLUMNS,
    GROUPABLE,
    LAST_COLUMNS,
    SALE_KINDS,
    deal_lead_column,
    deal_own_tags,
    fold_deltas,
    rebuild_with,
    sale_kind_column,
    uses_rollup_table,
    workspaces_with_deltas,
)
from portal.reports.tags import local_day, tag_set, touches, url_domain

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=90)
# A chain keeps its first touch and the latest ones up to this length: a visitor with thousands of visits (a bot, a
# kiosk) must not make thousands of credit rows for one lead.
MAX_CHAIN = 100
# A lead is attributed once its form's visit had time to arrive (the snippet sends the visit before the form).
ATTRIBUTE_AFTER = timedelta(seconds=60)
# How far back the periodic job looks for leads to attribute; older ones: `flask reports attribute`.
SWEEP_WINDOW = timedelta(days=2)
SWEEP_EVERY_SECONDS = 60
SWEEP_BATCH = 500
# Positions in a credit figures list (CREDIT_FIGURES): visits, leads, cohort block, closed block.
VISITS, LEADS, COHORT, CLOSED = 0, 1, 2, 6
OPEN, WON, LOST = "open", "won", "lost"


@dataclass(frozen=True)
class ChainStep:
    """One touch of a lead's chain as the lead page shows it. visit: the stored visit, None for a stand-in made of
    the lead's own tags."""

    touch: Touch
    visit: Visit | None = None


def _lead_touch(lead: Lead, first: bool) -> Touch:
    prefix = "first_" if first else ""
    utm = tuple(getattr(lead, f"{prefix}utm_{name}") for name in ("source", "medium", "campaign", "content", "term"))
    landing, referrer = getattr(lead, f"{prefix}landing_page"), getattr(lead, f"{prefix}referrer")
    click_ids = () if first else (lead.gclid, lead.yclid, lead.fbclid)
    when = (lead.first_touch_at or lead.created_at) if first else lead.created_at
    return Touch(tag_set((*utm, landing, referrer)), when,
                 is_direct(utm, click_ids, url_domain(referrer), url_domain(landing)))


def visit_touch(visit: Visit) -> Touch:
    utm = (visit.utm_source, visit.utm_medium, visit.utm_campaign, visit.utm_content, visit.utm_term)
    return Touch(tag_set((*utm, visit.landing_page, visit.referrer)), visit.started_at,
                 is_direct(utm, (visit.gclid, visit.yclid, visit.fbclid), url_domain(visit.referrer),
                           url_domain(visit.landing_page)))


def own_touches(lead: Lead) -> list[ChainStep]:
    """The lead's first-touch then last-touch tags (one step when they are the same or there is no first)."""
    found = touches(tuple(getattr(lead, column.key) for column in LAST_COLUMNS),
                    tuple(getattr(lead, column.key) for column in FIRST_COLUMNS))
    last = ChainStep(_lead_touch(lead, first=False))
    return [ChainStep(_lead_touch(lead, first=True)), last] if len(found) == 2 else [last]


def lead_chain(lead: Lead) -> list[ChainStep]:
    """The lead's chain of touches in time order (the module docstring gives the rules), at most MAX_CHAIN long."""
    steps = _full_chain(lead)
    return steps if len(steps) <= MAX_CHAIN else [steps[0], *steps[-(MAX_CHAIN - 1):]]


def _full_chain(lead: Lead) -> list[ChainStep]:
    if not lead.visitor_id:
        return own_touches(lead)
    visits = list(db.session.scalars(
        select(Visit).where(Visit.workspace_id == lead.workspace_id, Visit.visitor_id == lead.visitor_id,
                            Visit.started_at >= lead.created_at - LOOKBACK, Visit.started_at <= lead.created_at)
        .order_by(Visit.started_at, Visit.id)))
    form_visit = None
    if lead.visit_id:
        form_visit = next((visit for visit in visits if visit.visit_id == lead.visit_id), None) or db.session.scalar(
            select(Visit).where(Visit.workspace_id == lead.workspace_id, Visit.visit_id == lead.visit_id,
                                Visit.visitor_id == lead.visitor_id))
    if not visits and form_visit is None:
        return own_touches(lead)
    if form_visit is not None:
        before = [visit for visit in visits if visit.visit_id != form_visit.visit_id
                  and (visit.started_at, visit.id) < (form_visit.started_at, form_visit.id)]
        return [ChainStep(visit_touch(visit), visit) for visit in (*before, form_visit)]
    steps = [ChainStep(visit_touch(visit), visit) for visit in visits]
    if lead.visit_id:  # the form's visit has not arrived: the lead's own tags stand for it
        steps.append(ChainStep(_lead_touch(lead, first=False)))
    return steps


def credit_rows(lead: Lead, chain: list[ChainStep]) -> list[LeadCredit]:
    weights = all_weights([step.touch for step in chain], lead.created_at)
    return [LeadCredit(workspace_id=lead.workspace_id, lead_id=lead.id, position=position,
                       visit_id=step.visit.visit_id if step.visit is not None else None,
                       touched_at=step.touch.touched_at, direct=step.touch.direct,
                       **dict(zip(ROLLUP_LEVELS, step.touch.tags, strict=True)),
                       **{CREDIT_WEIGHTS[model]: weights[model][position] for model in MODELS})
            for position, step in enumerate(chain)]


def attribute_lead(workspace_id: int, lead_id: int) -> bool:
    """Work out the lead's chain and store its credits, moving its (and its deals') rollup rows from the old
    credits to the new ones in the same transaction. Idempotent. False when there is no such lead."""
    rollups = uses_rollup_table()
    arguments = {"workspace": workspace_id, "lead": lead_id}
    if rollups:  # also locks the lead row: its deals' and its own triggers wait for this transaction
        db.session.execute(text("SELECT leadpath_credit_rollup_lead_and_deals(:workspace, :lead, -1)"), arguments)
    lead = db.session.scalar(select(Lead).where(Lead.id == lead_id, Lead.workspace_id == workspace_id)
                             .execution_options(populate_existing=True))
    if lead is None:
        db.session.rollback()
        return False
    db.session.execute(delete(LeadCredit).where(LeadCredit.lead_id == lead_id))
    db.session.add_all(credit_rows(lead, lead_chain(lead)))
    db.session.flush()
    if rollups:
        db.session.execute(text("SELECT leadpath_credit_rollup_lead_and_deals(:workspace, :lead, 1)"), arguments)
    db.session.commit()
    return True


def leads_to_attribute(limit: int = SWEEP_BATCH) -> list[tuple[int, int]]:
    """(workspace id, lead id) of recent leads not attributed yet, or attributed while their form's visit had not
    arrived and it has now."""
    now = utcnow()
    recent = and_(Lead.created_at >= now - SWEEP_WINDOW, Lead.created_at <= now - ATTRIBUTE_AFTER)
    credited = exists().where(LeadCredit.lead_id == Lead.id)
    stand_in = exists().where(LeadCredit.lead_id == Lead.id, LeadCredit.visit_id.is_(None))
    arrived = exists().where(Visit.workspace_id == Lead.workspace_id, Visit.visit_id == Lead.visit_id)
    found: list[tuple[int, int]] = []
    # Workspace by workspace: each probe is a range of ix_leads_workspace_created, never a scan of all leads.
    for workspace_id in db.session.scalars(select(Workspace.id).order_by(Workspace.id)).all():
        statement = (select(Lead.workspace_id, Lead.id)
                     .where(Lead.workspace_id == workspace_id, recent,
                            or_(~credited, and_(Lead.visit_id.is_not(None), stand_in, arrived)))
                     .order_by(Lead.id).limit(limit - len(found)))
        found += [tuple(row) for row in db.session.execute(statement)]
        if len(found) >= limit:
            break
    db.session.rollback()
    return found


def attribute_pending_leads(limit: int = SWEEP_BATCH) -> int:
    """The periodic job: attribute recent leads that need it. Returns how many were attributed."""
    done = 0
    for workspace_id, lead_id in leads_to_attribute(limit):
        done += attribute_lead(workspace_id, lead_id)
    if done:
        log.info("attributed %d lead(s)", done)
    return done


def attribute_visitor(workspace_id: int, visitor_id: str) -> int:
    """Attribute again the visitor's leads of the last LOOKBACK (a visit of theirs arrived late). Returns how
    many."""
    lead_ids = list(db.session.scalars(select(Lead.id).where(
        Lead.workspace_id == workspace_id, Lead.visitor_id == visitor_id,
        Lead.created_at >= utcnow() - LOOKBACK)))
    return sum(attribute_lead(workspace_id, lead_id) for lead_id in lead_ids)


def attribute_backlog(workspace_id: int) -> int:
    """Attribute every lead of the workspace that has no credits yet (after an upgrade, or a long outage)."""
    lead_ids = list(db.session.scalars(select(Lead.id).where(
        Lead.workspace_id == workspace_id, ~exists().where(LeadCredit.lead_id == Lead.id)).order_by(Lead.id)))
    db.session.rollback()
    return sum(attribute_lead(workspace_id, lead_id) for lead_id in lead_ids)


@dataclass(frozen=True)
class ShownStep:
    """One touch of a lead's chain as its page shows it, with each model's weight in millionths."""

    touched_at: datetime
    tags: dict[str, str]
    direct: bool
    landing_page: str | None
    device: str | None
    weights: dict[str, int]
    from_visit: bool


@dataclass(frozen=True)
class ShownChain:
    steps: list[ShownStep]
    # False: not attributed yet; the steps are worked out now and the reports count the lead under its own touches.
    attributed: bool


def shown_chain(lead: Lead) -> ShownChain:
    """The lead's chain for its page: its stored credits, or (not attributed yet) the chain as it would be now."""
    stored = list(db.session.scalars(select(LeadCredit).where(
        LeadCredit.workspace_id == lead.workspace_id, LeadCredit.lead_id == lead.id).order_by(LeadCredit.position)))
    if stored:
        visit_ids = [credit.visit_id for credit in stored if credit.visit_id]
        visits = {visit.visit_id: visit for visit in db.session.scalars(select(Visit).where(
            Visit.workspace_id == lead.workspace_id, Visit.visit_id.in_(visit_ids)))} if visit_ids else {}
        steps = []
        for credit in stored:
            visit = visits.get(credit.visit_id) if credit.visit_id else None
            steps.append(ShownStep(credit.touched_at, {name: getattr(credit, name) for name in ROLLUP_LEVELS},
                                   credit.direct, visit.landing_page if visit else None,
                                   visit.device if visit else None,
                                   {model: credit.weight(model) for model in MODELS}, credit.visit_id is not None))
        return ShownChain(steps, True)
    chain = lead_chain(lead)
    weights = all_weights([step.touch for step in chain], lead.created_at)
    return ShownChain([ShownStep(step.touch.touched_at, dict(zip(ROLLUP_LEVELS, step.touch.tags, strict=True)),
                                 step.touch.direct, step.visit.landing_page if step.visit else None,
                                 step.visit.device if step.visit else None,
                                 {model: weights[model][position] for model in MODELS}, step.visit is not None)
                       for position, step in enumerate(chain)], False)


# ---------------------------------------------------------------------------------------------------------------
# Report figures by model


def aggregate_credits(workspace_id: int, model: str, period: Period, group_by: tuple[str, ...],
                      filters: dict[str, str] | None = None, sales: str = "all") -> list[tuple]:
    """[(*group values, *CREDIT_FIGURES)] of the period under one model, like rollups.aggregate (leads and deal
    counts in millionths, revenue in cents × millionths)."""
    return compare_models(workspace_id, (model,), period, group_by, filters, sales)[model]


def compare_models(workspace_id: int, models: tuple[str, ...], period: Period, group_by: tuple[str, ...],
                   filters: dict[str, str] | None = None, sales: str = "all") -> dict[str, list[tuple]]:
    """aggregate_credits for several models at once (one grouped query on PostgreSQL)."""
    filters = filters or {}
    if (not set(group_by) <= set(GROUPABLE) or not set(filters) <= set(ROLLUP_LEVELS) or sales not in SALE_KINDS
            or not set(models) <= set(MODELS)):
        raise ValueError("unknown level or model")
    kinds = SALE_KINDS[sales]
    sums = {model: defaultdict(lambda: [0] * len(CREDIT_FIGURES)) for model in models}
    if uses_rollup_table():
        codes = sorted({code for model in models for code in model_codes(model)})
        grain = NARROW if set(group_by) | set(filters) <= {*NARROW_LEVELS, "day"} else WIDE
        rows = _credit_rows(workspace_id, grain, (
            CreditRollup.day >= period.start, CreditRollup.day <= period.end, CreditRollup.model.in_(codes),
            *[getattr(CreditRollup, name) == value for name, value in filters.items()],
            *([] if kinds is None else [CreditRollup.sale_kind.in_(kinds)])))
        columns = [getattr(rows.c, name) for name in group_by]
        statement = (select(rows.c.model, *columns, *[func.sum(getattr(rows.c, name)) for name in CREDIT_FIGURES])
                     .group_by(rows.c.model, *columns))
        for code, *row in db.session.execute(statement):
            key, figures = tuple(row[:len(group_by)]), row[len(group_by):]
            for model in models:
                if code in model_codes(model):
                    _add_to(sums[model][key], figures)
    else:
        for model in models:
            for (day, tags, kind), figures in credit_facts(workspace_id, model, period).items():
                values = dict(zip(ROLLUP_LEVELS, tags, strict=True), day=day)
                if any(values[name] != wanted for name, wanted in filters.items()):
                    continue
                if kinds is not None and kind not in kinds:
                    continue
                _add_to(sums[model][tuple(values[name] for name in group_by)], figures)
    return {model: [(*key, *figures) for key, figures in sums[model].items()] for model in models}


def _credit_rows(workspace_id: int, grain: str, conditions: tuple):
    """The credit rollup rows of one grain as a subquery. Writes append wide deltas only, so the narrow grain is its
    merged rows (an index-only scan of ix_credit_rollups_narrow) and the wide deltas not folded yet."""
    levels = ROLLUP_LEVELS if grain == WIDE else NARROW_LEVELS  # the narrow read needs no more (index-only)
    columns = [CreditRollup.model, CreditRollup.day, CreditRollup.sale_kind,
               *[getattr(CreditRollup, name) for name in (*levels, *CREDIT_FIGURES)]]
    base = (CreditRollup.workspace_id == workspace_id, *conditions)
    # The grain is written into the SQL, not bound: a prepared statement's generic plan could not prove the partial
    # index's predicate (grain = 'n') from a parameter.
    wide, narrow = literal(WIDE, literal_execute=True), literal(NARROW, literal_execute=True)
    if grain == WIDE:
        return select(*columns).where(*base, CreditRollup.grain == wide).subquery()
    return union_all(select(*columns).where(*base, CreditRollup.grain == narrow),
                     select(*columns).where(*base, CreditRollup.grain == wide,
                                            CreditRollup.merged.is_(False))).subquery()


def _add_to(total: list[int], figures) -> None:
    for index, value in enumerate(figures):
        total[index] += int(value or 0)


def _credits_by_lead(workspace_id: int, model: str) -> dict[int, list[tuple[tuple, int]]]:
    weight = getattr(LeadCredit, CREDIT_WEIGHTS[model])
    found: dict[int, list[tuple[tuple, int]]] = defaultdict(list)
    statement = (select(LeadCredit.lead_id, *[getattr(LeadCredit, name) for name in ROLLUP_LEVELS], weight)
                 .where(LeadCredit.workspace_id == workspace_id).order_by(LeadCredit.lead_id, LeadCredit.position))
    for lead_id, *tags, share in db.session.execute(statement):
        found[lead_id].append((tuple(tags), share))
    return found


def _lead_shares(credits: dict, lead_id: int, values: tuple, model: str) -> list[tuple[tuple, int]]:
    """A lead's (tags, weight) under one model: its credits, or whole under its own touches (not attributed)."""
    if lead_id in credits:
        return [(tags, share) for tags, share in credits[lead_id] if share]
    wanted = "f" if model == FIRST else "l"
    return [(tags, WHOLE) for kind, tags in touches(values[:7], values[7:14]) if kind in ("b", wanted)]


def credit_facts(workspace_id: int, model: str, period: Period | None) -> dict[tuple, list[int]]:
    """{(day, tags, sale kind): CREDIT_FIGURES} from leads, their credits, deals and visits under one model; period
    None: the workspace's whole history. The rules of portal.reports.credit_sql, in Python."""
    timezone = db.session.scalar(select(Workspace.timezone).where(Workspace.id == workspace_id)) \
        if period is None else period.timezone
    facts: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(CREDIT_FIGURES))
    credits = _credits_by_lead(workspace_id, model)

    def within(column):
        return [] if period is None else [column >= period.starts_at, column < period.ends_at]

    def as_day(value) -> date:
        return date.fromisoformat(value) if isinstance(value, str) else value

    lead_day = local_day(Lead.created_at, timezone)
    leads = (select(lead_day, Lead.id, *LAST_COLUMNS, *FIRST_COLUMNS)
             .where(Lead.workspace_id == workspace_id, *within(Lead.created_at), Lead.is_spam.is_(False),
                    Lead.duplicate_of_id.is_(None), Lead.is_test.is_(False)))
    for day, lead_id, *values in db.session.execute(leads):
        for tags, share in _lead_shares(credits, lead_id, tuple(values), model):
            facts[(as_day(day), tags, NOT_A_SALE)][LEADS] += share

    kind, deal_lead = sale_kind_column(), deal_lead_column()
    aggregates = (kind, Deal.state, func.count(), func.coalesce(func.sum(Deal.amount), 0))
    alive = (Deal.workspace_id == workspace_id, Deal.deleted.is_(False))
    from_form = (select(lead_day, Lead.id, *LAST_COLUMNS, *FIRST_COLUMNS, *aggregates)
                 .join(Deal, deal_lead == Lead.id)
                 .where(Lead.workspace_id == workspace_id, *within(Lead.created_at), Lead.is_test.is_(False), *alive)
                 .group_by(lead_day, Lead.id, *LAST_COLUMNS, *FIRST_COLUMNS, kind, Deal.state))
    for day, lead_id, *values, sale, state, count, amount in db.session.execute(from_form):
        for tags, share in _lead_shares(credits, lead_id, tuple(values[:14]), model):
            _add_deals(facts[(as_day(day), tags, sale)], COHORT, state, count, amount, share)
    created_day = local_day(Deal.created_at, timezone)
    external = (select(created_day, *DEAL_COLUMNS, *aggregates)
                .outerjoin(Lead, and_(Lead.id == deal_lead, Lead.workspace_id == workspace_id))
                .where(*alive, Lead.id.is_(None), *within(Deal.created_at))
                .group_by(created_day, *DEAL_COLUMNS, kind, Deal.state))
    for day, *values, sale, state, count, amount in db.session.execute(external):
        _add_deals(facts[(as_day(day), deal_own_tags(tuple(values)), sale)], COHORT, state, count, amount, WHOLE)

    for day_column, states in ((Deal.closed_at, (WON, LOST)), (Deal.created_at, (OPEN,))):
        basis_day = local_day(day_column, timezone)
        closed = (select(basis_day, Lead.id, *LAST_COLUMNS, *FIRST_COLUMNS, *DEAL_COLUMNS, *aggregates)
                  .outerjoin(Lead, and_(Lead.id == deal_lead, Lead.workspace_id == workspace_id))
                  .where(*alive, Deal.state.in_(states), day_column.is_not(None), *within(day_column),
                         or_(Lead.id.is_(None), Lead.is_test.is_(False)))
                  .group_by(basis_day, Lead.id, *LAST_COLUMNS, *FIRST_COLUMNS, *DEAL_COLUMNS, kind, Deal.state))
        for day, lead_id, *values, sale, state, count, amount in db.session.execute(closed):
            shares = ([(deal_own_tags(tuple(values[14:19])), WHOLE)] if lead_id is None
                      else _lead_shares(credits, lead_id, tuple(values[:14]), model))
            for tags, share in shares:
                _add_deals(facts[(as_day(day), tags, sale)], CLOSED, state, count, amount, share)

    visit_day = local_day(Visit.started_at, timezone)
    visit_columns = (Visit.utm_source, Visit.utm_medium, Visit.utm_campaign, Visit.utm_content, Visit.utm_term,
                     Visit.landing_page, Visit.referrer)
    visits = (select(visit_day, *visit_columns, func.count())
              .where(Visit.workspace_id == workspace_id, *within(Visit.started_at))
              .group_by(visit_day, *visit_columns))
    for day, *values, count in db.session.execute(visits):
        facts[(as_day(day), tag_set(tuple(values)), NOT_A_SALE)][VISITS] += count
    return facts


def _add_deals(figures: list, block: int, state: str, count: int, amount, share: int) -> None:
    """Deals × a lead's share into a fact's cohort or closed block: open, won, lost, revenue of won deals."""
    figures[block + {OPEN: 0, WON: 1, LOST: 2}.get(state, 0)] += count * share
    if state == WON:
        figures[block + 3] += int(Decimal(amount) * 100) * share


# ---------------------------------------------------------------------------------------------------------------
# Upkeep (PostgreSQL): fold, rebuild, check


def compact(workspace_id: int) -> None:
    fold_deltas(workspace_id, credit_sql.COMPACT, credit_sql.DROP_EMPTY)


def compact_all_credits() -> int:
    """The periodic job: fold the credit rollups' deltas of every workspace that has some."""
    workspace_ids = workspaces_with_deltas(CreditRollup)
    for workspace_id in workspace_ids:
        compact(workspace_id)
    return len(workspace_ids)


def rebuild(workspace_id: int) -> int:
    """Recompute a workspace's credit rollups from leads, credits, deals and visits in one snapshot."""
    return rebuild_with("leadpath_rebuild_credit_rollups", workspace_id)


def credit_rollup_facts(workspace_id: int, model: str, grain: str = WIDE) -> dict[tuple, list[int]]:
    """{(day, tags, sale kind): figures} as the credit rollups hold them under one model at one grain, without
    zero rows."""
    rows = _credit_rows(workspace_id, grain, (CreditRollup.model.in_(model_codes(model)),))
    # The narrow grain's wide deltas count under their source, medium and campaign only.
    columns = [getattr(rows.c, name) if grain == WIDE or name in NARROW_LEVELS else literal("")
               for name in ROLLUP_LEVELS]
    statement = (select(rows.c.day, *columns, rows.c.sale_kind,
                        *[func.sum(getattr(rows.c, name)) for name in CREDIT_FIGURES])
                 .group_by(rows.c.day, *columns, rows.c.sale_kind))
    width = len(ROLLUP_LEVELS)
    return {(row[0], tuple(row[1:1 + width]), row[1 + width]): [int(value) for value in row[2 + width:]]
            for row in db.session.execute(statement) if any(row[2 + width:])}


def check(workspace_id: int) -> list[str]:
    """Differences between the credit rollups and the base tables under every model, as sentences."""
    problems = []
    for model in MODELS:
        wide = credit_facts(workspace_id, model, None)
        narrow: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(CREDIT_FIGURES))
        for (day, tags, kind), figures in wide.items():
            _add_to(narrow[(day, (*tags[:3], "", "", "", ""), kind)], figures)
        for grain, facts in ((WIDE, wide), (NARROW, narrow)):
            expected = {key: figures for key, figures in facts.items() if any(figures)}
            actual = credit_rollup_facts(workspace_id, model, grain)
            for key in sorted(set(expected) | set(actual), key=str):
                if expected.get(key) != actual.get(key):
                    problems.append(f"workspace {workspace_id}, model {model}, grain {grain}, {key[0]} "
                                    f"{'/'.join(key[1])} {key[2] or ''}: base tables {expected.get(key)}, "
                                    f"credit rollups {actual.get(key)}")
    return problems

