"""POST /api/visits: the snippet's beacon — stored once per visit id, hardened as the lead intake is."""
import hashlib
import hmac
import json

import pytest
from fixtures.intake import make_workspace, set_workspace
from fixtures.support import make_app

from portal.extensions import db
from portal.models import Visit, Workspace
from portal.visits.beacon import BOT_MARKERS, ip_hash, is_bot

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
VISITOR = "0f" * 16
VISIT = "a1" * 16


@pytest.fixture
def workspace(app):
    return make_workspace(app, "Visits Co")


def beacon(public_id: str, **fields) -> dict:
    return {"userAccountId": public_id, "visitor_id": VISITOR, "visit_id": VISIT, **fields}


def send(client, document, content_type="text/plain;charset=UTF-8", user_agent=CHROME, environ_base=None,
         **headers):
    body = document if isinstance(document, bytes | str) else json.dumps(document)
    return client.post("/api/visits", data=body, environ_base=environ_base or {},
                       headers={"Content-Type": content_type, "User-Agent": user_agent, **headers})


def visits_of(app, workspace_id: int) -> list[Visit]:
    with app.app_context():
        rows = db.session.scalars(db.select(Visit).where(Visit.workspace_id == workspace_id).order_by(Visit.id)).all()
        db.session.expunge_all()
        return rows


def test_a_beacon_sent_as_text_plain_is_stored_with_its_source(app, client, workspace):
    workspace_id, public_id = workspace
    response = send(client, beacon(public_id, utm_source="yandex", utm_medium="cpc", utm_campaign="spring",
                                   yclid="123", referrer="https://ya.ru/search", device="mobile",
                                   landing_page="https://shop.example/?utm_source=yandex"))
    assert response.status_code == 202 and response.get_json() == {"success": True}
    [visit] = visits_of(app, workspace_id)
    assert (visit.visitor_id, visit.visit_id, visit.utm_source, visit.utm_medium, visit.utm_campaign, visit.yclid,
            visit.referrer, visit.device) == (VISITOR, VISIT, "yandex", "cpc", "spring", "123",
                                              "https://ya.ru/search", "mobile")
    assert visit.landing_page == "https://shop.example/?utm_source=yandex" and visit.started_at is not None


def test_a_beacon_sent_as_json_is_stored_too(app, client, workspace):
    workspace_id, public_id = workspace
    assert send(client, beacon(public_id), content_type="application/json").status_code == 202
    assert len(visits_of(app, workspace_id)) == 1


def test_a_resent_beacon_answers_the_same_and_stores_nothing_new(app, client, workspace):
    workspace_id, public_id = workspace
    first = send(client, beacon(public_id, utm_source="google"))
    again = send(client, beacon(public_id, utm_source="changed"))  # the same visit id: the first one stands
    assert (first.status_code, first.get_json()) == (again.status_code, again.get_json()) == (202, {"success": True})
    [visit] = visits_of(app, workspace_id)
    assert visit.utm_source == "google"


def test_the_same_visit_id_in_another_workspace_is_another_visit(app, client, workspace):
    other_id, other_public = make_workspace(app, "Other")
    assert send(client, beacon(workspace[1])).status_code == 202
    assert send(client, beacon(other_public)).status_code == 202
    assert len(visits_of(app, workspace[0])) == len(visits_of(app, other_id)) == 1


def test_ids_are_stored_in_lower_case_and_uuids_are_accepted(app, client, workspace):
    workspace_id, public_id = workspace
    uuid = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    assert send(client, beacon(public_id, visitor_id=uuid, visit_id=VISIT.upper())).status_code == 202
    [visit] = visits_of(app, workspace_id)
    assert (visit.visitor_id, visit.visit_id) == (uuid.lower(), VISIT)


def test_no_raw_ip_is_stored_only_a_daily_salted_hash(app, client, workspace):
    workspace_id, public_id = workspace
    assert send(client, beacon(public_id)).status_code == 202
    [visit] = visits_of(app, workspace_id)
    address = "127.0.0.1"  # the test client's
    assert visit.ip_hash and len(visit.ip_hash) == 64 and address not in visit.ip_hash
    day = visit.started_at.date()
    assert visit.ip_hash == ip_hash(app.config["SECRET_KEY"], address, day)
    salt = hmac.new(app.config["SECRET_KEY"].encode(), b"leadpath visit ip salt " + day.isoformat().encode(),
                    hashlib.sha256).digest()
    assert visit.ip_hash == hmac.new(salt, address.encode(), hashlib.sha256).hexdigest()
    with app.app_context():
        row = db.session.execute(db.text("SELECT * FROM visits")).mappings().one()
    assert not any(address in str(value) for value in row.values())


def test_the_salt_rotates_daily_and_depends_on_the_secret():
    from datetime import date

    today, tomorrow = date(2026, 12, 3), date(2026, 12, 4)
    assert ip_hash("secret", "203.0.113.9", today) == ip_hash("secret", "203.0.113.9", today)
    assert ip_hash("secret", "203.0.113.9", today) != ip_hash("secret", "203.0.113.9", tomorrow)
    assert ip_hash("secret", "203.0.113.9", today) != ip_hash("other", "203.0.113.9", today)


