"""What Settings → Ad accounts changes: an account's import and tags, per-campaign tags, the daily import hour,
"Import now". Each takes the workspace's rows (looked up by the view through portal.tenancy) and commits once."""
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.adplatforms import connections, importer, messages
from portal.adplatforms.base import AdPlatformError, RetryLater, TokenLimitReached
from portal.extensions import db
from portal.models import AdAccount, AdCampaignTags, AdSpend, SpendImport, Workspace
from portal.models.ad_account import CAMPAIGN_BY_ID, CAMPAIGN_BY_NAME, CONNECTED, MANUAL, QUEUED, RUNNING, WAITING

HISTORY_ROWS = 30


class AdAccountError(Exception):
    """A change that cannot be made; the message says why and what to do."""


def save_account_settings(account: AdAccount, workspace: Workspace, *, enabled: bool, utm_source: str,
                          utm_medium: str, campaign_tag: str, include_vat: bool) -> dict:
    """Returns what followed: rows re-tagged, runs queued (a newly enabled account's backfill, or a re-import
    when the VAT choice changed the figures)."""
    if campaign_tag not in (CAMPAIGN_BY_ID, CAMPAIGN_BY_NAME):
        raise AdAccountError(_("Choose whether utm_campaign is the campaign's id or its name."))
    if enabled and account.status != CONNECTED:
        raise AdAccountError(_("Reconnect this account's platform before importing its spend."))
    if enabled and not account.enabled:
        _obtain_account_tokens(account)
    newly_enabled = enabled and not account.enabled
    vat_changed = include_vat != account.include_vat
    account.enabled = enabled
    account.utm_source, account.utm_medium = utm_source.strip()[:200], utm_medium.strip()[:200]
    account.campaign_tag, account.include_vat = campaign_tag, include_vat
    db.session.flush()
    retagged = importer.retag_account(account)
    runs = []
    if newly_enabled and account.last_import_at is None:
        runs = importer.queue_backfill(account, workspace)
    elif enabled and (newly_enabled or vat_changed):
        runs = _reimport_imported_days(account, workspace)
    db.session.commit()
    return {"retagged": retagged, "runs": len(runs)}


def _obtain_account_tokens(account: AdAccount) -> None:
    """An account that needs tokens of its own (a VK Ads agency's client) gets them when it is turned on, so a
    refusal (VK's five-token limit) is shown now, with what to do, rather than in the first import. A platform
    that is only busy is left to the import, which obtains them then."""
    try:
        connections.tokens_for_account(account.id)
        if account.error_kind == TokenLimitReached.kind:  # the owner freed a slot: the old advice no longer holds
            connections.set_account_error(account, None)
    except RetryLater:
        db.session.rollback()
    except AdPlatformError as exc:
        db.session.rollback()
        connections.set_account_error(account, exc)
        db.session.commit()
        detail = messages.error_detail(exc.kind, str(exc))
        raise AdAccountError(messages.error_text(exc.kind, exc.params)
                             + (" " + _("The platform said: %(detail)s", detail=detail) if detail else "")) from exc


def _reimport_imported_days(account: AdAccount, workspace: Workspace) -> list[SpendImport]:
    today = importer.local_today(workspace)
    return importer.queue_import(account, MANUAL, today - timedelta(days=current_app.config[
        "AD_IMPORT_BACKFILL_DAYS"] - 1), today)


def import_now(account: AdAccount, workspace: Workspace) -> list[SpendImport]:
    """The trailing days again now (the daily import's range), unless runs of the account are still open."""
    if account.status != CONNECTED:
        raise AdAccountError(_("Reconnect this account's platform before importing its spend."))
    if not account.enabled:
        raise AdAccountError(_("Turn on the import of this account first."))
    busy = db.session.scalar(select(SpendImport.id).where(SpendImport.ad_account_id == account.id,
                                                          SpendImport.status.in_((QUEUED, RUNNING, WAITING))).limit(1))
    if busy:
        raise AdAccountError(_("An import of this account is already under way; its result appears below."))
    if account.last_import_at is None:
        runs = importer.queue_backfill(account, workspace)
    else:
        today = importer.local_today(workspace)
        first = today - timedelta(days=current_app.config["AD_IMPORT_TRAILING_DAYS"])
        runs = importer.queue_import(account, MANUAL, first, today)
    db.session.commit()
    return runs


def save_campaign_tags(account: AdAccount, campaign_id: str, utm_source: str, utm_medium: str,
                       utm_campaign: str) -> int:
    """Set one campaign's tags (empty medium / campaign: the account's medium, the campaign's id or name as the
    account says) and re-tag its stored rows. Returns rows re-tagged."""
    campaign_id = campaign_id.strip()[:64]
    default = importer.tags_for(account, {}, campaign_id, _campaign_name(account, campaign_id))
    row = db.session.scalar(select(AdCampaignTags).where(AdCampaignTags.ad_account_id == account.id,
                                                         AdCampaignTags.campaign_id == campaign_id))
    if row is None:
        row = AdCampaignTags(workspace_id=account.workspace_id, ad_account_id=account.id, campaign_id=campaign_id)
        db.session.add(row)
    row.utm_source = utm_source.strip()[:200]
    row.utm_medium = (utm_medium or "").strip()[:200] or default[1]
    row.utm_campaign = (utm_campaign or "").strip()[:200] or default[2]
    db.session.flush()
    changed = importer.retag_account(account)
    db.session.commit()
    return changed


def delete_campaign_tags(account: AdAccount, tags: AdCampaignTags) -> int:
    db.session.delete(tags)
    db.session.flush()
    changed = importer.retag_account(account)
    db.session.commit()
    return changed


def _campaign_name(account: AdAccount, campaign_id: str) -> str:
    from_rows = db.session.scalar(select(AdSpend.campaign_name).where(
        AdSpend.ad_account_id == account.id, AdSpend.campaign_id == campaign_id).limit(1))
    return from_rows or ""


def set_import_hour(workspace: Workspace, hour: int) -> None:
    workspace.ad_import_hour = hour
    db.session.commit()


def campaigns_seen(account: AdAccount) -> list[tuple[str, str]]:
    """(id, latest name) of the campaigns whose spend was imported, for the per-campaign tags table."""
    rows = db.session.execute(select(AdSpend.campaign_id, AdSpend.campaign_name)
                              .where(AdSpend.ad_account_id == account.id)
                              .order_by(AdSpend.campaign_id, AdSpend.date.desc())).all()
    seen: dict[str, str] = {}
    for campaign_id, name in rows:
        seen.setdefault(campaign_id, name or "")
    return sorted(seen.items(), key=lambda item: item[1].lower())


def history(workspace_id: int, account_id: int | None = None) -> list[SpendImport]:
    statement = select(SpendImport).where(SpendImport.workspace_id == workspace_id)
    if account_id is not None:
        statement = statement.where(SpendImport.ad_account_id == account_id)
    return list(db.session.scalars(statement.order_by(SpendImport.created_at.desc(), SpendImport.id.desc())
                                   .limit(HISTORY_ROWS)))
