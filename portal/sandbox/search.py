"""``query=`` search as amoCRM documents it: "searches the filled fields of the entity" — names and field
values (a contact's phones and e-mails, text fields), never tags — over a search index that lags writes.

Every write re-indexes the entity with a delay (the account's ``search_index_delay``, seconds): until then
``query=`` sees the previous version, and a new entity not at all. Matching is a case-insensitive substring;
a phone-like query also matches other spellings of the same number (8… / +7…, spaces, dashes). Whether
amoCRM's lead search covers linked contacts is not documented, so a lead is found only by its own fields.
"""

import re
import time

from .oauth import sandbox
from .state import normalize_phone


def searchable_texts(entity: dict) -> list[str]:
    texts = [entity.get(key) for key in ("name", "first_name", "last_name")]
    for field in entity.get("custom_fields_values") or []:
        texts += [value.get("value") for value in field["values"] or []]
    return [str(text) for text in texts if text not in (None, "")]


def index_entity(kind: str, entity: dict) -> None:
    """Queue ``entity``'s current texts for the index; caller holds the state lock."""
    state = sandbox().state
    delay = float(state.accounts[entity["account_id"]]["settings"]["search_index_delay"])
    moment = time.monotonic()
    versions = state.search_index.get((kind, entity["id"]), [])
    visible = [version for version in versions if version[0] <= moment][-1:]
    pending = [version for version in versions if version[0] > moment]
    state.search_index[(kind, entity["id"])] = (
        visible + pending + [(moment + delay, searchable_texts(entity))]
    )


def drop_from_index(kind: str, entity_id: int) -> None:
    sandbox().state.search_index.pop((kind, entity_id), None)


def indexed_texts(kind: str, entity_id: int) -> list[str] | None:
    """What the index holds for the entity now, or None when it has not been indexed yet."""
    moment = time.monotonic()
    versions = sandbox().state.search_index.get((kind, entity_id), [])
    visible = [texts for ready, texts in versions if ready <= moment]
    return visible[-1] if visible else None


def matches(kind: str, entity: dict, needle: str) -> bool:
    texts = indexed_texts(kind, entity["id"])
    if not texts:
        return False
    needle = needle.lower()
    digits = normalize_phone(needle) if re.fullmatch(r"[\d\s()+-]{5,}", needle) else ""
    for text in texts:
        lowered = text.lower()
        if needle in lowered or (digits and digits[-10:] in normalize_phone(lowered)):
            return True
    return False
