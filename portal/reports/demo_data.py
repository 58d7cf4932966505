"""Synthetic but plausible leads, deals, visits and ad spend for demos and benchmarks.

Several sources with their own campaigns, conversion and deal size; weekly and yearly seasonality with growth;
a few tags written in other cases (" Google") to show case-insensitive grouping; spam, repeats, failed syncs;
deals won / lost / open, some not from our form (with and without UTM). Visits: each lead's visitor came one to
four times over up to two weeks (an ad, direct returns, a search engine's link), the lead carrying its visitor and
its last visit; many more visitors never send a form (`visitors_per_lead`), so visits → leads (CR1) is plausible.
On PostgreSQL rows go in with COPY, so a million leads take well under a minute (a few more with their visits);
elsewhere with executemany in chunks. The report rollups' triggers see COPY like any INSERT.
"""
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import AdSpend, Deal, Lead, Visit, Workspace
from portal.models.deal import LOST, LOST_STATUS_ID, OPEN, WON, WON_STATUS_ID
from portal.models.lead import FAILED, PENDING, SKIPPED, SYNCED
from portal.models.visit import DESKTOP, MOBILE, TABLET
from portal.reports.credits import attribute_backlog


@dataclass(frozen=True)
class Channel:
    source: str | None
    medium: str | None
    campaigns: tuple[str, ...]
    weight: float
    deal_size: int
    win_rate: float
    daily_budget: int


CHANNELS = (
    Channel("google", "cpc", ("brand", "generic_search", "remarketing", "competitors"), 0.27, 42000, 0.42, 9000),
    Channel("yandex", "cpc", ("brand_search", "rsya_banners", "smart_banners", "retargeting"), 0.30, 38000, 0.40,
            11000),
    Channel("facebook", "paid_social", ("lookalike_buyers", "video_views", "lead_form"), 0.12, 30000, 0.30, 6000),
    Channel("vk", "cpc", ("community_promo", "target_feed"), 0.09, 25000, 0.28, 4000),
    Channel("instagram", "social", ("stories", "influencer_spring"), 0.06, 28000, 0.25, 2500),
    Channel("email", "newsletter", ("weekly_digest", "spring_sale"), 0.06, 55000, 0.55, 0),
    Channel(None, None, (None,), 0.10, 45000, 0.45, 0),  # direct / untagged
)
FIRST_NAMES = ("Anna", "Ivan", "Maria", "Dmitry", "Olga", "Sergey", "Elena", "Alexey", "Natalia", "Pavel", "Irina",
               "Mikhail", "Tatiana", "Andrey", "Svetlana", "Nikolai", "Ekaterina", "Artem", "Yulia", "Roman")
LAST_NAMES = ("Ivanov", "Smirnov", "Kuznetsov", "Popov", "Vasiliev", "Petrov", "Sokolov", "Mikhailov", "Novikov",
              "Fedorov", "Morozov", "Volkov", "Alekseev", "Lebedev", "Semenov", "Egorov", "Pavlov", "Kozlov")
DOMAINS = ("example.com", "mail.example", "inbox.example", "corp.example")
CHUNK = 5000
# Visitors who never send a form, per lead: with ~1.6 visits each, visits → leads comes out at about 6 %.
VISITORS_PER_LEAD = 8.0
SEARCH_ENGINES = ("https://www.google.com/", "https://yandex.ru/", "https://www.bing.com/", "https://duckduckgo.com/")
DEVICES, DEVICE_WEIGHTS = (DESKTOP, MOBILE, TABLET), (0.52, 0.43, 0.05)
CLICK_IDS = {"google": "gclid", "yandex": "yclid", "facebook": "fbclid", "instagram": "fbclid"}
# One COPY per this many rows: bounds memory and each statement's queue of foreign-key checks.
COPY_CHUNK = 50_000
PIPELINE_ID = 1000


