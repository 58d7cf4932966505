"""The snippet in real Chromium on a landing site of another origin: UTM tags survive navigation (and self-referrals);
every lead arrives exactly once whatever befalls the page, the network, the API's answer or the browser's storage;
a refused lead says why; errors are tied to the form's own fields."""
import time

import pytest
from fixtures.intake import leads_of, make_workspace, set_workspace
from fixtures.snippet import LANDING_PAGE, OWN_FORM, Landing, leads_arrive, outbox, posts_to, send, wait_for_outbox

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
    "/extra-form.html": """<form data-leadpath><label>Phone <input name="phone" type="tel"></label>
        <label>Company <input name="company"></label><label>Budget <input name="budget" type="number"></label>
        <label><input type="checkbox" name="services" value="seo" checked> SEO</label>
        <label><input type="checkbox" name="services" value="ads" checked> Ads</label>
        <label><input type="checkbox" name="services" value="smm"> SMM</label>
        <label><input type="radio" name="contact_by" value="call"> Call</label>
        <label><input type="radio" name="contact_by" value="chat" checked> Chat</label>
        <select name="city"><option value="msk">Moscow</option><option value="kzn" selected>Kazan</option></select>
        <input type="hidden" name="form_name" value="Pricing">
        <label>Password <input type="password" name="secret" value="hunter2"></label>
        <button type="submit">Send it</button></form>""",
}


@pytest.fixture
def workspace(app):
    return make_workspace(app)


@pytest.fixture
def landing_site(other_origin_site, live_server, workspace):
    """A two-page site (plus a page with its own form) on another port: another origin than Leadpath."""
    site, pages = other_origin_site
    pages.update({path: PAGE.format(title=path.strip("/"), body=body, api=live_server, workspace=workspace[1]).encode()
                  for path, body in BODIES.items()})
    return site


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
    from fixtures.support import PASSWORD, workspace_of

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


# The snippet's delivery and safety, each on a page of its own on another origin (snippet_fixtures.Landing).

@pytest.fixture
def landing(other_origin_site, live_server, workspace):
    return Landing(other_origin_site, live_server, workspace[1])


@pytest.mark.parametrize("answer", ["never_sent", "lost"])
def test_a_lead_whose_page_closes_mid_send_arrives_once_on_a_later_page_load(app, landing, live_server, page,
                                                                             workspace, answer):
    workspace_id, _ = workspace
    stalled = []

    def stall(route):
        stalled.append(route)
        if answer == "lost":
            route.fetch()  # Leadpath stores the lead; its answer never reaches the page

    page.route(f"{live_server}/api/leads", stall)
    page.goto(landing.url("/form.html") + "?utm_source=google&utm_campaign=closed")
    page.fill("[name=name]", "Leaving Visitor")
    page.fill("[name=phone]", "+79991112233")
    page.click("text=Call me")
    [kept] = wait_for_outbox(page, 1)  # kept before the request went out
    assert len(leads_arrive(page, app, workspace_id, 1 if answer == "lost" else 0)) == (answer == "lost")
    assert page.inner_text("[role=status]") == "Sending…" and len(stalled) == 1
    page.unroute_all(behavior="ignoreErrors")
    page.close()

    later = page.context.new_page()
    later.goto(landing.url("/other.html", "<p>Another page of the site.</p>"))
    [lead] = leads_arrive(later, app, workspace_id, 1)
    wait_for_outbox(later, 0)
    assert len(leads_of(app, workspace_id)) == 1
    assert (lead.name, lead.utm_campaign, lead.idempotency_key) == (
        "Leaving Visitor", "closed", kept["body"]["idempotency_key"])


def test_a_hanging_request_is_given_up_after_15_s_and_sent_again(app, landing, live_server, page, workspace):
    workspace_id, _ = workspace
    stalled = []
    page.route(f"{live_server}/api/leads", lambda route: stalled.append(route))
    page.clock.install()
    page.goto(landing.url("/form.html"))
    page.fill("[name=name]", "Patient Visitor")
    page.fill("[name=phone]", "+79991112233")
    page.click("text=Call me")
    page.wait_for_function("() => document.querySelector('[role=status]').textContent === 'Sending…'")
    page.clock.run_for(16_000)
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    assert "connection is back" in page.inner_text("[role=status]") and len(outbox(page)) == 1
    assert len(stalled) == 1
    page.unroute_all(behavior="ignoreErrors")
    page.clock.run_for(5_000)  # the next attempt, due 4 s after the first gave up
    [lead] = leads_arrive(page, app, workspace_id, 1)
    wait_for_outbox(page, 0)
    assert lead.name == "Patient Visitor" and len(leads_of(app, workspace_id)) == 1


