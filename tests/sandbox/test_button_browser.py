"""The button and consent page in real Chromium (skipped when Playwright or Chromium is missing)."""
import shutil

import pytest
from sandbox_support import CLIENT_ID
from werkzeug.wrappers import Request, Response

from portal.sandbox.server import serve_in_thread

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def portal_page(sandbox_url):
    def app(environ, start_response):
        mode = Request(environ).args.get("mode", "popup")
        html = f"""<!doctype html><html><body>
        <script>window.denied = null; window.messages = [];
          function onAmoError(payload) {{ window.denied = payload; }}
          window.addEventListener("message", (event) => window.messages.push(event.data));</script>
        <script class="amocrm_oauth" charset="utf-8" data-client-id="{CLIENT_ID}" data-title="Connect"
          data-state="st1" data-mode="{mode}" data-error-callback="onAmoError"
          src="{sandbox_url}/auth/button.min.js"></script></body></html>"""
        return Response(html, mimetype="text/html")(environ, start_response)

    return app


@pytest.fixture
def browser_page(base_url, control, browser):
    """A page of the suite's one Chromium (a second Playwright in the same process is refused)."""
    site = serve_in_thread(portal_page(base_url))
    context = browser.new_context()
    yield context.new_page(), site.url
    context.close()
    site.shutdown()


def open_consent(page):
    with page.expect_popup() as popup_info:
        page.click(".amocrm_oauth_button")
    popup = popup_info.value
    popup.wait_for_load_state()
    return popup


def test_deny_calls_the_error_callback(browser_page):
    page, site_url = browser_page
    page.goto(site_url + "/")
    open_consent(page).click("#deny")
    page.wait_for_function("window.denied !== null", timeout=5000)
    denied = page.evaluate("window.denied")
    assert denied["error"] == "access_denied" and denied["client_id"] == CLIENT_ID
    assert denied["error_description"]


def test_post_message_mode_posts_the_code(browser_page):
    page, site_url = browser_page
    page.goto(site_url + "/?mode=post_message")
    open_consent(page).click("#allow")
    page.wait_for_function("window.messages.some((m) => m && m.code)", timeout=5000)
    message = next(m for m in page.evaluate("window.messages") if m and m.get("code"))
    assert message["state"] == "st1" and message["code"].startswith("def502") and message["referer"]


def test_popup_mode_redirects_to_redirect_uri(browser_page):
    page, site_url = browser_page
    page.goto(site_url + "/")
    popup = open_consent(page)
    with popup.expect_request(lambda request: "/amocrm/callback?" in request.url) as request_info:
        popup.click("#allow")
    url = request_info.value.url
    assert "code=def502" in url and "state=st1" in url and "referer=" in url
