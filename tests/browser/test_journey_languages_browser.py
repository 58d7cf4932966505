"""The journey in Russian and in English, on a desktop (1280 px) and a phone (390 px), in real Chromium.

Sign up → the setup checklist → connect amoCRM with the button (the sandbox's consent popup) → the snippet from
Settings → Lead form, pasted into a landing page of another origin → a visitor's lead → the leads list and the
lead's page → the ROI report. On every page: the page is in the browser's language (its `lang`, and texts from
that language's catalog), and nothing scrolls sideways.

Screenshots of each step go to a temporary folder. With LEADPATH_SCREENSHOTS_DIR set (docs/screenshots), the
dashboard's four, dashboard-<lang>-<width>.png, are written there too: the README's (its Screenshots section has
the command).
"""
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from babel.support import Translations
from fixtures.accessibility import sideways_overflow
from fixtures.journey import connect_with_the_button, landing_pages
from fixtures.live_services import wait_until
from fixtures.reports import add_lead, add_sale, add_spend, at

from portal.extensions import db
from portal.models import Lead, User

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ROOT / "portal" / "translations"
BROWSER_LOCALES = {"ru": "ru-RU", "en": "en-GB"}
PASSWORD = "spring bouquets 2026"


def translator(lang: str):
    """The portal's own catalog for a language: what a page in that language must show."""
    catalog = Translations.load(str(CATALOGS), [lang]) if lang != "en" else None
    return catalog.gettext if catalog else (lambda text: text)


@pytest.fixture
def amocrm_integration(app, live_server, sandbox):
    keys = sandbox.create_integration("Leadpath (journey)", f"{live_server}/amocrm/callback")
    app.config.update(AMOCRM_CLIENT_ID=keys["client_id"], AMOCRM_CLIENT_SECRET=keys["client_secret"],
                      AMOCRM_OAUTH_URL=f"{sandbox.base_url}/oauth",
                      AMOCRM_BUTTON_SRC=f"{sandbox.base_url}/auth/button.min.js")
    return keys


README_STEP = "dashboard"  # the README shows this step's four screenshots


@pytest.fixture
def screenshots_dir(tmp_path) -> Path:
    folder = tmp_path / "screens"
    folder.mkdir()
    return folder


def readme_screenshots_dir() -> Path | None:
    """LEADPATH_SCREENSHOTS_DIR (relative to the repository, e.g. docs/screenshots): where the README's go."""
    chosen = os.environ.get("LEADPATH_SCREENSHOTS_DIR")
    if not chosen:
        return None
    folder = Path(chosen) if os.path.isabs(chosen) else ROOT / chosen
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def workspace_of_email(app, email: str) -> int:
    with app.app_context():
        workspace_id = db.session.scalar(db.select(User.workspace_id).where(User.email == email))
        db.session.rollback()
        return workspace_id


def lead_of(app, workspace_id: int) -> int | None:
    with app.app_context():
        lead_id = db.session.scalar(db.select(Lead.id).where(Lead.workspace_id == workspace_id))
        db.session.rollback()
        return lead_id


