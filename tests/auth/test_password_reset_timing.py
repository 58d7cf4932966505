""""Forgot password" does not tell by its timing whether an address has an account: an unknown address does the
same work short of storing (the mail is rendered and sealed for a stand-in), and every answer takes at least
PASSWORD_RESET_MIN_SECONDS. (The measured figures: tests/bench/password_reset_timing.py.)"""
import time

from fixtures.support import post_form
from sqlalchemy import func, select

import portal.auth.password_reset as password_reset
from portal.extensions import db
from portal.models import OutboxMail, PasswordReset, User


def stored(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (PasswordReset, OutboxMail, User))


def test_an_unknown_address_renders_and_seals_a_mail_but_stores_nothing(app, owner, monkeypatch):
    rendered, sealed = [], []
    real_message, real_seal = password_reset.password_reset_message, password_reset.seal
    monkeypatch.setattr(password_reset, "password_reset_message",
                        lambda user, link, minutes: rendered.append(user.email) or real_message(user, link, minutes))
    monkeypatch.setattr(password_reset, "seal",
                        lambda text, context: sealed.append(context) or real_seal(text, context))
    before = stored(app)
    client = app.test_client()
    assert post_form(client, "/password/forgot", {"email": " Nobody@Example.com "}).status_code == 200
    assert rendered == ["nobody@example.com"] and sealed == ["outbox_mails.body:0"]
    assert stored(app) == before  # no link, no mail, and the stand-in account was never saved


def test_known_and_unknown_addresses_both_take_the_floor(app, owner):
    app.config["PASSWORD_RESET_MIN_SECONDS"] = 0.3
    client = app.test_client()
    for email in ("owner@example.com", "nobody@example.com"):
        started = time.monotonic()
        assert post_form(client, "/password/forgot", {"email": email}).status_code == 200
        assert time.monotonic() - started >= 0.3, email
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PasswordReset)) == 1  # the known one's link
