"""One open invite per address and workspace, held by the database (a partial unique index), so two owners who
invite the same address at the same moment cannot both leave a valid link: the later one is told what happened."""
import threading
from datetime import timedelta

import pytest
from fixtures.support import IS_POSTGRES, workspace_of
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from portal.auth.services import AccountError, create_invite
from portal.extensions import db
from portal.models import Invite, User
from portal.models.types import utcnow


def invite_row(workspace_id: int, email: str, token_hash: str, **fields) -> dict:
    now = utcnow()
    return {"workspace_id": workspace_id, "email": email, "token_hash": token_hash, "role": "member",
            "created_at": now, "expires_at": now + timedelta(hours=1), **fields}


def test_the_database_refuses_a_second_open_invite_for_an_address(app, owner, make_user):
    ws = workspace_of(app, owner)
    other_ws = workspace_of(app, make_user("other-owner@example.com"))
    with app.app_context():
        db.session.execute(insert(Invite), [invite_row(ws, "a@example.com", "h1"),
                                            invite_row(ws, "a@example.com", "h2", revoked_at=utcnow()),
                                            invite_row(ws, "a@example.com", "h3", used_at=utcnow()),
                                            invite_row(other_ws, "a@example.com", "h4")])
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(insert(Invite), [invite_row(ws, "a@example.com", "h5")])
            db.session.commit()
        db.session.rollback()


def test_inviting_again_still_replaces_the_open_invite(app, owner):
    with app.test_request_context():
        inviter = db.session.get(User, owner)
        create_invite(inviter, "b@example.com")
        create_invite(db.session.get(User, owner), "b@example.com")
        rows = db.session.execute(select(Invite.revoked_at).where(Invite.email == "b@example.com")).all()
        assert sorted(row.revoked_at is None for row in rows) == [False, True]


@pytest.mark.integration
@pytest.mark.skipif(not IS_POSTGRES, reason="two transactions at once need PostgreSQL")
def test_the_later_of_two_simultaneous_invites_is_refused_with_a_reason(app, owner):
    ws = workspace_of(app, owner)
    outcome = {}
    with app.app_context():
        first = db.engine.connect()
        transaction = first.begin()
        # The other owner's invite: written, not yet committed, when this one is made.
        first.execute(insert(Invite), [invite_row(ws, "c@example.com", "first-owners-link")])

        def invite_at_the_same_moment():
            with app.test_request_context():
                try:
                    outcome["token"] = create_invite(db.session.get(User, owner), "c@example.com")
                except AccountError as error:
                    outcome["refused"] = str(error)

        second = threading.Thread(target=invite_at_the_same_moment)
        second.start()
        second.join(1.0)
        assert second.is_alive()  # waiting on the index for the first transaction
        transaction.commit()
        first.close()
        second.join(10)
    assert "sent a moment ago by someone else" in outcome.get("refused", ""), outcome
    with app.app_context():
        open_invites = db.session.scalars(select(Invite.token_hash).where(
            Invite.email == "c@example.com", Invite.revoked_at.is_(None), Invite.used_at.is_(None))).all()
        assert open_invites == ["first-owners-link"]
