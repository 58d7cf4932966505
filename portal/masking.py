"""Personal data and secrets shortened for logs, the sync log and lists."""
import re

SECRET_KEYS = {"access_token", "refresh_token", "client_secret", "code", "password", "authorization", "token",
               "secret", "webhook_secret"}
# "text": a note's text (extra form fields); "form_page", "referer": an Unsorted item's metadata, whose query
# strings may carry a visitor's e-mail or phone.
PERSONAL_KEYS = {"phone", "email", "name", "first_name", "last_name", "message", "ip", "user_agent", "text",
                 "form_page", "referer"}
_PHONE_LIKE = re.compile(r"\+?[\d\s()\-]{6,}")


def mask_phone(phone: str | None) -> str:
    if not phone:
        return ""
    digits = phone.lstrip("+")
    if len(digits) <= 4:
        return "•" * len(digits)
    return ("+" if phone.startswith("+") else "") + digits[:2] + "•" * (len(digits) - 4) + digits[-2:]


def mask_email(email: str | None) -> str:
    if not email or "@" not in email:
        return "•" * len(email or "")
    local, domain = email.rsplit("@", 1)
    return local[:1] + "•" * max(len(local) - 1, 2) + "@" + domain


def mask_secret(value: str | None) -> str:
    if not value:
        return ""
    return value[:4] + "…" if len(value) > 12 else "•••"


# Paths with a secret in a segment: a webhook URL's secret (after the workspace's public id), an invitation's token.
_SECRET_PATH = re.compile(r"^(/webhooks/amocrm/[^/]+/|/invite/)([^/]+)")


def mask_path(path: str) -> str:
    """A request path fit for a log line, whether or not it matched a route (a 404 or 405 logs it too)."""
    return _SECRET_PATH.sub(lambda match: match.group(1) + mask_secret(match.group(2)), path)


def mask_text(value: str) -> str:
    """A personal value of unknown kind: e-mails and phones keep their shape, other text keeps one letter."""
    if "@" in value:
        return mask_email(value)
    if _PHONE_LIKE.fullmatch(value):
        return mask_phone(value)
    return value[:1] + "…" if value else value


def mask_field(key, value):
    """One value of a document, masked by its key's name when the key names a secret or personal data."""
    if not isinstance(value, str):
        return value
    name = str(key).lower()
    if name in SECRET_KEYS or name.endswith(("_token", "_secret")):
        return mask_secret(value)
    if name in PERSONAL_KEYS:
        return mask_text(value)
    return value


# amoCRM's custom fields ({"field_code" or, in webhooks, "code": …, "values": [{"value": …}]}) hold whatever a CRM
# keeps: phones, e-mails, addresses. Only the tracking fields Leadpath writes are shown as they are; the referrer
# without its query string, which may carry a visitor's e-mail or phone.
SHOWN_FIELD_CODES = {"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_TERM", "UTM_CONTENT", "GCLID", "YCLID",
                     "FBCLID"}
FIELD_LABEL_KEYS = ("code", "field_code", "name", "field_name")


def _field_value(code: str, value: str) -> str:
    if code == "REFERRER":
        return value.split("?", 1)[0].split("#", 1)[0]
    return value if code in SHOWN_FIELD_CODES else mask_text(value)


def mask_document(document):
    """A copy of a JSON-like document (amoCRM's requests, responses and webhooks) with secret and personal values
    masked by key name, custom fields' values by their field's code, and tags as they are."""
    if isinstance(document, list):
        return [mask_document(item) for item in document]
    if not isinstance(document, dict):
        return document
    values = document.get("values")
    if isinstance(values, list) and any(isinstance(item, dict) and "value" in item for item in values):
        code = str(document.get("field_code") or document.get("code") or "").upper()
        masked = {key: value if key in FIELD_LABEL_KEYS else mask_field(key, mask_document(value))
                  for key, value in document.items() if key != "values"}
        masked["values"] = [{**item, "value": _field_value(code, str(item.get("value", "")))}
                            if isinstance(item, dict) else item for item in values]
        return masked
    return {key: value if key == "tags" else mask_field(key, mask_document(value)) for key, value in document.items()}
