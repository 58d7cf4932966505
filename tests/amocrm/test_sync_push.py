"""The push engine against the sandbox over real HTTP, on PostgreSQL and Redis: what arrives in amoCRM, field by
field; batching; contact reuse; and every failure kind without a lost or doubled deal."""
from datetime import timedelta

import pytest
from fixtures.sync import StaticTokens, add_leads

from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.limiter import RequestLimiter
from portal.amocrm.push import push_pending
from portal.amocrm.sync_log import SyncLogRecorder
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, SyncLogEntry
from portal.models.types import utcnow

pytestmark = pytest.mark.integration


def run_push(app, connected, *, timeout=5.0, token=None):
    """One push run with a plain client (the job builds the same from the stored connection)."""
    with app.app_context():
        recorder = SyncLogRecorder(connected.id)
        limiter = RequestLimiter(app.extensions["leadpath_redis"], f"test:{connected.id}", 1000)
        client = AmoCRMClient(sandbox_base(app, connected), StaticTokens(token or connected.tokens["access_token"]),
                              timeout=timeout, before_request=limiter.wait, on_call=recorder.record)
        outcome = push_pending(connected.id, client, limiter, recorder)
        db.session.commit()
        return outcome


def sandbox_base(app, connected) -> str:
    connection = db.session.scalar(db.select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == connected.id))
    return f"http://{connection.base_domain}"


def leads_of(app, workspace_id):
    with app.app_context():
        return db.session.scalars(db.select(Lead).where(Lead.workspace_id == workspace_id).order_by(Lead.id)).all()


def make_due(app, workspace_id):
    with app.app_context():
        db.session.execute(db.update(Lead).where(Lead.workspace_id == workspace_id).values(next_attempt_at=None))
        db.session.commit()


def deals(sandbox) -> list[dict]:
    return sandbox.state()["leads"]


def field_values(entity: dict) -> dict:
    return {field["field_code"]: field["values"][0]["value"] for field in entity.get("custom_fields_values") or []}


def test_a_lead_arrives_as_a_deal_with_contact_and_tracking_fields(app, sandbox, connected):
    with app.app_context():
        lead = Lead(workspace_id=connected.id, name="Иван Петров", phone="+79991234567", email="ivan@example.com",
                    utm_source="google", utm_medium="cpc", utm_campaign="spring_sale", utm_term="crm",
                    utm_content="banner", referrer="https://google.com/", gclid="g-1", yclid="y-1", fbclid="f-1")
        db.session.add(lead)
        db.session.commit()
        lead_id = lead.id
    outcome = run_push(app, connected)
    assert (outcome.pushed, outcome.calls) == (1, 1)
    [deal] = deals(sandbox)
    assert deal["name"] == "Lead: spring_sale"
    assert (deal["price"], deal["pipeline_id"], deal["status_id"]) == (0, connected.pipeline_id, connected.status_id)
    assert {tag["name"] for tag in deal["_embedded"]["tags"]} >= {"leadpath", f"lp-{lead_id}"}
    assert field_values(deal) == {"UTM_SOURCE": "google", "UTM_MEDIUM": "cpc", "UTM_CAMPAIGN": "spring_sale",
                                  "UTM_TERM": "crm", "UTM_CONTENT": "banner", "REFERRER": "https://google.com/",
                                  "GCLID": "g-1", "YCLID": "y-1", "FBCLID": "f-1"}
    [contact] = sandbox.state()["contacts"]
    assert contact["first_name"] == "Иван Петров"
    assert field_values(contact) == {"PHONE": "+79991234567", "EMAIL": "ivan@example.com"}
    [stored] = leads_of(app, connected.id)
    assert (stored.sync_status, stored.amocrm_lead_id, stored.amocrm_contact_id) == ("synced", deal["id"],
                                                                                     contact["id"])
    assert stored.push_batch is None and stored.synced_at is not None


def test_a_burst_goes_out_in_full_batches(app, sandbox, connected):
    add_leads(app, connected.id, 120)
    outcome = run_push(app, connected)
    assert outcome.batch_sizes == [50, 50, 20]
    assert outcome.pushed == 120 and len(deals(sandbox)) == 120
    assert {lead.sync_status for lead in leads_of(app, connected.id)} == {"synced"}


