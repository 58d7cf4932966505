"""In real Chromium: the owner clicks the official button on Settings → amoCRM, allows access in the sandbox's
popup, and Settings shows the account as connected (the popup reports back by postMessage and closes)."""
import pytest
from fixtures.connect import point_buttons_at, sandbox_fixture, sandbox_server_fixture  # noqa: F401
from fixtures.support import log_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def configured(app, live_server, sandbox):
    keys = sandbox.create_integration("Leadpath (browser)", f"{live_server}/amocrm/callback")
    point_buttons_at(app, sandbox, keys)
    return keys


def test_owner_connects_with_the_button_in_the_popup(live_server, page, owner, sandbox, configured):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/amocrm")
    assert "Not connected" in page.inner_text("#amocrm-connection")
    with page.expect_popup() as popup_info:
        page.click("button.amocrm_oauth_button")
    popup = popup_info.value
    popup.wait_for_selector("#allow")
    with page.expect_navigation():  # the popup tells the Settings page, which reloads
        popup.click("#allow")
    page.wait_for_selector("#amocrm-connection[data-status=connected]")
    card = page.inner_text("#amocrm-connection")
    assert "Connected" in card and "Leadpath Sandbox" in card
    assert "Pipeline for new leads" in page.inner_text("main")
    if not popup.is_closed():
        popup.wait_for_event("close", timeout=5000)
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_owner_who_denies_sees_why_and_stays_disconnected(live_server, page, owner, sandbox, configured):
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/amocrm")
    with page.expect_popup() as popup_info:
        page.click("button.amocrm_oauth_button")
    popup = popup_info.value
    popup.wait_for_selector("#deny")
    popup.click("#deny")
    page.wait_for_selector("#amocrm-denied:not([hidden])")
    assert "not granted" in page.inner_text("#amocrm-denied")
    assert page.get_attribute("#amocrm-connection", "data-status") == "disconnected"
