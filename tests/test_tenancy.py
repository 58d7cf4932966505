"""Tenant isolation: a user of workspace A gets 404 for every URL that names an object of workspace B.

The routes are read from the app's URL map, so a new route with an object id fails here until the test
knows how to make such an object.
"""
from datetime import timedelta

import pytest
from support import csrf_from, log_in, workspace_of


def _make_invite(workspace_id, user_id):
    from portal.models import Invite
    from portal.models.types import utcnow

    return Invite(workspace_id=workspace_id, email="x@example.com", token_hash="h" * 64,
                  created_by_id=user_id, expires_at=utcnow() + timedelta(days=1))


def _make_user(workspace_id, user_id):
    from portal.models import User

    user = User(workspace_id=workspace_id, email="teammate-b@example.com", role="member")
    user.set_password("irrelevant-password")
    return user


def _make_lead(workspace_id, user_id):
    from portal.models import Lead

    return Lead(workspace_id=workspace_id, name="B's lead", phone="+79990001122")


def _make_api_token(workspace_id, user_id):
    from portal.models import ApiToken

    return ApiToken(workspace_id=workspace_id, name="B's token", token_hash="b" * 64, prefix="lp_bbbbbbb")


def _make_ad_spend(workspace_id, user_id):
    from datetime import date
    from decimal import Decimal

    from portal.models import AdSpend

    return AdSpend(workspace_id=workspace_id, date=date(2026, 1, 1), utm_source="b", amount=Decimal("10"))


# URL argument name → a factory of a workspace-B object (workspace_id, owner id) → model instance.
OBJECT_FACTORIES = {"invite_id": _make_invite, "user_id": _make_user, "lead_id": _make_lead,
                    "token_id": _make_api_token, "spend_id": _make_ad_spend}


def object_routes(app):
    for rule in app.url_map.iter_rules():
        int_args = [name for name, converter in rule._converters.items()
                    if converter.__class__.__name__ == "IntegerConverter"]
        if int_args:
            yield rule, int_args


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
