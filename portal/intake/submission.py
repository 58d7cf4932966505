"""Reading one lead submission: the request body (JSON or form), the field rules, the per-field errors of a 400.

Nothing here touches the database: `read_document` turns the body into a dict (or a 413/415/400), and
`validate` turns that dict into a `LeadSubmission` or raises `SubmissionInvalid` with one message per field.
"""
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import phonenumbers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from portal.models.lead import CLICK_ID_KEYS, UTM_KEYS
from portal.models.visit import ID_FORMAT_MESSAGE, visit_id_or_none
from portal.security import FORM_TYPES

WORKSPACE_FIELD = "userAccountId"
WORKSPACE_HEADER = "X-Workspace"
IDEMPOTENCY_FIELD = "idempotency_key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Hidden from people by the snippet; bots that fill every input fill this one too.
HONEYPOT_FIELD = "lp_website"
FIRST_TOUCH_FIELD = "first_touch"
# The form's other named fields, {name: text or [texts]}: mapped to amoCRM custom fields, or noted on the deal.
EXTRA_FIELD = "fields"
# The snippet's visitor and the visit the form was sent in (portal.models.visit.ID_PATTERN); optional.
VISITOR_KEYS = ("visitor_id", "visit_id")
MAX_EXTRA_FIELDS = 30
MAX_EXTRA_NAME = 64
MAX_EXTRA_VALUE = 1000
MAX_EXTRA_VALUES = 20  # a group of checkboxes sends a list

URL_KEYS = ("referrer", "landing_page")
ATTRIBUTION_KEYS = UTM_KEYS + CLICK_ID_KEYS + URL_KEYS
# first_touch carries no click ids: the model keeps the last touch's only.
FIRST_TOUCH_KEYS = UTM_KEYS + URL_KEYS

LIMITS = {"name": 200, "phone": 40, "email": 254, "message": 5000, IDEMPOTENCY_FIELD: 128,
          **{key: 200 for key in UTM_KEYS + CLICK_ID_KEYS}, **{key: 2000 for key in URL_KEYS}}
# Local part and domain of an address, the domain with at least one dot and a TLD of letters (IDN allowed).
EMAIL_PATTERN = re.compile(r"[^\s@\"<>(),;:\\\[\]]{1,64}@(?:[^\s@\"<>(),;:\\\[\].]{1,63}\.)+[^\W\d_]{2,63}")
# Milliseconds since the epoch that are plausible for a first visit (2000-01-01 … 2100-01-01).
EARLIEST_MS, LATEST_MS = 946_684_800_000, 4_102_444_800_000


