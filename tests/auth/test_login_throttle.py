"""Login throttling that cannot lock the owner out: failures count per (account, client) with progressive delay,
a browser that logged in before (its device cookie) is throttled on its own, and the per-address limit is loose
enough for a shared NAT."""
import pytest
from fixtures.support import PASSWORD, csrf_from

STRANGER = "198.51.100.7"
OWNER_HOME = "203.0.113.10"


def attempt(client, email, password, address="127.0.0.1"):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand: clock.advance(seconds)."""
    import time

    from portal.auth import throttle

    class Clock:
        now = time.time()

        def advance(self, seconds):
            self.now += seconds

    clock = Clock()
    monkeypatch.setattr(throttle.time, "time", lambda: clock.now)
    return clock


def test_case_and_spacing_variants_share_the_account_bucket(client, owner):
    for email in ("Owner@Example.com", " owner@example.com", "OWNER@EXAMPLE.COM ", "owner@EXAMPLE.com",
                  "owner@example.com"):
        assert attempt(client, email, "wrong").status_code == 200
    assert attempt(client, " OWNER@example.COM", PASSWORD).status_code == 429


def test_a_strangers_failures_do_not_lock_the_owner_out_of_another_address(app, owner):
    stranger = app.test_client()
    for _ in range(5):
        assert attempt(stranger, "owner@example.com", "guess", STRANGER).status_code == 200
    assert attempt(stranger, "owner@example.com", "guess", STRANGER).status_code == 429
    owner_browser = app.test_client()
    assert attempt(owner_browser, "owner@example.com", PASSWORD, OWNER_HOME).status_code == 302


def test_the_owner_keeps_logging_in_from_a_known_browser_while_the_account_is_attacked(app, owner):
    owner_browser = app.test_client()
    assert attempt(owner_browser, "owner@example.com", PASSWORD, OWNER_HOME).status_code == 302
    assert owner_browser.get_cookie("login_device") is not None
    owner_browser.post("/logout", data={"csrf_token": csrf_from(owner_browser.get("/").get_data(as_text=True))})
    # A guesser spread over many addresses: the account is closed to every browser it does not know...
    for n in range(20):
        assert attempt(app.test_client(), "owner@example.com", "guess", f"198.51.100.{n}").status_code == 200
    assert attempt(app.test_client(), "owner@example.com", PASSWORD, "198.51.100.99").status_code == 429
    # ...and the owner's own browser, even from the stranger's address, still gets in.
    assert attempt(owner_browser, "owner@example.com", PASSWORD, STRANGER).status_code == 302


def test_a_device_cookie_helps_only_its_own_account(app, owner, make_user):
    make_user("other@example.com")
    browser = app.test_client()
    assert attempt(browser, "other@example.com", PASSWORD).status_code == 302
    device = browser.get_cookie("login_device").value
    for n in range(20):
        attempt(app.test_client(), "owner@example.com", "guess", f"198.51.100.{n}")
    with_other_accounts_cookie = app.test_client()
    with_other_accounts_cookie.set_cookie("login_device", device)
    assert attempt(with_other_accounts_cookie, "owner@example.com", PASSWORD, OWNER_HOME).status_code == 429
    forged = app.test_client()
    forged.set_cookie("login_device", device[:-2] + ("AA" if not device.endswith("AA") else "BB"))
    assert attempt(forged, "owner@example.com", PASSWORD, OWNER_HOME).status_code == 429


def test_a_known_browser_that_keeps_failing_is_throttled_too(app, owner):
    browser = app.test_client()
    assert attempt(browser, "owner@example.com", PASSWORD).status_code == 302
    browser.post("/logout", data={"csrf_token": csrf_from(browser.get("/").get_data(as_text=True))})
    for _ in range(5):
        assert attempt(browser, "owner@example.com", "wrong").status_code == 200
    # No longer trusted: it counts as any other client from its address, whose bucket is now the one to fill.
    for _ in range(5):
        assert attempt(browser, "owner@example.com", "wrong").status_code == 200
    assert attempt(browser, "owner@example.com", PASSWORD).status_code == 429


def test_one_guesser_behind_a_nat_does_not_lock_out_the_neighbours(app, owner):
    """Everyone in an office shares one address: a guesser there trying many accounts slows down on each of
    them, not the colleague logging in to their own."""
    guesser = app.test_client()
    for n in range(8):
        for _ in range(5):
            assert attempt(guesser, f"victim{n}@example.com", "guess", STRANGER).status_code == 200
    colleague = app.test_client()
    assert attempt(colleague, "owner@example.com", PASSWORD, STRANGER).status_code == 302


def test_the_per_address_bucket_still_stops_a_spray(app):
    app.config["LOGIN_FAILURES_PER_ADDRESS"] = "12 per 15 minutes"
    sprayer = app.test_client()
    for n in range(12):
        assert attempt(sprayer, f"victim{n}@example.com", "guess", STRANGER).status_code == 200
    assert attempt(sprayer, "victim99@example.com", "guess", STRANGER).status_code == 429


def test_the_delay_grows_with_each_further_failure_and_success_resets_it(client, owner, clock):
    for _ in range(5):
        assert attempt(client, "owner@example.com", "wrong").status_code == 200
    first = attempt(client, "owner@example.com", PASSWORD)
    assert first.status_code == 429 and 25 <= int(first.headers["Retry-After"]) <= 30
    clock.advance(31)
    assert attempt(client, "owner@example.com", "wrong").status_code == 200  # allowed again, and failed
    second = attempt(client, "owner@example.com", PASSWORD)
    assert second.status_code == 429 and 55 <= int(second.headers["Retry-After"]) <= 60
    clock.advance(61)
    assert attempt(client, "owner@example.com", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/").get_data(as_text=True))})
    client.delete_cookie("login_device")  # as an unknown browser again: its (address, account) bucket was reset
    for _ in range(5):
        assert attempt(client, "owner@example.com", "wrong").status_code == 200


def test_the_throttle_page_says_what_to_do(client, owner):
    for _ in range(5):
        attempt(client, "owner@example.com", "wrong")
    response = attempt(client, "owner@example.com", PASSWORD)
    assert response.status_code == 429
    assert response.mimetype == "text/html" and int(response.headers["Retry-After"]) > 0
    page = response.get_data(as_text=True)
    assert "Too many failed log-ins" in page
    assert "where you have logged in to this account before" in page
    assert "in about 1 min" in page and 'href="/login' in page
    # Refused before the password is checked: a right password does not log in while throttled.
    assert client.get("/settings/").status_code == 302