def _campaign_grid(channels, days: int, spend_rows: int) -> list[tuple[Channel, str]]:
    """(channel, campaign) pairs that carry spend; extra regional campaigns are added when more spend rows are
    asked for than days × base campaigns."""
    paid = [(channel, campaign) for channel in channels if channel.daily_budget for campaign in channel.campaigns]
    needed = math.ceil(spend_rows / max(days, 1))
    extra, index = [], 0
    while len(paid) + len(extra) < needed:
        channel = channels[index % 2]  # google, yandex
        extra.append((channel, f"geo_region_{index // 2 + 1:02d}"))
        index += 1
    return paid + extra


def _day_weights(days: int, today: date) -> list[float]:
    weights = []
    for offset in range(days):
        day = today - timedelta(days=days - 1 - offset)
        seasonal = 1 + 0.3 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 60) / 365)
        weekly = 0.6 if day.weekday() >= 5 else 1.0
        growth = 0.8 + 0.4 * offset / max(days - 1, 1)
        weights.append(seasonal * weekly * growth)
    return weights


def _reserve_ids(table: str, count: int) -> list[int]:
    """Ids taken from the table's sequence (PostgreSQL) or after its current maximum (single-writer SQLite)."""
    if db.engine.dialect.name == "postgresql":
        rows = db.session.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                       "FROM generate_series(1, :n)"), {"n": count})
        return [row[0] for row in rows]
    start = (db.session.scalar(text(f"SELECT max(id) FROM {table}")) or 0) + 1
    return list(range(start, start + count))


def _bulk_insert(model, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    if db.engine.dialect.name == "postgresql":
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    for start in range(0, len(rows), CHUNK):
        db.session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in rows[start:start + CHUNK]])


LEAD_COLUMNS = ["id", "workspace_id", "name", "phone", "email", "message", "utm_source", "utm_medium",
                "utm_campaign", "first_utm_source", "first_utm_medium", "first_utm_campaign", "landing_page",
                "is_spam", "duplicate_of_id", "sync_status", "sync_attempts", "amocrm_lead_id", "last_error",
                "created_at", "synced_at", "visitor_id", "visit_id"]
VISIT_COLUMNS = ["workspace_id", "visitor_id", "visit_id", "started_at", "utm_source", "utm_medium", "utm_campaign",
                 "gclid", "yclid", "fbclid", "referrer", "landing_page", "device", "created_at"]
DEAL_COLUMNS = ["workspace_id", "amocrm_lead_id", "lead_id", "name", "pipeline_id", "status_id", "state", "amount",
                "currency", "closed_at", "deleted", "amocrm_updated_at", "utm_source", "utm_medium", "utm_campaign",
                "created_at", "updated_at"]


