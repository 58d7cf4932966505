"""The snippet in real Chromium on a landing site of another origin: UTM tags survive navigation, and a lead typed
while Leadpath is unreachable arrives once it is back."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from intake_fixtures import leads_of, make_workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body>
<h1>{title}</h1>{body}
<script src="{api}/static/js/leadpath.js" data-workspace="{workspace}" async></script>
</body></html>"""
BODIES = {
    "/index.html": '<p>Spring offer.</p><a id="next" href="/contact.html">Contact us</a>',
    "/contact.html": "<p>Leave your number.</p><div data-leadpath-form></div>",
    "/own-form.html": """<form data-leadpath><label>Your name <input name="name"></label>
        <label>Phone <input name="phone" type="tel"></label><button type="submit">Call me</button></form>""",
}


@pytest.fixture
def workspace(app):
    return make_workspace(app)


@pytest.fixture
def landing_site(live_server, workspace):
    """A two-page site (plus a page with its own form) on another port: another origin than Leadpath."""
    pages = {path: PAGE.format(title=path.strip("/"), body=body, api=live_server, workspace=workspace[1]).encode()
             for path, body in BODIES.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            page = pages.get(self.path.split("?")[0])
            self.send_response(200 if page else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page or b"not found")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def wait_for_leads(app, workspace_id: int, count: int, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leads = leads_of(app, workspace_id)
        if len(leads) >= count:
            return leads
        time.sleep(0.2)
    raise AssertionError(f"expected {count} lead(s), have {len(leads_of(app, workspace_id))}")


def test_campaign_survives_navigation_and_is_first_and_last_touch(app, landing_site, page, workspace):
    workspace_id, _ = workspace
    page.goto(f"{landing_site}/index.html?utm_source=google&utm_medium=cpc&utm_campaign=spring")
    page.click("#next")
    page.wait_for_url(f"{landing_site}/contact.html")
    page.get_by_label("Name").fill("Browser Visitor")
    page.get_by_label("Phone").fill("+7 999 123-45-67")
    page.get_by_label("E-mail").fill("visitor@example.com")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    assert "Thank you" in page.inner_text("[role=status]")

    [lead] = wait_for_leads(app, workspace_id, 1)
    assert (lead.name, lead.phone, lead.email) == ("Browser Visitor", "+79991234567", "visitor@example.com")
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("google", "cpc", "spring")
    assert (lead.first_utm_source, lead.first_utm_medium, lead.first_utm_campaign) == ("google", "cpc", "spring")
    assert lead.landing_page.endswith("/index.html?utm_source=google&utm_medium=cpc&utm_campaign=spring")
    assert lead.first_landing_page == lead.landing_page and lead.first_touch_at is not None
    assert lead.idempotency_key and not lead.is_spam
    # Nothing but window.Leadpath was added to the page's globals.
    assert page.evaluate("typeof window.Leadpath.submit") == "function"


def test_a_lead_sent_while_leadpath_is_unreachable_arrives_after_it_is_back(app, landing_site, live_server, page,
                                                                           workspace):
    workspace_id, _ = workspace
    api = f"{live_server}/api/leads"
    page.route(api, lambda route: route.abort())
    page.goto(f"{landing_site}/own-form.html?utm_source=yandex&utm_campaign=outage")
    page.fill("[name=name]", "Patient Visitor")
    page.fill("[name=phone]", "+79991112233")
    page.click("text=Call me")
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    assert "connection is back" in page.inner_text("[role=status]")
    assert page.evaluate("JSON.parse(localStorage.getItem('leadpath_outbox')).length") == 1
    assert leads_of(app, workspace_id) == []

    page.unroute(api)
    page.reload()  # a later page load sends what the outbox keeps
    [lead] = wait_for_leads(app, workspace_id, 1)
    assert (lead.name, lead.phone, lead.utm_source, lead.utm_campaign) == (
        "Patient Visitor", "+79991112233", "yandex", "outage")

    # On the same page: the retry with backoff delivers it without a reload, exactly once.
    page.route(api, lambda route: route.abort())
    page.fill("[name=name]", "Second Visitor")
    page.fill("[name=phone]", "+79994445566")
    page.click("text=Call me")
    page.wait_for_function("JSON.parse(localStorage.getItem('leadpath_outbox') || '[]').length === 1")
    page.unroute(api)
    leads = wait_for_leads(app, workspace_id, 2)
    assert sorted(lead.name for lead in leads) == ["Patient Visitor", "Second Visitor"]
    page.wait_for_function("JSON.parse(localStorage.getItem('leadpath_outbox') || '[]').length === 0")
    time.sleep(0.5)
    assert len(leads_of(app, workspace_id)) == 2


def test_settings_page_test_form_sends_a_lead_under_the_portal_csp(app, live_server, page, owner):
    from support import PASSWORD, workspace_of

    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server}/login")
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/settings/lead-form?utm_source=settings&utm_campaign=selftest")
    page.click("text=Copy code")
    page.wait_for_selector("[data-copy-status]:has-text('Copied')")
    test_form = page.locator(".lead-form-test")
    test_form.get_by_label("Name").fill("Owner Test")
    test_form.get_by_label("E-mail").fill("owner-test@example.com")
    test_form.get_by_role("button", name="Send").click()
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    [lead] = wait_for_leads(app, workspace_of(app, owner), 1)
    assert (lead.email, lead.utm_campaign) == ("owner-test@example.com", "selftest")
    assert not [text for text in problems if "Content Security Policy" in text], problems
