"""POST /webhooks/amocrm/<public id>/<secret>: authenticate, refuse abuse, store once, acknowledge, enqueue."""
import threading
from datetime import timedelta

import pytest
from fixtures.webhooks import ACCOUNT_ID, deal_pairs, make_workspace, post_webhook, webhook_body
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.queues import WEBHOOKS, get_queue
from portal.models import AmoCRMConnection, WebhookEvent, WebhookReceipt
from portal.models.types import utcnow


def events(app) -> list[WebhookEvent]:
    with app.app_context():
        rows = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        db.session.expunge_all()
        return rows


def queued(app) -> list:
    with app.app_context():
        return [(job.func_name, job.args) for job in get_queue(WEBHOOKS).get_jobs()]


def test_a_webhook_is_stored_acknowledged_and_enqueued(app, client):
    workspace = make_workspace(app)
    body = webhook_body(deal_pairs("status", 101, status_id=142, price=50000))
    response = post_webhook(client, workspace["url"], body)
    assert response.status_code == 200
    assert response.json["success"] is True and response.json["duplicate"] is False
    [event] = events(app)
    assert event.workspace_id == workspace["id"] and event.status == "received"
    assert event.payload["leads"]["status"][0]["price"] == "50000"
    assert event.id == response.json["event_id"]
    # One processing job per workspace (not per event), scheduled once per burst.
    assert queued(app) == [("portal.amocrm.jobs.process_workspace_events", (workspace["id"],))]
    post_webhook(client, workspace["url"], webhook_body(deal_pairs("status", 102, status_id=142)))
    assert queued(app) == [("portal.amocrm.jobs.process_workspace_events", (workspace["id"],))]
    with app.app_context():
        connection = db.session.scalar(select(AmoCRMConnection))
        assert connection.last_webhook_at is not None


@pytest.mark.parametrize("mangle", [
    lambda w: f"/webhooks/amocrm/{w['public_id']}/{w['secret']}x",
    lambda w: f"/webhooks/amocrm/{w['public_id']}/{w['secret'][:-1]}",
    lambda w: f"/webhooks/amocrm/{w['public_id'].replace(w['public_id'][0], 'f' if w['public_id'][0] != 'f' else 'e')}/{w['secret']}",  # noqa: E501
    lambda w: f"/webhooks/amocrm/not-a-uuid/{w['secret']}",
])
def test_a_wrong_workspace_or_secret_is_404_json_and_stores_nothing(app, client, mangle):
    workspace = make_workspace(app)
    response = post_webhook(client, mangle(workspace), webhook_body(deal_pairs("add", 1)))
    assert response.status_code == 404
    assert response.json["success"] is False
    assert events(app) == [] and queued(app) == []


def test_another_workspaces_secret_does_not_open_this_one(app, client):
    first, second = make_workspace(app), make_workspace(app)
    response = post_webhook(client, f"/webhooks/amocrm/{first['public_id']}/{second['secret']}",
                            webhook_body(deal_pairs("add", 1)))
    assert response.status_code == 404


def test_guessing_secrets_is_throttled_but_the_right_secret_from_elsewhere_still_works(app):
    workspace = make_workspace(app)
    app.config["WEBHOOK_GUESS_RATE_LIMIT"] = "3 per minute"
    guesser = app.test_client()
    wrong = f"/webhooks/amocrm/{workspace['public_id']}/guess"
    statuses = [post_webhook(guesser, wrong, "a=1").status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]
    body = webhook_body(deal_pairs("add", 1))
    assert post_webhook(guesser, workspace["url"], body).status_code == 429  # that address is throttled
    other = app.test_client()
    response = post_webhook(other, workspace["url"], body, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 200


def test_successful_deliveries_do_not_count_as_guesses(app, client):
    workspace = make_workspace(app)
    app.config["WEBHOOK_GUESS_RATE_LIMIT"] = "2 per minute"
    for deal_id in range(1, 6):
        assert post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", deal_id))).status_code == 200


def test_a_webhook_from_another_account_is_refused(app, client):
    workspace = make_workspace(app)
    response = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 1), account_id=999))
    assert response.status_code == 403
    assert "not connected" in response.json["message"]
    assert events(app) == []


def test_a_webhook_without_account_id_is_refused_once_connected(app, client):
    workspace = make_workspace(app)
    response = post_webhook(client, workspace["url"], "leads[add][0][id]=5")
    assert response.status_code == 400 and "account[id]" in response.json["message"]


def test_before_connecting_events_are_kept_but_not_processed(app, client):
    workspace = make_workspace(app, connected=False)
    response = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 1)))
    assert response.status_code == 200 and response.json["ignored"] is True
    [event] = events(app)
    assert event.status == "ignored" and "No amoCRM account" in event.error
    assert queued(app) == []


def test_a_retry_of_the_same_body_is_acknowledged_and_stored_once(app, client):
    workspace = make_workspace(app)
    body = webhook_body(deal_pairs("status", 7, status_id=142, price=100))
    first = post_webhook(client, workspace["url"], body)
    again = post_webhook(client, workspace["url"], body)
    assert first.status_code == again.status_code == 200
    assert again.json == {"success": True, "duplicate": True, "event_id": first.json["event_id"],
                          "ignored": False}
    assert len(events(app)) == 1 and len(queued(app)) == 1


