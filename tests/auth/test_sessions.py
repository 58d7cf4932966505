"""Sessions end on the server: a copied session or remember-me cookie is dead after logout, remember-me keys are
random, stored hashed and work once, and a password change, "log out everywhere else" and removal from the
workspace end the other sessions."""
from datetime import timedelta

from fixtures.support import PASSWORD, csrf_from, log_in, post_form, workspace_of


def _log_in_remembered(client, email="owner@example.com", password=PASSWORD):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password,
                                       "remember": "y"})


def _copy_cookie(app, source, name):
    """A second browser holding a copy of `source`'s cookie `name` (nothing else)."""
    cookie = source.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    thief = app.test_client()
    thief.set_cookie(name, cookie.value)
    return thief


def _is_logged_in(client) -> bool:
    response = client.get("/settings/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and response.headers["Location"].startswith("/login"), response.status_code
    return False


def test_a_copied_session_cookie_is_dead_after_logout(app, owner):
    client = app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    thief = _copy_cookie(app, client, "session")
    assert _is_logged_in(thief)  # the copy works while the session lives
    assert post_form(client, "/logout", {}, page="/").status_code == 302
    assert not _is_logged_in(thief)
    assert not _is_logged_in(client)


def test_a_copied_remember_cookie_is_dead_after_logout(app, owner):
    client = app.test_client()
    assert _log_in_remembered(client).status_code == 302
    remember = client.get_cookie("remember_token").value
    assert post_form(client, "/logout", {}, page="/").status_code == 302
    thief = app.test_client()
    thief.set_cookie("remember_token", remember)
    assert not _is_logged_in(thief)


def test_remember_me_logs_a_browser_back_in_once_per_key(app, owner):
    client = app.test_client()
    assert _log_in_remembered(client).status_code == 302
    remember = client.get_cookie("remember_token").value
    # The browser restarts: the session cookie is gone, the remember-me cookie is not.
    restarted = app.test_client()
    restarted.set_cookie("remember_token", remember)
    assert _is_logged_in(restarted)
    rotated = restarted.get_cookie("remember_token").value
    assert rotated != remember  # rotated on use
    # A copy of the key just used logs nobody in; the new one does.
    stale = app.test_client()
    stale.set_cookie("remember_token", remember)
    assert not _is_logged_in(stale)
    fresh = app.test_client()
    fresh.set_cookie("remember_token", rotated)
    assert _is_logged_in(fresh)


def test_keys_are_random_and_only_their_hashes_are_stored(app, owner):
    from portal.extensions import db
    from portal.models import UserSession

    client = app.test_client()
    assert _log_in_remembered(client).status_code == 302
    remember = client.get_cookie("remember_token").value
    assert len(remember) >= 40 and not remember.startswith(f"{owner}|")  # not the user id with a signature
    with app.app_context():
        row = db.session.scalar(db.select(UserSession))
        stored = (row.key_hash, row.remember_hash)
    assert remember not in stored and all(len(value) == 64 for value in stored)


def test_logging_out_one_browser_keeps_the_others(app, owner):
    laptop, phone = app.test_client(), app.test_client()
    assert log_in(laptop, "owner@example.com").status_code == 302
    assert log_in(phone, "owner@example.com").status_code == 302
    post_form(phone, "/logout", {}, page="/")
    assert _is_logged_in(laptop) and not _is_logged_in(phone)


def test_log_out_everywhere_else_ends_other_sessions_and_remember_cookies(app, owner):
    here, other = app.test_client(), app.test_client()
    assert log_in(here, "owner@example.com").status_code == 302
    assert _log_in_remembered(other).status_code == 302
    other_remember = other.get_cookie("remember_token").value
    page = here.get("/settings/account").get_data(as_text=True)
    assert "Log out everywhere else" in page and "(this browser)" in page
    response = post_form(here, "/settings/account/sessions/end-others", {}, page="/settings/account")
    assert response.status_code == 302
    assert _is_logged_in(here)
    assert not _is_logged_in(other)
    revived = app.test_client()
    revived.set_cookie("remember_token", other_remember)
    assert not _is_logged_in(revived)


def _change_password(client, current, new, confirm=None):
    return post_form(client, "/settings/account/password",
                     {"current_password": current, "password": new, "confirm": confirm or new},
                     page="/settings/account")


def test_password_change_needs_the_current_password(app, owner):
    client = app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    response = _change_password(client, "not my password", "a brand new passphrase")
    assert response.status_code == 400
    assert "current password is wrong" in response.get_data(as_text=True)
    assert log_in(app.test_client(), "owner@example.com", PASSWORD).status_code == 302  # unchanged


def test_password_change_ends_the_other_sessions_and_keeps_this_one(app, owner):
    here, other = app.test_client(), app.test_client()
    assert log_in(here, "owner@example.com").status_code == 302
    assert _log_in_remembered(other).status_code == 302
    response = _change_password(here, PASSWORD, "a brand new passphrase")
    assert response.status_code == 302
    assert _is_logged_in(here)
    assert not _is_logged_in(other)
    assert log_in(app.test_client(), "owner@example.com", PASSWORD).status_code == 200  # the old one is refused
    assert log_in(app.test_client(), "owner@example.com", "a brand new passphrase").status_code == 302


def test_a_member_changes_their_own_password(app, owner, make_user):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    assert log_in(client, "member@example.com").status_code == 302
    assert "the owner can change them" not in client.get("/settings/account").get_data(as_text=True)
    assert _change_password(client, PASSWORD, "member's own passphrase").status_code == 302


def test_a_removed_member_is_logged_out_at_once(app, owner, owner_client, make_user):
    member = make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    member_client = app.test_client()
    assert _log_in_remembered(member_client, "member@example.com").status_code == 302
    remember = member_client.get_cookie("remember_token").value
    assert _is_logged_in(member_client)
    post_form(owner_client, f"/settings/team/members/{member}/remove", {}, page="/settings/team")
    assert not _is_logged_in(member_client)
    revived = app.test_client()
    revived.set_cookie("remember_token", remember)
    assert not _is_logged_in(revived)


def test_an_idle_session_expires_on_the_server(app, owner):
    from portal.extensions import db
    from portal.models import UserSession
    from portal.models.types import utcnow

    client = app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    with app.app_context():
        db.session.execute(db.update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert not _is_logged_in(client)


def test_a_session_cookie_with_a_plain_user_id_logs_nobody_in(app, owner):
    """What sessions held before they were server-side: a user id, signed. A signature is not enough now."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(owner)
        session["_fresh"] = True
    assert not _is_logged_in(client)


def test_a_browser_name_with_a_nul_character_does_not_break_the_login(app, owner):
    """The session row keeps the User-Agent (shown on the account page); PostgreSQL cannot store a NUL."""
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD},
                           headers={"User-Agent": "Evil\x00Browser/1.0"})
    assert response.status_code == 302
    assert "EvilBrowser/1.0" in client.get("/settings/account").get_data(as_text=True)


def test_a_static_file_does_not_spend_the_remember_me_key(app, owner):
    """After a browser restart the page and its stylesheet may both carry the remember-me cookie: only the page
    rotates it (a rotation is single-use, and the stylesheet's would log the page out)."""
    client = app.test_client()
    assert _log_in_remembered(client).status_code == 302
    remember = client.get_cookie("remember_token").value
    restarted = app.test_client()
    restarted.set_cookie("remember_token", remember)
    assert restarted.get("/static/css/app.css").status_code == 200
    assert restarted.get_cookie("remember_token").value == remember
    assert _is_logged_in(restarted)