def test_a_double_click_and_a_second_enter_send_one_lead(app, landing, live_server, page, workspace):
    workspace_id, _ = workspace
    held = []
    page.route(f"{live_server}/api/leads", lambda route: held.append(route))
    page.goto(landing.url("/typeless-button.html", """<form data-leadpath><input name="name" aria-label="Name">
        <input name="phone" aria-label="Phone"><button>Call me</button></form>"""))
    page.fill("[name=name]", "Eager Visitor")
    page.fill("[name=phone]", "+79991112233")
    page.dblclick("text=Call me")
    page.press("[name=phone]", "Enter")
    page.wait_for_timeout(500)
    for route in held:
        route.continue_()
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    wait_for_outbox(page, 0)
    assert len(held) == 1 and len(leads_of(app, workspace_id)) == 1


# A refused site's page cannot read the POST's 403 (test_intake_cors.py: it names no origin that page may read), so
# the snippet sees a failed fetch; Leadpath's readable answer to GET /api/leads/origin tells it from a lost connection.
def test_a_refused_origin_is_shown_and_nothing_is_queued(app, landing, live_server, page, workspace):
    workspace_id, _ = workspace
    set_workspace(app, workspace_id, allowed_origins="https://shop.example")
    posts, questions = [], []
    # The POST's answer never reaches the page (no "response" event): count the POSTs sent.
    page.on("request", lambda request: posts.append(request.url)
            if request.method == "POST" and request.url == f"{live_server}/api/leads" else None)
    page.on("response", lambda response: questions.append(response.status)
            if response.url.startswith(f"{live_server}/api/leads/origin?") else None)
    page.goto(landing.url("/form.html"))
    status = send(page, "Refused Visitor", "+79991112233")
    assert status == ("This site is not allowed to send leads to this workspace. The site owner can allow it in "
                      "Leadpath: Settings → Lead form.")
    assert page.locator(".leadpath-status.leadpath-error").count() == 1
    page.wait_for_timeout(3000)  # longer than the first retry's wait
    assert len(posts) == 1 and questions == [200]  # asked once, and not sent again
    assert outbox(page) == [] and leads_of(app, workspace_id) == []


def test_a_proxy_error_page_without_cors_headers_keeps_the_lead(app, landing, live_server, page, workspace):
    """A 502 from a proxy in front of Leadpath is as unreadable as a refusal; the origin question says "allowed",
    so the lead stays queued and arrives once Leadpath answers again."""
    workspace_id, _ = workspace
    api = f"{live_server}/api/leads"
    # Playwright lets the page read what a route fulfils unless its headers name another origin: they do here.
    page.route(api, lambda route: route.fulfill(status=502, content_type="text/html", body="<h1>Bad Gateway</h1>",
                                                headers={"Access-Control-Allow-Origin": "https://elsewhere.example"}))
    page.goto(landing.url("/form.html"))
    assert "connection is back" in send(page, "Patient Visitor", "+79991112233")
    assert len(outbox(page)) == 1 and leads_of(app, workspace_id) == []
    page.unroute(api)
    page.reload()
    [lead] = leads_arrive(page, app, workspace_id, 1)
    wait_for_outbox(page, 0)
    assert lead.name == "Patient Visitor"


def test_a_lead_that_keeps_failing_does_not_hold_back_a_later_one(app, landing, live_server, page, workspace):
    workspace_id, _ = workspace
    api = f"{live_server}/api/leads"
    page.route(api, lambda route: route.abort())
    page.goto(landing.url("/form.html"))
    assert "connection is back" in send(page, "Stuck Visitor", "+79991112233")
    assert "connection is back" in send(page, "Later Visitor", "+79994445566")
    assert len(outbox(page)) == 2
    page.unroute(api)
    page.route(api, lambda route: route.abort() if "Stuck" in (route.request.post_data or "")
               else route.continue_())
    page.reload()
    [lead] = leads_arrive(page, app, workspace_id, 1)
    [stuck] = wait_for_outbox(page, 1)
    assert lead.name == "Later Visitor" and stuck["body"]["name"] == "Stuck Visitor"
    assert len(leads_of(app, workspace_id)) == 1


QUEUED_EARLIER = """[null, 5, {"a": 1}, {"body": "x", "at": 1},
    {"body": {"userAccountId": "PUBLIC_ID", "idempotency_key": "queued-earlier", "name": "Earlier Visitor",
              "phone": "+79997778899"}, "at": NOW}]"""


