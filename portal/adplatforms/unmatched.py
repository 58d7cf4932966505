"""Spend no lead can match: the (source, medium, campaign) combinations of a period's spend that no lead of the
period carries (last-touch or first-touch tags, compared as the reports compare them: trimmed, lower-case). Such
spend shows in the ROI report as cost without leads; usually a UTM template and the ad account's mapping disagree
(id versus name, "cpc" versus "ppc"), which the owner fixes in Settings → Ad accounts."""
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, exists, func, or_, select

from portal.extensions import db
from portal.models import AdAccount, AdSpend, Lead
from portal.reports.periods import Period

LIMIT = 500


@dataclass
class UnmatchedSpend:
    utm_source: str
    utm_medium: str
    utm_campaign: str
    amount: Decimal
    days: int
    ad_account_id: int | None
    ad_account_name: str | None
    campaign_name: str | None


def _tag(column):
    return func.lower(func.trim(func.coalesce(column, "")))


def unmatched_spend(workspace_id: int, period: Period) -> list[UnmatchedSpend]:
    def carried_by(source, medium, campaign):
        return and_(_tag(source) == _tag(AdSpend.utm_source), _tag(medium) == _tag(AdSpend.utm_medium),
                    _tag(campaign) == _tag(AdSpend.utm_campaign))

    lead_matches = exists().where(
        Lead.workspace_id == workspace_id, Lead.created_at >= period.starts_at, Lead.created_at < period.ends_at,
        or_(carried_by(Lead.utm_source, Lead.utm_medium, Lead.utm_campaign),
            carried_by(Lead.first_utm_source, Lead.first_utm_medium, Lead.first_utm_campaign)))
    statement = (
        select(AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign, func.sum(AdSpend.amount),
               func.count(func.distinct(AdSpend.date)), AdSpend.ad_account_id, func.max(AdAccount.name),
               func.max(AdSpend.campaign_name))
        .outerjoin(AdAccount, AdAccount.id == AdSpend.ad_account_id)
        .where(AdSpend.workspace_id == workspace_id, AdSpend.date >= period.start, AdSpend.date <= period.end,
               ~lead_matches)
        .group_by(AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign, AdSpend.ad_account_id)
        .order_by(func.sum(AdSpend.amount).desc()).limit(LIMIT))
    return [UnmatchedSpend(*row[:3], Decimal(row[3] or 0), row[4], row[5], row[6], row[7])
            for row in db.session.execute(statement)]
