"""Passwords: Argon2id with OWASP's parameters, older hashes replaced at login, and the ASVS rules for new ones
(8 to 128 characters, no common or breached password) wherever a password is chosen."""
import re

import pytest
from fixtures.support import PASSWORD, log_in, post_form
from werkzeug.security import generate_password_hash


def test_new_hashes_are_argon2id_with_owasps_parameters():
    from portal.passwords import hash_password, needs_rehash

    stored = hash_password("a long enough passphrase")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not needs_rehash(stored)
    assert needs_rehash(generate_password_hash("x"))  # Werkzeug's scrypt


def test_a_scrypt_hash_still_logs_in_and_is_replaced_by_argon2id(app, client, owner):
    from portal.extensions import db
    from portal.models import User

    with app.app_context():
        user = db.session.get(User, owner)
        user.password_hash = generate_password_hash(PASSWORD)  # as stored before Argon2
        db.session.commit()
    assert log_in(client, "owner@example.com").status_code == 302
    with app.app_context():
        stored = db.session.get(User, owner).password_hash
    assert stored.startswith("$argon2id$")
    assert log_in(app.test_client(), "owner@example.com").status_code == 302  # the new hash verifies
    assert log_in(app.test_client(), "owner@example.com", "wrong password").status_code == 200


def test_a_wrong_password_against_a_scrypt_hash_changes_nothing(app, client, owner):
    from portal.extensions import db
    from portal.models import User

    legacy = generate_password_hash(PASSWORD)
    with app.app_context():
        db.session.get(User, owner).password_hash = legacy
        db.session.commit()
    assert log_in(client, "owner@example.com", "wrong password").status_code == 200
    with app.app_context():
        assert db.session.get(User, owner).password_hash == legacy


@pytest.mark.parametrize("password", ["password", "Password", "12345678", "iloveyou", "qwertyuiop", "password1",
                                      " PASSWORD "])
def test_common_and_breached_passwords_are_refused(password):
    from portal.passwords import WeakPassword, check_new_password

    with pytest.raises(WeakPassword, match="too common"):
        check_new_password(password)


@pytest.mark.parametrize("password, reason", [("short1!", "at least 8"), ("x" * 129, "at most 128")])
def test_length_rules(password, reason):
    from portal.passwords import WeakPassword, check_new_password

    with pytest.raises(WeakPassword, match=reason):
        check_new_password(password)


def test_long_passphrases_and_any_characters_are_allowed():
    from portal.passwords import check_new_password

    check_new_password("x" * 128)
    check_new_password("корова батарея лошадь скрепка")
    check_new_password("correct horse battery staple 🐎")


def test_the_e_mail_is_no_password():
    from portal.passwords import WeakPassword, check_new_password

    with pytest.raises(WeakPassword):
        check_new_password("ann.smith@example.com", "Ann.Smith@example.com")
    with pytest.raises(WeakPassword):
        check_new_password("ann.smith", "ann.smith@example.com")


def test_the_bundled_list_is_large_and_read_from_the_package():
    from portal.passwords import common_passwords

    words = common_passwords()
    assert len(words) > 8000
    assert all(len(word) >= 8 and word == word.lower() for word in words)


def _sign_up(client, password):
    return post_form(client, "/signup", {"workspace_name": "Acme", "name": "Ann", "email": "ann@example.com",
                                         "password": password, "confirm": password})


def test_sign_up_refuses_password_as_a_password(client):
    response = _sign_up(client, "password")
    assert response.status_code == 200
    assert "too common" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # no account, not logged in
    assert _sign_up(client, "ann's long passphrase").status_code == 302


def test_accepting_an_invite_refuses_a_common_password(app, owner_client):
    response = post_form(owner_client, "/settings/team/invites", {"email": "mate@example.com"},
                         page="/settings/team")
    path = re.search(r'value="http://localhost(/invite/[^"]+)"', response.get_data(as_text=True)).group(1)
    client = app.test_client()
    refused = post_form(client, path, {"name": "Mate", "password": "iloveyou", "confirm": "iloveyou"})
    assert refused.status_code == 200 and "too common" in refused.get_data(as_text=True)
    assert post_form(client, path, {"name": "Mate", "password": "mate's passphrase",
                                    "confirm": "mate's passphrase"}).status_code == 302


def test_changing_to_a_common_password_is_refused(owner_client):
    response = post_form(owner_client, "/settings/account/password",
                         {"current_password": PASSWORD, "password": "qwertyuiop", "confirm": "qwertyuiop"},
                         page="/settings/account")
    assert response.status_code == 400 and "too common" in response.get_data(as_text=True)