def fill_the_reports(app, workspace_id: int) -> None:
    """A few weeks of leads, won deals and spend over three sources: the screenshots show charts, not zeros."""
    today = date.today()
    for offset in range(42):
        day = today - timedelta(days=offset)
        for source, medium, campaign, revenue, spend in (("google", "cpc", "spring", 14_500, 3_100),
                                                         ("yandex", "cpc", "rsya", 9_300, 2_400),
                                                         ("vk", "social", "tulips", 6_900, 1_700)):
            lead = add_lead(app, workspace_id, at(day), source, medium, campaign)
            if (offset + len(source)) % 3:
                add_sale(app, workspace_id, lead, "won", revenue + (offset % 7) * 900, at(day), at(day))
            add_spend(app, workspace_id, day, source, medium, campaign, spend + (offset % 5) * 200)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_journey_speaks_the_browsers_language_at_each_width(app, live_server, sandbox, amocrm_integration,
                                                                 other_origin_site, browser, screenshots_dir,
                                                                 lang, width):
    _ = translator(lang)
    context = browser.new_context(viewport={"width": width, "height": 900 if width > 400 else 844},
                                  locale=BROWSER_LOCALES[lang])
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    seen = {}

    def check(step: str, heading: str | None = None, *texts: str) -> None:
        """The page is in the language asked for, shows these catalog texts, and fits the screen's width."""
        assert page.get_attribute("html", "lang") == lang, step
        main = page.inner_text("main")
        if heading is not None:
            assert _(heading) in page.inner_text("h1"), (step, page.inner_text("h1"))
        for text in texts:
            assert _(text) in main, (step, _(text))
        if lang == "ru":  # the translation is really there, not the English fallback
            assert _(heading or texts[0]) != (heading or texts[0]), step
        seen[step] = sideways_overflow(page)
        page.screenshot(path=str(screenshots_dir / f"{step}-{lang}-{width}.png"))
        readme = readme_screenshots_dir()
        if readme and step == README_STEP:
            page.screenshot(path=str(readme / f"{step}-{lang}-{width}.png"))

    # Sign up: the browser's language is the page's.
    email = f"maria-{lang}-{width}@flowers.example"
    page.goto(f"{live_server}/signup")
    check("signup", "Create your workspace")
    page.fill("#workspace_name", "Весенние цветы" if lang == "ru" else "Spring Flowers")
    page.fill("#name", "Мария" if lang == "ru" else "Maria")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    workspace_id = workspace_of_email(app, email)

    # The dashboard greets a new workspace with the setup checklist.
    assert page.locator("#setup-checklist").is_visible()
    check("onboarding", "Dashboard", "Set up Leadpath")

    # Settings → amoCRM: the official button, Allow in the consent popup.
    page.goto(f"{live_server}/settings/amocrm")
    check("amocrm", "Settings", "amoCRM connection")
    connect_with_the_button(page)
    check("amocrm-connected", "Settings", "Connected")

    # Settings → Lead form: the code, pasted into the landing site; a visitor sends the form.
    page.goto(f"{live_server}/settings/lead-form")
    check("snippet", "Settings", "Code to paste")
    snippet = page.locator("#snippet-code").input_value()
    site, pages = other_origin_site
    pages.update(landing_pages(snippet))
    visitor = browser.new_context(viewport={"width": width, "height": 844})
    landing = visitor.new_page()
    landing.goto(f"{site}/order.html?utm_source=google&utm_medium=cpc&utm_campaign=spring")
    landing.get_by_label("Name").fill("Olga Smirnova")
    landing.get_by_label("Phone").fill("+7 916 555-12-34")
    landing.get_by_role("button", name="Send").click()
    landing.wait_for_selector(".leadpath-status.leadpath-ok")
    visitor.close()
    lead_id = wait_until(lambda: lead_of(app, workspace_id), timeout=15, message="the lead stored")

    # The leads list and the lead's page.
    page.goto(f"{live_server}/leads")
    check("leads", "Leads")
    assert "Olga Smirnova" in page.inner_text("main")
    page.click(f"a[href='/leads/{lead_id}']")
    page.wait_for_url(f"{live_server}/leads/{lead_id}")
    check("lead", None, "Leads")  # the way back to the list
    assert "spring" in page.inner_text("main")

    # The ROI report, then the dashboard with a few weeks of figures (the README's pictures).
    page.goto(f"{live_server}/reports/roi")
    check("roi-report", "ROI report", "Download CSV")
    fill_the_reports(app, workspace_id)
    page.goto(f"{live_server}/")
    page.locator("#setup-checklist .checklist-dismiss button").press("Enter")  # hidden with the keyboard
    page.wait_for_selector("#setup-checklist", state="detached")
    page.goto(f"{live_server}/")  # once more, without the note that the checklist was hidden
    check("dashboard", "Dashboard", "Won deals and revenue by the day the deal closed.")

    context.close()
    assert {step: found for step, found in seen.items() if found} == {}, (lang, width)
    assert not [text for text in problems if "Content Security Policy" in text], problems
    assert (screenshots_dir / f"{README_STEP}-{lang}-{width}.png").stat().st_size < 200_000

