"""The per-process cache of what the hot endpoints need of a workspace, found by its public id.

The lead intake and the webhook acknowledgement take bursts of thousands of requests a second for a handful of
workspaces: each process reads a workspace (its lead-form settings, webhook secret and amoCRM connection) from
PostgreSQL once, in one query, and keeps it for both endpoints. Each caller says how old an entry it accepts
(LEAD_WORKSPACE_CACHE_SECONDS, WEBHOOK_WORKSPACE_CACHE_SECONDS); an older one is read again.

Trade-off: a change made in another process (new allowed origins, a rotated secret, a (dis)connected amoCRM
account) reaches this one once its entry is older than the caller's limit; a change made in this process takes
effect at once (`forget_workspace`). Unknown public ids are not cached.
"""
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from flask import current_app
from sqlalchemy import Text, select, type_coerce

from portal.crypto import column_context, unseal
from portal.extensions import db
from portal.models import AmoCRMConnection, Workspace

CACHE_KEY = "leadpath_ingest_workspaces"  # in app.extensions: one cache per app (tests build many)
MAX_ENTRIES = 10_000  # bounded: public ids of deleted workspaces must not pile up


@dataclass
class CachedWorkspace:
    id: int
    public_id: str
    country: str
    allowed_origins: frozenset[str]  # normalised by `parse_origins`; empty: any origin
    duplicate_window_hours: int
    sealed_webhook_secret: str  # as stored, encrypted: see `webhook_secret`
    connection_id: int | None  # the amoCRM connection's row, None before connecting
    amocrm_account_id: int | None
    last_webhook_at: datetime | None  # as this process last wrote or read it
    loaded_at: float  # time.monotonic() of the read

    @cached_property
    def webhook_secret(self) -> str:
        """Decrypted when a webhook first needs it: the intake never does, so taking leads neither pays for it nor
        depends on it."""
        return unseal(self.sealed_webhook_secret, column_context("workspaces", "webhook_secret", self.public_id))


def cached_workspace(public_id: str, max_age: float) -> CachedWorkspace | None:
    """The workspace with that public id as read at most `max_age` seconds ago (by this process), or None."""
    cache: dict[str, CachedWorkspace] = current_app.extensions.setdefault(CACHE_KEY, {})
    now = time.monotonic()
    workspace = cache.get(public_id)
    if workspace is not None and now - workspace.loaded_at < max_age:
        return workspace
    row = db.session.execute(
        select(Workspace.id, Workspace.country, Workspace.allowed_origins, Workspace.duplicate_window_hours,
               type_coerce(Workspace.webhook_secret, Text).label("sealed_webhook_secret"),  # no decryption here
               AmoCRMConnection.id.label("connection_id"),
               AmoCRMConnection.amocrm_account_id, AmoCRMConnection.last_webhook_at)
        .outerjoin(AmoCRMConnection, AmoCRMConnection.workspace_id == Workspace.id)
        .where(Workspace.public_id == public_id)).first()
    db.session.rollback()  # end the read transaction: the endpoints write in autocommit
    if row is None:
        cache.pop(public_id, None)
        return None
    workspace = CachedWorkspace(row.id, public_id, row.country or "", frozenset(parse_origins(row.allowed_origins)),
                                row.duplicate_window_hours or 0, row.sealed_webhook_secret, row.connection_id,
                                row.amocrm_account_id, row.last_webhook_at, now)
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[public_id] = workspace
    return workspace


def forget_workspace(public_id: str) -> None:
    """Read the workspace again on its next request (its settings, secret or connection changed)."""
    current_app.extensions.get(CACHE_KEY, {}).pop(public_id, None)


def parse_origins(text: str | None) -> list[str]:
    """Origins from the settings text (one per line), normalised to scheme://host[:port] in lower case."""
    return [line.strip().rstrip("/").lower() for line in (text or "").splitlines() if line.strip()]
