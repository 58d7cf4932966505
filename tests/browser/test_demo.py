"""`flask --app wsgi demo` starts with no services, serves the login page, and the demo user can log in; in
Chromium, a lead sent through the snippet its Settings show becomes a deal in its sandbox within seconds."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from fixtures.journey import connect_with_the_button, field_values, landing_pages
from fixtures.live_services import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    """`flask --app wsgi demo` on free ports with a fresh SQLite file: yields (portal URL, sandbox URL, process);
    its output is checked for the login it prints."""
    port, sandbox_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "LEADPATH_CONFIG")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", LEADPATH_CONFIG="development",
               SECRET_KEY="demo-smoke-test-secret")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "demo", "--port", str(port),
                                "--sandbox-port", str(sandbox_port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        yield base, f"http://127.0.0.1:{sandbox_port}", process
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "demo@example.com / demo12345" in output


def test_demo_serves_the_login_page_and_the_demo_user_logs_in(demo):
    base, sandbox, _process = demo
    page = requests.get(f"{base}/login", timeout=5)
    assert page.status_code == 200 and "Log in" in page.text
    session = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(f"{base}/login").text).group(1)
    response = session.post(f"{base}/login", data={"csrf_token": token, "email": "demo@example.com",
                                                    "password": "demo12345"}, allow_redirects=False)
    assert response.status_code == 302
    assert "Dashboard" in session.get(f"{base}/").text
    # Settings → amoCRM shows the official button served by the demo's sandbox, with its shared integration.
    settings = session.get(f"{base}/settings/amocrm").text
    assert f'src="{sandbox}/auth/button.min.js"' in settings
    client_id = re.search(r'data-client-id="([^"]+)"', settings).group(1)
    assert requests.get(f"{sandbox}/auth/button.min.js", timeout=5).status_code == 200
    integrations = requests.get(f"{sandbox}/_sandbox/state", timeout=5).json()["integrations"]
    assert [i["redirect_uri"] for i in integrations if i["client_id"] == client_id] == [
        f"{base}/amocrm/callback"]


@pytest.mark.browser
def test_a_lead_from_the_demo_snippet_is_a_deal_in_the_demo_sandbox_within_seconds(demo, page, other_origin_site):
    """The demo as a visitor would try it: connect amoCRM with the button, paste the snippet Settings shows into a
    page of another origin, send the form from it with UTM tags → the deal, its contact and the UTM fields are in
    the demo's sandbox seconds later (the in-process queue on SQLite, no services)."""
    base, sandbox, _process = demo
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill("demo@example.com")
    page.get_by_label("Password").fill("demo12345")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/settings/amocrm")
    connect_with_the_button(page)

    page.goto(f"{base}/settings/lead-form")
    snippet = page.locator("#snippet-code").input_value()
    site, pages = other_origin_site
    pages.update(landing_pages(snippet))
    landing = page.context.browser.new_context().new_page()
    landing.goto(f"{site}/index.html?utm_source=google&utm_medium=cpc&utm_campaign=demo-spring")
    landing.click("#order")
    landing.get_by_label("Name").fill("Olga Smirnova")
    landing.get_by_label("Phone").fill("+7 916 555-12-34")
    landing.get_by_role("button", name="Send").click()
    landing.wait_for_selector(".leadpath-status.leadpath-ok")
    sent = time.monotonic()

    def our_deal():
        state = requests.get(f"{sandbox}/_sandbox/state", timeout=5).json()
        return next(([deal, state] for deal in state["leads"]
                     if field_values(deal).get("UTM_CAMPAIGN") == ["demo-spring"]), None)

    deal, state = wait_until(our_deal, timeout=30, every=0.2, message="the demo lead's deal in the sandbox")
    assert time.monotonic() - sent < 10
    fields = field_values(deal)
    assert (fields["UTM_SOURCE"], fields["UTM_MEDIUM"]) == (["google"], ["cpc"])
    [contact] = [c for c in state["contacts"] if c["id"] in {c["id"] for c in deal["_embedded"]["contacts"]}]
    assert contact["name"] == "Olga Smirnova"
    assert "+79165551234" in [re.sub(r"[^\d+]", "", value) for value in field_values(contact)["PHONE"]]
