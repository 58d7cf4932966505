"""Processing stored webhook events into Sales: state, amount, order, duplicates, links to leads."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fixtures.webhooks import (
    FIRST_STATUS,
    PIPELINE_ID,
    amocrm_holds_what_bodies_say,
    deal_pairs,
    make_lead,
    make_workspace,
    post_webhook,
    webhook_body,
)
from sqlalchemy import select

from portal.amocrm.inbox import MAX_ATTEMPTS, process_event, requeue_stale_events
from portal.extensions import db
from portal.jobs.queues import AMOCRM, WEBHOOKS, get_queue
from portal.models import Deal, SyncLogEntry, WebhookEvent
from portal.models.types import utcnow

T0 = 1704912474


@pytest.fixture(autouse=True)
def amocrm(monkeypatch):
    """These tests are about applying deals: amoCRM holds what the bodies say (reading is tested elsewhere)."""
    amocrm_holds_what_bodies_say(monkeypatch)


@pytest.fixture
def workspace(app):
    return make_workspace(app)


@pytest.fixture
def deliver(app, client, workspace):
    """deliver(*deal pair lists) posts one webhook and processes it as the worker would; → event id."""

    def deliver(*pair_lists, url=None):
        response = post_webhook(client, url or workspace["url"], webhook_body(*pair_lists))
        assert response.status_code == 200, response.json
        with app.app_context():
            process_event(response.json["event_id"])
        return response.json["event_id"]

    return deliver


def sales(app) -> list[Deal]:
    with app.app_context():
        rows = db.session.scalars(select(Deal).order_by(Deal.amocrm_lead_id)).all()
        db.session.expunge_all()
        return rows


def test_a_won_deal_becomes_a_won_sale_with_its_amount(app, deliver, workspace):
    deliver(deal_pairs("status", 101, status_id=142, price=50000))
    [sale] = sales(app)
    assert (sale.workspace_id, sale.amocrm_lead_id, sale.state, sale.amount) == (workspace["id"], 101, "won",
                                                                                 Decimal("50000.00"))
    assert (sale.pipeline_id, sale.status_id, sale.name) == (PIPELINE_ID, 142, "Заявка с сайта")
    assert sale.closed_at == datetime.fromtimestamp(T0, UTC)
    assert sale.amocrm_updated_at == T0 and sale.currency == "RUB"


def test_lost_and_open_states_follow_the_status(app, deliver):
    deliver(deal_pairs("status", 1, status_id=143), deal_pairs("add", 2, status_id=FIRST_STATUS))
    assert [(s.amocrm_lead_id, s.state, s.closed_at is None) for s in sales(app)] == [(1, "lost", False),
                                                                                      (2, "open", True)]


def test_an_explicit_closed_at_wins(app, deliver):
    deliver(deal_pairs("status", 1, status_id=142, closed_at=T0 - 3600))
    assert sales(app)[0].closed_at == datetime.fromtimestamp(T0 - 3600, UTC)


def test_an_older_event_never_overwrites_newer_state(app, deliver):
    deliver(deal_pairs("status", 5, status_id=142, price=900, updated_at=T0 + 60))
    deliver(deal_pairs("update", 5, status_id=FIRST_STATUS, price=100, updated_at=T0))  # arrives late
    [sale] = sales(app)
    assert (sale.state, sale.amount, sale.amocrm_updated_at) == ("won", Decimal(900), T0 + 60)


def test_an_equal_timestamp_is_applied(app, deliver):
    deliver(deal_pairs("status", 5, status_id=142, price=900, updated_at=T0))
    deliver(deal_pairs("update", 5, status_id=142, price=950, updated_at=T0))
    assert sales(app)[0].amount == Decimal(950)


def test_out_of_order_within_one_body(app, deliver):
    deliver(deal_pairs("update", 5, index=0, status_id=142, price=900, updated_at=T0 + 5),
            deal_pairs("update", 5, index=1, status_id=FIRST_STATUS, price=1, updated_at=T0))
    assert (sales(app)[0].state, sales(app)[0].amount) == ("won", Decimal(900))


def test_a_price_change_after_winning_updates_the_revenue(app, deliver):
    deliver(deal_pairs("status", 5, status_id=142, price=1000, updated_at=T0))
    closed_at = sales(app)[0].closed_at
    deliver(deal_pairs("update", 5, status_id=142, price=1500, updated_at=T0 + 600))
    [sale] = sales(app)
    assert (sale.state, sale.amount) == ("won", Decimal(1500))
    assert sale.closed_at == closed_at  # still won since then


def test_a_reopened_deal_is_no_longer_won(app, deliver):
    deliver(deal_pairs("status", 5, status_id=142, price=1000, updated_at=T0))
    deliver(deal_pairs("status", 5, status_id=FIRST_STATUS, updated_at=T0 + 10))
    [sale] = sales(app)
    assert (sale.state, sale.closed_at, sale.amount) == ("open", None, Decimal(1000))


def test_a_deleted_deal_is_marked_deleted(app, deliver):
    deliver(deal_pairs("add", 5, price=10))
    deliver(deal_pairs("delete", 5))
    assert sales(app)[0].deleted is True


def test_deleting_an_unknown_deal_creates_nothing(app, deliver):
    deliver(deal_pairs("delete", 77))
    assert sales(app) == []


def test_the_sale_is_linked_to_our_lead_and_keeps_its_attribution_there(app, deliver, workspace):
    lead_id = make_lead(app, workspace["id"], 101, utm_source="google", utm_campaign="spring")
    deliver(deal_pairs("status", 101, status_id=142, price=50000,
                       **{"custom_fields][0][name": "utm_source", "custom_fields][0][values][0][value": "crm"}))
    [sale] = sales(app)
    assert sale.lead_id == lead_id
    assert sale.utm_source is None  # our form's lead is the attribution


def test_a_deal_from_elsewhere_gets_its_utm_from_custom_fields(app, deliver):
    pairs = deal_pairs("add", 300, price=5) + [
        ("leads[add][0][custom_fields][0][id]", "1"), ("leads[add][0][custom_fields][0][name]", "utm_source"),
        ("leads[add][0][custom_fields][0][values][0][value]", "yandex"),
        ("leads[add][0][custom_fields][1][id]", "2"), ("leads[add][0][custom_fields][1][name]", "Кампания"),
        ("leads[add][0][custom_fields][1][code]", "UTM_CAMPAIGN"),
        ("leads[add][0][custom_fields][1][values][0][value]", "зима")]
    deliver(pairs)
    [sale] = sales(app)
    assert (sale.lead_id, sale.utm_source, sale.utm_campaign) == (None, "yandex", "зима")


def test_a_lead_of_another_workspace_is_never_linked(app, deliver):
    other = make_workspace(app)
    make_lead(app, other["id"], 101)
    deliver(deal_pairs("add", 101))
    assert sales(app)[0].lead_id is None


def test_the_same_deal_in_two_workspaces_is_two_sales(app, client, deliver):
    other = make_workspace(app)
    deliver(deal_pairs("status", 9, status_id=142, price=10))
    deliver(deal_pairs("status", 9, status_id=142, price=20), url=other["url"])
    assert sorted(s.amount for s in sales(app)) == [Decimal(10), Decimal(20)]


def test_processing_twice_changes_nothing(app, deliver):
    event_id = deliver(deal_pairs("status", 5, status_id=142, price=1000))
    with app.app_context():
        assert process_event(event_id) == "processed"
        assert db.session.scalar(select(db.func.count(SyncLogEntry.id))) == 1
    assert len(sales(app)) == 1


def test_each_processed_event_is_in_the_sync_log_masked(app, deliver, workspace):
    lead_id = make_lead(app, workspace["id"], 5)
    deliver(deal_pairs("status", 5, status_id=142, price=1000, name="Иван Петров +79991234567"))
    with app.app_context():
        [entry] = db.session.scalars(select(SyncLogEntry)).all()
        event = db.session.scalar(select(WebhookEvent))
        assert (entry.direction, entry.outcome, entry.operation) == ("inbound", "ok", "webhook leads[status]")
        assert entry.lead_ids == [lead_id] and entry.workspace_id == workspace["id"]
        assert "79991234567" not in entry.request and "Иван Петров" not in entry.request
        assert (event.status, event.attempts) == ("processed", 1) and event.processed_at is not None


def test_an_unknown_pipeline_asks_for_a_pipelines_refresh_once(app, deliver, workspace):
    deliver(deal_pairs("add", 5, pipeline_id=555, status_id=777))
    deliver(deal_pairs("add", 6, pipeline_id=555, status_id=778))
    with app.app_context():
        jobs = [(job.func_name, job.args) for job in get_queue(AMOCRM).get_jobs()]
    assert jobs == [("portal.amocrm.jobs.refresh_pipelines", (workspace["id"],))]


def test_known_pipelines_and_won_lost_ask_for_nothing(app, deliver):
    deliver(deal_pairs("add", 5), deal_pairs("status", 6, status_id=142),
            deal_pairs("status", 7, index=1, status_id=143))
    with app.app_context():
        assert get_queue(AMOCRM).count == 0


def test_a_failing_event_is_retried_then_marked_failed(app, client, workspace, monkeypatch):
    from portal.amocrm import inbox as services

    response = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 5)))
    event_id = response.json["event_id"]

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "apply_deals", broken)
    with app.app_context():
        for attempt in range(1, MAX_ATTEMPTS + 1):
            with pytest.raises(RuntimeError):
                process_event(event_id)
            event = db.session.get(WebhookEvent, event_id)
            assert event.attempts == attempt and "database hiccup" in event.error
            assert event.status == ("failed" if attempt == MAX_ATTEMPTS else "received")
            db.session.rollback()


def test_events_left_received_are_enqueued_again(app, client, workspace):
    response = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 5)))
    with app.app_context():
        get_queue(WEBHOOKS).empty()
        assert requeue_stale_events() == 0  # too fresh: its own job may still be on the way
        db.session.execute(db.update(WebhookEvent).values(received_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
        assert requeue_stale_events() == 1
        assert [(job.func_name, job.args) for job in get_queue(WEBHOOKS).get_jobs()] == [
            ("portal.amocrm.jobs.process_workspace_events", (workspace["id"],))]
        process_event(response.json["event_id"])
        assert requeue_stale_events() == 0


@pytest.mark.integration
def test_the_worker_processes_what_the_endpoint_enqueued(app, client, workspace):
    from portal.jobs.worker import build_worker

    post_webhook(client, workspace["url"], webhook_body(deal_pairs("status", 42, status_id=142, price=777)))
    build_worker(app, [WEBHOOKS]).work(burst=True)
    [sale] = sales(app)
    assert (sale.amocrm_lead_id, sale.state, sale.amount) == (42, "won", Decimal(777))
