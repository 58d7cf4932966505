"""Small things in real Chromium: a new API token is copied with the keyboard (and selected for Ctrl+C when the
page may not write to the clipboard), and Settings → amoCRM says what happened when the consent window is closed
or access is refused on a page of its own."""
import pytest
from fixtures.connect import point_buttons_at, sandbox_fixture, sandbox_server_fixture  # noqa: F401
from fixtures.support import log_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# The page may not write to the clipboard, and the old copy command fails too: only selecting is left.
NO_CLIPBOARD = """
Object.defineProperty(navigator, 'clipboard', {value: {writeText: () => Promise.reject(new Error('denied'))}});
document.execCommand = () => false;
"""


@pytest.fixture
def configured(app, live_server, sandbox):
    keys = sandbox.create_integration("Leadpath (browser)", f"{live_server}/amocrm/callback")
    point_buttons_at(app, sandbox, keys)
    return keys


def new_token_page(page, live_server) -> str:
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/api-tokens")
    page.fill("#name", "Looker")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_selector("#new-token")
    return page.locator("#new-token-value").input_value()


def test_a_new_token_is_copied_with_the_keyboard(live_server, browser, owner):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    token = new_token_page(page, live_server)
    page.focus("#new-token-value")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "copy-token"
    page.keyboard.press("Enter")
    page.wait_for_selector("#new-token [data-copy-status]:not(:empty)")
    assert page.inner_text("#new-token [data-copy-status]") == "Copied."
    assert page.evaluate("navigator.clipboard.readText()") == token
    context.close()


def test_without_clipboard_access_the_token_is_selected_for_ctrl_c(live_server, browser, owner):
    context = browser.new_context()
    context.add_init_script(NO_CLIPBOARD)
    page = context.new_page()
    token = new_token_page(page, live_server)
    page.click("#copy-token")
    page.wait_for_selector("#new-token [data-copy-status]:not(:empty)")
    assert "Ctrl+C" in page.inner_text("#new-token [data-copy-status]")
    selected = page.evaluate("""() => { const field = document.activeElement;
        return field.value.slice(field.selectionStart, field.selectionEnd); }""")
    assert selected == token
    context.close()


def test_closing_the_consent_window_is_explained(live_server, page, owner, sandbox, configured):
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/amocrm")
    with page.expect_popup() as popup_info:
        page.click("button.amocrm_oauth_button")
    popup = popup_info.value
    popup.wait_for_selector("#deny")
    popup.close()
    page.wait_for_selector("#amocrm-denied:not([hidden])")
    assert "window was closed before access was allowed" in page.inner_text("#amocrm-denied")
    assert page.get_attribute("#amocrm-connection", "data-status") == "disconnected"


def test_a_refusal_that_lands_on_the_callback_returns_to_settings_with_the_reason(live_server, page, owner,
                                                                                   sandbox, configured):
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/amocrm/callback?error=access_denied&state=anything")
    page.wait_for_url(f"{live_server}/settings/amocrm?amocrm=denied")
    assert page.is_visible("#amocrm-denied")
    assert "Access was not granted in amoCRM" in page.inner_text("#amocrm-denied")


def test_a_refusal_in_the_window_is_not_mistaken_for_closing_it(live_server, page, owner, sandbox, configured):
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/amocrm")
    with page.expect_popup() as popup_info:
        page.click("button.amocrm_oauth_button")
    popup = popup_info.value
    popup.wait_for_selector("#deny")
    popup.click("#deny")
    page.wait_for_selector("#amocrm-denied:not([hidden])")
    page.wait_for_timeout(1500)  # past the closed-window check
    assert "not granted" in page.inner_text("#amocrm-denied")
