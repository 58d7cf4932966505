"""Hostile visit beacons: every odd value is a 4xx with a message or stored harmlessly, never a 5xx."""
import json

import pytest
from fixtures.intake import make_workspace

from portal.extensions import db
from portal.models import Visit

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def public_id(app):
    return make_workspace(app, "Hostile visits")[1]


def _post(client, body, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post("/api/visits", data=data, headers={"Content-Type": "text/plain", "User-Agent": CHROME,
                                                          **headers})


@pytest.mark.parametrize("fields", [
    {"visitor_id": "' OR 1=1 --"}, {"visit_id": SCRIPT}, {"visit_id": "a" * 10_000}, {"visitor_id": 1e308},
    {"visitor_id": True}, {"visit_id": {"$gt": ""}}, {"utm_source": ["a", "b"]}, {"utm_medium": 12},
    {"device": ["mobile"]}, {"referrer": {"a": 1}}, {"userAccountId": 12345}, {"userAccountId": "x" * 5000},
    {"userAccountId": None},
])
def test_odd_values_are_a_4xx_with_a_message(app, public_id, fields):
    document = {"userAccountId": public_id, "visitor_id": "0" * 32, "visit_id": "1" * 32, **fields}
    response = _post(app.test_client(), document)
    assert 400 <= response.status_code < 500 and response.get_json()["message"]


def test_control_characters_surrogates_and_markup_are_stored_as_harmless_text(app, public_id):
    document = {"userAccountId": public_id, "visitor_id": "0" * 32, "visit_id": "2" * 32,
                "utm_source": "a\u0000b\ud800c", "utm_campaign": SCRIPT, "landing_page": "https://x.example/\x07"}
    response = _post(app.test_client(), document)
    assert response.status_code == 202
    with app.app_context():
        visit = db.session.scalars(db.select(Visit)).one()
        assert (visit.utm_source, visit.utm_campaign, visit.landing_page) == ("a b c", SCRIPT, "https://x.example/")


@pytest.mark.parametrize(("body", "content_type"), [
    (b"", "text/plain"), (b"null", "text/plain"), (b'"text"', "application/json"), (b"\xff\xfe\x00", "text/plain"),
    (b'{"a": 1}', "text/html"), (b"{}", ""),
])
def test_empty_wrongly_typed_or_undecodable_bodies_are_a_4xx(app, body, content_type):
    response = app.test_client().post("/api/visits", data=body, headers={"Content-Type": content_type,
                                                                         "User-Agent": CHROME})
    assert 400 <= response.status_code < 500 and response.get_json()["message"]


def test_the_workspace_named_in_a_header_is_read_too(app, public_id):
    response = _post(app.test_client(), {"visitor_id": "0" * 32, "visit_id": "3" * 32},
                     **{"X-Workspace": public_id})
    assert response.status_code == 202
