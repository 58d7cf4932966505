"""POST /api/leads: the seed-000 interface, validation, idempotency, repeats, honeypot, limits, CORS."""
import io
import json

import pytest
from fixtures.intake import SEED_000_PAYLOAD, leads_of, make_workspace, post_lead, set_workspace

from portal.ingest.workspaces import CACHE_KEY
from portal.models.lead import PENDING, SKIPPED


@pytest.fixture
def workspace(app):
    return make_workspace(app)


def test_seed_000_curl_payload_is_accepted_unchanged(app, client, workspace):
    workspace_id, public_id = workspace
    # curl -X POST http://localhost:5000/api/leads -H "Content-Type: application/json" -d '{...}'
    body = json.dumps({**SEED_000_PAYLOAD, "userAccountId": public_id}, ensure_ascii=False)
    response = client.post("/api/leads", data=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201
    data = response.get_json()
    assert data["success"] is True and isinstance(data["message"], str) and data["message"]
    [lead] = leads_of(app, workspace_id)
    assert data["leadId"] == lead.id
    assert (lead.name, lead.phone, lead.email, lead.message) == (
        "Иван Петров", "+79991234567", "ivan@example.com", "Хочу узнать подробнее")
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("google", "cpc", "spring_sale")
    # Without a first_touch object the submission is its own first touch.
    assert (lead.first_utm_source, lead.first_utm_campaign) == ("google", "spring_sale")
    assert lead.sync_status == PENDING and not lead.is_spam and lead.duplicate_of_id is None


@pytest.mark.parametrize(("fields", "status", "error_fields"), [
    ({"phone": "+79991234567"}, 201, set()),
    ({"email": "someone@example.com"}, 201, set()),
    ({"name": "Only a name"}, 400, {"phone", "email"}),
    ({"phone": "   ", "email": ""}, 400, {"phone", "email"}),
    ({"phone": "123"}, 400, {"phone"}),
    ({"phone": "+7 999 123"}, 400, {"phone"}),
    ({"email": "not-an-email"}, 400, {"email"}),
    ({"email": "a@b"}, 400, {"email"}),
    ({"email": "two@@example.com"}, 400, {"email"}),
    ({"phone": ["+79991234567"]}, 400, {"phone"}),
    ({"email": {"x": 1}, "phone": "+79991234567"}, 400, {"email"}),
    ({"phone": "+79991234567", "name": "x" * 201}, 400, {"name"}),
    ({"phone": "+79991234567", "message": "x" * 5001}, 400, {"message"}),
    ({"phone": "+79991234567", "utm_source": "x" * 201}, 400, {"utm_source"}),
    ({"phone": "+79991234567", "gclid": "x" * 201}, 400, {"gclid"}),
    ({"phone": "+79991234567", "first_touch": "not an object"}, 400, {"first_touch"}),
    ({"phone": "+79991234567", "first_touch": {"utm_source": "x" * 201}}, 400, {"first_touch.utm_source"}),
    ({"phone": "+79991234567", "first_touch": {"timestamp": "yesterday"}}, 400, {"first_touch.timestamp"}),
    ({"phone": "+79991234567", "first_touch": {"timestamp": 12}}, 400, {"first_touch.timestamp"}),
    ({"phone": "+79991234567", "idempotency_key": "k" * 129}, 400, {"idempotency_key"}),
    ({"phone": "bad", "email": "bad", "name": "x" * 300}, 400, {"phone", "email", "name"}),
])
def test_validation_matrix(app, client, workspace, fields, status, error_fields):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, **fields)
    assert response.status_code == status, response.get_json()
    data = response.get_json()
    if status == 400:
        assert data["success"] is False and set(data["errors"]) == error_fields
        assert leads_of(app, workspace_id) == []
    else:
        assert len(leads_of(app, workspace_id)) == 1


def test_phone_is_stored_as_e164_read_with_the_workspace_country(app, client, workspace):
    workspace_id, public_id = workspace
    assert post_lead(client, public_id, phone="8 (999) 123-45-67").status_code == 201
    assert post_lead(client, public_id, phone=79001234567).status_code == 201  # a number, not a string
    set_workspace(app, workspace_id, country="US")
    app.extensions.pop(CACHE_KEY, None)  # as after LEAD_WORKSPACE_CACHE_SECONDS
    assert post_lead(client, public_id, phone="(650) 253-0000").status_code == 201
    assert post_lead(client, public_id, phone="+44 20 7946 0958").status_code == 201
    assert [lead.phone for lead in leads_of(app, workspace_id)] == [
        "+79991234567", "+79001234567", "+16502530000", "+442079460958"]


