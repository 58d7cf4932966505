"""Settings → Lead form's "Copy code", pasted as it is into a plain page of another site, shows a styled form that
works: labels above their fields with space between, full-width inputs, a clear button, on a phone-sized screen
too; sent with the keyboard, the lead arrives."""
import time

import pytest
from fixtures.intake import leads_of
from fixtures.support import PASSWORD, workspace_of

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PLAIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Plain</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<h1>Call us back</h1>
{code}
<p>Thank you for visiting.</p>
</body></html>"""


def copied_code(browser, live_server) -> str:
    """Log in as the owner, open Settings → Lead form and press "Copy code"; what the clipboard holds."""
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.goto(f"{live_server}/settings/lead-form")
    page.get_by_role("button", name="Copy code").click()
    page.wait_for_selector("[data-copy-status]:has-text('Copied.')")
    code = page.evaluate("navigator.clipboard.readText()")
    context.close()
    return code


def box(page, selector):
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_the_copied_code_shows_a_styled_form_that_sends_a_lead(app, live_server, browser, owner, other_origin_site,
                                                                viewport):
    code = copied_code(browser, live_server)
    assert "data-leadpath-form" in code and "<script" in code
    site, pages = other_origin_site
    pages["/plain.html"] = PLAIN_PAGE.format(code=code).encode()

    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{site}/plain.html?utm_source=google&utm_campaign=paste")
    page.wait_for_selector("form.leadpath-styled")
    page.wait_for_function("[...document.styleSheets].some(s => (s.href || '').endsWith('/leadpath-form.css'))")
    page.wait_for_function("getComputedStyle(document.querySelector('.leadpath-submit')).backgroundColor"
                           " === 'rgb(47, 111, 237)'")

    # The form is where the code was pasted: between the heading and the paragraph after it.
    assert box(page, "h1")["y"] < box(page, "form.leadpath-styled")["y"] < box(page, "p:last-of-type")["y"]
    # Each label sits above its field with space between; fields take the form's width.
    form = box(page, "form.leadpath-styled")
    for name in ("name", "phone", "email", "message"):
        label, field = box(page, f"label[for$='-{name}']"), box(page, f"[name={name}]")
        assert field["y"] - (label["y"] + label["height"]) >= 4
        assert field["width"] >= form["width"] * 0.95
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    # Keyboard only: type into the fields, Enter sends.
    page.get_by_label("Name").focus()
    page.keyboard.type("Paste Visitor")
    page.keyboard.press("Tab")
    page.keyboard.type("+7 999 765-43-21")
    page.keyboard.press("Enter")
    page.wait_for_selector(".leadpath-status.leadpath-ok")
    assert "Thank you" in page.inner_text(".leadpath-status")
    context.close()

    workspace_id = workspace_of(app, owner)
    deadline = time.monotonic() + 15
    while not (leads := leads_of(app, workspace_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    [lead] = leads
    assert (lead.name, lead.phone, lead.utm_source, lead.utm_campaign) == ("Paste Visitor", "+79997654321", "google",
                                                                          "paste")
    assert lead.landing_page.startswith(f"{site}/plain.html")
