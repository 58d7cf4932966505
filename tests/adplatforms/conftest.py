import pytest
from fixtures.yandex_direct import TEST_SETTINGS, YandexSandbox, make_client

from portal.sandbox.server import serve_in_thread
from portal.sandbox.yandex_direct import create_app as create_yandex_sandbox


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
