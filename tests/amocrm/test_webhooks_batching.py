"""Webhook events processed per workspace in batches, and the cheap scheduling protocol behind it."""
from decimal import Decimal

import pytest
from fixtures.webhooks import amocrm_holds_what_bodies_say, deal_pairs, make_workspace, post_webhook, webhook_body
from sqlalchemy import event, func, select, text

from portal.amocrm import inbox as services
from portal.amocrm import jobs, scheduling, subscription
from portal.extensions import db
from portal.jobs.queues import WEBHOOKS, get_queue
from portal.models import Deal, SyncLogEntry, WebhookEvent

T0 = 1704912474


@pytest.fixture(autouse=True)
def amocrm(monkeypatch):
    """These tests are about applying deals: amoCRM holds what the bodies say (reading is tested elsewhere)."""
    amocrm_holds_what_bodies_say(monkeypatch)


@pytest.fixture
def workspace(app):
    return make_workspace(app)


def post(client, workspace, *pair_lists) -> int:
    response = post_webhook(client, workspace["url"], webhook_body(*pair_lists))
    assert response.status_code == 200, response.json
    return response.json["event_id"]


def statuses(app) -> dict[int, str]:
    with app.app_context():
        rows = db.session.execute(select(WebhookEvent.id, WebhookEvent.status)).all()
        db.session.rollback()
        return dict(rows)


def queued(app) -> list:
    with app.app_context():
        return [(job.func_name, job.args) for job in get_queue(WEBHOOKS).get_jobs()]


def test_one_job_drains_every_event_of_the_workspace_in_order(app, client, workspace):
    # Out of order and repeated: the newest state of each deal wins, in any batch size.
    post(client, workspace, deal_pairs("status", 1, status_id=142, price=100, updated_at=T0 + 10))
    post(client, workspace, deal_pairs("update", 1, price=50, updated_at=T0))  # older: ignored
    post(client, workspace, deal_pairs("add", 2, price=7, updated_at=T0))
    post(client, workspace, deal_pairs("update", 2, price=9, updated_at=T0 + 1), deal_pairs("add", 3, index=0))
    assert queued(app) == [(scheduling.PROCESS_EVENTS, (workspace["id"],))]  # one job for the burst
    with app.app_context():
        processed, more = services.process_workspace_events(workspace["id"], batch_size=3)
        assert (processed, more) == (4, False)
        amounts = dict(db.session.execute(select(Deal.amocrm_lead_id, Deal.amount)).all())
        assert amounts == {1: Decimal(100), 2: Decimal(9), 3: Decimal(0)}
        assert db.session.scalar(select(func.count(SyncLogEntry.id))) == 4  # one log line per event
        db.session.rollback()
    assert set(statuses(app).values()) == {"processed"}


def test_a_failing_event_does_not_hold_back_its_batch(app, client, workspace, monkeypatch):
    good = post(client, workspace, deal_pairs("add", 10, price=1))
    bad = post(client, workspace, deal_pairs("add", 11, price=2))
    later = post(client, workspace, deal_pairs("add", 12, price=3))
    real = services.apply_deals

    def flaky(workspace_id, snapshots, *args, **kwargs):
        if any(snapshot.deal_id == 11 for snapshot in snapshots):
            raise RuntimeError("bad deal")
        return real(workspace_id, snapshots, *args, **kwargs)

    monkeypatch.setattr(services, "apply_deals", flaky)
    with app.app_context():
        assert services.process_events(workspace["id"], [good, bad, later]) == 2
        event = db.session.get(WebhookEvent, bad)
        assert event.attempts == 1 and "bad deal" in event.error
        db.session.rollback()
    assert statuses(app) == {good: "processed", bad: "received", later: "processed"}
    with app.app_context():  # tried once per run: the drain does not spin on it
        assert services.process_workspace_events(workspace["id"]) == (0, False)


def test_the_job_clears_the_marker_first_so_later_events_schedule_again(app, client, workspace, redis_client):
    post(client, workspace, deal_pairs("add", 20))
    marker = scheduling.EVENT_PROCESSING.marker(workspace["id"])
    assert redis_client.exists(marker)
    with app.app_context():
        get_queue(WEBHOOKS).empty()
        assert jobs.process_workspace_events(workspace["id"]) == 1
    assert not redis_client.exists(marker)
    post(client, workspace, deal_pairs("add", 21))  # arrives after the job: a new job, not a lost event
    assert queued(app) == [(scheduling.PROCESS_EVENTS, (workspace["id"],))]


def test_redis_down_stores_the_event_and_the_sweeper_schedules_it(app, client, workspace, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def down(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(app.extensions["leadpath_redis"], "set", down)
    monkeypatch.setattr("portal.redis_direct.DirectCommands.execute", down)  # the scheduling marker's SET
    event_id = post(client, workspace, deal_pairs("add", 30))
    assert statuses(app) == {event_id: "received"} and queued(app) == []
    monkeypatch.undo()
    with app.app_context():
        db.session.execute(text("UPDATE webhook_events SET received_at = received_at - interval '5 minutes'")
                           if db.engine.dialect.name == "postgresql" else
                           text("UPDATE webhook_events SET received_at = datetime(received_at, '-5 minutes')"))
        db.session.commit()
        assert services.requeue_stale_events() == 1
    assert queued(app) == [(scheduling.PROCESS_EVENTS, (workspace["id"],))]


@pytest.mark.integration
def test_the_fast_commit_setting_stays_inside_its_own_statement(app, client, workspace):
    """synchronous_commit = off (the operator's opt-out) is local to the event INSERT: the pooled connection keeps
    the server default."""
    app.config["WEBHOOK_SYNCHRONOUS_COMMIT"] = False
    post(client, workspace, deal_pairs("add", 40))
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only")
        with db.engine.connect() as connection:
            assert connection.scalar(text("SHOW synchronous_commit")) == "on"


def test_a_rotated_secret_is_refused_at_once_despite_the_cache(app, client, workspace):
    post(client, workspace, deal_pairs("add", 50))  # caches the workspace
    with app.app_context():
        subscription.rotate_webhook_secret(workspace["id"])
    response = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 51)))
    assert response.status_code == 404


@pytest.mark.parametrize("synchronous", [True, False])
def test_events_commit_durably_unless_the_operator_opts_out(app, client, workspace, synchronous):
    """Acknowledged means stored: by default no statement of the acknowledgement turns synchronous_commit off."""
    app.config["WEBHOOK_SYNCHRONOUS_COMMIT"] = synchronous
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda _conn, _cursor, statement, *_args: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        post(client, workspace, deal_pairs("add", 41 if synchronous else 42))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    stored = [statement for statement in statements if "INSERT INTO webhook_events" in statement]
    assert len(stored) == 1
    if engine.dialect.name == "postgresql":
        assert ("set_config" in stored[0]) is not synchronous
    else:
        assert "set_config" not in stored[0]
