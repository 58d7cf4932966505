"""`flask --app wsgi demo` starts the Yandex Direct sandbox beside the amoCRM one: Settings → Ad accounts →
Connect Yandex Direct goes through it offline, the 90-day backfill runs on the demo's in-process queue, and the
ROI report shows the imported spend."""
import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from fixtures.live_services import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path):
    port, sandbox_port, ad_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "LEADPATH_CONFIG")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}", LEADPATH_CONFIG="development",
               SECRET_KEY="demo-ad-sandbox-test-secret")
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "demo", "--port", str(port),
                                "--sandbox-port", str(sandbox_port), "--ad-sandbox-port", str(ad_port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        yield base, f"http://127.0.0.1:{ad_port}"
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert f"Yandex Direct sandbox: http://127.0.0.1:{ad_port}" in output
    assert "VK Ads sandbox: http://127.0.0.1:" in output and "Google Ads sandbox: http://127.0.0.1:" in output


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def yandex_row(session, base: str) -> dict:
    """The ROI report's "yandex" row of the last 90 days, from its CSV (spend and revenue side by side)."""
    text = session.get(f"{base}/reports/roi.csv?period=90d").text
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = rows[0]
    return next(dict(zip(header, row, strict=False)) for row in rows[1:] if row[0] == "yandex")


def test_yandex_direct_connects_through_the_demo_sandbox_and_its_spend_reaches_the_roi_report(demo):
    base, ad_sandbox = demo
    session = requests.Session()
    session.post(f"{base}/login", data={"csrf_token": csrf(session.get(f"{base}/login").text),
                                        "email": "demo@example.com", "password": "demo12345"})
    before = yandex_row(session, base)
    page = session.get(f"{base}/settings/ad-accounts").text
    assert "Connect Yandex Direct" in page and "Connect VK Ads" in page and "Connect Google Ads" in page
    started = session.post(f"{base}/settings/ad-accounts/connect/yandex_direct", data={"csrf_token": csrf(page)},
                           allow_redirects=False)
    consent_url = started.headers["Location"]
    assert consent_url.startswith(f"{ad_sandbox}/authorize?")
    assert "Allow" in requests.get(consent_url, timeout=5).text
    consent = requests.post(consent_url, data={"login": "sandbox-advertiser", "decision": "allow"},
                            allow_redirects=False, timeout=5)
    landed = session.get(consent.headers["Location"])
    assert "Yandex Direct connected" in landed.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        history = session.get(f"{base}/settings/ad-accounts").text
        if history.count(">done<") == 3:
            break
        time.sleep(1)
    assert history.count(">done<") == 3, history
    assert "Imported" in session.get(f"{base}/reports/spend?period=90d").text
    after = yandex_row(session, base)
    spend_column = next(name for name in after if name.lower() == "spend")
    revenue_column = next(name for name in after if name.lower() == "revenue")
    # the imported spend joins the demo's typed yandex spend, beside the same revenue
    assert float(after[spend_column]) > float(before[spend_column])
    assert after[revenue_column] == before[revenue_column]
