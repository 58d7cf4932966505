"""Keeping the sandbox's state across restarts (the demo): with ``SANDBOX_STATE_FILE`` set, the whole state —
accounts, integrations, the token-signing key, codes, tokens, entities, webhooks and the id counters — is
written to that JSON file after every request that may change it, and read back when the app starts. So a
restarted demo keeps its amoCRM connection and deals, and new ids never repeat old ones. Tests leave the key
unset and keep everything in memory.

The search index is rebuilt on load (everything loaded is searchable at once); queued webhook deliveries and
rate-limit buckets are not kept.
"""

import json
import os
import tempfile

from .search import searchable_texts
from .state import now

# Attribute name → whether its dict has integer keys (JSON turns them into strings).
KEPT = {
    "accounts": True,
    "integrations": False,
    "codes": False,
    "access_tokens": False,
    "refresh_tokens": False,
    "leads": True,
    "contacts": True,
    "companies": True,
    "notes": True,
    "tasks": True,
    "events": None,
    "unsorted": False,
    "webhooks": True,
    "_ids": False,
}


def snapshot(state, signer) -> dict:
    with state.lock:
        body = {name: getattr(state, name) for name in KEPT}
        body["generation"] = state.generation
        body["signing_key_pem"] = signer.private_pem
        body["saved_at"] = now()
        return json.loads(json.dumps(body, ensure_ascii=False))


def save(state, signer, path: str) -> None:
    """Write atomically (a temporary file renamed over the old one), so a crash never leaves half a file."""
    body = snapshot(state, signer)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".sandbox-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(body, file, ensure_ascii=False)
    os.replace(temporary, path)


def load(state, signer, path: str) -> bool:
    """Restore the state saved at ``path``; False (state untouched) when there is no file."""
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as file:
        body = json.load(file)
    with state.lock:
        for name, int_keys in KEPT.items():
            value = body.get(name, getattr(state, name))
            if int_keys:
                value = {int(key): item for key, item in value.items()}
            setattr(state, name, value)
        state.generation = body.get("generation", state.generation)
        for account in state.accounts.values():
            account["host"] = None  # loopback ports of own hosts do not survive a restart
            account.setdefault("settings", state.default_settings())
        state.search_index = {}
        for kind, store in (
            ("leads", state.leads),
            ("contacts", state.contacts),
            ("companies", state.companies),
        ):
            for entity in store.values():
                state.search_index[(kind, entity["id"])] = [(0.0, searchable_texts(entity))]
    signer.load_pem(body["signing_key_pem"])
    return True
