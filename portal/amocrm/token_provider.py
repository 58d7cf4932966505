"""The one token provider for a workspace's amoCRM connection (used by every caller through `client_for`).

amoCRM refresh tokens rotate: each refresh burns the old refresh token, so two processes refreshing at once
kill the connection (the loser gets "Token has been revoked"). Therefore a refresh happens only

1. under a per-workspace lock that holds across processes: `SELECT … FOR UPDATE` on the connection row in a
   short transaction of its own (PostgreSQL), plus a process-local lock so threads queue up without each
   holding a database connection (and so SQLite, where FOR UPDATE is a no-op, is safe in the one-process demo);
2. after re-reading the row under that lock: if another worker refreshed meanwhile, its token is used;
3. with the new pair committed before the token is handed out.

Tokens are refreshed 5 minutes before they expire. A refused refresh (TokenRevoked or any other token endpoint
refusal) is looked at again once the lock is released and taken anew: if the stored refresh token is no longer
the one sent, another process rotated it and its pair is used; otherwise the connection turns `needs_reauth`
with `last_error` set, and the refusal is raised; transport and server errors are raised without touching the
connection (the next call tries again).

An account renamed in amoCRM (a new subdomain) moves to a new host; its old host answers the refresh with 404 or
401. Before declaring the connection revoked, amoCRM is asked where the account lives now
(`GET {api_domain}/oauth2/account/current/subdomain`, which does not use up the refresh token); a new host of the
same region and account gets the same refresh, and is stored with the new pair, so every later URL uses it.
Connections idle for a week are refreshed by a periodic job
(`refresh_idle_connections`): a refresh token unused for about 3 months (one report says 30 days) dies.
"""
import logging
import threading
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.amocrm import regions
from portal.amocrm.api import oauth
from portal.amocrm.api.errors import AmoCRMError, OAuthError, Unauthorized
from portal.extensions import db
from portal.models import AmoCRMConnection
from portal.models.amocrm import CONNECTED, NEEDS_REAUTH
from portal.models.types import utcnow

REFRESH_MARGIN = timedelta(minutes=5)
IDLE_AFTER = timedelta(days=7)
LONG_LIVED = "long_lived"

log = logging.getLogger(__name__)

_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(workspace_id: int) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(workspace_id, threading.Lock())


class NotConnected(Exception):
    """The workspace has no usable amoCRM connection (none, disconnected, or waiting for re-authorization)."""


def fresh_enough(expires_at: datetime | None, now: datetime | None = None) -> bool:
    """A token with no known expiry (long-lived tokens without `exp`) counts as fresh."""
    return expires_at is None or expires_at - (now or utcnow()) > REFRESH_MARGIN


