"""Importing an ad account's spend: one `spend_imports` row per account and range of days, run by a job that takes
its id.

A run replaces its days: the account's rows of first..last are deleted and the platform's answer inserted in one
transaction, so running a range twice (a retry, the daily re-read of the trailing days, "Import now") never
doubles spend, and a failed run changes nothing. The rollup triggers see the DELETE and the INSERTs like any
other write. Backfills are split into ranges of RANGE_DAYS so one failing range leaves the others imported and is
retried alone. Outcomes: done (rows), waiting (RetryLater: `retry_at`, picked up again by the periodic job),
failed (the error, shown in Settings → Ad accounts; a revoked token also marks the connection).
"""
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import case, delete, func, insert, or_, select, true, update

from portal.adplatforms.base import AdPlatformError, CampaignDay, RetryLater, TokenRevoked
from portal.adplatforms.connections import (
    account_info,
    client_for,
    fresh_tokens,
    mark_account_revoked,
    mark_revoked,
    set_account_error,
    stored_account_tokens,
    tokens_for_account,
)
from portal.adplatforms.money import convert, parse_rates, rate_between
from portal.adplatforms.registry import platform
from portal.extensions import db
from portal.jobs.queues import ADSPEND, enqueue
from portal.models import AdAccount, AdCampaignTags, AdPlatformConnection, AdSpend, SpendImport, Workspace
from portal.models.ad_account import (
    BACKFILL,
    CAMPAIGN_BY_NAME,
    CONNECTED,
    DAILY,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    WAITING,
)
from portal.models.types import utcnow

RANGE_DAYS = 30
IMPORT_JOB = "portal.adplatforms.jobs.import_spend"
TAG_LENGTH = 200
UNEXPECTED = "unexpected"  # the error kind of a run stopped by a bug (logged), not by the platform

log = logging.getLogger(__name__)


