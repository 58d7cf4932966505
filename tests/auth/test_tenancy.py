"""Tenant isolation: a user of workspace A gets 404 for every URL that names an object of workspace B.

The routes are read from the app's URL map, so a new route with an object id fails here until the test
knows how to make such an object.
"""

import pytest
from fixtures.support import csrf_from, log_in, workspace_of
from fixtures.tenancy import OBJECT_FACTORIES, object_routes


def test_every_object_route_is_covered(app):
    unknown = {arg for _, args in object_routes(app) for arg in args} - set(OBJECT_FACTORIES)
    assert not unknown, f"add factories for {unknown} to OBJECT_FACTORIES"


@pytest.fixture
def workspace_b_objects(app, make_user):
    from portal.extensions import db

    owner_b = make_user("owner-b@example.com")
    workspace_b = workspace_of(app, owner_b)
    ids = {}
    with app.app_context():
        for arg, factory in OBJECT_FACTORIES.items():
            row = factory(workspace_b, owner_b)
            db.session.add(row)
            db.session.flush()
            ids[arg] = row.id
        db.session.commit()
    return ids


def test_user_of_a_gets_404_for_every_object_of_b(app, make_user, workspace_b_objects):
    make_user("owner-a@example.com")
    client = app.test_client()
    assert log_in(client, "owner-a@example.com").status_code == 302
    token = csrf_from(client.get("/settings/team").get_data(as_text=True))
    checked = 0
    for rule, args in object_routes(app):
        url = app.url_map.bind("localhost").build(rule.endpoint, {arg: workspace_b_objects[arg] for arg in args})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf_token": token} if method != "GET" else None)
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            checked += 1
    assert checked >= 2
    # B's objects are untouched.
    from portal.extensions import db
    from portal.models import Invite, User

    with app.app_context():
        assert db.session.get(User, workspace_b_objects["user_id"]) is not None
        assert db.session.get(Invite, workspace_b_objects["invite_id"]).revoked_at is None
