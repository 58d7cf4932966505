"""amoCRM as its documentation allows it to be, where the in-process sandbox is still kinder: for tests of the
client under a stricter server, never a change to the emulator itself.

- `search_without_tags_and_with_lag`: `query=` searches filled fields only (not tags), and sees nothing created or
  changed in the last `delay` seconds (a search index is not documented as instant).
- `filters_ignored`: an account without the filtering feature answers every list unfiltered.
- `order_ignored`: a list answered in its default order whatever `order[…]` asks.

Each patches the sandbox's request handling in this process (the sandbox fixtures serve it from a thread here),
undone by the test's monkeypatch.
"""
import time

from portal.sandbox import api as sandbox_api


def search_without_tags_and_with_lag(monkeypatch, delay: float = 3.0) -> None:
    documented = sandbox_api.matches

    def matches(entity: dict, needle: str, extra: list) -> bool:
        if time.time() - entity.get("updated_at", 0) < delay:
            return False
        untagged = {**entity, "_embedded": {**entity.get("_embedded", {}), "tags": []}}
        return documented(untagged, needle, extra)

    monkeypatch.setattr(sandbox_api, "matches", matches)


def filters_ignored(monkeypatch) -> None:
    monkeypatch.setattr(sandbox_api, "filtered", lambda items, key: items)
    monkeypatch.setattr(sandbox_api, "in_range", lambda items, field: items)


def order_ignored(monkeypatch) -> None:
    monkeypatch.setattr(sandbox_api, "ordered", lambda items: items)
