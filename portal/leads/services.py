"""The lead list (filters, search, keyset pagination), a lead's page, and the leads CSV.

Pagination is keyset on (created_at, id) descending through ix_leads_workspace_created, so page 1,000 costs what
page 1 costs. Filters on tags compare normalised values (trimmed, lower-case) like the ROI report does.
Search: a value with "@" is an e-mail (exact, lower-case, ix_leads_workspace_email); mostly digits is a phone
(E.164 prefix); anything else matches the name (case-insensitive substring, the slowest of the three).
"""
import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, cast, exists, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import JSONB

from portal.amocrm import regions
from portal.extensions import db
from portal.models import AmoCRMConnection, Deal, Lead, LeadCredit, SyncLogEntry
from portal.models.deal import LOST, OPEN, WON
from portal.models.lead import FAILED, PENDING, SKIPPED, SYNCED
from portal.models.lead_credit import CREDIT_WEIGHTS
from portal.models.types import utcnow
from portal.reports.attribution import MODELS
from portal.reports.credits import ShownChain, shown_chain
from portal.reports.periods import EARLIEST_DATE, LATEST_DATE, Period, parse_period
from portal.reports.rollups import LEADS, aggregate
from portal.reports.tags import NONE_LABEL, lead_level, normalize_tag
from portal.tenancy import MAX_ID

PAGE_SIZE = 50
SYNC_STATES = (PENDING, SYNCED, FAILED, SKIPPED)
DEAL_STATES = (OPEN, WON, LOST, "none")
KINDS = ("", "unique", "repeat", "spam", "all")  # "" = everything but spam
_DIGITS = re.compile(r"[\d\s()+\-]{5,}")


class CursorError(ValueError):
    pass


TAG_FILTERS = ("source", "medium", "campaign", "content", "term", "landing_path", "referrer_domain")


@dataclass(frozen=True)
class LeadFilters:
    period: Period | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    sync_status: str | None = None
    deal_state: str | None = None
    kind: str = ""
    search: str = ""
    # The ROI report's other levels (a report row links here with its tags) and the attribution its tags are of.
    content: str | None = None
    term: str | None = None
    landing_path: str | None = None
    referrer_domain: str | None = None
    attribution: str = "last"
    # An attribution model of the ROI report (a row's link): the tag filters then match the leads with any credit
    # there under that model (portal.reports.credits), which under a split model is more leads than the row counts.
    model: str | None = None

    def as_args(self) -> dict:
        """The filters as query arguments (for links that keep them)."""
        args = {}
        if self.period is not None:
            args.update({"period": self.period.preset, "from": self.period.start.isoformat(),
                         "to": self.period.end.isoformat()})
        for name in TAG_FILTERS:
            value = getattr(self, name)
            if value is not None:
                args[name] = value or NONE_LABEL
        if self.attribution == "first":
            args["attribution"] = "first"
        if self.model:
            args["model"] = self.model
        for name, value in (("sync", self.sync_status), ("deal", self.deal_state), ("kind", self.kind),
                            ("q", self.search)):
            if value:
                args[name] = value
        return args


def parse_filters(args, timezone: str) -> LeadFilters:
    period = parse_period(args, timezone) if (args.get("period") or args.get("from")) else None

    def tag(name):
        value = args.get(name)
        if value is None or value == "":
            return None
        value = normalize_tag(value[:200])
        return "" if value == NONE_LABEL else value

    sync_status = args.get("sync") if args.get("sync") in SYNC_STATES else None
    deal_state = args.get("deal") if args.get("deal") in DEAL_STATES else None
    kind = args.get("kind") if args.get("kind") in KINDS else ""
    return LeadFilters(period, tag("source"), tag("medium"), tag("campaign"), sync_status, deal_state, kind,
                       (args.get("q") or "").replace("\x00", "").strip()[:100], tag("content"), tag("term"),
                       tag("landing_path"), tag("referrer_domain"),
                       "first" if args.get("attribution") == "first" else "last",
                       args.get("model") if args.get("model") in MODELS else None)


