"""Sign-up, log-in, log-out, throttling, CSRF, safe `next` redirects, cookies and security headers."""
import pytest
from fixtures.support import PASSWORD, csrf_from, log_in, post_form


def sign_up(client, email="founder@example.com", password="s3cret-pass"):
    return post_form(client, "/signup", {"workspace_name": "Acme", "name": "Ann", "email": email,
                                         "password": password, "confirm": password})


def test_sign_up_creates_workspace_and_owner_and_logs_in(client, app):
    from portal.extensions import db
    from portal.models import User

    response = sign_up(client, email="Founder@Example.com")
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.email == "founder@example.com"
        assert user.role == "owner"
        assert user.workspace.name == "Acme"
        assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP's Argon2id parameters


def test_sign_up_refuses_a_taken_email(client, make_user):
    make_user("taken@example.com")
    response = sign_up(client, email="taken@example.com")
    assert response.status_code == 200
    assert "already exists" in response.get_data(as_text=True)


def test_log_in_and_log_out(client, owner):
    assert client.get("/").status_code == 302  # anonymous: to the login page
    assert log_in(client, "owner@example.com").headers["Location"] == "/"
    assert client.get("/").status_code == 200
    response = post_form(client, "/logout", {}, page="/")
    assert response.status_code == 302
    assert client.get("/").headers["Location"].startswith("/login")


def test_wrong_password_is_refused(client, owner):
    response = log_in(client, "owner@example.com", "wrong password")
    assert response.status_code == 200
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_unknown_email_gets_the_same_answer(client):
    response = log_in(client, "nobody@example.com")
    assert "Wrong e-mail or password" in response.get_data(as_text=True)


def test_login_is_throttled_per_email(client, owner):
    for _ in range(5):
        assert log_in(client, "owner@example.com", "wrong").status_code == 200
    response = log_in(client, "owner@example.com", PASSWORD)
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_login_is_throttled_per_ip_across_emails(app, make_user):
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = "3 per 10 minutes"
    client = app.test_client()
    for n in range(3):
        assert log_in(client, f"guess{n}@example.com", "wrong").status_code == 200
    assert log_in(client, "another@example.com", "wrong").status_code == 429


def test_successful_logins_do_not_count_against_the_limit(client, owner):
    for _ in range(7):
        assert log_in(client, "owner@example.com").status_code == 302
        post_form(client, "/logout", {}, page="/")


def test_post_without_csrf_token_is_rejected(client, owner):
    response = client.post("/login", data={"email": "owner@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_logged_in_post_without_csrf_token_is_rejected(owner_client):
    assert owner_client.post("/logout").status_code == 400
    assert owner_client.get("/").status_code == 200  # still logged in


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example/x", "/\\evil.example",
                                    "http:/evil.example", "javascript:alert(1)"])
def test_next_to_another_site_is_ignored(client, owner, target):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_to_a_local_page_is_followed(client, owner):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=/settings/team",
                           data={"csrf_token": token, "email": "owner@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/settings/team"


def test_remember_me_sets_a_lasting_httponly_cookie(client, owner):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": "owner@example.com",
                                           "password": PASSWORD, "remember": "y"})
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith("remember_token="))
    assert "HttpOnly" in remember and "SameSite=Lax" in remember and "Expires=" in remember


def test_session_cookie_flags(client, owner):
    cookies = log_in(client, "owner@example.com").headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session


def test_production_cookies_are_secure():
    from config import ProductionConfig

    assert ProductionConfig.SESSION_COOKIE_SECURE and ProductionConfig.REMEMBER_COOKIE_SECURE


@pytest.mark.parametrize("path", ["/login", "/signup", "/healthz"])
def test_security_headers(client, path):
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    if path != "/healthz":
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
        assert "base-uri 'none'" in csp  # no page needs <base>; an injected one could redirect relative URLs
        assert headers["X-Frame-Options"] == "DENY"


def test_production_refuses_to_start_without_its_settings(monkeypatch):
    from config import ProductionConfig
    from portal import create_app

    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", None)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProductionConfig)


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Back to Leadpath" in response.get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.is_json and response.json["success"] is False


def test_the_login_limit_counts_an_account_without_naming_it(app):
    """The bucket keys are in Redis: keyed hashes, one per account whatever the case and spacing of its e-mail."""
    from portal.auth.throttle import account_key

    with app.test_request_context("/login"):
        key = account_key(" Owner@Example.com ")
        assert "owner" not in key.lower() and "example" not in key.lower()
        assert account_key("owner@example.com") == key  # the same address, the same counter
        assert account_key("other@example.com") != key
