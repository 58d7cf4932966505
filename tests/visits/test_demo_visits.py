"""Demo data with visits: a chain of visits behind each lead, many visitors who never convert, so CR1 shows."""
from collections import defaultdict
from datetime import timedelta

from fixtures.intake import make_workspace

from portal.extensions import db
from portal.models import Lead, Visit
from portal.reports.demo_data import generate, seed_demo_data


def test_each_lead_carries_its_visitor_and_last_visit_and_most_visitors_never_convert(app):
    workspace_id = make_workspace(app, "Demo visits")[0]
    with app.app_context():
        counts = generate(workspace_id, 200, days=60, seed=5)
        visits = db.session.scalars(db.select(Visit).where(Visit.workspace_id == workspace_id)).all()
        leads = db.session.scalars(db.select(Lead).where(Lead.workspace_id == workspace_id)).all()
    assert counts["visits"] == len(visits) > 0
    chains = defaultdict(list)
    for visit in visits:
        chains[visit.visitor_id].append(visit)
    for chain in chains.values():
        chain.sort(key=lambda visit: visit.started_at)
    by_visit = {visit.visit_id: visit for visit in visits}
    assert len(by_visit) == len(visits)  # visit ids are unique

    with_visitor = [lead for lead in leads if lead.visitor_id]
    assert len(with_visitor) >= len(leads) * 0.9  # all but the spam
    for lead in with_visitor:
        chain = chains[lead.visitor_id]
        visit = by_visit[lead.visit_id]
        assert visit.visitor_id == lead.visitor_id and visit is chain[-1]  # the form was sent in the last visit
        assert visit.started_at < lead.created_at and lead.created_at - chain[0].started_at < timedelta(days=15)
        assert chain[0].utm_source == lead.first_utm_source  # the first visit is the first touch
        tagged = [visit for visit in chain if visit.utm_source]
        if lead.utm_source:
            assert tagged[-1].utm_source == lead.utm_source and tagged[-1].utm_campaign == lead.utm_campaign

    converting = {lead.visitor_id for lead in with_visitor}
    assert len(chains) > 5 * len(converting)  # many visitors never send a form
    cr1 = len(leads) / len(visits)
    assert 0.02 < cr1 < 0.15, cr1
    assert any(len(chain) > 1 and chain[-1].started_at - chain[0].started_at > timedelta(days=1)
               for chain in chains.values())  # returns over days
    assert any(visit.utm_source and (visit.gclid or visit.yclid) for visit in visits)  # from ads, with click ids
    assert any(not visit.utm_source and not visit.referrer for visit in visits)  # direct returns
    assert any(not visit.utm_source and visit.referrer for visit in visits)  # organic referrers
    assert {visit.device for visit in visits} == {"desktop", "mobile", "tablet"}


def test_the_demo_seed_has_visits_and_stays_small(app):
    workspace_id = make_workspace(app, "Seed")[0]
    with app.app_context():
        counts = seed_demo_data(workspace_id)
    assert 2000 < counts["visits"] < 10_000


def test_no_visits_when_asked_for_none(app):
    workspace_id = make_workspace(app, "None")[0]
    with app.app_context():
        counts = generate(workspace_id, 50, days=30, seed=1, visitors_per_lead=0)
        assert counts["visits"] == 0 and db.session.scalar(db.select(db.func.count()).select_from(Visit)) == 0
        assert db.session.scalar(db.select(db.func.count()).where(Lead.visitor_id.is_not(None))) == 0