def _conditions(workspace_id: int, filters: LeadFilters) -> list:
    conditions = [Lead.workspace_id == workspace_id]
    if filters.period is not None:
        conditions += [Lead.created_at >= filters.period.starts_at, Lead.created_at < filters.period.ends_at]
    tags = {name: getattr(filters, name) for name in TAG_FILTERS if getattr(filters, name) is not None}
    if filters.model and tags:
        conditions.append(_credited_there(workspace_id, filters.model, tags))
    else:
        conditions += [lead_level(name, filters.attribution) == value for name, value in tags.items()]
    if filters.sync_status:
        conditions.append(Lead.sync_status == filters.sync_status)
    if filters.kind == "":
        conditions.append(Lead.is_spam.is_(False))
    elif filters.kind == "unique":
        conditions += [Lead.is_spam.is_(False), Lead.duplicate_of_id.is_(None)]
    elif filters.kind == "repeat":
        conditions.append(Lead.duplicate_of_id.is_not(None))
    elif filters.kind == "spam":
        conditions.append(Lead.is_spam.is_(True))
    if filters.deal_state:
        deals = select(Deal.id).where(Deal.workspace_id == workspace_id, Deal.lead_id == Lead.id,
                                      Deal.deleted.is_(False))
        if filters.deal_state == "none":
            conditions.append(~exists(deals))
        else:
            conditions.append(exists(deals.where(Deal.state == filters.deal_state)))
    if filters.search:
        conditions.append(_search_condition(filters.search))
    return conditions


def _search_condition(text: str):
    if "@" in text:
        return Lead.email == text.lower()
    if _DIGITS.fullmatch(text):
        digits = re.sub(r"\D", "", text)
        # Stored phones are E.164; a national 8XXXXXXXXXX (Russia) is +7XXXXXXXXXX.
        if len(digits) == 11 and digits.startswith("8"):
            digits = "7" + digits[1:]
        # Any part of the number: "916123" finds +79161234567. (Digits only, so no LIKE wildcard can slip in.)
        return Lead.phone.like("%" + digits + "%")
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return func.lower(Lead.name).like(pattern, escape="\\")


def encode_cursor(lead: Lead) -> str:
    raw = f"{lead.created_at.isoformat()}|{lead.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, lead_id = raw.split("|")
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None or not EARLIEST_DATE.year <= created_at.year <= LATEST_DATE.year:
            raise ValueError
        lead_id = int(lead_id)
        if not 0 < lead_id <= MAX_ID:
            raise ValueError
        return created_at, lead_id
    except (ValueError, UnicodeDecodeError) as error:
        raise CursorError("bad cursor") from error


@dataclass
class LeadPage:
    leads: list[Lead]
    deals: dict[int, Deal] = field(default_factory=dict)
    next_cursor: str | None = None
    deal_base_url: str | None = None


# With filters the planner cannot estimate (normalised tags, name search), PostgreSQL tends to sort every match
# instead of walking ix_leads_workspace_created backwards. Searching growing windows back in time keeps each query
# bounded: common matches are found in the first window, rare ones cost a wider scan only when needed.
SEARCH_WINDOWS_DAYS = (3, 30, 365, None)


def _is_filtered(filters: LeadFilters) -> bool:
    return any(getattr(filters, name) is not None for name in TAG_FILTERS) or bool(
        filters.sync_status or filters.deal_state or filters.search or filters.kind not in ("", "all"))


def lead_page(workspace_id: int, filters: LeadFilters, cursor: str | None = None,
              page_size: int = PAGE_SIZE) -> LeadPage:
    statement = select(Lead).where(*_conditions(workspace_id, filters))
    upper = None
    if cursor:
        created_at, lead_id = decode_cursor(cursor)
        statement = statement.where(tuple_(Lead.created_at, Lead.id) < tuple_(created_at, lead_id))
        upper = created_at
    statement = statement.order_by(Lead.created_at.desc(), Lead.id.desc())
    windows = SEARCH_WINDOWS_DAYS if _is_filtered(filters) else (None,)
    upper = upper or (filters.period.ends_at if filters.period else utcnow())
    leads: list[Lead] = []
    for days in windows:
        windowed = statement
        if days is not None:
            windowed = statement.where(Lead.created_at >= upper - timedelta(days=days))
        leads = list(db.session.scalars(windowed.limit(page_size + 1)))
        if len(leads) > page_size:
            break
    next_cursor = encode_cursor(leads[page_size - 1]) if len(leads) > page_size else None
    leads = leads[:page_size]
    return LeadPage(leads, latest_deals(workspace_id, [lead.id for lead in leads]), next_cursor,
                    deal_base_url(workspace_id))


def _credited_there(workspace_id: int, model: str, tags: dict[str, str]):
    """Leads with a touch of these tags that the model gives credit; a lead not attributed yet counts whole under its
    own touches (first-touch tags under the first model, last-touch under the others), as in the credit rollups."""
    weight = getattr(LeadCredit, CREDIT_WEIGHTS[model])
    credited = exists().where(LeadCredit.lead_id == Lead.id, LeadCredit.workspace_id == workspace_id, weight > 0,
                              *[getattr(LeadCredit, name) == value for name, value in tags.items()])
    attribution = "first" if model == "first" else "last"
    own = and_(~exists().where(LeadCredit.lead_id == Lead.id),
               *[lead_level(name, attribution) == value for name, value in tags.items()])
    return or_(credited, own)