class ConnectionTokens:
    """TokenProvider backed by the `amocrm_connections` row of one workspace.

    Safe to share between threads. Needs an app (taken from the current app context when not given); it opens
    its own database sessions, so it never commits or rolls back the caller's transaction.
    """

    def __init__(self, workspace_id: int, *, app: Flask | None = None, access_token: str | None = None,
                 expires_at: datetime | None = None, redirect_uri: str | None = None,
                 base_domain: str | None = None) -> None:
        self.workspace_id = workspace_id
        self.app = app or current_app._get_current_object()
        self.redirect_uri = redirect_uri
        self._access_token = access_token
        self._expires_at = expires_at
        self._base_domain = base_domain
        self._lock = threading.Lock()

    def account_base_url(self) -> str | None:
        """The account's address as last read from the connection (it changes when the account is renamed)."""
        with self._lock:
            host = self._base_domain
        return oauth.base_url(host, self.app.config["AMOCRM_DEV_HOSTS"]) if host else None

    # -- TokenProvider --------------------------------------------------------------------------------

    def access_token(self) -> str:
        with self._lock:
            token, expires_at = self._access_token, self._expires_at
        if token and fresh_enough(expires_at):
            return token
        return self._under_lock(rejected=None, force=False)

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        return self._under_lock(rejected=rejected_token, force=False)

    def force_refresh(self) -> str:
        """Refresh now whatever the expiry (the scheduled refresh of idle connections)."""
        return self._under_lock(rejected=None, force=True)

    # -- the refresh ----------------------------------------------------------------------------------

    def _under_lock(self, *, rejected: str | None, force: bool) -> str:
        with _process_lock(self.workspace_id), self.app.app_context():
            failure: Exception | None = None
            with Session(db.engine, expire_on_commit=False) as session, session.begin():
                connection = session.scalars(
                    select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == self.workspace_id)
                    .with_for_update()).one_or_none()
                if connection is None or connection.status != CONNECTED or not connection.access_token:
                    raise NotConnected("amoCRM is not connected for this workspace")
                token = connection.access_token
                stale = rejected is not None and token == rejected
                if not force and not stale and fresh_enough(connection.expires_at):
                    # Someone else refreshed (maybe at the account's new address), or nothing to do.
                    self._remember(token, connection.expires_at, connection.base_domain)
                    return token
                if connection.auth_type == LONG_LIVED:
                    if not stale:
                        self._remember(token, connection.expires_at, connection.base_domain)
                        return token
                    failure = Unauthorized("amoCRM refused the long-lived token", status=401)
                    self._needs_reauth(connection, "amoCRM refused the long-lived token. Paste a new one or "
                                                   "connect with the button.")
                else:
                    sent = connection.refresh_token
                    try:
                        pair = self._refresh(connection)
                    except OAuthError as exc:  # TokenRevoked included: a person must reconnect, unless…
                        failure = exc
                    else:
                        connection.access_token = pair.access_token
                        connection.refresh_token = pair.refresh_token
                        connection.expires_at = pair.expires_at
                        connection.last_refresh_at = utcnow()
                        connection.last_error = None
                        token, expires_at, host = pair.access_token, pair.expires_at, connection.base_domain
                # The block commits here: the new pair (or the needs_reauth mark) is stored before use.
            if isinstance(failure, OAuthError):
                return self._after_refusal(failure, sent)
            if failure is not None:
                raise failure
            self._remember(token, expires_at, host)
            log.info("amoCRM token refreshed for workspace %s", self.workspace_id)
            return token

    def _after_refusal(self, refusal: OAuthError, sent: str | None) -> str:
        """amoCRM refused the refresh token we sent. Before declaring the connection revoked, look again (under
        the lock): if the stored refresh token is no longer the one we sent, another process (or a reconnect)
        rotated it meanwhile, and its access token is the one to use."""
        with Session(db.engine, expire_on_commit=False) as session, session.begin():
            connection = session.scalars(
                select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == self.workspace_id)
                .with_for_update()).one_or_none()
            if connection is None or connection.status != CONNECTED or not connection.access_token:
                raise NotConnected("amoCRM is not connected for this workspace")
            if connection.refresh_token != sent:
                log.info("amoCRM refresh token of workspace %s was rotated elsewhere: using the new pair",
                         self.workspace_id)
                self._remember(connection.access_token, connection.expires_at, connection.base_domain)
                return connection.access_token
            self._needs_reauth(connection, f"amoCRM refused to refresh the token ({refusal.hint or refusal}). "
                                           "Reconnect amoCRM.")
        raise refusal

    def _refresh(self, connection: AmoCRMConnection) -> oauth.TokenSet:
        """A new pair for the stored refresh token; on 404 or 401 from the account's host, the same refresh at the
        host amoCRM names for a renamed account (stored in `connection.base_domain` with the pair)."""
        config = self.app.config
        client_id = connection.client_id or config["AMOCRM_CLIENT_ID"]
        client_secret = connection.client_secret or config["AMOCRM_CLIENT_SECRET"]
        if not (client_id and client_secret and connection.refresh_token and connection.base_domain):
            raise OAuthError("The connection has no integration keys or refresh token", hint="Missing keys")
        timeout = config["AMOCRM_TIMEOUT_SECONDS"]
        try:
            return oauth.refresh(regions.account_url(connection.base_domain), client_id, client_secret,
                                 connection.refresh_token, self.redirect_uri, timeout=timeout)
        except OAuthError as refusal:
            new_host = self._renamed_host(connection) if refusal.status in (401, 404) else None
            if new_host is None:
                raise
        pair = oauth.refresh(regions.account_url(new_host), client_id, client_secret, connection.refresh_token,
                             self.redirect_uri, timeout=timeout)
        log.info("amoCRM account of workspace %s was renamed: it now answers at its new address", self.workspace_id)
        connection.base_domain = new_host
        return pair

    def _renamed_host(self, connection: AmoCRMConnection) -> str | None:
        """The account's new host when amoCRM says it moved, within the connection's region, for the same account;
        None when it did not move or the answer cannot be trusted (then the refusal stands)."""
        region = regions.of_connection(connection)
        try:
            api_host = regions.account_host(oauth.api_domain_of(connection.access_token) or region.api_domain,
                                            region.name)
            found = oauth.account_domain(regions.account_url(api_host), connection.refresh_token,
                                         timeout=self.app.config["AMOCRM_TIMEOUT_SECONDS"])
            new_host = regions.account_host(found.domain, region.name)
        except oauth.InvalidReferer:
            log.warning("amoCRM subdomain lookup of workspace %s named a host outside its region", self.workspace_id)
            return None
        except AmoCRMError as exc:
            log.info("amoCRM subdomain lookup of workspace %s failed (HTTP %s)", self.workspace_id, exc.status)
            return None
        if new_host == connection.base_domain:
            return None
        if None not in (found.account_id, connection.amocrm_account_id) and \
                found.account_id != connection.amocrm_account_id:
            log.warning("amoCRM subdomain lookup of workspace %s named another account", self.workspace_id)
            return None
        return new_host

    def _needs_reauth(self, connection: AmoCRMConnection, message: str) -> None:
        connection.status = NEEDS_REAUTH
        connection.last_error = message
        log.warning("amoCRM connection of workspace %s needs re-authorization", self.workspace_id)

    def _remember(self, token: str, expires_at: datetime | None, base_domain: str | None = None) -> None:
        with self._lock:
            self._access_token, self._expires_at = token, expires_at
            self._base_domain = base_domain or self._base_domain


