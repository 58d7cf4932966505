"""What the VK Ads and Google Ads wire clients share: one HTTP call with its timeout, its body read as JSON where
it is JSON. No Flask, no database, like the clients."""
from typing import Any

import requests

from portal.adplatforms.base import RetryLater

TRANSIENT_RETRY_SECONDS = 30.0  # what RetryLater asks for after a 5xx or a dropped connection


def send(session: requests.Session, method: str, url: str, timeout: float, platform_name: str,
         **kwargs) -> tuple[requests.Response, Any]:
    """The response and its body (parsed JSON, the text when it is not JSON, None when empty); a platform that
    cannot be reached (refused, reset, timed out) raises RetryLater."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as error:
        raise RetryLater(f"{platform_name} could not be reached ({type(error).__name__}); try again later.",
                         TRANSIENT_RETRY_SECONDS) from None
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = response.text
    return response, body