def generate(workspace_id: int, leads: int, deals: int | None = None, spend_rows: int | None = None,
             days: int = 365, seed: int | None = None, visitors_per_lead: float = VISITORS_PER_LEAD) -> dict:
    """Add synthetic data to a workspace; returns the counts. Commits once at the end."""
    rng = random.Random(seed)
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None:
        raise ValueError(f"no workspace {workspace_id}")
    deals = leads // 10 if deals is None else deals
    spend_rows = min(20000, days * 20) if spend_rows is None else spend_rows
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    grid = _campaign_grid(CHANNELS, days, spend_rows)
    campaigns_of = {channel: [c for ch, c in grid if ch is channel] or list(channel.campaigns) for channel in CHANNELS}
    channel_weights = [channel.weight for channel in CHANNELS]

    # Leads, oldest first, so ids follow time as they do in production.
    day_offsets = sorted(rng.choices(range(days), weights=_day_weights(days, today), k=leads))
    lead_ids = _reserve_ids("leads", leads)
    deal_base = (db.session.scalar(select(func.max(Deal.amocrm_lead_id)).where(Deal.workspace_id == workspace_id))
                 or 30_000_000) + 1
    lead_rows, lead_meta, visit_rows, visit_count = [], [], [], 0
    for index, offset in enumerate(day_offsets):
        channel = rng.choices(CHANNELS, weights=channel_weights)[0]
        campaign = rng.choice(campaigns_of[channel])
        source = channel.source
        if source == "google" and rng.random() < 0.05:
            source = rng.choice(("Google", " google"))  # the tag as some ads write it
        first = (source, channel.medium, campaign)
        if rng.random() < 0.35:
            other = rng.choices(CHANNELS, weights=channel_weights)[0]
            first = (other.source, other.medium, rng.choice(other.campaigns))
        created_at = (datetime.combine(today - timedelta(days=days - 1 - offset), datetime.min.time(), UTC)
                      + timedelta(seconds=rng.randint(5 * 3600, 21 * 3600)))
        created_at = min(created_at, now)
        is_spam = rng.random() < 0.02
        duplicate_of = lead_ids[index - rng.randint(1, min(index, 200))] if index and rng.random() < 0.04 else None
        first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        roll = rng.random()
        if is_spam or duplicate_of:
            status, attempts, error = SKIPPED, 0, None
        elif roll < 0.03:
            status, attempts, error = FAILED, 5, "amoCRM answered 400: field values rejected"
        elif roll < 0.06 or created_at > now - timedelta(minutes=10):
            status, attempts, error = PENDING, 0, None
        else:
            status, attempts, error = SYNCED, 1, None
        amocrm_id = deal_base + index if status == SYNCED else None
        visitor_id = visit_id = None
        if visitors_per_lead and not is_spam:  # spam comes from scripts that run no snippet
            chain = _lead_chain(rng, workspace_id, created_at, first, (source, channel.medium, campaign))
            visitor_id, visit_id = chain[-1][1], chain[-1][2]
            visit_rows += chain
        lead_rows.append((
            lead_ids[index], workspace_id, f"{first_name} {last_name}", f"+79{rng.randint(0, 999_999_999):09d}",
            f"{first_name.lower()}.{last_name.lower()}{rng.randint(1, 9999)}@{rng.choice(DOMAINS)}",
            "Please call me back", source, channel.medium, campaign, *first,
            f"https://shop.example/{campaign or 'home'}", is_spam, duplicate_of, status, attempts, amocrm_id, error,
            created_at, created_at + timedelta(seconds=3) if status == SYNCED else None, visitor_id, visit_id))
        if status == SYNCED:
            lead_meta.append((index, channel, created_at))
        if len(lead_rows) >= COPY_CHUNK:
            _bulk_insert(Lead, LEAD_COLUMNS, lead_rows)
            lead_rows = []
        if len(visit_rows) >= COPY_CHUNK:
            _bulk_insert(Visit, VISIT_COLUMNS, visit_rows)
            visit_count, visit_rows = visit_count + len(visit_rows), []
    _bulk_insert(Lead, LEAD_COLUMNS, lead_rows)

    # Visitors who never send a form.
    visitor_days = rng.choices(range(days), weights=_day_weights(days, today), k=int(leads * visitors_per_lead))
    for offset in visitor_days:
        day = datetime.combine(today - timedelta(days=days - 1 - offset), datetime.min.time(), UTC)
        visit_rows += _browsing_chain(rng, workspace_id, day + timedelta(seconds=rng.randint(6 * 3600, 23 * 3600)),
                                      now)
        if len(visit_rows) >= COPY_CHUNK:
            _bulk_insert(Visit, VISIT_COLUMNS, visit_rows)
            visit_count, visit_rows = visit_count + len(visit_rows), []
    _bulk_insert(Visit, VISIT_COLUMNS, visit_rows)
    visit_count += len(visit_rows)

    # Deals: most from our synced leads, the rest made in amoCRM directly (some with UTM, most without).
    from_form = min(int(deals * 0.95), len(lead_meta))
    deal_rows = []
    for index, channel, created_at in rng.sample(lead_meta, from_form):
        deal_rows.append(_deal_row(rng, workspace_id, deal_base + index, lead_ids[index], channel, created_at, now,
                                   workspace.currency, (None, None, None)))
    external_base = deal_base + leads + 1
    for number in range(deals - from_form):
        channel = rng.choices(CHANNELS, weights=channel_weights)[0]
        created_at = now - timedelta(days=rng.randint(0, days - 1), seconds=rng.randint(0, 86399))
        tags = (channel.source, channel.medium, rng.choice(channel.campaigns)) if rng.random() < 0.3 else \
            (None, None, None)
        deal_rows.append(_deal_row(rng, workspace_id, external_base + number, None, channel, created_at, now,
                                   workspace.currency, tags))
    for start in range(0, len(deal_rows), COPY_CHUNK):
        _bulk_insert(Deal, DEAL_COLUMNS, deal_rows[start:start + COPY_CHUNK])

    # Spend: every (day, paid campaign) of the grid, down-sampled to the requested number of rows.
    cells = [(offset, channel, campaign) for offset in range(days) for channel, campaign in grid]
    if len(cells) > spend_rows:
        cells = rng.sample(cells, spend_rows)
    weights = _day_weights(days, today)
    spend = []
    for offset, channel, campaign in cells:
        per_campaign = channel.daily_budget / len(channel.campaigns)
        amount = Decimal(per_campaign * weights[offset] * rng.uniform(0.7, 1.3)).quantize(Decimal("0.01"))
        spend.append({"workspace_id": workspace_id, "date": today - timedelta(days=days - 1 - offset),
                      "utm_source": channel.source or "", "utm_medium": channel.medium or "",
                      "utm_campaign": campaign or "", "amount": amount, "currency": workspace.currency})
    _upsert_spend(spend)
    db.session.commit()
    return {"leads": leads, "deals": len(deal_rows), "spend_rows": len(spend), "visits": visit_count}


