"""Invites and roles: the owner invites teammates; members read everything but change nothing."""
import re
from datetime import timedelta

from fixtures.support import PASSWORD, log_in, post_form


def invite(owner_client, email="mate@example.com") -> str:
    response = post_form(owner_client, "/settings/team/invites", {"email": email}, page="/settings/team")
    assert response.status_code == 200, response.get_data(as_text=True)
    return re.search(r'value="(http://localhost/invite/[^"]+)"', response.get_data(as_text=True)).group(1)


def accept(client, url: str, password="mate-password"):
    path = url.replace("http://localhost", "")
    return post_form(client, path, {"name": "Mate", "password": password, "confirm": password})


def test_invited_teammate_joins_as_member_of_the_workspace(app, owner_client, owner):
    from fixtures.support import workspace_of

    from portal.extensions import db
    from portal.models import User

    url = invite(owner_client)
    response = accept(app.test_client(), url)
    assert response.status_code == 302
    with app.app_context():
        mate = db.session.scalar(db.select(User).where(User.email == "mate@example.com"))
        assert mate.role == "member" and mate.workspace_id == workspace_of(app, owner)


def test_invite_link_works_once(app, owner_client):
    url = invite(owner_client)
    assert accept(app.test_client(), url).status_code == 302
    response = app.test_client().get(url.replace("http://localhost", ""))
    assert response.status_code == 404
    assert "already been used" in response.get_data(as_text=True)


def test_expired_invite_is_refused(app, owner_client):
    from portal.extensions import db
    from portal.models import Invite
    from portal.models.types import utcnow

    url = invite(owner_client)
    with app.app_context():
        db.session.execute(db.update(Invite).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    response = app.test_client().get(url.replace("http://localhost", ""))
    assert response.status_code == 404 and "expired" in response.get_data(as_text=True)


def test_revoked_invite_is_refused(app, owner_client):
    from portal.extensions import db
    from portal.models import Invite

    url = invite(owner_client)
    with app.app_context():
        invite_id = db.session.scalar(db.select(Invite.id))
    post_form(owner_client, f"/settings/team/invites/{invite_id}/revoke", {}, page="/settings/team")
    assert app.test_client().get(url.replace("http://localhost", "")).status_code == 404


def test_member_reads_settings_but_cannot_change_them(app, owner, make_user):
    from fixtures.support import workspace_of

    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    log_in(client, "member@example.com")
    page = client.get("/settings/")
    assert page.status_code == 200
    assert "the owner can change them" in page.get_data(as_text=True)
    response = post_form(client, "/settings/", {"name": "Hijacked", "currency": "USD", "timezone": "UTC",
                                                "country": "US"}, page="/settings/team")
    assert response.status_code == 403
    assert post_form(client, "/settings/team/invites", {"email": "x@example.com"},
                     page="/settings/team").status_code == 403


def test_owner_changes_settings(owner_client, app, owner):
    from portal.extensions import db
    from portal.models import User

    response = post_form(owner_client, "/settings/", {"name": "Renamed", "currency": "USD",
                                                      "timezone": "Europe/Berlin", "country": "de"})
    assert response.status_code == 302
    with app.app_context():
        workspace = db.session.get(User, owner).workspace
        assert (workspace.name, workspace.currency, workspace.timezone, workspace.country) == (
            "Renamed", "USD", "Europe/Berlin", "DE")


def test_owner_removes_a_member_who_then_cannot_log_in(app, owner_client, owner, make_user):
    from fixtures.support import workspace_of

    member = make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    response = post_form(owner_client, f"/settings/team/members/{member}/remove", {}, page="/settings/team")
    assert response.status_code == 302
    assert log_in(app.test_client(), "member@example.com", PASSWORD).status_code == 200
