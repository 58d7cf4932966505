"""Helpers for the reports tests: rows written straight to the database, in a known workspace."""
from datetime import UTC, date, datetime
from decimal import Decimal

from portal.extensions import db
from portal.models import AdSpend, Deal, Lead

NOW = datetime.now(UTC)


def at(day: date, hour: int = 12) -> datetime:
    """Noon UTC of a day: inside that local day for Europe/Moscow (the default workspace time zone)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def add_lead(app, workspace_id: int, created: datetime, source=None, medium=None, campaign=None, first=None,
             **fields) -> int:
    with app.app_context():
        lead = Lead(workspace_id=workspace_id, name=fields.pop("name", "Test Lead"), phone=fields.pop("phone", None),
                    email=fields.pop("email", None), utm_source=source, utm_medium=medium, utm_campaign=campaign,
                    created_at=created, **fields)
        if first:
            lead.first_utm_source, lead.first_utm_medium, lead.first_utm_campaign = first
        db.session.add(lead)
        db.session.commit()
        return lead.id


_deal_numbers = iter(range(5_000_000, 6_000_000))


def add_sale(app, workspace_id: int, lead_id: int | None, state: str, amount, created: datetime,
             closed: datetime | None = None, tags=(None, None, None), deleted: bool = False) -> int:
    with app.app_context():
        sale = Deal(workspace_id=workspace_id, amocrm_lead_id=next(_deal_numbers), lead_id=lead_id, state=state,
                    amount=Decimal(str(amount)), created_at=created, closed_at=closed, deleted=deleted,
                    utm_source=tags[0], utm_medium=tags[1], utm_campaign=tags[2])
        db.session.add(sale)
        db.session.commit()
        return sale.id


def add_spend(app, workspace_id: int, day: date, source, medium, campaign, amount) -> int:
    with app.app_context():
        spend = AdSpend(workspace_id=workspace_id, date=day, utm_source=source, utm_medium=medium,
                        utm_campaign=campaign, amount=Decimal(str(amount)))
        db.session.add(spend)
        db.session.commit()
        return spend.id
