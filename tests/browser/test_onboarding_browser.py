"""The setup checklist in real Chromium, on a phone-sized screen: a new owner sees four steps, the snippet on a
landing page of another origin ticks "install the snippet" by itself, and the list is hidden with the keyboard."""
import time

import pytest
from fixtures.support import PASSWORD, workspace_of

from portal.extensions import db
from portal.models import User, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PHONE = {"width": 390, "height": 844}
LANDING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>
<h1>Shop</h1><script src="{api}/static/js/leadpath.js" data-workspace="{workspace}" async></script></body></html>"""


def snippet_seen(app, workspace_id, timeout=15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            if db.session.get(Workspace, workspace_id).snippet_seen_at is not None:
                return True
        time.sleep(0.2)
    return False


def test_a_new_owner_follows_the_checklist_on_a_phone(app, live_server, browser, other_origin_site):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server}/signup")
    page.fill("#workspace_name", "Phone Co")
    page.fill("#name", "Pat")
    page.fill("#email", "pat@example.com")
    page.fill("#password", "phone-owner-pass")
    page.fill("#confirm", "phone-owner-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    checklist = page.locator("#setup-checklist")
    assert checklist.is_visible() and "0 of 4 done" in checklist.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing runs off the screen
    assert checklist.get_by_role("link", name="Get the code").is_visible()

    with app.app_context():
        workspace_id = db.session.query(User).filter_by(email="pat@example.com").one().workspace_id
        public_id = db.session.get(Workspace, workspace_id).public_id
    site, pages = other_origin_site
    pages["/shop.html"] = LANDING.format(api=live_server, workspace=public_id).encode()
    visitor = browser.new_context()
    visitor.new_page().goto(f"{site}/shop.html")
    assert snippet_seen(app, workspace_id)
    visitor.close()

    checklist.get_by_role("link", name="Check again").click()
    page.wait_for_selector('#setup-checklist li.done[data-step="snippet"]')
    assert "1 of 4 done" in page.inner_text("#setup-checklist")

    # Keyboard only: Tab to "Hide this checklist" and press Enter.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Hide this checklist":
            break
    else:
        raise AssertionError("the hide button is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=The setup checklist is hidden.")
    assert page.locator("#setup-checklist").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


def test_an_owner_of_an_existing_workspace_sees_the_steps_done(app, live_server, page, owner):
    with app.app_context():
        db.session.get(Workspace, workspace_of(app, owner)).snippet_seen_at = db.func.now()
        db.session.commit()
    page.goto(f"{live_server}/login")
    page.fill("#email", "owner@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert page.locator('#setup-checklist li.done[data-step="snippet"]').count() == 1
    assert page.locator('#setup-checklist li.todo').count() == 3