def local_today(workspace: Workspace, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(ZoneInfo(workspace.timezone or "UTC")).date()


# -- queueing runs ---------------------------------------------------------------------------------------------

def queue_import(account: AdAccount, kind: str, first: date, last: date) -> list[SpendImport]:
    """Runs covering first..last (ranges of RANGE_DAYS), their jobs enqueued once the caller commits."""
    runs = []
    start = first
    while start <= last:
        end = min(start + timedelta(days=RANGE_DAYS - 1), last)
        run = SpendImport(workspace_id=account.workspace_id, ad_account_id=account.id, kind=kind, first_day=start,
                          last_day=end, status=QUEUED)
        db.session.add(run)
        runs.append(run)
        start = end + timedelta(days=1)
    db.session.flush()
    for run in runs:
        enqueue_run(run)
    return runs


def enqueue_run(run: SpendImport) -> None:
    enqueue(ADSPEND, IMPORT_JOB, run.id, job_id=f"spend-import-{run.id}",
            job_timeout=current_app.config["JOB_TIMEOUT_SECONDS"] + int(current_app.config["AD_REPORT_WAIT_SECONDS"]))


def queue_backfill(account: AdAccount, workspace: Workspace) -> list[SpendImport]:
    """The first import of an account: the last AD_IMPORT_BACKFILL_DAYS days up to today."""
    today = local_today(workspace)
    first = today - timedelta(days=current_app.config["AD_IMPORT_BACKFILL_DAYS"] - 1)
    account.last_daily_on = today
    return queue_import(account, BACKFILL, first, today)


def queue_daily(account: AdAccount, workspace: Workspace, today: date) -> list[SpendImport]:
    """The daily import: every day since the last daily one (at least the trailing AD_IMPORT_TRAILING_DAYS, which
    the platform may still correct) through today."""
    trailing = today - timedelta(days=current_app.config["AD_IMPORT_TRAILING_DAYS"])
    first = min(trailing, account.last_daily_on or trailing)
    first = max(first, today - timedelta(days=current_app.config["AD_IMPORT_BACKFILL_DAYS"] - 1))
    account.last_daily_on = today
    return queue_import(account, DAILY, first, today)


# -- running one -----------------------------------------------------------------------------------------------

def run_import(import_id: int) -> str:
    """Run one import: the platform's costs for the range replace the account's rows. Returns the outcome."""
    run = db.session.get(SpendImport, import_id)
    if run is None or run.status in (DONE, FAILED):
        return "skipped"
    account = db.session.get(AdAccount, run.ad_account_id)
    workspace = db.session.get(Workspace, run.workspace_id)
    run.status, run.started_at, run.attempts = RUNNING, utcnow(), run.attempts + 1
    db.session.commit()
    try:
        if account.connection_id is None or account.status != CONNECTED:
            raise TokenRevoked("The account's connection is not active; connect it again in Settings → Ad accounts.")
        entry = platform(account.platform)
        if entry is None:
            raise AdPlatformError(f"{account.platform} is not a known ad platform.")
        days = _fetch(account, entry, run.first_day, run.last_day)
        written = write_days(account, workspace, run.first_day, run.last_day, days)
    except RetryLater as exc:
        db.session.rollback()
        return _wait(run, account, exc)
    except TokenRevoked as exc:
        db.session.rollback()
        if account.status == CONNECTED and stored_account_tokens(account.id) is not None:
            mark_account_revoked(account.id, exc)  # the account's own grant: the connection's other accounts go on
        elif account.status == CONNECTED and account.connection_id:
            connection = db.session.get(AdPlatformConnection, account.connection_id)
            if connection is not None and connection.status == CONNECTED:
                mark_revoked(connection, exc)
        return _fail(run, account, exc)
    except AdPlatformError as exc:
        db.session.rollback()
        return _fail(run, account, exc)
    except Exception:
        db.session.rollback()
        _fail(run, account, AdPlatformError("An unexpected error stopped this import; it is logged for the "
                                            "operators."), kind=UNEXPECTED)
        raise
    run.status, run.rows, run.retry_at, run.finished_at = DONE, written, None, utcnow()
    run.error = run.error_kind = run.error_params = None
    account.last_import_at = utcnow()
    set_account_error(account, None)
    db.session.commit()
    log.info("spend import %s: %s rows for account %s (%s..%s)", run.id, written, account.id, run.first_day,
             run.last_day)
    return DONE


def _fetch(account: AdAccount, entry, first: date, last: date) -> list[CampaignDay]:
    """The platform's cost days, read with the account's tokens (its own, or its connection's). A token refused
    mid-read is looked up again once: another job may have refreshed it meanwhile, which kills the old one at
    once on VK Ads; the stored set is then the live one."""
    tokens = tokens_for_account(account.id)
    client = client_for(entry, account.include_vat)
    info = account_info(account)
    try:
        return client.campaign_days(tokens, info, first, last)
    except TokenRevoked:
        db.session.rollback()
        stored = stored_account_tokens(account.id)
        if stored is None:
            stored = fresh_tokens(account.connection_id)
        if stored.access_token == tokens.access_token:
            raise
        log.info("account %s: its token was refreshed by another job during the read; reading again", account.id)
        return client.campaign_days(stored, info, first, last)


def _wait(run: SpendImport, account: AdAccount, exc: RetryLater) -> str:
    if run.attempts >= current_app.config["AD_IMPORT_MAX_ATTEMPTS"]:
        return _fail(run, account, exc)
    run.status, run.error, run.error_kind, run.error_params = WAITING, str(exc), exc.kind, exc.params or None
    run.retry_at = utcnow() + timedelta(seconds=max(exc.retry_after, 1))
    db.session.commit()
    return WAITING


def _fail(run: SpendImport, account: AdAccount, exc: AdPlatformError, kind: str | None = None) -> str:
    run.status, run.retry_at, run.finished_at = FAILED, None, utcnow()
    run.error, run.error_kind, run.error_params = str(exc)[:2000], kind or exc.kind, exc.params or None
    set_account_error(account, exc)
    account.error_kind = run.error_kind
    db.session.commit()
    log.warning("spend import %s failed for account %s", run.id, account.id)
    return FAILED


def write_days(account: AdAccount, workspace: Workspace, first: date, last: date, days: list[CampaignDay]) -> int:
    """Replace the account's rows of first..last with `days` (not committed). Amounts are converted to the
    workspace's currency; MissingRate (an AdPlatformError) when no rate is configured."""
    rate = rate_between(account.currency, workspace.currency, parse_rates(current_app.config["AD_SPEND_RATES"]))
    overrides = campaign_overrides(account.id)
    totals: dict[tuple[date, str], dict] = {}
    for item in days:
        if not first <= item.day <= last:
            continue
        key = (item.day, str(item.campaign_id)[:64])
        row = totals.get(key)
        if row is None:  # a platform may split a campaign's day over rows: they add up
            source, medium, campaign = tags_for(account, overrides, key[1], item.campaign_name)
            row = totals[key] = {"workspace_id": account.workspace_id, "ad_account_id": account.id, "date": item.day,
                                 "campaign_id": key[1], "campaign_name": (item.campaign_name or "")[:255],
                                 "utm_source": source, "utm_medium": medium, "utm_campaign": campaign,
                                 "original_amount": 0, "original_currency": account.currency,
                                 "currency": workspace.currency, "vat_included": item.vat_included}
        row["original_amount"] += item.cost
    now = utcnow()
    for row in totals.values():
        row["amount"] = convert(row["original_amount"], rate)
        row["original_amount"] = convert(row["original_amount"], 1)
        row["created_at"] = row["updated_at"] = now
    db.session.execute(delete(AdSpend).where(AdSpend.ad_account_id == account.id, AdSpend.date >= first,
                                             AdSpend.date <= last))
    if totals:
        db.session.execute(insert(AdSpend), list(totals.values()))
    return len(totals)


# -- tags --------------------------------------------------------------------------------------------------------

def campaign_overrides(account_id: int) -> dict[str, tuple[str, str, str]]:
    return {row.campaign_id: (row.utm_source, row.utm_medium, row.utm_campaign)
            for row in db.session.scalars(select(AdCampaignTags).where(AdCampaignTags.ad_account_id == account_id))}


def tags_for(account: AdAccount, overrides: dict, campaign_id: str, campaign_name: str) -> tuple[str, str, str]:
    """A campaign's (source, medium, campaign): its override, else the account's source and medium with the
    campaign's id or name, as the owner chose to match the UTM templates of the ads."""
    if campaign_id in overrides:
        return overrides[campaign_id]
    campaign = campaign_name if account.campaign_tag == CAMPAIGN_BY_NAME and campaign_name else campaign_id
    # spaces only, as SQL's trim() in retag_account
    return account.utm_source[:TAG_LENGTH], account.utm_medium[:TAG_LENGTH], campaign.strip(" ")[:TAG_LENGTH]


def retag_account(account: AdAccount) -> int:
    """Give the account's stored rows the tags its mapping gives now (not committed): one UPDATE per campaign with
    an override and one for the rest, each touching only rows whose tags differ, so the rollup triggers see only
    real changes. The SQL mirrors `tags_for`. Returns how many rows changed."""
    overrides = campaign_overrides(account.id)
    changed = 0
    for campaign_id, (source, medium, campaign) in overrides.items():
        changed += _set_tags(account.id, AdSpend.campaign_id == campaign_id, source, medium, campaign)
    campaign_id = func.substr(func.trim(func.coalesce(AdSpend.campaign_id, "")), 1, TAG_LENGTH)
    if account.campaign_tag == CAMPAIGN_BY_NAME:
        name = func.substr(func.trim(AdSpend.campaign_name), 1, TAG_LENGTH)
        campaign = case((func.coalesce(AdSpend.campaign_name, "") != "", name), else_=campaign_id)
    else:
        campaign = campaign_id
    rest = func.coalesce(AdSpend.campaign_id, "").not_in(list(overrides)) if overrides else true()
    changed += _set_tags(account.id, rest, account.utm_source[:TAG_LENGTH], account.utm_medium[:TAG_LENGTH],
                         campaign)
    return changed


def _set_tags(account_id: int, rows, source: str, medium: str, campaign) -> int:
    result = db.session.execute(
        update(AdSpend).where(AdSpend.ad_account_id == account_id, rows,
                              or_(AdSpend.utm_source != source, AdSpend.utm_medium != medium,
                                  AdSpend.utm_campaign != campaign))
        .values(utm_source=source, utm_medium=medium, utm_campaign=campaign)
        .execution_options(synchronize_session=False))
    return result.rowcount
