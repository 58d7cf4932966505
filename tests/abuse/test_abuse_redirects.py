"""`next` never redirects off the site, on every endpoint that takes it: login (a fresh login and an already
logged-in visit) and the sync retry routes (form field or query string)."""
from urllib.parse import urlsplit

import pytest
from fixtures.abuse import own_objects
from fixtures.support import PASSWORD, csrf_from, log_in

HOSTILE_NEXT = [
    "https://evil.example/", "http://evil.example", "//evil.example", "///evil.example", "/\\evil.example",
    "\\\\evil.example", "/\t/evil.example", "/\r\n/evil.example", "https:evil.example", "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>", " //evil.example", "%2F%2Fevil.example", "/%09/evil.example",
    "\x00//evil.example", "http://localhost@evil.example/", "evil.example",
]
SYNC_ROUTES = ["/sync/leads/{lead_id}/retry", "/sync/leads/retry-failed", "/sync/resume"]


def _assert_local(response, target):
    if "\x00" in target:  # refused before any view reads it (portal.security): no redirect at all
        assert response.status_code == 400, (target, response.status_code)
        return
    assert response.status_code in (301, 302, 303), (target, response.status_code)
    location = response.headers["Location"]
    # Read it as a browser would: tabs and newlines dropped, backslashes taken for slashes, leading spaces trimmed.
    as_browser = location.strip().replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    parts = urlsplit(as_browser)
    assert parts.netloc in ("", "localhost"), f"next={target!r} redirected to {location!r}"
    assert parts.scheme in ("", "http"), f"next={target!r} redirected to {location!r}"


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_login_next_stays_on_the_site(app, owner, target):
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD})
    _assert_local(response, target)
    # Already logged in: /login?next=… redirects at once, through the same check.
    _assert_local(client.get("/login", query_string={"next": target}), target)


def test_sync_routes_next_stays_on_the_site(app, owner, owner_client):
    ids = own_objects(app, owner)
    token = csrf_from(owner_client.get("/settings/").get_data(as_text=True))
    for route in SYNC_ROUTES:
        url = route.format(**ids)
        for target in HOSTILE_NEXT:
            _assert_local(owner_client.post(url, data={"csrf_token": token, "next": target}), target)
            _assert_local(owner_client.post(url, query_string={"next": target}, data={"csrf_token": token}),
                          target)


def test_a_local_next_is_followed(app, owner, owner_client):
    client = app.test_client()
    response = client.post("/login?next=/settings/team", data={
        "csrf_token": csrf_from(client.get("/login").get_data(as_text=True)),
        "email": "owner@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/settings/team"
    token = csrf_from(owner_client.get("/settings/").get_data(as_text=True))
    retry = owner_client.post("/sync/leads/retry-failed", data={"csrf_token": token, "next": "/settings/amocrm"})
    assert retry.headers["Location"] == "/settings/amocrm"
    assert log_in(app.test_client(), "owner@example.com").headers["Location"] == "/"


def test_every_reader_of_next_is_covered_here():
    """A new view reading `next` fails this until its routes are added to the tests above."""
    import re
    from pathlib import Path

    portal = Path(__file__).resolve().parents[2] / "portal"
    readers = {str(path.relative_to(portal)) for path in portal.rglob("*.py")
               if re.search(r"request\.(args|form|values)\.get\(\s*[\"']next[\"']", path.read_text())}
    assert readers == {"auth/routes.py", "amocrm/sync_routes.py"}
