"""Every portal page in Chromium at 1280 and 390 px: no serious or critical axe-core violation (WCAG 2.1 AA), no
sideways scrolling on a phone, a skip link first, a menu that collapses, and forms that lead to their first error."""
import json

import pytest
from fixtures.accessibility import PORTAL_PAGES, PUBLIC_PAGES, run_axe, sample_data, sideways_overflow
from fixtures.support import log_in_browser, workspace_of

pytestmark = pytest.mark.browser
WIDTHS = (1280, 390)


@pytest.fixture
def page(browser):
    """One context for the whole walk; it lets axe-core's script in past the portal's Content-Security-Policy."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def all_pages(app, owner) -> list[str]:
    ids = sample_data(app, workspace_of(app, owner))
    return [path.format(**ids) for path in PORTAL_PAGES]


def test_every_page_has_no_serious_accessibility_violation(app, owner, live_server, page):
    portal_pages = all_pages(app, owner)
    found = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in PUBLIC_PAGES:
            page.goto(live_server + path)
            found[f"{path} at {width}px"] = run_axe(page)
    log_in_browser(page, live_server)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in portal_pages:
            response = page.goto(live_server + path)
            assert response.status == 200, path
            found[f"{path} at {width}px"] = run_axe(page)
    failures = {key: value for key, value in found.items() if value}
    assert not failures, json.dumps(failures, indent=1, default=str)


def test_no_page_scrolls_sideways_at_390_px(app, owner, live_server, page):
    portal_pages = all_pages(app, owner)
    page.set_viewport_size({"width": 390, "height": 844})
    found = {}
    for path in PUBLIC_PAGES:
        page.goto(live_server + path)
        found[path] = sideways_overflow(page)
    log_in_browser(page, live_server)
    for path in portal_pages:
        page.goto(live_server + path)
        found[path] = sideways_overflow(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 or found[path]
    failures = {path: value for path, value in found.items() if value}
    assert not failures, json.dumps(failures, indent=1, default=str)


def test_revenue_and_other_tiles_keep_their_values_inside_at_both_widths(app, owner, live_server, page):
    sample_data(app, workspace_of(app, owner))  # revenue 1,234,567,890.50 RUB: longer than a tile is wide
    log_in_browser(page, live_server)
    for width, lang in ((width, lang) for width in WIDTHS for lang in ("en", "ru")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server}/?period=30d&lang={lang}")  # ru: "1 234 567 891 ₽", grouped with spaces
        spilled = page.evaluate("""() => [...document.querySelectorAll('.tile')].filter(tile => {
            const box = tile.getBoundingClientRect();
            return [...tile.children].some(child => child.getBoundingClientRect().right > box.right + 0.5
                                                    || child.scrollWidth > child.clientWidth + 1);
        }).map(tile => tile.innerText)""")
        assert page.locator(".tile").count() >= 4
        assert spilled == [], (width, lang, spilled)


def test_wide_tables_scroll_in_a_named_focusable_region(app, owner, live_server, page):
    ids = sample_data(app, workspace_of(app, owner))
    log_in_browser(page, live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/leads", f"/leads/{ids['lead']}", "/reports/roi", "/reports/roi/models", "/reports/spend",
                 "/settings/account"):
        page.goto(live_server + path)
        tables = page.evaluate("""() => [...document.querySelectorAll('main table')].map(table => {
            const box = table.closest('.table-wrap');
            return box && {role: box.getAttribute('role'), tabindex: box.getAttribute('tabindex'),
                           label: box.getAttribute('aria-label'), overflow: getComputedStyle(box).overflowX};
        })""")
        assert tables and all(t == {**t, "role": "region", "tabindex": "0", "overflow": "auto"} and t["label"]
                              for t in tables), (path, tables)
    # the spend table is wider than the phone: it scrolls inside its box, and the keyboard can scroll it
    region = page.locator("#spend-table").locator("xpath=..")
    page.goto(f"{live_server}/reports/spend")
    assert region.evaluate("box => box.scrollWidth > box.clientWidth")
    region.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#spend-table').parentElement.scrollLeft > 0")


def test_skip_link_is_the_first_stop_and_moves_to_the_content(app, owner, live_server, page):
    for path in ("/login", "/"):
        if path == "/":
            log_in_browser(page, live_server)
        page.goto(live_server + path)
        page.keyboard.press("Tab")
        focused = page.evaluate("() => [document.activeElement.className, document.activeElement.getAttribute('href')]")
        assert focused == ["skip-link", "#main"], (path, focused)
        assert page.locator(".skip-link").is_visible()  # shown while it has the focus
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "main"
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")


def test_menu_folds_behind_a_button_on_a_phone_and_works_with_the_keyboard(app, owner, live_server, page):
    log_in_browser(page, live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/leads")
    toggle, menu = page.locator(".menu-toggle"), page.locator("#site-menu")
    assert toggle.is_visible() and toggle.get_attribute("aria-controls") == "site-menu"
    assert toggle.get_attribute("aria-expanded") == "false" and not menu.is_visible()
    assert page.locator(".topbar").bounding_box()["height"] < 70  # one row: brand and the button
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true" and menu.is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Dashboard"
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false" and not menu.is_visible()
    assert page.evaluate("() => document.activeElement.classList.contains('menu-toggle')")
    page.keyboard.press("Space")
    assert menu.is_visible()
    page.click(".mainnav a[href$='/reports/roi']")
    page.wait_for_url("**/reports/roi")
    # on a wide screen the menu is one row and the button is not there
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not toggle.is_visible() and menu.is_visible()
    assert page.locator(".mainnav a").first.bounding_box()["y"] == page.locator(".mainnav a").last.bounding_box()["y"]


def test_menu_is_shown_without_javascript(app, owner, live_server, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        log_in_browser(page, live_server)
        page.goto(f"{live_server}/leads")
        assert not page.locator(".menu-toggle").is_visible()
        assert page.locator(".mainnav a[href$='/reports/roi']").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


def test_a_form_with_errors_focuses_its_first_invalid_field_and_names_the_error(live_server, page):
    page.goto(f"{live_server}/signup")
    page.fill("input[name=email]", "not-an-address")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    invalid = page.locator("main [aria-invalid='true']")
    assert invalid.count() >= 2
    first_id = invalid.first.get_attribute("id")
    assert page.evaluate("() => document.activeElement.id") == first_id
    for i in range(invalid.count()):
        described = invalid.nth(i).get_attribute("aria-describedby").split()
        errors = [page.locator(f"[id='{ref}']") for ref in described if ref.endswith("-error")]
        assert len(errors) == 1 and errors[0].inner_text().strip(), described
    # the fields without an error carry neither mark
    assert page.locator("main .field:not(.has-error) [aria-invalid]").count() == 0


def known_link(app, model, **fields) -> str:
    """A reset or invite link whose token the test knows (only its SHA-256 is stored, as the app does)."""
    import hashlib
    import secrets
    from datetime import timedelta

    from portal.extensions import db
    from portal.models.types import utcnow

    token = secrets.token_urlsafe(32)
    with app.app_context():
        db.session.add(model(token_hash=hashlib.sha256(token.encode()).hexdigest(), created_at=utcnow(),
                             expires_at=utcnow() + timedelta(hours=1), **fields))
        db.session.commit()
    return token


def test_the_link_pages_import_preview_and_connected_amocrm_have_no_serious_violation(
        app, make_user, live_server, page, sandbox, connected, tmp_path):
    from portal.models import Invite, PasswordReset

    owner_id = make_user("connected-owner@example.com", workspace_id=connected.id)
    reset = known_link(app, PasswordReset, user_id=owner_id)
    invite = known_link(app, Invite, workspace_id=connected.id, email="new.teammate@example.com",
                        role="member", created_by_id=owner_id)
    spend_file = tmp_path / "spend.csv"
    spend_file.write_text("Дата;Источник;Канал;Кампания;Сумма\n01.03.2026;yandex;cpc;spring;1 234,50\n"
                          "32.03.2026;yandex;cpc;spring;abc\n02.03.2026;;cpc;spring;10\n", encoding="cp1251")
    found = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.context.clear_cookies()
        for path in (f"/invite/{invite}", f"/password/reset/{reset}", "/password/forgot"):
            response = page.goto(live_server + path)
            assert response.status == 200 and page.locator("main form").count() == 1, path  # the form, not an error
            found[f"{path} at {width}px"] = (run_axe(page), sideways_overflow(page) if width == 390 else None)
        page.fill("#email", "someone@example.com")
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        found[f"reset mail sent at {width}px"] = (run_axe(page), sideways_overflow(page) if width == 390 else None)
        log_in_browser(page, live_server, "connected-owner@example.com")
        page.goto(f"{live_server}/settings/amocrm")
        assert page.get_attribute("#amocrm-connection", "data-status") == "connected"
        found[f"/settings/amocrm connected at {width}px"] = (run_axe(page),
                                                             sideways_overflow(page) if width == 390 else None)
        page.goto(f"{live_server}/reports/spend")
        page.set_input_files("input[type=file]", str(spend_file))
        page.click("#import-formats ~ form button[type=submit]")
        page.wait_for_selector("#import-rows")
        assert page.locator("#import-rows tr.row-error").count() == 2
        found[f"import preview at {width}px"] = (run_axe(page), sideways_overflow(page) if width == 390 else None)
    failures = {key: value for key, value in found.items() if value != ([], None)}
    assert not failures, json.dumps(failures, indent=1, default=str)
