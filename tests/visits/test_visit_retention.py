"""Retention: Settings → Workspace keeps visits for 30 to 1095 days; the daily job deletes older ones in batches."""
from datetime import timedelta

import pytest
from fixtures.intake import make_workspace, set_workspace
from fixtures.support import post_form

from portal.extensions import db
from portal.models import Visit, Workspace
from portal.models.types import utcnow
from portal.periodic_jobs import PERIODIC_JOBS
from portal.visits import retention


def add_visits(app, workspace_id: int, ages_in_days: list[float]) -> None:
    now = utcnow()
    with app.app_context():
        db.session.add_all(Visit(workspace_id=workspace_id, visitor_id=f"{workspace_id:032x}",
                                 visit_id=f"{workspace_id:08x}{index:024x}", started_at=now - timedelta(days=age))
                           for index, age in enumerate(ages_in_days))
        db.session.commit()


def ages(app, workspace_id: int) -> list[int]:
    now = utcnow()
    with app.app_context():
        started = db.session.scalars(db.select(Visit.started_at).where(Visit.workspace_id == workspace_id)
                                     .order_by(Visit.started_at.desc())).all()
        return [round((now - moment) / timedelta(days=1)) for moment in started]


def test_each_workspace_keeps_its_own_number_of_days(app):
    short_id, long_id = make_workspace(app, "Short")[0], make_workspace(app, "Long")[0]
    set_workspace(app, short_id, visit_retention_days=30)
    add_visits(app, short_id, [1, 29, 31, 400])
    add_visits(app, long_id, [1, 31, 394, 396, 1000])  # the default: 395 days
    with app.app_context():
        assert retention.prune_visits() == 4
    assert ages(app, short_id) == [1, 29]
    assert ages(app, long_id) == [1, 31, 394]


def test_a_big_prune_runs_in_bounded_batches(app, monkeypatch):
    workspace_id = make_workspace(app, "Big")[0]
    add_visits(app, workspace_id, [500] * 23 + [1])
    statements = []
    with app.app_context():
        from sqlalchemy import event

        def count(_conn, _cursor, statement, *_args):
            if statement.lstrip().upper().startswith("DELETE FROM VISITS"):
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            deleted = retention.prune_workspace_visits(workspace_id, utcnow() - timedelta(days=395), batch=5)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert deleted == 23 and len(statements) == 5  # 5 + 5 + 5 + 5 + 3: each a statement of its own
    assert ages(app, workspace_id) == [1]


def test_the_prune_is_a_daily_periodic_job():
    [job] = [job for job in PERIODIC_JOBS if job.func == "portal.visits.retention.prune_visits"]
    assert job.every_seconds == 24 * 3600


def test_settings_change_the_retention(app, owner_client, owner):
    response = post_form(owner_client, "/settings/", {"name": "Shop", "currency": "RUB", "timezone": "UTC",
                                                      "country": "RU", "visit_retention_days": "90"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(Workspace.visit_retention_days)).one() == 90


@pytest.mark.parametrize("value", ["29", "1096", "-5", "ninety", ""])
def test_settings_refuse_a_retention_out_of_range_with_a_clear_error(app, owner_client, value):
    response = post_form(owner_client, "/settings/", {"name": "Shop", "currency": "RUB", "timezone": "UTC",
                                                      "country": "RU", "visit_retention_days": value})
    assert response.status_code == 400
    assert "Keep visits for 30 to 1095 days." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(db.select(Workspace.visit_retention_days)).one() == 395


def test_the_settings_page_shows_the_retention_and_a_form_without_it_keeps_it(app, owner_client):
    page = owner_client.get("/settings/").get_data(as_text=True)
    assert 'name="visit_retention_days"' in page and 'value="395"' in page
    with app.app_context():
        db.session.execute(db.update(Workspace).values(visit_retention_days=200))
        db.session.commit()
    response = post_form(owner_client, "/settings/", {"name": "Shop", "currency": "RUB", "timezone": "UTC",
                                                      "country": "RU"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(Workspace.visit_retention_days)).one() == 200


def test_the_retention_label_and_error_are_translated(app, owner_client):
    page = owner_client.get("/settings/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Хранить визиты" in page
