"""Reading one visit beacon: the body (JSON, sent as application/json or as sendBeacon's text/plain), the field
rules, the user agents that are not people, and the address hashed so that no raw IP is stored.

Nothing here touches the database or Flask.
"""
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from portal.models.lead import CLICK_ID_KEYS, UTM_KEYS
from portal.models.visit import DEVICE_CLASSES, ID_FORMAT_MESSAGE, visit_id_or_none

# sendBeacon with a string body sends text/plain (a CORS-safelisted type: no preflight); other clients send JSON.
BODY_TYPES = ("application/json", "text/plain")
_FAST_TYPES = frozenset(("text/plain;charset=UTF-8", "text/plain;charset=utf-8", "text/plain", "application/json"))
TAG_KEYS = UTM_KEYS + CLICK_ID_KEYS
URL_KEYS = ("referrer", "landing_page")
TAG_LIMIT, URL_LIMIT = 200, 2000

# User agents that are not a person's browser: crawlers, link previews, monitors, headless and automated browsers,
# HTTP libraries. Matched case-insensitively anywhere in the User-Agent; a beacon from one is answered as any other
# (202) and not stored, so a bot learns nothing from the answer. "bot" is not matched inside "cubot" (a phone
# maker's model names). An empty User-Agent is a bot's too: every browser sends one.
BOT_MARKERS = (
    "bot", "crawl", "spider", "slurp", "scrape", "archiver", "headless", "phantomjs", "puppeteer", "playwright",
    "selenium", "webdriver", "electron", "lighthouse", "pagespeed", "gtmetrix", "pingdom", "uptime", "monitor",
    "preview", "facebookexternalhit", "embedly", "python", "curl", "wget", "go-http-client", "java/", "okhttp",
    "axios", "node-fetch", "libwww", "httpclient", "http_request", "feedfetcher",
)


class BeaconRefused(Exception):
    """The beacon cannot be stored: 400 (malformed, with `errors` per field), 413 (too large) or 415 (wrong type)."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@dataclass
class VisitBeacon:
    visitor_id: str
    visit_id: str
    tags: dict[str, str | None] = field(default_factory=dict)  # utm_* and click ids
    referrer: str | None = None
    landing_page: str | None = None
    device: str | None = None


def read_document(request: Request, max_bytes: int) -> dict:
    """The beacon's JSON object, or BeaconRefused."""
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "")
    if 0 < len(length) < 10 and length.isascii() and length.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ:
        size = int(length)
        if size > max_bytes:
            raise BeaconRefused(413, f"The beacon is larger than {max_bytes} bytes.")
        if environ.get("CONTENT_TYPE") in _FAST_TYPES:
            # What the snippet sends, read straight from the server's stream: werkzeug's parsing of the headers
            # and wrapping of the stream cost more CPU than the JSON itself (as portal.intake.submission does).
            try:
                data = environ["wsgi.input"].read(size)
            except OSError as error:  # the client went away
                raise BeaconRefused(400, "The request body could not be read.") from error
            if len(data) < size:
                raise BeaconRefused(400, "The request body ended before its Content-Length.")
            return _parse_json(data)
    if request.content_length is not None and request.content_length > max_bytes:
        raise BeaconRefused(413, f"The beacon is larger than {max_bytes} bytes.")
    if request.mimetype not in BODY_TYPES:
        raise BeaconRefused(415, "Send the visit as JSON (application/json or text/plain).")
    request.max_content_length = max_bytes  # a body without a Content-Length is cut off here
    try:
        return _parse_json(request.get_data(cache=False))
    except RequestEntityTooLarge as error:
        raise BeaconRefused(413, f"The beacon is larger than {max_bytes} bytes.") from error


def _parse_json(data: bytes) -> dict:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested arrays
        raise BeaconRefused(400, "The body is not valid JSON.") from error
    if not isinstance(document, dict):
        raise BeaconRefused(400, "The body must be a JSON object.")
    return document


def validate(document: dict) -> VisitBeacon:
    """The beacon with its fields checked, or BeaconRefused(400) naming every field that is wrong."""
    errors: dict[str, str] = {}
    ids = {}
    for key in ("visitor_id", "visit_id"):
        ids[key] = visit_id_or_none(document.get(key))
        if ids[key] is None:
            errors[key] = ID_FORMAT_MESSAGE
    tags = {key: _text(document, key, TAG_LIMIT, errors) for key in TAG_KEYS}
    urls = {key: _text(document, key, URL_LIMIT, errors) for key in URL_KEYS}
    device = document.get("device")
    if device in (None, ""):
        device = None
    elif device not in DEVICE_CLASSES:
        errors["device"] = f"One of {', '.join(DEVICE_CLASSES)}."
    if errors:
        raise BeaconRefused(400, "Some fields are not valid.", errors)
    return VisitBeacon(ids["visitor_id"], ids["visit_id"], tags, urls["referrer"], urls["landing_page"], device)


def _text(document: dict, key: str, limit: int, errors: dict) -> str | None:
    """Text without control characters, None when absent or blank. A tag over its limit is refused; a URL is cut
    (a visit is never refused for a long tracking URL it did not choose)."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors[key] = "Must be text."
        return None
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else " " for ch in value)
    value = value.strip()
    if len(value) > limit:
        if key in URL_KEYS:
            return value[:limit]
        errors[key] = f"At most {limit} characters."
        return None
    return value or None


def is_bot(user_agent: str | None) -> bool:
    if not user_agent:
        return True
    agent = user_agent[:512].lower().replace("cubot", "")
    # A substring test per marker costs less than one regular expression of them all (~3 against ~30 µs).
    return any(marker in agent for marker in BOT_MARKERS)


def ip_hash(secret_key: str, address: str, day: date) -> str:
    """HMAC-SHA256 of the address, keyed by the day's salt: the same address hashes alike within a UTC day (enough
    to tell one visitor's visits from a crowd's), differently on the next, and the salt, derived from the app's
    secret and the date, is never stored, so no table of salts exists to reverse yesterday's hashes with."""
    return hmac.new(_daily_salt(secret_key, day.isoformat()), address.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=4)
def _daily_salt(secret_key: str, day: str) -> bytes:
    return hmac.new(secret_key.encode(), b"leadpath visit ip salt " + day.encode(), hashlib.sha256).digest()
