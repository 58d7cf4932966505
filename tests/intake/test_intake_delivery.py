"""From a committed lead to a scheduled push: one waiting push per workspace, the sweeper, Redis outages."""
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from fixtures.intake import leads_of, make_workspace, post_lead
from fixtures.live_services import wait_until

from portal.amocrm.scheduling import PUSH_LEADS, push_job_id, push_started, schedule_push
from portal.extensions import db
from portal.jobs.queues import AMOCRM, get_queue
from portal.models import Lead
from portal.models.lead import PENDING, SKIPPED, SYNCED
from portal.models.types import utcnow


@pytest.fixture
def workspace(app):
    return make_workspace(app)


def waiting_pushes(app) -> list[tuple[str, str, tuple]]:
    with app.app_context():
        return [(job.id, job.func_name, job.args) for job in get_queue(AMOCRM).get_jobs()]


def age_leads(app, seconds: int, **where) -> None:
    with app.app_context():
        statement = db.update(Lead).values(created_at=utcnow() - timedelta(seconds=seconds))
        for column, value in where.items():
            statement = statement.where(getattr(Lead, column) == value)
        db.session.execute(statement)
        db.session.commit()


def test_a_new_lead_schedules_a_push_of_its_workspace(app, client, workspace):
    workspace_id, public_id = workspace
    assert post_lead(client, public_id, phone="+79991234567").status_code == 201
    assert waiting_pushes(app) == [(f"push-leads-{workspace_id}", PUSH_LEADS, (workspace_id,))]
    assert PUSH_LEADS == "portal.amocrm.jobs.push_leads" and push_job_id(workspace_id) == f"push-leads-{workspace_id}"


def test_a_burst_of_leads_waits_as_one_push(app, client, workspace):
    workspace_id, public_id = workspace
    for n in range(6):
        assert post_lead(client, public_id, email=f"lead{n}@example.com").status_code == 201
    assert len(leads_of(app, workspace_id)) == 6
    assert len(waiting_pushes(app)) == 1


def test_a_push_that_started_lets_the_next_lead_schedule_another(app, client, workspace):
    workspace_id, public_id = workspace
    post_lead(client, public_id, email="one@example.com")
    with app.app_context():
        get_queue(AMOCRM).empty()  # a worker took the job…
        push_started(workspace_id)  # …and push_leads began by clearing the marker, before reading leads
    post_lead(client, public_id, email="two@example.com")
    assert len(waiting_pushes(app)) == 1


def test_while_the_marker_lives_no_enqueue_is_tried_but_the_sweeper_still_schedules(app, client, workspace):
    workspace_id, public_id = workspace
    post_lead(client, public_id, email="one@example.com")
    with app.app_context():
        get_queue(AMOCRM).empty()  # the job left without clearing the marker (a crash, say)
    post_lead(client, public_id, email="two@example.com")
    assert waiting_pushes(app) == []  # the marker saved the round trips; it expires in seconds
    age_leads(app, 31)
    with app.app_context():
        from portal.amocrm.push_sweeper import sweep_pending_leads

        assert sweep_pending_leads() == [workspace_id]
    assert len(waiting_pushes(app)) == 1


def test_schedule_push_is_idempotent_while_a_push_waits(app_context, workspace):
    workspace_id, _ = workspace
    assert schedule_push(workspace_id) and schedule_push(workspace_id, force=True)
    assert get_queue(AMOCRM).count == 1


def test_spam_and_repeats_schedule_nothing(app, client, workspace):
    _, public_id = workspace
    post_lead(client, public_id, phone="+79991234567", lp_website="x")
    assert waiting_pushes(app) == []
    post_lead(client, public_id, phone="+79991234567")
    with app.app_context():
        get_queue(AMOCRM).empty()
        push_started(workspace[0])
    post_lead(client, public_id, phone="+79991234567")  # a repeat within the window
    assert waiting_pushes(app) == []


