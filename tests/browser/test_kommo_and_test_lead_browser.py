"""In real Chromium: the owner picks Kommo in Settings → amoCRM, connects with Kommo's button (the sandbox's
/auth/button.js, which renders only class="kommo_oauth" tags), then sends a test lead and, once the push job ran,
sees its deal with a link into the account."""
import pytest
from fixtures.connect import point_buttons_at, sandbox_fixture, sandbox_server_fixture  # noqa: F401
from fixtures.support import log_in_browser

from portal.jobs.queues import AMOCRM
from portal.jobs.worker import build_worker

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def configured(app, live_server, sandbox):
    keys = sandbox.create_integration("Leadpath (browser)", f"{live_server}/amocrm/callback")
    point_buttons_at(app, sandbox, keys)
    return keys


def test_owner_connects_kommo_and_sends_a_test_lead(app, live_server, page, owner, sandbox, configured):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in_browser(page, live_server)
    page.goto(f"{live_server}/settings/amocrm")
    page.check("#amocrm-region input[value=kommo]")
    page.click("#amocrm-region button[type=submit]")
    page.wait_for_selector("#amocrm-region[data-region=kommo]")
    assert page.locator("script.kommo_oauth").count() == 1 and page.locator("script.amocrm_oauth").count() == 0
    with page.expect_popup() as popup_info:
        page.click("button.amocrm_oauth_button")  # the button Kommo's script inserted
    popup = popup_info.value
    popup.wait_for_selector("#allow")
    with page.expect_navigation():
        popup.click("#allow")
    page.wait_for_selector("#amocrm-connection[data-status=connected]")
    assert "Region: Kommo." in page.inner_text("#amocrm-region")

    page.click("#amocrm-test-lead button[type=submit]")
    page.wait_for_selector("#amocrm-test-lead[data-state=pending]")
    build_worker(app, [AMOCRM]).work(burst=True)
    page.fill("#token", "typed meanwhile")  # the page reads the result again without losing what is typed
    page.wait_for_selector("#amocrm-test-lead[data-state=synced]")
    assert page.input_value("#token") == "typed meanwhile"
    [deal] = [d for d in sandbox.state()["leads"] if d["name"] == "Leadpath test lead"]
    link = page.locator("#amocrm-test-lead-result a")
    assert link.inner_text() == str(deal["id"])
    assert link.get_attribute("href") == f"{sandbox.base_url}/leads/detail/{deal['id']}"
    assert not [e for e in errors if "Content Security Policy" in e], errors