@pytest.mark.parametrize("key, value", [
    ("leadpath", "1"),
    ("leadpath", '{"first": {"ts": "soon"}, "last": {"ts": NOW, "utm_source": {"a": 1}, "gclid": [1]}}'),
    ("leadpath_outbox", '{"a": 1}'),
    ("leadpath_outbox", QUEUED_EARLIER),
], ids=["state-a-number", "touches-of-wrong-types", "outbox-an-object", "outbox-garbage-before-a-lead"])
def test_corrupted_storage_breaks_nothing_and_the_lead_arrives(app, landing, live_server, page, workspace, key,
                                                               value):
    workspace_id, public_id = workspace
    api = f"{live_server}/api/leads"
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(landing.url("/form.html"))
    value = value.replace("NOW", str(int(time.time() * 1000))).replace("PUBLIC_ID", public_id)
    page.evaluate("([key, value]) => localStorage.setItem(key, value)", [key, value])
    page.route(api, lambda route: route.abort())
    page.reload()
    assert page.evaluate("typeof window.Leadpath.submit") == "function"
    assert "connection is back" in send(page, "Careful Visitor", "+79991112233")
    page.unroute(api)
    page.reload()
    expected = 2 if value.startswith("[null") else 1
    leads = leads_arrive(page, app, workspace_id, expected)
    wait_for_outbox(page, 0)
    assert len(leads_of(app, workspace_id)) == expected and "Careful Visitor" in [lead.name for lead in leads]
    assert errors == []


def test_a_rate_limited_lead_is_sent_again_after_retry_after_and_arrives_once(app, landing, live_server, page,
                                                                              workspace):
    workspace_id, _ = workspace
    app.config["LEAD_RATE_LIMIT_IP"] = "1 per 8 seconds"
    answers = posts_to(page, f"{live_server}/api/leads")
    page.goto(landing.url("/form.html"))
    app.test_client().post("/api/leads", json={}, environ_base={"REMOTE_ADDR": "127.0.0.1"})  # the window used up
    assert "sent within a few minutes" in send(page, "Limited Visitor", "+79991112233")
    [lead] = leads_arrive(page, app, workspace_id, 1)
    wait_for_outbox(page, 0)
    assert lead.name == "Limited Visitor" and len(leads_of(app, workspace_id)) == 1
    assert [status for _, status, _, _ in answers] == [429, 201]  # nothing sent before Retry-After
    (limited_at, _, retry_after, _), (sent_at, _, _, _) = answers
    assert int(retry_after) >= 5 and sent_at - limited_at >= int(retry_after) - 0.3


BLOCKED_STORAGE = """
  for (const name of ["localStorage", "sessionStorage"]) {
    Object.defineProperty(window, name, {
      configurable: true, get() { throw new DOMException("Denied", "SecurityError"); }
    });
  }
"""
REFUSED_COOKIES = """Object.defineProperty(document, "cookie", {configurable: true, get: () => "", set: () => {}});"""
FILL_STORAGE = """() => {
  localStorage.setItem("leadpath_outbox", "[]");
  let n = 0;
  for (let size = 1 << 20; size >= 1; size >>= 1) {
    try { for (;;) { localStorage.setItem("filler" + n++, "x".repeat(size)); } } catch (e) { /* full at this size */ }
  }
}"""


@pytest.mark.parametrize("storage, said", [
    ("blocked", "keep this page open"),
    ("cookie_too_small", "keep this page open"),
    ("full", "connection is back"),
])
def test_a_lead_is_kept_where_storage_fails_and_the_page_says_how(app, landing, live_server, page, workspace, storage,
                                                                  said):
    workspace_id, _ = workspace
    api = f"{live_server}/api/leads"
    if storage != "full":
        page.add_init_script(BLOCKED_STORAGE + (REFUSED_COOKIES if storage == "blocked" else ""))
    page.route(api, lambda route: route.abort())
    with_message = OWN_FORM.replace("<button", '<textarea name="message"></textarea><button')
    page.goto(landing.url("/message-form.html", with_message))
    if storage == "full":
        page.evaluate(FILL_STORAGE)
    long_message = " ".join(["Please call after six."] * 180) if storage == "cookie_too_small" else "Call me"
    assert said in send(page, "Stored Visitor", "+79991112233", message=long_message)
    page.unroute(api)
    if storage == "full":  # kept in the cookie: a later page load sends it
        page.reload()
    [lead] = leads_arrive(page, app, workspace_id, 1)  # kept in the cookie, or else in this page's memory
    wait_for_outbox(page, 0)
    assert lead.message == long_message and len(leads_of(app, workspace_id)) == 1