def test_a_known_contact_is_reused_not_duplicated(app, sandbox, connected):
    sandbox.set_duplicate_control(connected.account["id"], False)  # only our own map can prevent duplicates
    add_leads(app, connected.id, 1)
    run_push(app, connected)
    with app.app_context():
        db.session.add(Lead(workspace_id=connected.id, name="Again", phone="+79990000000", email=None))
        db.session.commit()
    run_push(app, connected)
    first, second = leads_of(app, connected.id)
    assert first.amocrm_contact_id == second.amocrm_contact_id
    assert len(sandbox.state()["contacts"]) == 1 and len(deals(sandbox)) == 2


def test_two_leads_of_one_new_person_in_one_burst_share_one_contact(app, sandbox, connected):
    sandbox.set_duplicate_control(connected.account["id"], False)
    with app.app_context():
        db.session.add_all([Lead(workspace_id=connected.id, name="Ann", phone="+79995550000"),
                            Lead(workspace_id=connected.id, name="Ann again", phone="+79995550000")])
        db.session.commit()
    outcome = run_push(app, connected)
    assert outcome.batch_sizes == [1, 1]
    first, second = leads_of(app, connected.id)
    assert first.amocrm_contact_id == second.amocrm_contact_id and len(sandbox.state()["contacts"]) == 1


def test_rate_limited_requests_wait_and_go_again(app, sandbox, connected):
    sandbox.faults(rate_limit_per_sec=2)
    add_leads(app, connected.id, 6)
    with app.app_context():
        db.session.execute(db.update(Lead).values(utm_campaign=None))
        db.session.commit()
    # Six single-lead batches: a different e-mail and phone each would go in one batch, so force 1 per batch
    # by sending them with the same new phone (one contact): the first goes, the rest wait for its contact.
    outcome = run_push(app, connected)
    assert outcome.pushed == 6 and len(deals(sandbox)) == 6
    assert all(lead.sync_attempts == 1 for lead in leads_of(app, connected.id))


def test_html_429_bodies_are_survived(app, sandbox, connected):
    sandbox.faults(rate_limit_per_sec=1, html_429=True)
    add_leads(app, connected.id, 3)
    with app.app_context():
        db.session.execute(db.update(Lead).values(phone="+79990001111", email=None))
        db.session.commit()
    outcome = run_push(app, connected)
    assert outcome.pushed == 3 and len(deals(sandbox)) == 3
    assert sandbox.counters()["http_429"] >= 1


def test_a_refused_item_fails_alone_with_amocrms_message(app, sandbox, connected, monkeypatch):
    from portal.amocrm.api import payloads

    ids = add_leads(app, connected.id, 3)
    original = payloads.tracking_fields

    def tracking_fields(lead):
        fields = original(lead)
        return fields + [{"field_code": "NO_SUCH_FIELD", "values": [{"value": "x"}]}] if lead.id == ids[1] else fields

    monkeypatch.setattr(payloads, "tracking_fields", tracking_fields)
    outcome = run_push(app, connected)
    assert (outcome.pushed, outcome.failed) == (2, 1)
    good_1, bad, good_2 = leads_of(app, connected.id)
    assert good_1.sync_status == good_2.sync_status == "synced"
    assert bad.sync_status == "failed" and "amoCRM refused this lead" in bad.last_error
    assert "field_code" in bad.last_error
    assert len(deals(sandbox)) == 2


@pytest.mark.parametrize("fault", [{"drop_after_commit_rate": 1.0}, {"http_500_rate": 1.0},
                                   {"timeout_rate": 1.0, "timeout_seconds": 2}])