def test_email_is_lowercased_and_text_is_cleaned(app, client, workspace):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, email="  Ivan@Example.COM ", name="Iv\x00an\u0007 ", message="a\r\nb\x00")
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert (lead.email, lead.name, lead.message) == ("ivan@example.com", "Iv an", "a\nb")


def test_long_tracking_urls_are_cut_not_refused(app, client, workspace):
    workspace_id, public_id = workspace
    long_url = "https://example.com/?" + "q" * 3000
    response = post_lead(client, public_id, phone="+79991234567", referrer=long_url, landing_page=long_url)
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert lead.referrer == long_url[:2000] and lead.landing_page == long_url[:2000]


def test_first_touch_is_stored_apart_from_the_last_touch(app, client, workspace):
    workspace_id, public_id = workspace
    first = {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "winter", "utm_term": "crm",
             "utm_content": "ad1", "referrer": "https://ya.ru/", "landing_page": "https://shop.example/?utm_source=yandex",
             "timestamp": "2024-01-15T10:30:00Z"}
    response = post_lead(client, public_id, phone="+79991234567", utm_source="google", utm_medium="cpc",
                         utm_campaign="spring", gclid="abc", first_touch=first)
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert (lead.utm_source, lead.utm_campaign, lead.gclid) == ("google", "spring", "abc")
    assert (lead.first_utm_source, lead.first_utm_medium, lead.first_utm_campaign, lead.first_utm_term,
            lead.first_utm_content) == ("yandex", "cpc", "winter", "crm", "ad1")
    assert (lead.first_referrer, lead.first_landing_page) == (first["referrer"], first["landing_page"])
    assert lead.first_touch_at.isoformat() == "2024-01-15T10:30:00+00:00"


def test_first_touch_timestamp_may_be_unix_milliseconds(app, client, workspace):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, email="a@example.com",
                         first_touch={"utm_source": "vk", "timestamp": 1_700_000_000_000})
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert lead.first_touch_at.isoformat() == "2023-11-14T22:13:20+00:00" and lead.first_utm_source == "vk"


def test_form_encoded_submission_with_nested_first_touch(app, client, workspace):
    workspace_id, public_id = workspace
    response = client.post("/api/leads", data={
        "userAccountId": public_id, "name": "Form", "email": "form@example.com", "utm_source": "fb",
        "first_touch[utm_source]": "google", "first_touch[timestamp]": "1700000000000"})
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert (lead.utm_source, lead.first_utm_source) == ("fb", "google")


def test_workspace_may_come_from_the_x_workspace_header(app, client, workspace):
    workspace_id, public_id = workspace
    response = post_lead(client, None, headers={"X-Workspace": public_id}, phone="+79991234567")
    assert response.status_code == 201 and len(leads_of(app, workspace_id)) == 1


@pytest.mark.parametrize("public_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", None, "\x00",
                                       "ид-рабочего-пространства", "x" * 65])