class BodyError(Exception):
    """The body cannot be read as a submission at all: 400 (malformed), 413 (too large) or 415 (wrong type)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SubmissionInvalid(Exception):
    """One message per field (keys as in the request; nested ones like `first_touch.timestamp`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid submission")
        self.errors = errors


@dataclass
class LeadSubmission:
    name: str = ""
    phone: str | None = None  # E.164
    email: str | None = None
    message: str = ""
    attribution: dict[str, str | None] = field(default_factory=dict)
    first_touch: dict[str, str | None] | None = None
    first_touch_at: datetime | None = None
    idempotency_key: str | None = None
    is_spam: bool = False
    extra_fields: dict[str, str | list[str]] | None = None
    visitor_id: str | None = None
    visit_id: str | None = None


def fingerprint(submission: LeadSubmission) -> str:
    """sha256 of the submission as validated, without its idempotency key: field order, spacing, a phone's
    formatting or an e-mail's case do not change it; any difference in what would be stored does."""
    normalised = {"name": submission.name, "phone": submission.phone, "email": submission.email,
                  "message": submission.message, "attribution": submission.attribution,
                  "first_touch": submission.first_touch,
                  "first_touch_at": submission.first_touch_at.isoformat() if submission.first_touch_at else None,
                  "is_spam": submission.is_spam, **({"fields": submission.extra_fields}
                                                    if submission.extra_fields else {}),
                  # Only when sent, so a lead from an older snippet keeps the fingerprint it was stored with.
                  **{key: getattr(submission, key) for key in VISITOR_KEYS if getattr(submission, key)}}
    canonical = json.dumps(normalised, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_document(request: Request, max_bytes: int) -> dict:
    """The submission as a dict, or BodyError."""
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "")
    if environ.get("CONTENT_TYPE") == "application/json" and 0 < len(length) < 10 and length.isascii() \
            and length.isdigit() and int(length) <= max_bytes and "HTTP_TRANSFER_ENCODING" not in environ:
        # What the snippet sends, read straight from the server's stream: werkzeug's parsing of the headers and
        # wrapping of the stream cost more CPU than the JSON itself.
        try:
            body = environ["wsgi.input"].read(int(length))
        except OSError as error:  # the client went away (a reset connection)
            raise BodyError(400, "The request body could not be read.") from error
        if len(body) < int(length):
            raise BodyError(400, "The request body ended before its Content-Length.")
        return _parse_json(body)
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyError(413, f"The request body is larger than {max_bytes} bytes.")
    request.max_content_length = max_bytes  # bodies without a Content-Length are cut off here
    mimetype = request.mimetype
    try:
        if mimetype == "application/json" or mimetype.endswith("+json"):
            return _parse_json(request.get_data(cache=True))
        if mimetype in FORM_TYPES:
            return _parse_form(request.form)
    except RequestEntityTooLarge as error:
        raise BodyError(413, f"The request body is larger than {max_bytes} bytes.") from error
    raise BodyError(415, "Send the lead as JSON (application/json) or as a form "
                         "(application/x-www-form-urlencoded or multipart/form-data).")


def _parse_json(data: bytes) -> dict:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested arrays
        raise BodyError(400, "The body is not valid JSON.") from error
    if not isinstance(document, dict):
        raise BodyError(400, "The body must be a JSON object.")
    return document


def _parse_form(form) -> dict:
    """Form fields, first value of each; `first_touch[utm_source]` (or `first_touch.utm_source`) nest, and so do
    `fields[<name>]` (every value of a repeated one: a list)."""
    document: dict = {}
    nested: dict = {}
    extra: dict = {}
    for key, value in form.items():
        match = re.fullmatch(r"first_touch(?:\[(\w+)\]|\.(\w+))", key)
        extra_match = re.fullmatch(r"fields\[([^\[\]]+)\]", key)
        if match:
            nested[match.group(1) or match.group(2)] = value
        elif extra_match:
            values = form.getlist(key)
            extra[extra_match.group(1)] = values if len(values) > 1 else value
        else:
            document[key] = value
    if nested and FIRST_TOUCH_FIELD not in document:
        document[FIRST_TOUCH_FIELD] = nested
    if extra and EXTRA_FIELD not in document:
        document[EXTRA_FIELD] = extra
    return document


def workspace_public_id(document: dict, headers, query) -> str | None:
    """The workspace's public id as given (in the body, the X-Workspace header or the query string, in that
    order); None unless it could be one (short printable ASCII)."""
    value = document.get(WORKSPACE_FIELD) or headers.get(WORKSPACE_HEADER) or query.get(WORKSPACE_FIELD)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= 64 and value.isascii() and value.isprintable() else None


def validate(document: dict, headers, region: str) -> LeadSubmission:
    """The submission with its fields cleaned and checked, or SubmissionInvalid with every problem at once."""
    errors: dict[str, str] = {}
    submission = LeadSubmission()
    submission.name = _text(document, "name", errors) or ""
    submission.message = _text(document, "message", errors, multiline=True) or ""
    raw_phone = _text(document, "phone", errors)
    raw_email = _text(document, "email", errors)
    if raw_phone:
        submission.phone = _phone(raw_phone, region, errors)
    if raw_email:
        submission.email = _email(raw_email, errors)
    if not raw_phone and not raw_email and "phone" not in errors and "email" not in errors:
        errors["phone"] = errors["email"] = "Enter a phone number or an e-mail address."

    submission.attribution = {key: _text(document, key, errors) for key in ATTRIBUTION_KEYS}
    _first_touch(document.get(FIRST_TOUCH_FIELD), submission, errors)

    key = headers.get(IDEMPOTENCY_HEADER)
    if key is not None:
        submission.idempotency_key = _text({IDEMPOTENCY_FIELD: key}, IDEMPOTENCY_FIELD, errors)
    else:
        submission.idempotency_key = _text(document, IDEMPOTENCY_FIELD, errors)
    submission.extra_fields = _extra_fields(document.get(EXTRA_FIELD), errors)
    for key in VISITOR_KEYS:
        setattr(submission, key, _visitor_id(document, key, errors))
    honeypot = document.get(HONEYPOT_FIELD)
    submission.is_spam = bool(honeypot) and not (isinstance(honeypot, str) and not honeypot.strip())
    if errors:
        raise SubmissionInvalid(errors)
    return submission


def _text(document: dict, key: str, errors: dict, multiline: bool = False, label: str | None = None) -> str | None:
    """A cleaned, length-checked text value; None when absent or blank. Numbers are read as text."""
    value = document.get(key)
    label = label or key
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors[label] = "Must be text."
        return None
    value = _clean(str(value), multiline)
    if not value:
        return None
    limit = LIMITS[key]
    if len(value) > limit:
        if key in URL_KEYS:
            return value[:limit]  # a lead is never refused for a long tracking URL it did not choose
        errors[label] = f"At most {limit} characters."
        return None
    return value


def _clean(value: str, multiline: bool) -> str:
    """Without control characters, NULs or unpaired surrogates (PostgreSQL stores none of them)."""
    if not value.isprintable():
        if multiline:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
            value = "".join(ch for ch in value if ch.isprintable() or ch in "\n\t")
        else:
            value = "".join(ch if ch.isprintable() else " " for ch in value)
    return value.strip()


def _phone(raw: str, region: str, errors: dict) -> str | None:
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        errors["phone"] = "Enter a valid phone number, with the country code if it is from another country."
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(raw: str, errors: dict) -> str | None:
    email = raw.lower()
    if not EMAIL_PATTERN.fullmatch(email) or ".." in email:
        errors["email"] = "Enter a valid e-mail address."
        return None
    return email


def _first_touch(value, submission: LeadSubmission, errors: dict) -> None:
    if value is None or value == "":
        return
    if isinstance(value, str):  # form-encoded bodies may carry it as a JSON string
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, dict):
        errors[FIRST_TOUCH_FIELD] = "Must be an object with utm_*, referrer, landing_page and timestamp."
        return
    touch = {key: _text(value, key, errors, label=f"{FIRST_TOUCH_FIELD}.{key}") for key in FIRST_TOUCH_KEYS}
    if any(touch.values()):
        submission.first_touch = touch
    stamp = value.get("timestamp")
    if stamp not in (None, ""):
        submission.first_touch_at = _timestamp(stamp)
        if submission.first_touch_at is None:
            errors[f"{FIRST_TOUCH_FIELD}.timestamp"] = "An ISO 8601 date-time or milliseconds since 1970."
        elif submission.first_touch is None:
            submission.first_touch = touch