class StaticTokens:
    """A token pair not stored yet (during the callback): no refresh possible."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    def access_token(self) -> str:
        return self._token

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        raise Unauthorized("amoCRM refused a token it has just issued", status=401)


def refresh_idle_connections() -> dict:
    """Refresh every OAuth connection whose last refresh is older than 7 days. Each refresh takes the
    workspace's lock, so it cannot race the workers. A refused refresh marks that connection needs_reauth."""
    cutoff = utcnow() - IDLE_AFTER
    workspace_ids = db.session.scalars(select(AmoCRMConnection.workspace_id).where(
        AmoCRMConnection.status == CONNECTED, AmoCRMConnection.auth_type != LONG_LIVED,
        func.coalesce(AmoCRMConnection.last_refresh_at, AmoCRMConnection.connected_at) < cutoff)).all()
    db.session.rollback()  # end the read; each refresh runs in its own transaction
    outcome = {"refreshed": 0, "failed": 0}
    for workspace_id in workspace_ids:
        try:
            ConnectionTokens(workspace_id).force_refresh()
            outcome["refreshed"] += 1
        except (AmoCRMError, NotConnected) as exc:
            outcome["failed"] += 1
            log.warning("idle amoCRM connection of workspace %s not refreshed: %s", workspace_id,
                        exc.__class__.__name__)
    return outcome
