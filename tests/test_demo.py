"""`flask --app wsgi demo` starts with no services, serves the login page, and the demo user can log in."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_the_login_page_and_the_demo_user_logs_in(tmp_path):
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
        page = None
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"{base}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        assert page is not None and page.status_code == 200 and "Log in" in page.text
        session = requests.Session()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(f"{base}/login").text).group(1)
        response = session.post(f"{base}/login", data={"csrf_token": token, "email": "demo@example.com",
                                                        "password": "demo12345"}, allow_redirects=False)
        assert response.status_code == 302
        assert "Dashboard" in session.get(f"{base}/").text
        # Settings → amoCRM shows the official button served by the demo's sandbox, with its shared integration.
        settings = session.get(f"{base}/settings/amocrm").text
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        assert f'src="{sandbox}/auth/button.min.js"' in settings
        client_id = re.search(r'data-client-id="([^"]+)"', settings).group(1)
        assert requests.get(f"{sandbox}/auth/button.min.js", timeout=5).status_code == 200
        integrations = requests.get(f"{sandbox}/_sandbox/state", timeout=5).json()["integrations"]
        assert [i["redirect_uri"] for i in integrations if i["client_id"] == client_id] == [
            f"{base}/amocrm/callback"]
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "demo@example.com / demo12345" in output