def test_an_ambiguous_failure_never_makes_a_second_deal(app, sandbox, connected, fault):
    add_leads(app, connected.id, 5)
    sandbox.faults(**fault)
    first = run_push(app, connected, timeout=0.5)
    assert first.pushed == 0 and first.retried == 5
    pending = leads_of(app, connected.id)
    assert {lead.sync_status for lead in pending} == {"pending"}
    assert all(lead.push_batch and lead.next_attempt_at > utcnow() for lead in pending)
    created_by_the_failed_call = len(deals(sandbox))
    sandbox.faults()
    make_due(app, connected.id)
    second = run_push(app, connected)
    assert second.adopted == created_by_the_failed_call
    assert second.adopted + second.pushed == 5
    assert len(deals(sandbox)) == 5
    synced = leads_of(app, connected.id)
    assert {lead.sync_status for lead in synced} == {"synced"}
    assert len({lead.amocrm_lead_id for lead in synced}) == 5
    assert {d["id"] for d in deals(sandbox)} == {lead.amocrm_lead_id for lead in synced}


def test_a_lead_keeps_its_first_batch_tag_so_a_late_found_deal_is_still_adopted(app, sandbox, connected, monkeypatch):
    """The first request is applied but its answer lost; when the lead is retried, amoCRM's search does not show
    that deal yet (lag) and the resend fails. The resend carried the lead's first tag, so the next search by it
    finds the first deal: adopted, not sent a third time (with a fresh tag per request, it made a second deal)."""
    add_leads(app, connected.id, 3)
    sandbox.faults(drop_after_commit_rate=1.0)
    run_push(app, connected, timeout=2)
    first_tags = {lead.id: lead.push_batch for lead in leads_of(app, connected.id)}
    assert len(deals(sandbox)) == 3 and all(first_tags.values())
    sandbox.faults(http_500_rate=1.0)
    with monkeypatch.context() as lagging:
        lagging.setattr(AmoCRMClient, "iter_leads", lambda self, **kwargs: iter(()))
        make_due(app, connected.id)
        assert run_push(app, connected).retried == 3
    assert {lead.id: lead.push_batch for lead in leads_of(app, connected.id)} == first_tags
    sandbox.faults()
    make_due(app, connected.id)
    outcome = run_push(app, connected)
    assert (outcome.adopted, outcome.pushed) == (3, 0) and len(deals(sandbox)) == 3


def test_a_504_waits_before_anything_is_sent_again_and_fails_in_the_end(app, sandbox, connected):
    add_leads(app, connected.id, 4)
    sandbox.faults(timeout_rate=1.0, timeout_seconds=0.01)  # a gateway that answers 504 at once, every time
    outcome = run_push(app, connected)
    assert outcome.calls == 1 and outcome.retried == 4  # no storm of halved batches
    leads = leads_of(app, connected.id)
    settle = app.config["SYNC_SETTLE_SECONDS"]
    assert all(lead.next_attempt_at >= utcnow() + timedelta(seconds=settle - 0.5) for lead in leads)
    with app.app_context():
        db.session.execute(db.update(Lead).values(sync_attempts=app.config["SYNC_MAX_ATTEMPTS"] - 1,
                                                  next_attempt_at=None))
        db.session.commit()
    assert run_push(app, connected).failed == 4
    assert {lead.sync_status for lead in leads_of(app, connected.id)} == {"failed"}


def test_leads_refused_for_a_deleted_stage_go_to_the_main_pipeline(app, sandbox, connected):
    add_leads(app, connected.id, 3)
    with app.app_context():
        db.session.execute(db.update(AmoCRMConnection).values(status_id=999_999))  # deleted in amoCRM since
        db.session.commit()
    outcome = run_push(app, connected)
    assert (outcome.pushed, outcome.failed) == (3, 0)
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection))
        assert connection.status_id == connected.status_id and "no longer exists" in connection.last_error
    assert {deal["status_id"] for deal in deals(sandbox)} == {connected.status_id}


