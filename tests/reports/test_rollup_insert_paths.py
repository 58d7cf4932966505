"""The rollup triggers' INSERT paths (a lead's report and credit rows, a visit's credit row, written out as one
statement each for the intake and the beacon) write exactly what the general path and the rebuild write: every
kind of lead and visit the intake and the beacon store, then the rollups against the base tables and against a
rebuild from them."""
from datetime import date, timedelta

import pytest
from fixtures.reports import add_lead, at
from fixtures.support import workspace_of

from portal.extensions import db
from portal.models import Visit
from portal.reports import credits, rollups
from portal.reports.attribution import MODELS

D0 = date.today() - timedelta(days=5)


@pytest.mark.integration
def test_inserted_leads_and_visits_roll_up_as_the_rebuild_does(app, owner):
    ws = workspace_of(app, owner)
    plain = add_lead(app, ws, at(D0, 8), "google", "cpc", "brand")
    add_lead(app, ws, at(D0, 23), "  Yandex ", "CPC", "RSYA", first=("facebook", "social", "promo"),
             landing_page="https://Shop.example/Sale/?utm_source=yandex#top", referrer="https://www.ya.ru/search")
    add_lead(app, ws, at(D0, 9), "vk", "cpc", None, first=("vk", "cpc", None))
    add_lead(app, ws, at(D0, 10), None, None, None, visitor_id="v-1", visit_id="x-1")
    add_lead(app, ws, at(D0, 11), "google", "cpc", "brand", is_spam=True)
    add_lead(app, ws, at(D0, 12), "google", "cpc", "brand", is_test=True)
    add_lead(app, ws, at(D0, 13), "google", "cpc", "brand", duplicate_of_id=plain)
    with app.app_context():
        db.session.add_all([
            Visit(workspace_id=ws, visitor_id="v-1", visit_id="x-1", started_at=at(D0, 9), utm_source=" Google",
                  utm_medium="CPC", landing_page="https://shop.example/p?a=1", referrer="https://www.google.com/x"),
            Visit(workspace_id=ws, visitor_id="v-2", visit_id="x-2", started_at=at(D0, 23)),
            Visit(workspace_id=ws, visitor_id="v-3", visit_id="x-3", started_at=at(D0, 12),
                  landing_page="not a url", referrer="mailto:someone"),
        ])
        db.session.commit()

        assert rollups.check(ws) == []
        assert credits.check(ws) == []
        counted = {attribution: rollups.rollup_facts(ws, attribution) for attribution in ("last", "first")}
        assert sum(figures[0] for figures in counted["last"].values()) == 4  # spam, test and repeat leads: none
        by_model = {model: credits.credit_rollup_facts(ws, model) for model in MODELS}
        assert sum(figures[0] for figures in by_model["linear"].values()) == 3  # visits

        rollups.rebuild(ws)
        credits.rebuild(ws)
        assert {attribution: rollups.rollup_facts(ws, attribution) for attribution in ("last", "first")} == counted
        assert {model: credits.credit_rollup_facts(ws, model) for model in MODELS} == by_model