def test_errors_are_tied_to_the_host_forms_own_fields_and_focused(app, landing, live_server, page, workspace):
    page.goto(landing.url("/tel-form.html", """<form data-leadpath><label>Name <input name="name"></label>
        <label>Phone <input name="tel" aria-describedby="tel-hint"></label><small id="tel-hint">Mobile</small>
        <button type="submit">Call me</button><p data-leadpath-status class="host-status"></p></form>"""))
    status = page.locator("[data-leadpath-status]")
    assert (status.get_attribute("role"), status.get_attribute("aria-live")) == ("status", "polite")
    page.fill("[name=name]", "Hasty Visitor")
    page.fill("[name=tel]", "12")
    page.click("text=Call me")
    page.wait_for_selector(".leadpath-status.leadpath-error")
    tel = page.locator("[name=tel]")
    assert tel.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "tel"
    hint, error_id = tel.get_attribute("aria-describedby").split()
    assert hint == "tel-hint" and page.inner_text(f"#{error_id}").startswith("Enter a valid phone number")
    assert page.get_attribute("[name=name]", "aria-invalid") is None

    page.fill("[name=tel]", "+79991112233")
    page.click("text=Call me")
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    assert tel.get_attribute("aria-invalid") is None and tel.get_attribute("aria-describedby") == "tel-hint"
    assert page.locator(f"#{error_id}").count() == 0


def test_the_rendered_form_says_a_phone_or_an_e_mail_is_needed(app, landing, page, workspace):
    page.goto(landing.url("/rendered.html", "<div data-leadpath-form></div>"))
    phone, email = page.get_by_label("Phone"), page.get_by_label("E-mail")
    hint = page.locator(".leadpath-hint")
    assert hint.inner_text() == "Leave a phone number or an e-mail."
    assert hint.get_attribute("id") in phone.get_attribute("aria-describedby").split()
    assert hint.get_attribute("id") in email.get_attribute("aria-describedby").split()
    page.get_by_label("Name").fill("Forgetful Visitor")
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector(".leadpath-status.leadpath-error")
    assert page.evaluate("document.activeElement.name") == "phone"
    assert phone.get_attribute("aria-invalid") == email.get_attribute("aria-invalid") == "true"


LATE_FORM = """<script>window.addEventListener("load", () => setTimeout(() => {
    document.body.insertAdjacentHTML("beforeend", `FORM`);
  }, 300));</script>""".replace("FORM", OWN_FORM)


@pytest.mark.parametrize("body", ['<div id="Leadpath"></div>' + OWN_FORM, LATE_FORM],
                         ids=["an-element-named-Leadpath", "a-form-added-after-load"])
def test_a_form_is_sent_whatever_else_the_page_has(app, landing, page, workspace, body):
    workspace_id, _ = workspace
    page.goto(landing.url("/page.html", body))
    page.wait_for_selector("form[data-leadpath]")
    page.fill("[name=name]", "Any Visitor")
    page.fill("[name=phone]", "+79991112233")
    page.click("text=Call me")
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    [lead] = leads_arrive(page, app, workspace_id, 1)
    assert lead.name == "Any Visitor"


LEADPATH = "http://leads.test"  # the live server under a public name: Chromium keeps public pages off loopback


@pytest.mark.parametrize("via", ["http://www.shop.test/about.html", "http://blog.test/post.html"],
                         ids=["the-sites-own-www-host", "another-site-in-the-same-session"])
def test_a_referral_does_not_replace_the_ad_click_of_the_visit(app, live_server, page, workspace, via):
    workspace_id, public_id = workspace
    pages = {
        "http://shop.test/index.html": f'<p>Spring offer.</p><a id="next" href="{via}">More</a>',
        via: '<p>About us.</p><a id="next" href="http://shop.test/contact.html">Contact</a>',
        "http://shop.test/contact.html": OWN_FORM,
    }

    def serve(route):
        url = route.request.url
        if url.startswith(LEADPATH):
            route.fulfill(response=route.fetch(url=live_server + url.removeprefix(LEADPATH)))
        else:
            body = LANDING_PAGE.format(body=pages[url.split("?")[0]], api=LEADPATH, workspace=public_id)
            route.fulfill(content_type="text/html", body=body)

    page.context.route(lambda url: ".test/" in url, serve)
    page.goto("http://shop.test/index.html?utm_source=google&gclid=ad-click-1")
    page.click("#next")
    page.wait_for_url(via)
    page.click("#next")
    page.wait_for_url("http://shop.test/contact.html")
    send(page, "Returning Visitor", "+79991112233")
    [lead] = leads_arrive(page, app, workspace_id, 1)
    assert (lead.utm_source, lead.gclid, lead.referrer) == ("google", "ad-click-1", None)


def test_every_named_input_of_the_form_is_sent_as_extra_fields(app, landing_site, page, workspace):
    workspace_id, _ = workspace
    page.goto(f"{landing_site}/extra-form.html")
    page.get_by_label("Phone").fill("+7 999 123-45-67")
    page.get_by_label("Company").fill("Romashka LLC")
    page.get_by_label("Budget").fill("150000")
    page.get_by_role("button", name="Send it").click()
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    [lead] = wait_for_leads(app, workspace_id, 1)
    assert lead.phone == "+79991234567"
    assert lead.extra_fields == {"company": "Romashka LLC", "budget": "150000", "services": ["seo", "ads"],
                                 "contact_by": "chat", "city": "kzn", "form_name": "Pricing"}