def test_sweeper_picks_workspaces_with_overdue_due_pending_leads(app, client, workspace, make_user):
    from fixtures.support import workspace_of

    from portal.amocrm.push_sweeper import sweep_pending_leads, workspaces_with_overdue_leads
    from portal.models import Workspace

    workspace_id, public_id = workspace
    quiet_id = workspace_of(app, make_user("quiet@example.com"))
    with app.app_context():
        quiet_public = db.session.get(Workspace, quiet_id).public_id
    post_lead(client, public_id, email="old@example.com")
    post_lead(client, quiet_public, email="fresh@example.com")
    age_leads(app, 60, workspace_id=workspace_id)
    with app.app_context():
        get_queue(AMOCRM).empty()
        assert workspaces_with_overdue_leads() == [workspace_id]  # the other one's lead is younger than 30 s
        assert sweep_pending_leads() == [workspace_id]
        assert [job.args for job in get_queue(AMOCRM).get_jobs()] == [(workspace_id,)]

        # Not due: a retry in the future; not pending: synced or skipped.
        db.session.execute(db.update(Lead).values(next_attempt_at=utcnow() + timedelta(minutes=5)))
        db.session.commit()
        assert workspaces_with_overdue_leads() == []
        db.session.execute(db.update(Lead).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert workspaces_with_overdue_leads() == [workspace_id]
        # A synced lead with a due time owes its deal the note of extra fields (`push.owed_notes`): swept too.
        db.session.execute(db.update(Lead).values(sync_status=SYNCED))
        db.session.commit()
        assert workspaces_with_overdue_leads(min_age_seconds=0) == [workspace_id, quiet_id]
        for status in (SYNCED, SKIPPED):
            db.session.execute(db.update(Lead).values(sync_status=status, next_attempt_at=None))
            db.session.commit()
            assert workspaces_with_overdue_leads() == []
        db.session.execute(db.update(Lead).values(sync_status=PENDING))
        db.session.commit()
        assert workspaces_with_overdue_leads(min_age_seconds=0) == [workspace_id, quiet_id]


def test_sweeper_is_a_periodic_job():
    from portal.periodic_jobs import PERIODIC_JOBS

    assert any(job.func == "portal.amocrm.jobs.sweep_pending_leads" and job.every_seconds <= 60
               for job in PERIODIC_JOBS)


def test_leads_sweep_command(app, client, workspace, runner):
    workspace_id, public_id = workspace
    post_lead(client, public_id, email="old@example.com")
    with app.app_context():
        get_queue(AMOCRM).empty()
    result = runner.invoke(args=["leads", "sweep"])
    assert result.exit_code == 0 and "pushes scheduled: 0" in result.output  # the lead is not 30 s old yet
    age_leads(app, 45)
    result = runner.invoke(args=["leads", "sweep"])
    assert result.exit_code == 0 and "pushes scheduled: 1" in result.output
    assert waiting_pushes(app) == [(f"push-leads-{workspace_id}", PUSH_LEADS, (workspace_id,))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, to stop and start again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.mark.integration
def test_redis_stopped_still_201_and_the_lead_is_pushed_once_it_is_back(database_schema, workspace, private_redis,
                                                                         caplog, monkeypatch):
    from fixtures.support import make_app

    from portal.amocrm.push_sweeper import sweep_pending_leads
    from portal.amocrm.scheduling import PUSHES

    # The scheduler warns of an outage once a minute per process: an earlier test's outage must not silence this one.
    monkeypatch.setattr(PUSHES, "_last_warning", float("-inf"))

    url = f"redis://127.0.0.1:{private_redis.port}/0"
    app = make_app(REDIS_URL=url, RATELIMIT_STORAGE_URI=url, LEAD_RATE_LIMIT_IP="1000 per minute")
    client = app.test_client()
    workspace_id, public_id = workspace
    assert post_lead(client, public_id, email="before@example.com").status_code == 201

    private_redis.stop()
    during = post_lead(client, public_id, email="during@example.com", headers={"Idempotency-Key": "outage-1"})
    assert during.status_code == 201 and during.get_json()["success"] is True
    assert post_lead(client, public_id, email="during@example.com",
                     headers={"Idempotency-Key": "outage-1"}).status_code == 200
    lead = next(lead for lead in leads_of(app, workspace_id) if lead.email == "during@example.com")
    assert lead.id == during.get_json()["leadId"] and lead.sync_status == PENDING
    # the push may be scheduled by the debounce's thread a moment after the answer
    assert wait_until(lambda: "Redis unreachable" in caplog.text or "Could not enqueue" in caplog.text, 5, 0.05)

    private_redis.start()  # back, empty: the push scheduled before the outage is gone with it
    age_leads(app, 31)
    with app.app_context():
        for _ in range(3):  # the first command after a restart may meet a stale pooled connection
            scheduled = sweep_pending_leads()
            if scheduled:
                break
        assert scheduled == [workspace_id]
        assert [(job.func_name, job.args) for job in get_queue(AMOCRM).get_jobs()] == [(PUSH_LEADS, (workspace_id,))]
    assert post_lead(client, public_id, email="after@example.com").status_code == 201
