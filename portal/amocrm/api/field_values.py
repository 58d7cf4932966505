"""A form's extra value → the `values` of an amoCRM custom field, by the field's type. Pure functions, no I/O.

Value shapes per type (amoCRM custom-fields docs; PHP SDK ValueModels/*; docs/amocrm.md "Custom fields"):
text, textarea, streetaddress `{"value": "…"}`; numeric and monetary `{"value": number}`; checkbox
`{"value": true|false}`; url `{"value": "https://…"}`; date, date_time, birthday `{"value": unix seconds}`;
select and radiobutton one `{"enum_id": id}`; multiselect one `{"enum_id": id}` per chosen option; multitext
(a contact's phones and e-mails) `{"value": "…", "enum_code": "WORK"}`. Other types (smart_address,
legal_entity, items, chained lists, files, tracking_data…) are not offered for mapping.

A value that does not fit its field raises FieldValueError with the reason: the push leaves it out of the field
and puts it in the deal's note instead; the lead still goes.
"""
import re
from datetime import UTC, datetime

MAPPABLE_TYPES = ("text", "textarea", "streetaddress", "numeric", "monetary", "checkbox", "url", "date",
                  "date_time", "birthday", "select", "radiobutton", "multiselect", "multitext")
TEXT_LIMIT = 255  # amoCRM's text fields; a textarea takes more
TEXTAREA_LIMIT = 10_000
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "да", "так", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "нет", "ні", "n"})
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M")
NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


class FieldValueError(ValueError):
    """The value does not fit the field; the message says why (shown in the deal's note)."""


def field_summary(field: dict) -> dict | None:
    """What is kept of an API custom field: {id, name, code, type, enums: [{id, value}]}; None when unusable."""
    field_id, kind = field.get("id"), field.get("type")
    if not isinstance(field_id, int) or isinstance(field_id, bool) or not isinstance(kind, str):
        return None
    enums = [{"id": enum["id"], "value": str(enum.get("value") or "")} for enum in field.get("enums") or []
             if isinstance(enum, dict) and isinstance(enum.get("id"), int)]
    return {"id": field_id, "name": str(field.get("name") or "")[:255], "code": field.get("code") or None,
            "type": kind, "enums": enums}


def fields_record(read: dict[str, list[dict]], read_at: str) -> dict:
    """What the connection keeps of the fields read ({entity: API custom fields}): the usable ones, summarised,
    and when they were read (`AmoCRMConnection.custom_fields`)."""
    return {**{entity: [summary for field in fields if (summary := field_summary(field)) is not None]
               for entity, fields in read.items()}, "read_at": read_at}


def values_for(field: dict, raw: str | list[str]) -> list[dict]:
    """The field's `values` for a form value (a text, or a list of texts for a group of checkboxes)."""
    kind = field["type"]
    texts = [text.strip() for text in (raw if isinstance(raw, list) else [raw]) if str(text).strip()]
    if not texts:
        raise FieldValueError("empty")
    if kind == "multiselect":
        chosen = [part.strip() for text in texts for part in (text.split(",") if len(texts) == 1 else [text])]
        return [{"enum_id": _enum(field, part)} for part in dict.fromkeys(part for part in chosen if part)]
    if len(texts) > 1:
        raise FieldValueError("several values for a field that takes one")
    text = texts[0]
    if kind in ("text", "streetaddress"):
        if len(text) > TEXT_LIMIT:
            raise FieldValueError(f"longer than {TEXT_LIMIT} characters")
        return [{"value": text}]
    if kind == "textarea":
        return [{"value": text[:TEXTAREA_LIMIT]}]
    if kind in ("numeric", "monetary"):
        compact = text.replace(" ", "").replace("\u00a0", "")
        if not NUMBER.fullmatch(compact):
            raise FieldValueError("not a number")
        number = float(compact.replace(",", "."))
        return [{"value": int(number) if number.is_integer() else number}]
    if kind == "checkbox":
        word = text.lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise FieldValueError("not yes or no")
        return [{"value": word in TRUE_WORDS}]
    if kind == "url":
        if not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", text, flags=re.I):
            raise FieldValueError("not an http(s) address")
        return [{"value": text}]
    if kind in ("date", "date_time", "birthday"):
        return [{"value": _unix(text)}]
    if kind in ("select", "radiobutton"):
        return [{"enum_id": _enum(field, text)}]
    if kind == "multitext":
        return [{"value": text[:TEXT_LIMIT], "enum_code": "WORK"}]
    raise FieldValueError(f"fields of type {kind} are not filled from forms")


def _enum(field: dict, text: str) -> int:
    """The option whose value is the text (case and spacing aside), or whose id it is."""
    wanted = " ".join(text.split()).casefold()
    for enum in field.get("enums") or []:
        if " ".join(enum["value"].split()).casefold() == wanted or str(enum["id"]) == text:
            return enum["id"]
    raise FieldValueError(f"“{text[:60]}” is not one of the field's options")


def _unix(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    for layout in DATE_FORMATS if moment is None else ():
        try:
            moment = datetime.strptime(text, layout)
            break
        except ValueError:
            continue
    if moment is None or not 1900 <= moment.year <= 2200:
        raise FieldValueError("not a date")
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
