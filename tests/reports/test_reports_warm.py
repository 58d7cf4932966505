"""The report cache is warmed in the background: after the warm-up a report computes nothing on request."""
from datetime import timedelta

import pytest
from fixtures.sync import add_leads

from portal.extensions import db
from portal.models import Workspace


@pytest.mark.integration
def test_after_the_warm_up_a_full_year_report_computes_nothing(app, monkeypatch):
    from portal.reports import rollups
    from portal.reports.cache_warmer import warm_report_caches, warm_workspace
    from portal.reports.periods import today_in

    with app.app_context():
        workspace = Workspace(name="Warm")
        db.session.add(workspace)
        db.session.commit()
        workspace_id, timezone = workspace.id, workspace.timezone
    add_leads(app, workspace_id, 5)
    with app.app_context():
        assert warm_report_caches() == 1
        assert warm_workspace(workspace_id) > 0
        computed = []
        original = rollups.compute_days
        monkeypatch.setattr(rollups, "compute_days", lambda *args: computed.append(args) or original(*args))
        today = today_in(timezone)
        days = rollups.load_days(workspace_id, "last", timezone, today - timedelta(days=365), today - timedelta(days=1),
                                 today)
        assert computed == []  # every past day of the year came from the cache
        assert len(days) == 365
