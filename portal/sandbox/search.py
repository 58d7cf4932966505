"""``query=`` search over entities."""

import re

from .state import normalize_phone


def matches(entity: dict, needle: str, extra: list) -> bool:
    haystack = [
        entity.get("name"),
        entity.get("first_name"),
        entity.get("last_name"),
        entity["id"],
        entity.get("price"),
    ] + extra
    for field in entity.get("custom_fields_values") or []:
        haystack += [value.get("value") for value in field["values"]]
    for tag in entity["_embedded"].get("tags", []):
        haystack.append(tag["name"])
    needle = needle.lower()
    # A phone-like query also matches other spellings of the number (8… / +7…, spaces, dashes).
    digits = normalize_phone(needle) if re.fullmatch(r"[\d\s()+-]{5,}", needle) else ""
    for item in haystack:
        text = str(item).lower() if item is not None else ""
        if text and (needle in text or (digits and digits[-10:] in normalize_phone(text))):
            return True
    return False


def contact_search_values(contact: dict) -> list:
    values = [contact["name"]]
    for field in contact.get("custom_fields_values") or []:
        values += [value["value"] for value in field["values"]]
    return values