def counted_by_rollups(filters: LeadFilters) -> bool:
    """A ROI report row's leads (tags, a period, first-time leads only, nothing else): the rollups count them
    exactly, at any size, so the page shows the report's very number."""
    return (filters.period is not None and filters.kind == "unique" and not filters.sync_status
            and not filters.deal_state and not filters.search and not filters.model)


# Counting stops here: an exact total of a million rows costs a scan per page view; past it the page says "more than".
COUNT_LIMIT = 10_000


def count_leads(workspace_id: int, filters: LeadFilters) -> int:
    """How many leads match the filters, up to COUNT_LIMIT + 1 (more than COUNT_LIMIT when it returns that),
    or exactly when the report's rollups hold the answer (see counted_by_rollups)."""
    if counted_by_rollups(filters):
        figures = aggregate(workspace_id, filters.attribution, filters.period, (),
                            {name: getattr(filters, name) for name in TAG_FILTERS
                             if getattr(filters, name) is not None})
        return figures[0][LEADS] if figures else 0
    matching = select(Lead.id).where(*_conditions(workspace_id, filters)).limit(COUNT_LIMIT + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(matching)) or 0


def latest_deals(workspace_id: int, lead_ids: list[int]) -> dict[int, Deal]:
    """The most recent non-deleted deal of each lead."""
    if not lead_ids:
        return {}
    deals: dict[int, Deal] = {}
    for deal in db.session.scalars(select(Deal).where(Deal.workspace_id == workspace_id, Deal.lead_id.in_(lead_ids),
                                                      Deal.deleted.is_(False)).order_by(Deal.created_at)):
        deals[deal.lead_id] = deal
    return deals


def deal_base_url(workspace_id: int) -> str | None:
    """`https://<account host>/leads/detail/` for the workspace's amoCRM account (http for dev hosts), from the
    account's current host (it changes when the account is renamed in amoCRM)."""
    base_domain = db.session.scalar(select(AmoCRMConnection.base_domain)
                                    .where(AmoCRMConnection.workspace_id == workspace_id))
    return regions.account_url(base_domain) + "/leads/detail/" if base_domain else None


def iter_leads(workspace_id: int, filters: LeadFilters, chunk: int = 1000):
    """Every lead matching the filters, newest first, read in keyset chunks (for the CSV)."""
    cursor = None
    while True:
        page = lead_page(workspace_id, filters, cursor, chunk)
        yield from ((lead, page.deals.get(lead.id)) for lead in page.leads)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
        db.session.expunge_all()


@dataclass
class LeadDetail:
    lead: Lead
    deals: list[Deal]
    duplicate_of: Lead | None
    timeline: list[SyncLogEntry]
    deal_base_url: str | None
    chain: ShownChain | None = None  # its visits with each one's credit under every attribution model


TIMELINE_LIMIT = 100


def lead_detail(lead: Lead) -> LeadDetail:
    deals = list(db.session.scalars(select(Deal).where(Deal.workspace_id == lead.workspace_id,
                                                       Deal.lead_id == lead.id).order_by(Deal.created_at)))
    duplicate_of = None
    if lead.duplicate_of_id:
        duplicate_of = db.session.scalar(select(Lead).where(Lead.workspace_id == lead.workspace_id,
                                                            Lead.id == lead.duplicate_of_id))
    return LeadDetail(lead, deals, duplicate_of, sync_timeline(lead), deal_base_url(lead.workspace_id),
                      shown_chain(lead))


def sync_timeline(lead: Lead) -> list[SyncLogEntry]:
    """Sync log entries naming this lead, oldest first. Entries are never older than the lead, which keeps the
    scan on ix_amocrm_sync_log_workspace_created short."""
    base = select(SyncLogEntry).where(SyncLogEntry.workspace_id == lead.workspace_id,
                                      SyncLogEntry.created_at >= lead.created_at)
    if db.engine.dialect.name == "postgresql":
        statement = base.where(SyncLogEntry.lead_ids.op("@>")(cast([lead.id], JSONB)))
        return list(db.session.scalars(statement.order_by(SyncLogEntry.created_at).limit(TIMELINE_LIMIT)))
    entries = db.session.scalars(base.order_by(SyncLogEntry.created_at).limit(20 * TIMELINE_LIMIT))
    return [entry for entry in entries if lead.id in (entry.lead_ids or [])][:TIMELINE_LIMIT]


def deal_link(base_url: str | None, amocrm_lead_id: int | None) -> str | None:
    return f"{base_url}{amocrm_lead_id}" if base_url and amocrm_lead_id else None


