"""amoCRM where its documentation allows more than the sandbox does: for tests of the client under such a server,
never a change to the emulator itself. (Search blind to tags and lagging, list filters ignored, tracking fields per
account are the sandbox's own behaviour, set per account through its control API.)

- `order_ignored`: a list answered in its default order whatever `order[…]` asks.

Patches the sandbox's request handling in this process (the sandbox fixtures serve it from a thread here), undone
by the test's monkeypatch.
"""
from portal.sandbox import contacts as sandbox_contacts
from portal.sandbox import leads as sandbox_leads


def order_ignored(monkeypatch) -> None:
    monkeypatch.setattr(sandbox_leads, "apply_order", lambda kind, items: items)
    monkeypatch.setattr(sandbox_contacts, "apply_order", lambda kind, items: items)
