"""Bugs the soak found, pinned down. Same-second webhooks: a deal created and won within one second gets `add`
(open) and `status` (won) events with equal `updated_at`; processed in the wrong order, the late `add` used to
reopen the won deal and its revenue vanished from the reports."""
from decimal import Decimal

import pytest
from fixtures.intake import make_workspace

from portal.amocrm.api.webhook_bodies import DealSnapshot
from portal.amocrm.deals import apply_deal
from portal.extensions import db
from portal.models import Deal

pytestmark = pytest.mark.integration

DEAL, OPEN_STATUS, T = 20000473, 50000093, 1795452698


def apply(app, workspace_id, snapshot):
    with app.app_context():
        outcome = apply_deal(workspace_id, snapshot)
        db.session.commit()
        sale = db.session.scalar(db.select(Deal).where(Deal.amocrm_lead_id == DEAL))
        return outcome.result, sale.state, sale.amount


def test_a_late_add_event_of_the_same_second_does_not_reopen_a_won_deal(app):
    workspace_id, _ = make_workspace(app)
    won = DealSnapshot(DEAL, "status", status_id=142, price=Decimal(3400), updated_at=T)
    add = DealSnapshot(DEAL, "add", status_id=OPEN_STATUS, price=Decimal(0), updated_at=T)
    assert apply(app, workspace_id, won) == ("created", "won", Decimal("3400.00"))
    assert apply(app, workspace_id, add) == ("stale", "won", Decimal("3400.00"))


def test_a_later_reopen_still_applies(app):
    workspace_id, _ = make_workspace(app)
    apply(app, workspace_id, DealSnapshot(DEAL, "status", status_id=142, price=Decimal(3400), updated_at=T))
    reopened = DealSnapshot(DEAL, "status", status_id=OPEN_STATUS, price=Decimal(3400), updated_at=T + 1)
    assert apply(app, workspace_id, reopened) == ("updated", "open", Decimal("3400.00"))