@pytest.mark.integration
def test_concurrent_identical_first_deliveries_store_one_event(app):
    """amoCRM (or a proxy) may deliver the same body several times at once: exactly one event per body."""
    workspace = make_workspace(app)
    rounds, senders = 15, 3
    answers: list = []

    def send(body: str, barrier: threading.Barrier) -> None:
        client = app.test_client()
        barrier.wait()
        answers.append(post_webhook(client, workspace["url"], body).status_code)

    for deal_id in range(rounds):
        body = webhook_body(deal_pairs("status", 500 + deal_id, status_id=142, price=100))
        barrier = threading.Barrier(senders)
        threads = [threading.Thread(target=send, args=(body, barrier)) for _ in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [200] * rounds * senders
    assert len(events(app)) == rounds


def test_the_same_body_after_a_day_is_a_new_event(app, client):
    workspace = make_workspace(app)
    body = webhook_body(deal_pairs("update", 7))
    post_webhook(client, workspace["url"], body)
    with app.app_context():
        db.session.execute(db.update(WebhookEvent).values(received_at=utcnow() - timedelta(hours=25)))
        db.session.execute(db.update(WebhookReceipt).values(received_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    assert post_webhook(client, workspace["url"], body).json["duplicate"] is False
    assert len(events(app)) == 2


def test_the_same_body_for_two_workspaces_is_two_events(app, client):
    first, second = make_workspace(app), make_workspace(app)
    body = webhook_body(deal_pairs("update", 7))
    post_webhook(client, first["url"], body)
    assert post_webhook(client, second["url"], body).json["duplicate"] is False


@pytest.mark.parametrize(("body", "status"), [
    ("leads[add][0][id=5&account[id]=1", 400),
    ("leads[add][0][id]=five&account[id]=1", 400),
    ("leads[add][0][id]=five", 400),
    ("a" + "[x]" * 20 + "=1", 400),
    ("&".join(f"f{i}=1" for i in range(10_001)), 413),
    ("a=" + "x" * 600_000, 413),
    ("a=%ff", 400),
])
def test_hostile_bodies_get_a_json_4xx(app, client, body, status):
    workspace = make_workspace(app)
    response = post_webhook(client, workspace["url"], body)
    assert response.status_code == status
    assert response.json["success"] is False and response.json["message"]
    assert events(app) == []


def test_a_body_over_the_request_limit_is_413_json(app, client):
    workspace = make_workspace(app)
    response = post_webhook(client, workspace["url"], "a=" + "x" * (2 * 1024 * 1024))
    assert response.status_code == 413 and response.json["success"] is False


def test_json_bodies_are_415(app, client):
    workspace = make_workspace(app)
    response = client.post(workspace["url"], json={"leads": {}})
    assert response.status_code == 415


def test_get_is_405_json(app, client):
    workspace = make_workspace(app)
    assert client.get(workspace["url"]).status_code == 405


def test_no_csrf_token_is_needed(app):
    app.config["WTF_CSRF_ENABLED"] = True
    workspace = make_workspace(app)
    response = post_webhook(app.test_client(), workspace["url"], webhook_body(deal_pairs("add", 1)))
    assert response.status_code == 200


def test_the_secret_does_not_reach_the_logs(app, client, caplog):
    workspace = make_workspace(app)
    post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 1)))
    post_webhook(client, workspace["url"] + "x", webhook_body(deal_pairs("add", 1)))
    assert workspace["secret"] not in caplog.text


def test_account_of_the_connection_is_what_is_checked(app, client):
    workspace = make_workspace(app, account_id=ACCOUNT_ID + 1)
    assert post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 1))).status_code == 403
    ok = post_webhook(client, workspace["url"], webhook_body(deal_pairs("add", 1), account_id=ACCOUNT_ID + 1))
    assert ok.status_code == 200


@pytest.mark.parametrize("oddity", [
    "&leads[update][0][name]=first&leads[update][0][name]=second",   # a repeated key
    "&leads[update][0][status_id]=1&leads[update][0][status_id][x]=2",  # a key both a value and a group
    "&leads[add][0][id]=five",                                          # a deal without a usable id
    "&leads[add][0][id=5",                                              # an unbalanced bracket
])
def test_a_body_from_the_connected_account_is_never_refused_for_what_cannot_be_read(app, client, oddity):
    workspace = make_workspace(app)
    body = webhook_body(deal_pairs("update", 7)) + oddity
    response = post_webhook(client, workspace["url"], body)
    assert response.status_code == 200 and response.json["success"] is True
    [event] = events(app)
    assert event.status == "received" and event.unreadable["problems"] and event.unreadable["body"] == body
    assert event.payload["leads"]["update"][0]["id"] == "7"  # what could be read is kept for processing


def test_an_unreadable_event_is_processed_as_far_as_it_can_be_read(app, client, monkeypatch):
    from fixtures.webhooks import amocrm_holds_what_bodies_say, make_lead

    from portal.amocrm.inbox import process_workspace_events
    from portal.models import Deal

    amocrm_holds_what_bodies_say(monkeypatch)
    workspace = make_workspace(app)
    make_lead(app, workspace["id"], 7)
    body = webhook_body(deal_pairs("status", 7, status_id=142, price=9000)) + "&leads[add][0][id]=five"
    assert post_webhook(client, workspace["url"], body).status_code == 200
    with app.app_context():
        assert process_workspace_events(workspace["id"])[0] == 1
        sale = db.session.scalar(select(Deal).where(Deal.amocrm_lead_id == 7))
        assert (sale.state, int(sale.amount)) == ("won", 9000)