def test_any_other_amocrm_error_is_retried_and_fails_with_its_answer(app, sandbox, connected, monkeypatch):
    from portal.amocrm.api.errors import AmoCRMError

    def payment_required(self, items):
        raise AmoCRMError("amoCRM answered 402: the account's subscription has ended", status=402)

    monkeypatch.setattr(AmoCRMClient, "create_leads_complex", payment_required)
    add_leads(app, connected.id, 2)
    outcome = run_push(app, connected)
    assert outcome.retried == 2 and outcome.stopped is None
    assert all(lead.sync_attempts == 1 and lead.next_attempt_at > utcnow() and "402" in lead.last_error
               for lead in leads_of(app, connected.id))
    with app.app_context():
        db.session.execute(db.update(Lead).values(sync_attempts=app.config["SYNC_MAX_ATTEMPTS"] - 1,
                                                  next_attempt_at=None))
        db.session.commit()
    assert run_push(app, connected).failed == 2


def test_after_the_last_attempt_the_lead_fails_with_the_reason(app, sandbox, connected):
    [lead_id] = add_leads(app, connected.id, 1)
    with app.app_context():
        db.session.execute(db.update(Lead).values(sync_attempts=app.config["SYNC_MAX_ATTEMPTS"] - 1))
        db.session.commit()
    sandbox.faults(http_500_rate=1.0)
    outcome = run_push(app, connected)
    assert outcome.failed == 1
    [lead] = leads_of(app, connected.id)
    assert lead.sync_status == "failed" and "ServerError" in lead.last_error
    assert lead.push_batch  # if the deal was made after all, a retry adopts it


def test_a_blocked_account_pauses_the_workspace_sync(app, sandbox, connected):
    add_leads(app, connected.id, 3)
    sandbox.faults(block=True)
    outcome = run_push(app, connected)
    assert outcome.stopped == "blocked" and outcome.calls == 1
    with app.app_context():
        connection = db.session.scalar(db.select(AmoCRMConnection))
        assert connection.status == "blocked" and "403" in connection.last_error
    assert {(lead.sync_status, lead.next_attempt_at) for lead in leads_of(app, connected.id)} == {("pending", None)}
    assert run_push(app, connected).stopped == "not_connected"  # no call storm while paused


def test_a_rejected_token_stops_the_sync_and_leads_wait(app, sandbox, connected):
    add_leads(app, connected.id, 2)
    sandbox.expire_tokens()
    outcome = run_push(app, connected)
    assert outcome.stopped == "unauthorized"
    assert {(lead.sync_status, lead.sync_attempts) for lead in leads_of(app, connected.id)} == {("pending", 0)}


def test_every_call_is_in_the_sync_log_with_personal_data_masked(app, sandbox, connected):
    ids = add_leads(app, connected.id, 2)
    run_push(app, connected)
    with app.app_context():
        [entry] = db.session.scalars(db.select(SyncLogEntry)).all()
    assert entry.operation == "POST /api/v4/leads/complex" and entry.http_status == 200
    assert entry.outcome == "ok" and entry.lead_ids == ids and entry.duration_ms >= 0
    assert "+79990000000" not in entry.request and "visitor0@example.com" not in entry.request
    assert "UTM_SOURCE" in entry.request and '"id"' in entry.response


def test_spam_and_repeats_are_never_pushed(app, sandbox, connected):
    [first] = add_leads(app, connected.id, 1)
    with app.app_context():
        db.session.add_all([Lead(workspace_id=connected.id, name="bot", phone="+70000000000", is_spam=True,
                                 sync_status="skipped"),
                            Lead(workspace_id=connected.id, name="again", phone="+79990000000",
                                 duplicate_of_id=first, sync_status="skipped")])
        db.session.commit()
    assert run_push(app, connected).pushed == 1
    assert len(deals(sandbox)) == 1


def test_a_lead_leased_by_a_dead_worker_waits_for_the_lease(app, sandbox, connected):
    add_leads(app, connected.id, 1)
    with app.app_context():
        db.session.execute(db.update(Lead).values(next_attempt_at=utcnow() + timedelta(seconds=30),
                                                  sync_attempts=1, push_batch="deadbeefdeadbeef"))
        db.session.commit()
    assert run_push(app, connected).calls == 0
    make_due(app, connected.id)
    outcome = run_push(app, connected)
    assert outcome.calls == 2 and outcome.pushed == 1  # one search for the dead batch's deals, one push
