"""Oversized and deeply nested bodies on every public endpoint: a 4xx with a message, never a 5xx.

The endpoints are the ones a stranger can reach without a session: the lead API, the visit beacon, the webhook
receiver, the amoCRM secrets hook, login and signup (the invite form needs a live invite token: covered in
test_team.py).
"""
import json

import pytest
from fixtures.support import workspace_of

DEPTH = 50_000  # far past Python's recursion limit, far under the body size limits
PUBLIC_POSTS = ["/api/leads", "/api/visits", "/webhooks/amocrm/{public_id}/{secret}", "/amocrm/secrets", "/login",
                "/signup"]


@pytest.fixture
def target(app, make_user):
    from portal.extensions import db
    from portal.models import Workspace

    workspace_id = workspace_of(app, make_user("bodies@example.com"))
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        return {"public_id": workspace.public_id, "secret": workspace.webhook_secret}


def _bodies(public_id: str):
    """(label, body, content type) of hostile bodies: nested JSON and form keys, oversized JSON, form and bytes."""
    nested_json = "[" * DEPTH + "]" * DEPTH
    nested_object = f'{{"userAccountId": "{public_id}", "first_touch": ' + '{"a": ' * DEPTH + "1" + "}" * DEPTH + "}"
    nested_form = "leads" + "[a]" * DEPTH + "=1"
    big = 2 * 1024 * 1024
    return [
        ("nested JSON array", nested_json, "application/json"),
        ("nested JSON object", nested_object, "application/json"),
        ("nested form keys", nested_form, "application/x-www-form-urlencoded"),
        ("oversized JSON", json.dumps({"userAccountId": public_id, "name": "x" * big}), "application/json"),
        ("oversized form", "name=" + "x" * big, "application/x-www-form-urlencoded"),
        ("oversized multipart", b"--b\r\n" + b"x" * big, "multipart/form-data; boundary=b"),
        ("binary garbage", bytes(range(256)) * 64, "application/octet-stream"),
        ("invalid UTF-8 JSON", b'{"name": "\xff\xfe"}', "application/json"),
    ]


@pytest.mark.parametrize("path", PUBLIC_POSTS)
def test_hostile_bodies_get_a_4xx_with_a_message(app, target, path):
    client = app.test_client()
    url = path.format(**target)
    for label, body, content_type in _bodies(target["public_id"]):
        response = client.post(url, data=body, content_type=content_type)
        assert 400 <= response.status_code < 500, f"{label} → {url}: {response.status_code}"
        text = response.get_data(as_text=True)
        if response.is_json:
            assert response.get_json()["message"], f"{label} → {url}: JSON error without a message"
        else:
            assert "<h1" in text and "Something went wrong" not in text, f"{label} → {url}: no error page"


def test_oversized_bodies_are_refused_with_413(app, target):
    """Each endpoint with the content type it accepts, so the size check (not the type check) answers."""
    client = app.test_client()
    big_json = json.dumps({"userAccountId": target["public_id"], "name": "x" * (2 * 1024 * 1024)})
    big_form = "name=" + "x" * (2 * 1024 * 1024)
    for path in PUBLIC_POSTS:
        is_json = path in ("/api/leads", "/api/visits", "/amocrm/secrets")
        response = client.post(path.format(**target), data=big_json if is_json else big_form,
                               content_type="application/json" if is_json else "application/x-www-form-urlencoded")
        assert response.status_code == 413, f"{path}: {response.status_code}"