def _new_id(rng) -> str:
    return f"{rng.getrandbits(128):032x}"


def _visit(rng, workspace_id: int, visitor_id: str, started_at: datetime, tags=(None, None, None),
           referrer: str | None = None) -> tuple:
    """A visits row (VISIT_COLUMNS): an ad's tags (with its click id, now and then), a referrer, or neither."""
    source, medium, campaign = tags
    click = CLICK_IDS.get((source or "").strip().lower()) if medium and rng.random() < 0.6 else None
    click_ids = [_new_id(rng)[:24] if name == click else None for name in ("gclid", "yclid", "fbclid")]
    query = f"?utm_source={source.strip()}&utm_medium={medium}&utm_campaign={campaign}" if source else ""
    landing = f"https://shop.example/{campaign or 'home'}{query}"
    return (workspace_id, visitor_id, _new_id(rng), started_at, source, medium, campaign, *click_ids, referrer,
            landing, rng.choices(DEVICES, weights=DEVICE_WEIGHTS)[0], started_at)


def _lead_chain(rng, workspace_id: int, created_at: datetime, first: tuple, last: tuple) -> list[tuple]:
    """A converting visitor's visits, oldest first; the last one is the visit the form was sent in. As the snippet
    sees it: the first visit carries the first touch; when the last campaign differs, it brought the visitor back
    just before the lead; direct returns (no tags, no referrer) between keep the last campaign."""
    visitor_id = _new_id(rng)
    returns = rng.choices((0, 1, 2, 3), weights=(0.45, 0.3, 0.15, 0.1))[0]
    changed = first != last
    count = 1 + returns + changed
    span = timedelta(days=rng.uniform(0.2, 14)) if count > 1 else timedelta(0)
    moments = sorted(created_at - timedelta(minutes=rng.randint(2, 40)) - span * rng.random()
                     for _ in range(count - 1)) if count > 1 else []
    moments.append(created_at - timedelta(minutes=rng.randint(2, 40)) if not moments else
                   max(moments[-1] + timedelta(minutes=31), created_at - timedelta(minutes=rng.randint(2, 40))))
    moments = [min(moment, created_at - timedelta(minutes=1)) for moment in moments]
    first_referrer = rng.choice(SEARCH_ENGINES) if first[0] is None and rng.random() < 0.5 else None
    chain = [_visit(rng, workspace_id, visitor_id, moments[0], first, first_referrer)]
    for moment in moments[1:-1] if changed else moments[1:]:
        chain.append(_visit(rng, workspace_id, visitor_id, moment))
    if changed:
        chain.append(_visit(rng, workspace_id, visitor_id, moments[-1], last))
    return chain


