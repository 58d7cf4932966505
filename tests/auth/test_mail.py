"""E-mail: password reset, invites and e-mail confirmation, delivered through a real SMTP server (aiosmtpd on a
free port) from the outbox by its job; a failed delivery stays in the outbox and is sent later."""
import re
from datetime import timedelta

import pytest
from fixtures.support import PASSWORD, csrf_from, log_in, make_app, post_form, workspace_of
from sqlalchemy import func, select

from portal.extensions import db
from portal.mail.local_server import LocalSmtpServer
from portal.mail.outbox import deliver_mail, enqueue_due_mail
from portal.models import Invite, OutboxMail, PasswordReset, User, UserSession
from portal.models.types import utcnow

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def smtp_server():
    server = LocalSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(app, smtp_server):
    app.config.update(smtp_server.settings())
    return app


def deliver_all(app) -> int:
    """Run the delivery job for every due mail, as the worker does."""
    with app.app_context():
        ids = db.session.scalars(select(OutboxMail.id).where(OutboxMail.sent_at.is_(None))).all()
        return sum(deliver_mail(mail_id) for mail_id in ids)


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.get_content()).group(0)


def local_path(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def ask_for_reset(client, email: str):
    return post_form(client, "/password/forgot", {"email": email})


def test_password_reset_mail_sets_a_new_password_once_and_ends_every_other_session(
        mail_app, smtp_server, owner, owner_client):
    other_browser = mail_app.test_client()
    assert log_in(other_browser, "owner@example.com").status_code == 302
    remembered = mail_app.test_client()
    assert post_form(remembered, "/login", {"email": "owner@example.com", "password": PASSWORD,
                                            "remember": "y"}).status_code == 302
    remembered.delete_cookie("session")
    assert remembered.get("/").status_code == 200  # its remember-me cookie logs it back in
    stranger = mail_app.test_client()

    response = ask_for_reset(stranger, "Owner@Example.com ")
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    assert deliver_all(mail_app) == 1
    [message] = smtp_server.messages
    assert message["To"] == "owner@example.com" and message["Subject"] == "Reset your Leadpath password"
    link = link_in(message)
    with mail_app.app_context():
        stored = db.session.scalar(select(PasswordReset))
        assert link.rsplit("/", 1)[1] not in stored.token_hash  # only the hash is kept
        assert link.rsplit("/", 1)[1] not in db.session.scalar(select(OutboxMail.body).execution_options())  # sealed

    path = local_path(link)
    assert "Choose a new password" in stranger.get(path).get_data(as_text=True)
    response = post_form(stranger, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert stranger.get("/").status_code == 200  # this browser is logged in
    remembered.delete_cookie("session")  # the browser was closed: only its remember-me cookie is left
    for client in (owner_client, other_browser, remembered):
        assert client.get("/").status_code == 302  # every other session ended, remember-me cookies with them
    with mail_app.app_context():
        assert db.session.scalar(select(func.count(UserSession.id))) == 1
    assert log_in(mail_app.test_client(), "owner@example.com", NEW_PASSWORD).status_code == 302
    assert log_in(mail_app.test_client(), "owner@example.com", PASSWORD).status_code == 200

    again = mail_app.test_client().get(path)
    assert again.status_code == 404 and "already been used" in again.get_data(as_text=True)


def test_an_expired_reset_link_is_refused(mail_app, smtp_server, owner):
    client = mail_app.test_client()
    ask_for_reset(client, "owner@example.com")
    deliver_all(mail_app)
    with mail_app.app_context():
        reset = db.session.scalar(select(PasswordReset))
        reset.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    path = local_path(link_in(smtp_server.messages[0]))
    response = client.post(path, data={"csrf_token": csrf_from(client.get("/password/forgot").get_data(
        as_text=True)), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 404 and "expired" in response.get_data(as_text=True)
    assert log_in(mail_app.test_client(), "owner@example.com", PASSWORD).status_code == 302


def test_the_reset_form_answers_the_same_for_unknown_addresses_and_sends_nothing(mail_app, smtp_server, owner):
    known = ask_for_reset(mail_app.test_client(), "owner@example.com").get_data(as_text=True)
    unknown = ask_for_reset(mail_app.test_client(), "nobody@example.com").get_data(as_text=True)
    assert known.replace("owner@", "X@") == unknown.replace("nobody@", "X@")
    deliver_all(mail_app)
    assert [m["To"] for m in smtp_server.messages] == ["owner@example.com"]


def test_an_account_gets_a_few_reset_mails_however_often_it_is_asked(app, smtp_server, owner):
    app.config.update(smtp_server.settings(), PASSWORD_RESET_MAILS_PER_ACCOUNT=2)
    for _ in range(4):
        assert ask_for_reset(app.test_client(), "owner@example.com").status_code == 200
    deliver_all(app)
    assert len(smtp_server.messages) == 2


def test_the_reset_form_is_rate_limited_per_address_with_a_translated_page(smtp_server, database_schema):
    app = make_app(PASSWORD_RESET_RATE_LIMIT="2 per hour", **smtp_server.settings())
    client = app.test_client()
    for _ in range(2):
        assert ask_for_reset(client, "someone@example.com").status_code == 200
    response = post_form(client, "/password/forgot?lang=ru", {"email": "someone@example.com"})
    assert response.status_code == 429
    assert "Слишком много запросов на сброс пароля" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0


def test_a_failed_delivery_stays_in_the_outbox_and_is_sent_later(mail_app, smtp_server, owner):
    mail_app.config["MAIL_SMTP_PORT"] = smtp_server.port + 1 if smtp_server.port < 65535 else 1  # nobody there
    ask_for_reset(mail_app.test_client(), "owner@example.com")
    assert deliver_all(mail_app) == 0
    with mail_app.app_context():
        mail = db.session.scalar(select(OutboxMail))
        assert mail.sent_at is None and mail.attempts == 1 and mail.last_error
        assert "owner@" not in mail.last_error
        assert enqueue_due_mail() == 0  # not due before its backoff
        mail.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert enqueue_due_mail() == 1
    mail_app.config["MAIL_SMTP_PORT"] = smtp_server.port
    assert deliver_all(mail_app) == 1
    assert deliver_all(mail_app) == 0  # sent once
    assert len(smtp_server.messages) == 1


@pytest.mark.integration
def test_the_worker_delivers_what_the_request_queued(mail_app, smtp_server, owner):
    from portal.jobs.queues import DEFAULT
    from portal.jobs.worker import build_worker

    ask_for_reset(mail_app.test_client(), "owner@example.com")
    build_worker(mail_app, [DEFAULT]).work(burst=True)
    assert [m["To"] for m in smtp_server.messages] == ["owner@example.com"]


def invite(client, email: str):
    return post_form(client, "/settings/team/invites", {"email": email}, page="/settings/team")


def test_an_invite_is_mailed_in_the_inviters_language_and_names_the_workspace(mail_app, smtp_server, owner,
                                                                                 owner_client):
    with mail_app.app_context():
        db.session.get(User, owner).locale = "uk"
        db.session.commit()
    assert invite(owner_client, "mate@example.com").status_code == 200
    deliver_all(mail_app)
    [message] = smtp_server.messages
    assert "Workspace of owner@example.com" in message["Subject"]
    assert "запрошує" in message["Subject"]  # Ukrainian
    join = mail_app.test_client().get(local_path(link_in(message)))
    assert join.status_code == 200 and "Workspace of owner@example.com" in join.get_data(as_text=True)
    assert join.headers["Referrer-Policy"] == "no-referrer"


def test_inviting_an_address_again_replaces_its_open_invite(mail_app, smtp_server, owner, owner_client):
    invite(owner_client, "mate@example.com")
    invite(owner_client, "Mate@example.com")
    deliver_all(mail_app)
    first, second = smtp_server.messages
    with mail_app.app_context():
        open_invites = db.session.scalar(select(func.count(Invite.id)).where(
            Invite.revoked_at.is_(None), Invite.used_at.is_(None)))
    assert open_invites == 1
    assert mail_app.test_client().get(local_path(link_in(first))).status_code == 404
    assert mail_app.test_client().get(local_path(link_in(second))).status_code == 200


def test_send_again_mails_a_new_link(mail_app, smtp_server, owner, owner_client):
    invite(owner_client, "mate@example.com")
    with mail_app.app_context():
        invite_id = db.session.scalar(select(Invite.id))
    response = post_form(owner_client, f"/settings/team/invites/{invite_id}/resend", {}, page="/settings/team")
    assert response.status_code == 302
    deliver_all(mail_app)
    assert [m["To"] for m in smtp_server.messages] == ["mate@example.com"] * 2
    assert mail_app.test_client().get(local_path(link_in(smtp_server.messages[1]))).status_code == 200


def test_sign_up_mails_a_confirmation_link_that_confirms_the_address(mail_app, smtp_server):
    client = mail_app.test_client()
    response = post_form(client, "/signup?lang=ru", {
        "workspace_name": "Acme", "name": "Ann", "email": "ann@example.com", "password": PASSWORD,
        "confirm": PASSWORD})
    assert response.status_code == 302
    assert "is not confirmed yet" in client.get("/?lang=en").get_data(as_text=True)
    deliver_all(mail_app)
    [message] = smtp_server.messages
    assert message["Subject"] == "Подтвердите адрес электронной почты для Leadpath"
    assert client.get(local_path(link_in(message))).status_code == 302
    with mail_app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is not None
    assert "is not confirmed yet" not in client.get("/?lang=en").get_data(as_text=True)
    forged = local_path(link_in(message))[:-3] + "abc"
    assert mail_app.test_client().get(forged).status_code == 404


def test_failed_sign_ups_do_not_count_toward_the_limit(smtp_server, database_schema):
    app = make_app(SIGNUP_RATE_LIMIT="2 per hour", **smtp_server.settings())
    client = app.test_client()

    def sign_up(email, password=PASSWORD):
        return post_form(client, "/signup", {"workspace_name": "W", "name": "N", "email": email,
                                             "password": password, "confirm": password})

    for _ in range(5):
        assert sign_up("weak@example.com", password="short").status_code == 200  # refused, not counted
    assert sign_up("one@example.com").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/settings/account").get_data(as_text=True))})
    assert sign_up("two@example.com").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/settings/account").get_data(as_text=True))})
    limited = post_form(client, "/signup?lang=uk", {"workspace_name": "W", "name": "N", "email": "three@example.com",
                                                    "password": PASSWORD, "confirm": PASSWORD})
    assert limited.status_code == 429
    assert "Забагато реєстрацій звідси" in limited.get_data(as_text=True)
    assert 0 < int(limited.headers["Retry-After"]) <= 3600


def test_the_outbox_page_exists_only_where_enabled(mail_app, smtp_server, owner):
    ask_for_reset(mail_app.test_client(), "owner@example.com")
    deliver_all(mail_app)
    assert mail_app.test_client().get("/dev/outbox").status_code == 404
    mail_app.config["MAIL_OUTBOX_PAGE"] = True
    page = mail_app.test_client().get("/dev/outbox").get_data(as_text=True)
    assert "Reset your Leadpath password" in page and "/password/reset/" in page


def test_links_use_the_public_base_url_not_the_requests_host(mail_app, smtp_server, owner):
    mail_app.config["PUBLIC_BASE_URL"] = "https://leadpath.example.com"
    client, host = mail_app.test_client(), {"Host": "evil.example"}
    token = csrf_from(client.get("/password/forgot", headers=host).get_data(as_text=True))
    client.post("/password/forgot", data={"csrf_token": token, "email": "owner@example.com"}, headers=host)
    deliver_all(mail_app)
    assert link_in(smtp_server.messages[0]).startswith("https://leadpath.example.com/password/reset/")


def test_a_member_cannot_resend_invites(app, owner, make_user, owner_client):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    invite(owner_client, "mate@example.com")
    member = app.test_client()
    log_in(member, "member@example.com")
    with app.app_context():
        invite_id = db.session.scalar(select(Invite.id))
    response = post_form(member, f"/settings/team/invites/{invite_id}/resend", {}, page="/settings/team")
    assert response.status_code == 403


def test_sent_mails_are_pruned_after_the_retention_but_unsent_ones_stay(mail_app, smtp_server, owner):
    from portal.mail.outbox import prune_sent_mail

    ask_for_reset(mail_app.test_client(), "owner@example.com")
    deliver_all(mail_app)
    mail_app.config["MAIL_SMTP_HOST"] = None  # the next one cannot be sent
    with mail_app.app_context():
        db.session.execute(PasswordReset.__table__.delete())
        db.session.commit()
    ask_for_reset(mail_app.test_client(), "owner@example.com")
    deliver_all(mail_app)
    with mail_app.app_context():
        sent, unsent = db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
        assert unsent.sent_at is None and unsent.last_error == "MailNotConfigured"
        assert prune_sent_mail() == 0  # sent today
        sent.sent_at = unsent.created_at = utcnow() - timedelta(days=31)
        db.session.commit()
        assert prune_sent_mail() == 1
        assert db.session.scalars(select(OutboxMail.id)).all() == [unsent.id]
