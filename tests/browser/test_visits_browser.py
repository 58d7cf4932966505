"""Visits in real Chromium on a landing site of another origin: a visit per arrival with a new source or after 30
minutes idle, one beacon each, the lead carrying its visitor and visit; with data-consent nothing is stored or sent
until the site signals consent."""
import json
import time

import pytest
from fixtures.intake import leads_of, make_workspace
from fixtures.snippet import leads_arrive
from fixtures.support import log_in_browser, workspace_of

from portal.extensions import db
from portal.models import Visit, Workspace
from portal.reports.credits import attribute_lead

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# A person's Chrome: the beacon endpoint ignores headless browsers' user agents (portal.visits.beacon.BOT_MARKERS).
PERSON = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body>
<h1>{title}</h1>{body}
<script src="{api}/static/js/leadpath.js" data-workspace="{workspace}" {consent} async></script>
</body></html>"""
BODIES = {
    "/index.html": '<p>Spring offer.</p><a id="next" href="/contact.html">Contact us</a>',
    "/contact.html": """<form data-leadpath><label>Your name <input name="name"></label>
        <label>Phone <input name="phone" type="tel"></label><button type="submit">Call me</button></form>""",
}
STORED_KEYS_JS = "Object.keys(localStorage).filter(k => k.startsWith('leadpath')).concat(document.cookie ? " \
                 "document.cookie.split('; ').filter(c => c.startsWith('leadpath')) : [])"


@pytest.fixture
def workspace(app):
    return make_workspace(app, "Visits Landing")


def make_site(other_origin_site, live_server, public_id, consent=""):
    base, pages = other_origin_site
    pages.update({path: PAGE.format(title=path.strip("/"), body=body, api=live_server, workspace=public_id,
                                    consent=consent).encode() for path, body in BODIES.items()})
    return base


@pytest.fixture
def person(browser):
    context = browser.new_context(user_agent=PERSON)
    page = context.new_page()
    yield page
    context.close()


def visits_of(app, workspace_id: int) -> list[Visit]:
    with app.app_context():
        rows = db.session.scalars(db.select(Visit).where(Visit.workspace_id == workspace_id)
                                  .order_by(Visit.started_at, Visit.id)).all()
        db.session.expunge_all()
        return rows


def visits_arrive(page, app, workspace_id: int, count: int, timeout: float = 15) -> list[Visit]:
    deadline = time.monotonic() + timeout
    while len(found := visits_of(app, workspace_id)) < count:
        assert time.monotonic() < deadline, f"expected {count} visit(s), have {len(found)}"
        page.wait_for_timeout(100)
    return found


def beacons(page) -> list[str]:
    sent = []
    page.on("request", lambda request: sent.append(request.post_data or "")
            if request.url.endswith("/api/visits") and request.method == "POST" else None)
    return sent


def stored_visit(page) -> dict:
    return json.loads(page.evaluate("localStorage.getItem('leadpath_visit')"))


def test_an_ad_visit_a_page_change_and_a_direct_return_the_next_day_then_a_lead(app, other_origin_site,
                                                                               live_server, workspace, person):
    workspace_id, public_id = workspace
    site = make_site(other_origin_site, live_server, public_id)
    sent = beacons(person)

    # Day 1: from an ad.
    person.goto(f"{site}/index.html?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc123")
    [first] = visits_arrive(person, app, workspace_id, 1)
    assert (first.utm_source, first.utm_medium, first.utm_campaign, first.gclid) == ("google", "cpc", "spring",
                                                                                     "abc123")
    assert first.landing_page.endswith("/index.html?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc123")
    assert first.device == "desktop" and first.ip_hash and first.referrer is None
    assert stored_visit(person)["id"] == first.visit_id

    # A page change within 30 minutes: the same visit, no beacon.
    person.click("#next")
    person.wait_for_url(f"{site}/contact.html")
    person.wait_for_timeout(1000)
    assert len(visits_of(app, workspace_id)) == 1 and len(sent) == 1
    assert stored_visit(person)["id"] == first.visit_id

    # Day 2: the snippet's last page view moved a day back; a direct return.
    person.evaluate("""() => { const visit = JSON.parse(localStorage.getItem('leadpath_visit'));
        visit.at -= 864e5; localStorage.setItem('leadpath_visit', JSON.stringify(visit)); }""")
    person.goto(f"{site}/index.html")
    first, second = visits_arrive(person, app, workspace_id, 2)
    assert second.visitor_id == first.visitor_id and second.visit_id != first.visit_id
    assert (second.utm_source, second.gclid, second.referrer) == (None, None, None)
    assert len(sent) == 2

    person.click("#next")
    person.wait_for_url(f"{site}/contact.html")
    person.fill("[name=name]", "Returning Visitor")
    person.fill("[name=phone]", "+7 999 765-43-21")
    person.click("form [type=submit]")
    [lead] = leads_arrive(person, app, workspace_id, 1)
    assert (lead.visitor_id, lead.visit_id) == (first.visitor_id, second.visit_id)
    assert lead.utm_source == "google"  # the touches are the snippet's as before
    assert len(visits_of(app, workspace_id)) == 2 and len(sent) == 2


def test_with_data_consent_nothing_is_stored_or_sent_until_consent(app, other_origin_site, live_server, workspace,
                                                                   person):
    workspace_id, public_id = workspace
    site = make_site(other_origin_site, live_server, public_id, consent="data-consent")
    sent = beacons(person)
    person.goto(f"{site}/index.html?utm_source=vk&utm_campaign=autumn")
    person.click("#next")
    person.wait_for_url(f"{site}/contact.html")
    person.wait_for_timeout(1000)
    assert person.evaluate(STORED_KEYS_JS) == [] and sent == []
    assert visits_of(app, workspace_id) == []

    # A form still sends, without visitor ids, and leaves nothing behind in the browser.
    person.fill("[name=name]", "Private Visitor")
    person.fill("[name=phone]", "+7 999 111-22-33")
    person.click("form [type=submit]")
    [lead] = leads_arrive(person, app, workspace_id, 1)
    assert (lead.visitor_id, lead.visit_id) == (None, None)
    person.wait_for_timeout(300)
    assert person.evaluate(STORED_KEYS_JS) == [] and sent == []

    # The site's consent banner says yes.
    person.evaluate("document.dispatchEvent(new Event('leadpath:consent'))")
    [visit] = visits_arrive(person, app, workspace_id, 1)
    assert visit.visit_id == stored_visit(person)["id"] and len(sent) == 1
    assert "leadpath_visit" in person.evaluate(STORED_KEYS_JS)
    with app.app_context():
        assert leads_of(app, workspace_id)[0].visitor_id is None  # the lead sent before consent stays anonymous


def test_leadpath_consent_starts_visits_on_the_next_page_too_when_called_again(app, other_origin_site, live_server,
                                                                               workspace, person):
    workspace_id, public_id = workspace
    site = make_site(other_origin_site, live_server, public_id, consent="data-consent")
    person.goto(f"{site}/index.html?utm_source=vk")
    person.evaluate("window.Leadpath.consent()")
    [visit] = visits_arrive(person, app, workspace_id, 1)
    assert visit.utm_source == "vk"
    person.click("#next")
    person.wait_for_url(f"{site}/contact.html")
    person.wait_for_timeout(500)
    assert "leadpath_visit" in person.evaluate(STORED_KEYS_JS)  # stored after consent; read on every page
    person.evaluate("window.Leadpath.consent()")
    person.fill("[name=name]", "Consenting Visitor")
    person.fill("[name=phone]", "+7 999 444-55-66")
    person.click("form [type=submit]")
    [lead] = leads_arrive(person, app, workspace_id, 1)
    assert (lead.visitor_id, lead.visit_id) == (visit.visitor_id, visit.visit_id)
    assert len(visits_of(app, workspace_id)) == 1


def test_a_new_source_within_30_minutes_starts_a_visit_and_a_reload_does_not(app, other_origin_site, live_server,
                                                                            workspace, person):
    workspace_id, public_id = workspace
    site = make_site(other_origin_site, live_server, public_id)
    sent = beacons(person)
    person.goto(f"{site}/index.html?utm_source=google&utm_campaign=spring")
    visits_arrive(person, app, workspace_id, 1)
    person.reload()
    person.wait_for_timeout(800)
    assert len(visits_of(app, workspace_id)) == 1 and len(sent) == 1
    person.goto(f"{site}/index.html?utm_source=yandex&utm_campaign=spring")  # other tags: another visit
    second = visits_arrive(person, app, workspace_id, 2)[-1]
    assert second.utm_source == "yandex"
    person.goto(f"{site}/contact.html", referer="https://www.bing.com/search?q=shop")  # another site's link
    third = visits_arrive(person, app, workspace_id, 3)[-1]
    assert third.referrer.startswith("https://www.bing.com/") and third.utm_source is None
    assert len({visit.visitor_id for visit in visits_of(app, workspace_id)}) == 1


def leads_row(page, source: str) -> str:
    """The Leads cell of the ROI table's row of a source (cells: source, visits, CR1, leads, …)."""
    row = page.locator("#roi-table tbody tr").filter(has=page.locator("td:first-child", has_text=source)).first
    return row.locator("td").nth(3).inner_text()