def _extra_fields(value, errors: dict) -> dict | None:
    """The form's other fields, bounded: at most MAX_EXTRA_FIELDS names of MAX_EXTRA_NAME characters, each a text
    (numbers and true/false read as text) or a list of at most MAX_EXTRA_VALUES texts, of MAX_EXTRA_VALUE
    characters each. Blank values are left out; anything else is a 400 naming the field."""
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        errors[EXTRA_FIELD] = "Must be an object of field names and their values."
        return None
    if len(value) > MAX_EXTRA_FIELDS:
        errors[EXTRA_FIELD] = f"At most {MAX_EXTRA_FIELDS} extra fields."
        return None
    fields: dict[str, str | list[str]] = {}
    for raw_name, raw in value.items():
        name = _clean(str(raw_name), False)
        label = f"{EXTRA_FIELD}.{name[:MAX_EXTRA_NAME]}"
        if not name or len(name) > MAX_EXTRA_NAME:
            errors[EXTRA_FIELD] = f"Field names are 1 to {MAX_EXTRA_NAME} characters."
            continue
        items = raw if isinstance(raw, list) else [raw]
        if len(items) > MAX_EXTRA_VALUES:
            errors[label] = f"At most {MAX_EXTRA_VALUES} values."
            continue
        texts = []
        for item in items:
            if isinstance(item, bool):
                item = "true" if item else "false"
            if item is None or not isinstance(item, str | int | float):
                errors[label] = "Must be text or a list of texts."
                break
            text = _clean(str(item), multiline=True)
            if len(text) > MAX_EXTRA_VALUE:
                errors[label] = f"At most {MAX_EXTRA_VALUE} characters."
                break
            if text:
                texts.append(text)
        else:
            if texts:
                fields[name] = texts if isinstance(raw, list) else texts[0]
    return fields or None


def _visitor_id(document: dict, key: str, errors: dict) -> str | None:
    value = document.get(key)
    if value is None or value == "":
        return None
    found = visit_id_or_none(value.strip() if isinstance(value, str) else value)
    if found is None:
        errors[key] = ID_FORMAT_MESSAGE
    return found


def _timestamp(value) -> datetime | None:
    """ISO 8601 (naive means UTC) or Unix milliseconds, within 2000–2100; a future time is clamped to now."""
    if isinstance(value, str) and len(value) <= 20 and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not EARLIEST_MS <= value <= LATEST_MS:  # also rejects NaN
            return None
        moment = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            return None
        if moment.year < 2000:
            return None
    else:
        return None
    return min(moment, datetime.now(UTC))
