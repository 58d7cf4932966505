"""Fixtures for the ad platforms: one live sandbox per platform and session (reset before each test), their
control APIs, and clients pointed at them."""
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fixtures.yandex_direct import TEST_SETTINGS, YandexSandbox, make_client

from portal.adplatforms.google_ads.client import GoogleAdsClient
from portal.adplatforms.vk_ads.client import VKAdsClient
from portal.sandbox import google_ads as google_sandbox
from portal.sandbox import vk_ads as vk_sandbox
from portal.sandbox.server import serve_in_thread
from portal.sandbox.yandex_direct import create_app as create_yandex_sandbox

REDIRECT_URI = "http://127.0.0.1:9/settings/ad-accounts/callback"
VK_CLIENT_ID, VK_CLIENT_SECRET = "vk-test-client", "vk-test-secret"
GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET = "google-test-client.apps.googleusercontent.com", "google-test-secret"


class Control:
    """The sandbox's /_sandbox API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/_sandbox{path}", json=body or {}, timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    def get(self, path: str):
        return requests.get(f"{self.url}/_sandbox{path}", timeout=10).json()


def consent(authorization_url: str, decision: str = "allow", **choice) -> dict:
    """Load the consent page, submit it as a user would, and return the query of the redirect back."""
    page = requests.get(authorization_url, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text
    form = {key: values[0] for key, values in parse_qs(urlsplit(authorization_url).query).items()}
    answer = requests.post(authorization_url.split("?")[0], data={**form, "decision": decision, **choice},
                           allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@pytest.fixture(scope="session", autouse=True)
def quiet_sandbox_logs():
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def vk_server():
    server = serve_in_thread(vk_sandbox.create_app({
        "VK_SANDBOX_CLIENT_ID": VK_CLIENT_ID, "VK_SANDBOX_CLIENT_SECRET": VK_CLIENT_SECRET,
        "VK_SANDBOX_REDIRECT_URIS": [REDIRECT_URI], "VK_SANDBOX_LIMIT_RPS": 1000}))
    yield server
    server.shutdown()


@pytest.fixture
def vk_control(vk_server):
    control = Control(vk_server.url)
    control.post("/reset")
    control.post("/config", {"VK_SANDBOX_LIMIT_RPS": 1000, "VK_SANDBOX_LIMIT_HOURLY": 20_000,
                             "VK_SANDBOX_LIMIT_DAILY": 200_000, "VK_SANDBOX_STATISTICS_DAYS_PER_REQUEST": 0})
    return control


@pytest.fixture
def vk_client(vk_server, vk_control):
    return VKAdsClient(client_id=VK_CLIENT_ID, client_secret=VK_CLIENT_SECRET, api_url=vk_server.url,
                       oauth_url=f"{vk_server.url}/hq/settings/access", session=requests.Session(), timeout=10)


@pytest.fixture
def vk_connect(vk_client):
    """Connect a VK user through the consent page: user id → TokenSet."""
    def connect(user_id: int = 1001):
        back = consent(vk_client.authorization_url("state-1", REDIRECT_URI), user_id=str(user_id))
        return vk_client.exchange_code(back["code"], REDIRECT_URI)
    return connect


@pytest.fixture(scope="session")
def google_server():
    server = serve_in_thread(google_sandbox.create_app({
        "GOOGLE_SANDBOX_CLIENT_ID": GOOGLE_CLIENT_ID, "GOOGLE_SANDBOX_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
        "GOOGLE_SANDBOX_REDIRECT_URIS": [REDIRECT_URI]}))
    yield server
    server.shutdown()


@pytest.fixture
def google_control(google_server):
    control = Control(google_server.url)
    control.post("/reset")
    control.post("/config", {"GOOGLE_SANDBOX_DAILY_OPERATIONS": 15_000, "GOOGLE_SANDBOX_BATCH_ROWS": 10_000,
                             "GOOGLE_SANDBOX_REQUESTS_PER_SECOND": 0})
    return control


def google_client_for(server, **options) -> GoogleAdsClient:
    return GoogleAdsClient(client_id=GOOGLE_CLIENT_ID, client_secret=GOOGLE_CLIENT_SECRET, api_url=server.url,
                           oauth_url=f"{server.url}/o/oauth2/v2/auth", token_url=f"{server.url}/token",
                           session=requests.Session(), timeout=20, **options)


@pytest.fixture
def google_client(google_server, google_control):
    return google_client_for(google_server)


@pytest.fixture
def google_tokens(google_client):
    back = consent(google_client.authorization_url("state-g", REDIRECT_URI), email="owner@sandbox.test")
    return google_client.exchange_code(back["code"], REDIRECT_URI)


@pytest.fixture(scope="session")
def yandex_server():
    server = serve_in_thread(create_yandex_sandbox(TEST_SETTINGS))
    yield server
    server.shutdown()


@pytest.fixture
def yandex(yandex_server) -> YandexSandbox:
    control = YandexSandbox(yandex_server.url)
    control.reset()
    yield control
    control.faults()


@pytest.fixture
def yandex_client(yandex):
    return make_client(yandex.url)


@pytest.fixture
def portal_callbacks(vk_control, google_control):
    """The VK and Google sandboxes also accept the test portal's callbacks (http://localhost/settings/ad-accounts/
    <platform>/callback) during the test; their redirect URIs outlive a reset, so they are put back after it."""
    vk_control.post("/config", {"VK_SANDBOX_REDIRECT_URIS": [
        REDIRECT_URI, "http://localhost/settings/ad-accounts/vk_ads/callback"]})
    google_control.post("/config", {"GOOGLE_SANDBOX_REDIRECT_URIS": [
        REDIRECT_URI, "http://localhost/settings/ad-accounts/google_ads/callback"]})
    yield
    vk_control.post("/config", {"VK_SANDBOX_REDIRECT_URIS": [REDIRECT_URI]})
    google_control.post("/config", {"GOOGLE_SANDBOX_REDIRECT_URIS": [REDIRECT_URI]})