@pytest.mark.parametrize("user_agent", [
    "", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
    "facebookexternalhit/1.1", "curl/8.5.0", "python-requests/2.32.3", "Mozilla/5.0 (compatible; AhrefsBot/7.0)",
])
def test_a_bot_is_answered_202_and_nothing_is_stored(app, client, workspace, user_agent):
    workspace_id, public_id = workspace
    response = send(client, beacon(public_id), user_agent=user_agent)
    assert response.status_code == 202 and response.get_json() == {"success": True}
    assert visits_of(app, workspace_id) == []


def test_browsers_are_not_bots_and_every_marker_is_one():
    assert not is_bot(CHROME)
    assert not is_bot("Mozilla/5.0 (Linux; Android 10; CUBOT KINGKONG 7) AppleWebKit/537.36 Chrome/120 Mobile")
    assert not is_bot("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 "
                      "Mobile/15E148 Safari/604.1")
    assert all(is_bot(f"Mozilla/5.0 {marker.upper()} something") for marker in BOT_MARKERS)


def test_an_origin_outside_the_allowed_list_is_refused_and_nothing_stored(app, client, workspace):
    workspace_id, public_id = workspace
    set_workspace(app, workspace_id, allowed_origins="https://shop.example")
    refused = send(client, beacon(public_id), Origin="https://evil.example")
    assert refused.status_code == 403 and "not allowed" in refused.get_json()["message"]
    assert "Access-Control-Allow-Origin" not in refused.headers
    allowed = send(client, beacon(public_id, visit_id="b2" * 16), Origin="https://shop.example")
    assert allowed.status_code == 202 and allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert [visit.visit_id for visit in visits_of(app, workspace_id)] == ["b2" * 16]


def test_an_unknown_workspace_is_a_404(client):
    response = send(client, beacon("no-such-workspace"))
    assert response.status_code == 404 and "userAccountId" in response.get_json()["message"]


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "text/plain", 400),
    (b"[1, 2]", "application/json", 400),
    (b"x" * 9000, "text/plain", 413),
    (b"visitor_id=1", "application/x-www-form-urlencoded", 415),
    (b"[" * 4000 + b"]" * 4000, "text/plain", 400),
])
def test_malformed_or_oversized_bodies_are_4xx_with_a_message(app, client, workspace, body, content_type, status):
    response = send(client, body, content_type=content_type)
    assert response.status_code == status and response.get_json()["message"]
    assert visits_of(app, workspace[0]) == []


@pytest.mark.parametrize(("fields", "bad"), [
    ({"visitor_id": None}, "visitor_id"),
    ({"visit_id": "short"}, "visit_id"),
    ({"visit_id": "x" * 32}, "visit_id"),
    ({"visitor_id": "0f" * 16 + "'; DROP TABLE visits; --"}, "visitor_id"),
    ({"visitor_id": 12345}, "visitor_id"),
    ({"utm_source": "s" * 201}, "utm_source"),
    ({"utm_campaign": {"nested": 1}}, "utm_campaign"),
    ({"device": "fridge"}, "device"),
])
def test_invalid_fields_are_a_400_naming_them(app, client, workspace, fields, bad):
    response = send(client, beacon(workspace[1], **fields))
    assert response.status_code == 400 and bad in response.get_json()["errors"]
    assert visits_of(app, workspace[0]) == []


def test_long_urls_are_cut_not_refused(app, client, workspace):
    long_url = "https://shop.example/?q=" + "a" * 3000
    assert send(client, beacon(workspace[1], landing_page=long_url[:7000])).status_code == 202
    [visit] = visits_of(app, workspace[0])
    assert visit.landing_page == long_url[:2000]


def test_beacons_are_rate_limited_per_address_and_per_workspace(database_schema):
    app = make_app(VISIT_RATE_LIMIT_IP="3 per minute", VISIT_RATE_LIMIT_WORKSPACE="5 per minute")
    public_id = make_workspace(app, "Limited")[1]
    client = app.test_client()
    answers = [send(client, beacon(public_id, visit_id=f"{n:032x}")).status_code for n in range(4)]
    assert answers == [202, 202, 202, 429]
    limited = send(client, beacon(public_id, visit_id=f"{9:032x}"))
    assert "address" in limited.get_json()["message"] and int(limited.headers["Retry-After"]) > 0
    others = [send(client, beacon(public_id, visit_id=f"{n + 20:032x}"),
                   environ_base={"REMOTE_ADDR": f"198.51.100.{n}"}).status_code for n in range(3)]
    assert others == [202, 202, 429]  # the workspace's five were used up across addresses
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Visit)) == 5


def test_a_visit_marks_the_snippet_as_seen(app, client, workspace):
    workspace_id, public_id = workspace
    assert send(client, beacon(public_id)).status_code == 202
    with app.app_context():
        assert db.session.get(Workspace, workspace_id).snippet_seen_at is not None


def test_a_bot_does_not_mark_the_snippet_as_seen(app, client, workspace):
    workspace_id, public_id = workspace
    assert send(client, beacon(public_id), user_agent="Googlebot/2.1").status_code == 202
    with app.app_context():
        assert db.session.get(Workspace, workspace_id).snippet_seen_at is None


def test_the_preflight_and_other_methods(client):
    preflight = client.options("/api/visits", headers={"Origin": "https://shop.example",
                                                       "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
    wrong = client.get("/api/visits")
    assert wrong.status_code == 405 and wrong.get_json()["message"] == "Send visits with POST."
