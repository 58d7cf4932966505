"""Helpers for the sandbox contract suite (plain functions and classes; fixtures live in conftest.py)."""

import threading
import time
from urllib.parse import parse_qs, parse_qsl, urlsplit

import requests
from werkzeug.wrappers import Request, Response

from portal.sandbox.control import SandboxControl

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://portal.test/amocrm/callback"


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def exchange_code(
    base_url: str,
    code: str,
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    redirect_uri=REDIRECT_URI,
    as_form=False,
) -> requests.Response:
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    if as_form:
        return requests.post(f"{base_url}/oauth2/access_token", data=body, timeout=5)
    return requests.post(f"{base_url}/oauth2/access_token", json=body, timeout=5)


def refresh(base_url: str, refresh_token: str, client_id=CLIENT_ID, client_secret=CLIENT_SECRET):
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "redirect_uri": REDIRECT_URI,
    }
    return requests.post(f"{base_url}/oauth2/access_token", json=body, timeout=5)


def connect(
    control: SandboxControl, base_url: str, account_id=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
) -> dict:
    """Consent through the control API and exchange the code: the token response."""
    redirect = control.authorize(client_id, state="s", account_id=account_id)["redirect_url"]
    response = exchange_code(base_url, query_of(redirect)["code"], client_id, client_secret)
    assert response.status_code == 200, response.text
    return response.json()


class Api:
    """Just enough amoCRM client for the tests: bearer token, JSON in, raw responses out."""

    def __init__(self, base_url: str, access_token: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {access_token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        url = path if path.startswith("http") else f"{self.base_url}/api/v4/{path}"
        return self.session.request(method, url, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body, **kwargs):
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path, body, **kwargs):
        return self.request("DELETE", path, json=body, **kwargs)

    def create_lead(self, **fields) -> int:
        response = self.post("leads", [fields])
        assert response.status_code == 200, response.text
        return response.json()["_embedded"]["leads"][0]["id"]


class Receiver:
    """A WSGI endpoint that records every request and answers with scripted statuses (default 200)."""

    def __init__(self):
        self.requests: list = []
        self.statuses: list = []
        self.default_status = 200
        self.delay = 0.0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data(as_text=True)
        with self.lock:
            self.requests.append(
                {
                    "path": request.path,
                    "content_type": request.content_type,
                    "raw": raw,
                    "form": dict(parse_qsl(raw)) if "urlencoded" in (request.content_type or "") else None,
                    "json": request.get_json(silent=True),
                }
            )
            status = self.statuses.pop(0) if self.statuses else self.default_status
        if self.delay:
            time.sleep(self.delay)
        return Response("ok", status=status)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