def test_an_ad_then_a_direct_return_that_sends_the_form_credits_the_ad_under_last_non_direct_and_splits_linear(
        app, other_origin_site, live_server, owner, person, page):
    workspace_id = workspace_of(app, owner)
    with app.app_context():
        public_id = db.session.get(Workspace, workspace_id).public_id
    site = make_site(other_origin_site, live_server, public_id)

    person.goto(f"{site}/index.html?utm_source=google&utm_medium=cpc&utm_campaign=spring")
    visits_arrive(person, app, workspace_id, 1)
    person.evaluate("""() => { const visit = JSON.parse(localStorage.getItem('leadpath_visit'));
        visit.at -= 864e5; localStorage.setItem('leadpath_visit', JSON.stringify(visit)); }""")
    person.goto(f"{site}/contact.html")  # the next day, typed in: a direct visit
    visits_arrive(person, app, workspace_id, 2)
    person.fill("[name=name]", "Returning Visitor")
    person.fill("[name=phone]", "+7 999 765-43-22")
    person.click("form [type=submit]")
    [lead] = leads_arrive(person, app, workspace_id, 1)
    with app.app_context():  # what the periodic attribution does once the lead is a minute old
        assert attribute_lead(workspace_id, lead.id)

    log_in_browser(page, live_server)
    page.goto(f"{live_server}/reports/roi")  # last non-direct, the default
    assert page.locator("#model").input_value() == "last_non_direct"
    assert leads_row(page, "google") == "1"
    assert leads_row(page, "(none)") == "0"  # the direct return: its visit counted, no credit
    page.select_option("#model", "linear")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**model=linear**")
    assert leads_row(page, "google") == "0.5" and leads_row(page, "(none)") == "0.5"
    assert page.locator("#roi-totals td").nth(2).inner_text() == "1"