def _browsing_chain(rng, workspace_id: int, started_at: datetime, now: datetime) -> list[tuple]:
    """A visitor who never sends a form: an ad, a search engine or a direct arrival, and sometimes returns."""
    visitor_id = _new_id(rng)
    channel = rng.choices(CHANNELS, weights=[channel.weight for channel in CHANNELS])[0]
    if channel.source:
        first = _visit(rng, workspace_id, visitor_id, started_at,
                       (channel.source, channel.medium, rng.choice(channel.campaigns)))
    else:
        first = _visit(rng, workspace_id, visitor_id, started_at,
                       referrer=rng.choice(SEARCH_ENGINES) if rng.random() < 0.6 else None)
    chain = [first]
    moment = started_at
    for _ in range(rng.choices((0, 1, 2, 3), weights=(0.6, 0.25, 0.1, 0.05))[0]):
        moment += timedelta(hours=rng.uniform(0.6, 240))
        if moment >= now:
            break
        roll = rng.random()
        referrer = rng.choice(SEARCH_ENGINES) if 0.7 <= roll < 0.9 else None
        tags = (channel.source, channel.medium, rng.choice(channel.campaigns)) if roll >= 0.9 and channel.source \
            else (None, None, None)
        chain.append(_visit(rng, workspace_id, visitor_id, moment, tags, referrer))
    return chain


def _deal_row(rng, workspace_id, amocrm_id, lead_id, channel, created_at, now, currency, tags):
    age_days = (now - created_at).days
    roll = rng.random()
    open_share = 0.7 if age_days < 14 else 0.12
    amount = Decimal(int(rng.lognormvariate(math.log(channel.deal_size), 0.5)) // 100 * 100)
    if roll < open_share:
        state, status_id, closed_at = OPEN, 10_000 + rng.randint(1, 4), None
    else:
        state = WON if rng.random() < channel.win_rate else LOST
        status_id = WON_STATUS_ID if state == WON else LOST_STATUS_ID
        closed_at = min(created_at + timedelta(days=rng.expovariate(1 / 12), seconds=rng.randint(0, 86399)), now)
    updated = closed_at or created_at
    return (workspace_id, amocrm_id, lead_id, f"Deal #{amocrm_id}", PIPELINE_ID, status_id, state,
            amount, currency, closed_at, False, int(updated.timestamp()), *tags,
            created_at, updated)


def _upsert_spend(rows: list[dict]) -> None:
    if not rows:
        return
    dialect_insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), CHUNK):
        statement = dialect_insert(AdSpend).values(rows[start:start + CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "date", "utm_source", "utm_medium", "utm_campaign"],
            index_where=AdSpend.ad_account_id.is_(None),  # the partial unique index of typed and CSV rows
            set_={"amount": statement.excluded.amount})
        db.session.execute(statement)


def seed_demo_data(workspace_id: int, leads: int = 300) -> dict:
    """A small, fixed set so the demo's first screen is not empty (90 days), its leads attributed over their visits
    (the periodic attribution looks only at recent leads)."""
    counts = generate(workspace_id, leads, deals=max(leads // 4, 1), spend_rows=600, days=90, seed=8)
    attribute_backlog(workspace_id)
    return counts