def test_unknown_or_missing_workspace_is_404(client, workspace, public_id):
    response = post_lead(client, public_id, phone="+79991234567")
    assert response.status_code == 404 and response.get_json()["success"] is False


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),
    (b"phone=1", "text/plain", 415),
    (b"<lead/>", "application/xml", 415),
    (b"", "", 415),
])
def test_malformed_bodies_are_4xx(client, workspace, body, content_type, status):
    response = client.post("/api/leads", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["success"] is False


def test_oversized_body_is_413(app, client, workspace):
    _, public_id = workspace
    padding = "x" * app.config["LEAD_MAX_BODY_BYTES"]
    response = post_lead(client, public_id, phone="+79991234567", message=padding)
    assert response.status_code == 413
    response = client.post("/api/leads", data={"userAccountId": public_id, "message": padding})
    assert response.status_code == 413


def test_same_idempotency_key_returns_the_same_lead_and_creates_nothing(app, client, workspace):
    workspace_id, public_id = workspace
    first = post_lead(client, public_id, headers={"Idempotency-Key": "sub-1"}, phone="+79991234567")
    again = post_lead(client, public_id, headers={"Idempotency-Key": "sub-1"}, phone="+79991234567")
    by_field = post_lead(client, public_id, phone="+79991234567", idempotency_key="sub-1")
    assert first.status_code == 201 and again.status_code == 200 and by_field.status_code == 200
    assert first.get_json()["leadId"] == again.get_json()["leadId"] == by_field.get_json()["leadId"]
    assert again.get_json()["success"] is True
    assert len(leads_of(app, workspace_id)) == 1


def test_same_idempotency_key_with_the_same_body_in_another_form_answers_the_first_lead(app, client, workspace):
    workspace_id, public_id = workspace
    first = post_lead(client, public_id, headers={"Idempotency-Key": "sub-2"}, phone="+79991234567",
                      name="Иван", utm_source="google")
    again = post_lead(client, public_id, headers={"Idempotency-Key": "sub-2"}, utm_source="google", name=" Иван ",
                      phone="8 (999) 123-45-67")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["leadId"] == first.get_json()["leadId"]
    assert len(leads_of(app, workspace_id)) == 1


def test_same_idempotency_key_with_a_different_body_is_422_and_stores_nothing(app, client, workspace):
    workspace_id, public_id = workspace
    first = post_lead(client, public_id, headers={"Idempotency-Key": "sub-3"}, phone="+79991234567", name="Иван")
    other = post_lead(client, public_id, headers={"Idempotency-Key": "sub-3"}, phone="+79990000000", name="Пётр")
    assert first.status_code == 201
    assert other.status_code == 422
    body = other.get_json()
    assert body["success"] is False and "Idempotency-Key was already used with a different lead" in str(body)
    [lead] = leads_of(app, workspace_id)
    assert (lead.id, lead.phone, lead.name) == (first.get_json()["leadId"], "+79991234567", "Иван")


def test_idempotency_keys_are_per_workspace(app, client, workspace, make_user):
    from fixtures.support import workspace_of

    from portal.extensions import db
    from portal.models import Workspace

    other_id = workspace_of(app, make_user("other@example.com"))
    with app.app_context():
        other_public = db.session.get(Workspace, other_id).public_id
    one = post_lead(client, workspace[1], headers={"Idempotency-Key": "k"}, phone="+79991234567")
    two = post_lead(client, other_public, headers={"Idempotency-Key": "k"}, phone="+79991234567")
    assert one.status_code == two.status_code == 201
    assert one.get_json()["leadId"] != two.get_json()["leadId"]


def test_repeat_within_the_window_is_stored_linked_and_not_pushed(app, client, workspace):
    workspace_id, public_id = workspace
    first = post_lead(client, public_id, phone="+79991234567", email="ivan@example.com").get_json()["leadId"]
    by_phone = post_lead(client, public_id, phone="8 999 123 45 67")
    by_email = post_lead(client, public_id, email="IVAN@example.com")
    other = post_lead(client, public_id, phone="+79990000000")
    assert by_phone.status_code == by_email.status_code == other.status_code == 201
    leads = {lead.id: lead for lead in leads_of(app, workspace_id)}
    assert leads[by_phone.get_json()["leadId"]].duplicate_of_id == first
    assert leads[by_email.get_json()["leadId"]].duplicate_of_id == first
    assert leads[by_phone.get_json()["leadId"]].sync_status == SKIPPED
    assert leads[first].sync_status == PENDING and leads[first].duplicate_of_id is None
    assert leads[other.get_json()["leadId"]].duplicate_of_id is None
    assert leads[other.get_json()["leadId"]].sync_status == PENDING


@pytest.mark.parametrize("first_by", ["phone", "email"])
def test_a_repeat_matching_two_leads_links_to_the_earlier(app, client, workspace, first_by):
    workspace_id, public_id = workspace
    contact = {"phone": "+79991234567", "email": "ivan@example.com"}
    second_by = "email" if first_by == "phone" else "phone"
    earlier = post_lead(client, public_id, **{first_by: contact[first_by]}).get_json()["leadId"]
    later = post_lead(client, public_id, **{second_by: contact[second_by]}).get_json()["leadId"]
    both = post_lead(client, public_id, **contact).get_json()["leadId"]
    leads = {lead.id: lead for lead in leads_of(app, workspace_id)}
    assert earlier < later and leads[later].duplicate_of_id is None
    assert leads[both].duplicate_of_id == earlier and leads[both].sync_status == SKIPPED


def test_repeat_after_the_window_is_a_new_lead(app, client, workspace):
    from datetime import timedelta

    from portal.extensions import db
    from portal.models import Lead
    from portal.models.types import utcnow

    workspace_id, public_id = workspace
    post_lead(client, public_id, phone="+79991234567")
    with app.app_context():
        db.session.execute(db.update(Lead).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    post_lead(client, public_id, phone="+79991234567")
    assert [lead.duplicate_of_id for lead in leads_of(app, workspace_id)] == [None, None]
    assert [lead.sync_status for lead in leads_of(app, workspace_id)] == [PENDING, PENDING]


def test_a_zero_window_turns_repeat_detection_off(app, client, workspace):
    workspace_id, public_id = workspace
    set_workspace(app, workspace_id, duplicate_window_hours=0)
    post_lead(client, public_id, phone="+79991234567")
    post_lead(client, public_id, phone="+79991234567")
    assert [lead.sync_status for lead in leads_of(app, workspace_id)] == [PENDING, PENDING]


def test_honeypot_looks_accepted_but_is_spam_and_never_pushed(app, client, workspace, redis_client):
    from portal.jobs.queues import AMOCRM, get_queue

    workspace_id, public_id = workspace
    response = post_lead(client, public_id, phone="+79991234567", lp_website="http://spam.example")
    assert response.status_code == 201 and response.get_json()["success"] is True
    [lead] = leads_of(app, workspace_id)
    assert response.get_json()["leadId"] == lead.id
    assert lead.is_spam and lead.sync_status == SKIPPED
    with app.app_context():
        assert get_queue(AMOCRM).count == 0
    # A spam lead is no one's "first lead": a real one from the same phone is pushed.
    post_lead(client, public_id, phone="+79991234567")
    assert leads_of(app, workspace_id)[1].sync_status == PENDING


def test_ip_rate_limit_answers_429_with_retry_after(database_schema, workspace):
    from fixtures.support import make_app

    app = make_app(LEAD_RATE_LIMIT_IP="2 per minute")
    client = app.test_client()
    statuses = [post_lead(client, workspace[1], phone="+79991234567").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    response = post_lead(client, workspace[1], phone="+79991234567")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert response.get_json()["success"] is False
    other_ip = client.post("/api/leads", json={"userAccountId": workspace[1], "phone": "+79991234568"},
                           environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other_ip.status_code == 201


def test_workspace_rate_limit_counts_every_ip(database_schema, workspace, make_user):
    from fixtures.support import make_app, workspace_of

    from portal.extensions import db
    from portal.models import Workspace

    app = make_app(LEAD_RATE_LIMIT_WORKSPACE="2 per minute")
    other_id = workspace_of(app, make_user("other@example.com"))
    with app.app_context():
        other_public = db.session.get(Workspace, other_id).public_id
    client = app.test_client()

    def send(public_id, ip):
        return client.post("/api/leads", json={"userAccountId": public_id, "email": f"{ip}@example.com"},
                           environ_base={"REMOTE_ADDR": ip}).status_code

    assert [send(workspace[1], f"10.0.0.{n}") for n in range(3)] == [201, 201, 429]
    assert send(other_public, "10.0.0.7") == 201


def test_cors_preflight_allows_any_origin_to_ask(client):
    """Without the workspace (it travels in the POST's body) the preflight vouches for no origin: `*`."""
    response = client.options("/api/leads", headers={
        "Origin": "https://landing.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "idempotency-key" in allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_cors_headers_on_answers_including_errors(client, workspace):
    origin = {"Origin": "https://landing.example"}
    ok = post_lead(client, workspace[1], headers=origin, phone="+79991234567")
    bad = post_lead(client, workspace[1], headers=origin, phone="nope")
    assert ok.status_code == 201 and bad.status_code == 400
    for response in (ok, bad):  # the workspace takes leads from any site
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Origin" in response.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_allowed_origins_are_enforced(app, client, workspace):
    workspace_id, public_id = workspace
    set_workspace(app, workspace_id, allowed_origins="https://shop.example\nhttps://promo.example:8443")
    allowed = post_lead(client, public_id, headers={"Origin": "https://shop.example"}, phone="+79991234567")
    with_port = post_lead(client, public_id, headers={"Origin": "https://promo.example:8443"}, email="p@example.com")
    refused = post_lead(client, public_id, headers={"Origin": "https://evil.example"}, phone="+79991234568")
    server_side = post_lead(client, public_id, email="curl@example.com")  # no Origin: not a browser
    own_portal = post_lead(client, public_id, headers={"Origin": "http://localhost"}, email="own@example.com")
    assert allowed.status_code == with_port.status_code == server_side.status_code == own_portal.status_code == 201
    # The refusal stores nothing, and the refused site may not read it (its origin is never reflected).
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert with_port.headers["Access-Control-Allow-Origin"] == "https://promo.example:8443"
    assert {lead.email for lead in leads_of(app, workspace_id)} >= {"p@example.com", "curl@example.com"}
    assert len(leads_of(app, workspace_id)) == 4


def test_answers_carry_the_portals_headers_and_the_callers_request_id(client, workspace):
    """The endpoint runs beneath Flask's hooks (portal.ingest): it sets what they set on every answer."""
    ok = post_lead(client, workspace[1], headers={"X-Request-ID": "landing-42"}, phone="+79991234567")
    refused = post_lead(client, "no-such-workspace", email="a@example.com")
    preflight = client.options("/api/leads", headers={"Origin": "https://landing.example"})
    assert ok.headers["X-Request-ID"] == "landing-42"
    assert len(refused.headers["X-Request-ID"]) == 16 and refused.headers["X-Request-ID"] != "landing-42"
    for response in (ok, refused, preflight):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
    assert ok.headers["Content-Type"] == refused.headers["Content-Type"] == "application/json"
    assert refused.get_json()["error"] == "not_found"


def test_a_nul_in_the_query_string_is_400_as_on_every_other_route(app, client, workspace):
    response = client.post("/api/leads?ref=a%00b", json={"userAccountId": workspace[1], "email": "nul@example.com"})
    assert response.status_code == 400
    assert response.get_json()["message"] == "The address contains characters that are not allowed in it."
    assert leads_of(app, workspace[0]) == []


def test_a_body_cut_short_is_400_and_stores_nothing(app, client, workspace):
    body = json.dumps({"userAccountId": workspace[1], "email": "cut@example.com"}).encode()
    response = client.post("/api/leads", input_stream=io.BytesIO(body[:20]),
                           headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
    assert response.status_code == 400
    assert response.get_json()["success"] is False
    assert leads_of(app, workspace[0]) == []


def test_a_body_lost_to_a_reset_connection_is_400_not_500(app, client, workspace):
    class Reset(io.BytesIO):
        def read(self, size=-1):
            raise ConnectionResetError("peer reset")

    response = client.post("/api/leads", input_stream=Reset(),
                           headers={"Content-Type": "application/json", "Content-Length": "60"})
    assert response.status_code == 400
    assert response.get_json()["message"] == "The request body could not be read."


def test_an_unexpected_error_is_a_logged_json_500(app, client, workspace, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("portal.intake.endpoint.accept_lead", broken)
    response = post_lead(client, workspace[1], headers={"X-Request-ID": "req-500"}, email="a@example.com")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_server_error"
    assert response.headers["X-Request-ID"] == "req-500"
    assert any(record.name == "portal.errors" and record.exc_info for record in caplog.records)


def test_other_methods_are_405_and_the_preflight_has_no_body(client):
    put = client.put("/api/leads", json={})
    assert put.status_code == 405 and put.get_json()["error"] == "method_not_allowed"
    assert {method.strip() for method in put.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS", "POST"}
    preflight = client.options("/api/leads")
    assert preflight.status_code == 204 and preflight.data == b""
    assert "Content-Length" not in preflight.headers  # RFC 9110: never on a 204


def test_a_lost_database_connection_of_any_kind_is_503(app, client, workspace, monkeypatch):
    """InterfaceError (psycopg: the connection is closed) as well as OperationalError: the snippet retries a 503."""
    from sqlalchemy.exc import InterfaceError

    def lost(*args, **kwargs):
        raise InterfaceError("INSERT …", None, Exception("the connection is closed"))

    monkeypatch.setattr("portal.intake.services.insert_lead", lost)
    response = post_lead(client, workspace[1], email="a@example.com")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_api_needs_no_csrf_token_or_session(app, workspace):
    app.config["WTF_CSRF_ENABLED"] = True
    response = post_lead(app.test_client(), workspace[1], phone="+79991234567")
    assert response.status_code == 201


@pytest.mark.integration  # SQLite (the demo) does not enforce foreign keys
def test_a_workspace_deleted_while_cached_is_404_not_500(app, client, workspace):
    from portal.extensions import db
    from portal.models import Workspace

    workspace_id, public_id = workspace
    assert post_lead(client, public_id, phone="+79991234567").status_code == 201  # now cached
    with app.app_context():
        db.session.execute(db.delete(Workspace).where(Workspace.id == workspace_id))
        db.session.commit()
    assert post_lead(client, public_id, phone="+79991234568").status_code == 404
    assert post_lead(client, public_id, phone="+79991234569").status_code == 404
