"""Security headers on every page a logged-in owner can open, and the session cookie's flags.

(Login brute force is throttled per e-mail and per IP: tests/test_auth.py. Webhook secret guessing is throttled:
tests/test_webhooks_receive.py::test_guessing_secrets_is_throttled_but_the_right_secret_from_elsewhere_still_works.)
"""
import pytest
from fixtures.abuse import own_objects, owner_pages
from fixtures.support import DATABASE_URL, REDIS_URL, csrf_from

from config import ProductionConfig
from portal import create_app


def _assert_page_headers(response, url):
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("Referrer-Policy") == "strict-origin-when-cross-origin", url
    assert headers.get("X-Frame-Options") == "DENY", url
    policy = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy, url
    assert "default-src 'self'" in policy and "object-src 'none'" in policy, url
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, url


def test_every_owner_page_carries_the_security_headers(app, owner, owner_client):
    pages = owner_pages(app, own_objects(app, owner))
    html_pages = 0
    for _endpoint, url in pages:
        response = owner_client.get(url)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        _assert_page_headers(response, url)
        if response.status_code == 200 and response.mimetype == "text/html":
            html_pages += 1
    assert html_pages >= 5, pages


def test_error_pages_and_json_answers_carry_them_too(app, owner_client):
    for url in ("/no-such-page", "/api/leads", "/amocrm/status", "/healthz"):
        response = owner_client.get(url)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", url
        assert response.headers.get("X-Frame-Options") == "DENY", url
        assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", ""), url


def _cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def _log_in_remembered(client):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "email": "owner@example.com",
                                       "password": "correct horse battery", "remember": "y"})


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(app, owner):
    response = _log_in_remembered(app.test_client())
    assert response.status_code == 302
    cookies = _cookies(response)
    assert {"session", "remember_token", "login_device"} <= set(cookies)
    for name in ("session", "remember_token", "login_device"):
        assert "HttpOnly" in cookies[name], cookies[name]
        assert "SameSite=Lax" in cookies[name], cookies[name]
        assert "Secure" not in cookies[name]  # plain http in development and tests


@pytest.fixture
def production_app(app):
    """The production configuration against the test database (its required settings given explicitly)."""
    return create_app(ProductionConfig, SECRET_KEY="production-test-key", SQLALCHEMY_DATABASE_URI=DATABASE_URL,
                      REDIS_URL=REDIS_URL or "redis://127.0.0.1:6379/9", RATELIMIT_STORAGE_URI="memory://",
                      ENCRYPTION_KEYS=app.config["ENCRYPTION_KEYS"])


@pytest.mark.integration
def test_production_cookies_are_host_prefixed_secure_and_pages_send_hsts(production_app, owner):
    """`__Host-` cookies: browsers keep them only when Secure, Path=/ and without Domain, so no subdomain and no
    plain-http page can plant or overwrite them."""
    client = production_app.test_client()
    login = client.get("/login", base_url="https://localhost")
    assert "max-age=31536000" in login.headers.get("Strict-Transport-Security", "")
    assert "base-uri 'none'" in login.headers["Content-Security-Policy"]
    token = csrf_from(login.get_data(as_text=True))
    response = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                           data={"csrf_token": token, "email": "owner@example.com",
                                 "password": "correct horse battery", "remember": "y"})
    assert response.status_code == 302
    cookies = _cookies(response)
    assert {"__Host-session", "__Host-remember_token", "__Host-login_device"} <= set(cookies), set(cookies)
    for name in ("__Host-session", "__Host-remember_token", "__Host-login_device"):
        attributes = [part.strip() for part in cookies[name].split(";")]
        assert "Secure" in attributes and "HttpOnly" in attributes and "SameSite=Lax" in attributes, cookies[name]
        assert "Path=/" in attributes and not any(a.lower().startswith("domain=") for a in attributes), cookies[name]
    # The cookies work: the next request is logged in.
    assert client.get("/settings/", base_url="https://localhost").status_code == 200
