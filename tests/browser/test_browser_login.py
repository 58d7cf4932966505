"""The login page in real Chromium: a person signs up, lands on the dashboard and logs out."""
import pytest

pytestmark = pytest.mark.browser


def test_sign_up_and_log_out_in_chromium(live_server, page):
    page.goto(f"{live_server}/signup")
    page.fill("#workspace_name", "Browser Co")
    page.fill("#name", "Bea")
    page.fill("#email", "bea@example.com")
    page.fill("#password", "browser-pass")
    page.fill("#confirm", "browser-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert page.inner_text("h1") == "Dashboard"
    assert "Browser Co" in page.inner_text("header")
    page.click("text=Log out")
    page.wait_for_url(f"{live_server}/login")
    assert "You have been logged out." in page.inner_text("main")


def test_a_serious_button_asks_first(app, live_server, page, owner, make_user):
    from fixtures.support import PASSWORD, workspace_of

    make_user("mate@example.com", role="member", workspace_id=workspace_of(app, owner))
    page.goto(f"{live_server}/login")
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/settings/team")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("text=Remove")
    page.wait_for_timeout(300)
    assert questions == ["Remove mate@example.com from the workspace?"]
    assert "mate@example.com" in page.inner_text("main")  # dismissed: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Remove")
    page.wait_for_url(f"{live_server}/settings/team")
    assert "Teammate removed." in page.inner_text("main")
    assert "mate@example.com" not in page.inner_text("table")
