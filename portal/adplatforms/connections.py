"""Connecting an ad platform: the OAuth state, the callback's code exchange, the accounts the grant reaches, tokens
kept sealed and refreshed before they expire, a revoked grant marked for reconnection, and disconnecting.

One connection row per OAuth grant holds the tokens; its ad accounts point at it. Connecting again with the same
platform user updates the accounts already known (their settings and imported spend stay).
"""
import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import delete, select

from portal.adplatforms.base import AdAccountInfo, AdPlatformError, PlatformClient, RetryLater, TokenRevoked, TokenSet
from portal.adplatforms.messages import error_detail, error_text
from portal.adplatforms.registry import Platform, platform
from portal.extensions import db
from portal.models import AdAccount, AdOAuthState, AdPlatformConnection, Workspace
from portal.models.ad_account import CAMPAIGN_BY_ID, CONNECTED, DISCONNECTED, REVOKED
from portal.models.types import utcnow

STATE_TTL = timedelta(minutes=10)
# Refresh a token this long before it expires, unless its platform's entry says otherwise (Yandex tokens last about
# a year; a refresh also renews the refresh token, so an account imported daily never lapses).
REFRESH_BEFORE = timedelta(days=30)

log = logging.getLogger(__name__)


class ConnectError(Exception):
    """Connecting failed; the message says what to do next."""


def client_for(entry: Platform, include_vat: bool = False) -> PlatformClient:
    return entry.build(current_app.config, None, include_vat)


def callback_url(platform_name: str) -> str:
    return url_for("settings.ad_accounts.callback", platform_name=platform_name, _external=True)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_authorization(workspace_id: int, user_id: int, entry: Platform) -> str:
    """A fresh single-use state (its hash stored) and the platform's consent page URL to send the owner to."""
    now = utcnow()
    db.session.execute(delete(AdOAuthState).where(AdOAuthState.workspace_id == workspace_id,
                                                  AdOAuthState.expires_at < now - timedelta(days=1)))
    state = secrets.token_urlsafe(32)
    db.session.add(AdOAuthState(workspace_id=workspace_id, user_id=user_id, platform=entry.name,
                                state_hash=_hash(state), expires_at=now + STATE_TTL))
    db.session.commit()
    return client_for(entry).authorization_url(state, callback_url(entry.name))


def _use_state(workspace_id: int, user_id: int, entry: Platform, state: str | None) -> None:
    row = db.session.scalar(select(AdOAuthState).where(AdOAuthState.state_hash == _hash(state or "")))
    again = _("Start again from Settings → Ad accounts.")
    if row is None or row.workspace_id != workspace_id or row.platform != entry.name:
        raise ConnectError(_("This connection link is not valid.") + " " + again)
    if row.user_id != user_id:
        raise ConnectError(_("This connection was started by another user.") + " " + again)
    if row.used_at is not None:
        raise ConnectError(_("This connection link was used already.") + " " + again)
    if row.expires_at < utcnow():
        raise ConnectError(_("This connection link expired (they last 10 minutes).") + " " + again)
    row.used_at = utcnow()
    db.session.commit()


def complete_authorization(workspace: Workspace, user_id: int, entry: Platform, *, state: str | None,
                           code: str | None, error: str | None) -> tuple[AdPlatformConnection, list[AdAccount]]:
    """The OAuth callback: check the state, exchange the code, read the accounts, store them. An account reached
    for the first time is enabled (and its backfill queued by the caller) when it is the grant's only one; an
    agency's clients wait for the owner to choose."""
    _use_state(workspace.id, user_id, entry, state)
    if error:
        raise ConnectError(_("%(platform)s access was not granted. Connect again when you are ready.",
                             platform=entry.display_name))
    if not code:
        raise ConnectError(_("%(platform)s sent no authorization code. Start again from Settings → Ad accounts.",
                             platform=entry.display_name))
    client = client_for(entry)
    try:
        tokens = client.exchange_code(code, callback_url(entry.name))
        found = client.accounts(tokens)
    except AdPlatformError as exc:
        log.warning("%s connect failed for workspace %s: %s", entry.name, workspace.id, exc.__class__.__name__)
        raise ConnectError(" ".join((
            _("%(platform)s did not complete the connection.", platform=entry.display_name),
            error_text(exc.kind, exc.params),
            _("The platform said: %(detail)s", detail=str(exc)) if error_detail(exc.kind, str(exc)) else ""))
        ) from exc
    if not found:
        raise ConnectError(_("This %(platform)s login has no advertising accounts. Sign in with the login that "
                             "runs the ads, then connect again.", platform=entry.display_name))
    connection = AdPlatformConnection(workspace_id=workspace.id, platform=entry.name, connected_by_id=user_id)
    _store_tokens(connection, tokens)
    db.session.add(connection)
    db.session.flush()
    accounts = [_upsert_account(workspace, connection, entry, info, single=len(found) == 1) for info in found]
    db.session.flush()
    _drop_unused_connections(workspace.id, entry.name)
    db.session.commit()
    log.info("%s connected for workspace %s: %s accounts", entry.name, workspace.id, len(accounts))
    return connection, accounts


def _upsert_account(workspace: Workspace, connection: AdPlatformConnection, entry: Platform, info: AdAccountInfo,
                    *, single: bool) -> AdAccount:
    account = db.session.scalar(select(AdAccount).where(
        AdAccount.workspace_id == workspace.id, AdAccount.platform == entry.name,
        AdAccount.external_id == info.external_id))
    if account is None:
        account = AdAccount(workspace_id=workspace.id, platform=entry.name, external_id=info.external_id,
                            utm_source=entry.default_source, utm_medium="cpc", campaign_tag=CAMPAIGN_BY_ID,
                            include_vat=False, enabled=single)
        db.session.add(account)
    account.connection_id = connection.id
    account.name = (info.name or info.external_id)[:255]
    account.currency = (info.currency or workspace.currency)[:3].upper()
    account.timezone = info.timezone
    account.manager_id = info.manager_id
    if account.status == REVOKED:  # its own tokens (if any) are dead or belong to the grant it lost
        forget_account_tokens(account)
    account.status = CONNECTED
    set_account_error(account, None)
    return account


def _drop_unused_connections(workspace_id: int, platform_name: str) -> None:
    """Earlier grants no account points at any more (the same user connected again) are forgotten."""
    used = select(AdAccount.connection_id).where(AdAccount.workspace_id == workspace_id,
                                                 AdAccount.connection_id.is_not(None))
    db.session.execute(delete(AdPlatformConnection).where(
        AdPlatformConnection.workspace_id == workspace_id, AdPlatformConnection.platform == platform_name,
        AdPlatformConnection.id.not_in(used)))


def _store_tokens(connection: AdPlatformConnection, tokens: TokenSet) -> None:
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token or connection.refresh_token
    connection.expires_at = tokens.expires_at
    connection.status = CONNECTED
    connection.last_error = None


def _refresh_due(platform_name: str, expires_at) -> bool:
    entry = platform(platform_name)
    return expires_at is not None and expires_at - utcnow() <= (entry.refresh_before if entry else REFRESH_BEFORE)


def _locked_connection_tokens(connection_id: int) -> tuple[AdPlatformConnection, TokenSet]:
    """The connection's tokens (refreshed first when due), its row locked until the caller commits. TokenRevoked
    marks the connection (and commits)."""
    connection = db.session.scalar(select(AdPlatformConnection).where(AdPlatformConnection.id == connection_id)
                                   .with_for_update())
    if connection is None or connection.status != CONNECTED or not connection.access_token:
        db.session.rollback()
        raise TokenRevoked("The ad platform connection is not active; connect it again in Settings → Ad accounts.")
    tokens = TokenSet(connection.access_token, connection.refresh_token, connection.expires_at)
    if not _refresh_due(connection.platform, tokens.expires_at):
        return connection, tokens
    try:
        tokens = client_for(platform(connection.platform)).refresh(tokens)
    except TokenRevoked as exc:
        mark_revoked(connection, exc)
        raise
    except RetryLater:
        if connection.expires_at and connection.expires_at > utcnow():
            return connection, tokens
        db.session.rollback()
        raise
    _store_tokens(connection, tokens)
    connection.last_refresh_at = utcnow()
    return connection, tokens


def fresh_tokens(connection_id: int) -> TokenSet:
    """The connection's tokens, refreshed first when they expire within REFRESH_BEFORE — under a row lock, so two
    jobs do not both spend the single-use refresh token. TokenRevoked marks the connection (and commits)."""
    _connection, tokens = _locked_connection_tokens(connection_id)
    db.session.commit()  # stores a refreshed set and ends the lock
    return tokens


def account_info(account: AdAccount) -> AdAccountInfo:
    return AdAccountInfo(account.external_id, account.name, account.currency, account.timezone, account.manager_id)


def tokens_for_account(account_id: int) -> TokenSet:
    """The tokens an account is read with: its own when its platform wants them (a VK Ads agency's client) — taken
    from the platform once, with the connection's tokens, and kept; refreshed when due — else the connection's.

    The connection's row, then the account's, are locked while this runs, so two jobs never both mint a token
    (each takes one of the client's few slots) nor both spend a refresh token (the old access token dies at once).
    TokenRevoked of the account's own tokens marks only that account; TokenLimitReached leaves it without tokens."""
    connection_id = db.session.scalar(select(AdAccount.connection_id).where(AdAccount.id == account_id))
    if connection_id is None:
        raise TokenRevoked("The account's connection is not active; connect it again in Settings → Ad accounts.")
    connection, connection_tokens = _locked_connection_tokens(connection_id)
    account = db.session.scalar(select(AdAccount).where(AdAccount.id == account_id).with_for_update()
                                .execution_options(populate_existing=True))
    client = client_for(platform(connection.platform))
    try:
        if not account.access_token:
            own = client.account_tokens(connection_tokens, account_info(account))
            if own is None:
                db.session.commit()
                return connection_tokens
            _store_account_tokens(account, own)
            log.info("%s account %s got its own tokens", account.platform, account.id)
        elif _refresh_due(account.platform, account.token_expires_at):
            stored = TokenSet(account.access_token, account.refresh_token, account.token_expires_at)
            try:
                _store_account_tokens(account, client.refresh(stored))
            except RetryLater:
                if not account.token_expires_at or account.token_expires_at <= utcnow():
                    raise
    except TokenRevoked as exc:
        db.session.rollback()
        if account.access_token:  # the account's own grant is dead: only it needs attention
            mark_account_revoked(account_id, exc)
        raise
    except AdPlatformError:
        db.session.rollback()
        raise
    tokens = TokenSet(account.access_token, account.refresh_token, account.token_expires_at)
    db.session.commit()
    return tokens


def stored_account_tokens(account_id: int) -> TokenSet | None:
    """The account's own tokens as stored now (another job may have refreshed them), or None. Read through the
    entity: the columns alone are sealed."""
    account = db.session.scalar(select(AdAccount).where(AdAccount.id == account_id)
                                .execution_options(populate_existing=True))
    if account is None or not account.access_token:
        return None
    return TokenSet(account.access_token, account.refresh_token, account.token_expires_at)


def _store_account_tokens(account: AdAccount, tokens: TokenSet) -> None:
    account.access_token = tokens.access_token
    account.refresh_token = tokens.refresh_token or account.refresh_token
    account.token_expires_at = tokens.expires_at


def forget_account_tokens(account: AdAccount) -> None:
    account.access_token = account.refresh_token = account.token_expires_at = None


def mark_account_revoked(account_id: int, exc: AdPlatformError) -> None:
    """The account's own tokens are refused: it stops importing until the owner reconnects the platform (which
    drops the dead tokens); the connection and its other accounts go on."""
    account = db.session.get(AdAccount, account_id)
    account.status = REVOKED
    set_account_error(account, exc)
    db.session.commit()
    log.warning("%s account %s: its own tokens were revoked", account.platform, account.id)


def set_account_error(account: AdAccount, exc: AdPlatformError | None) -> None:
    account.last_error = str(exc)[:2000] if exc else None
    account.error_kind = exc.kind if exc else None
    account.error_params = exc.params or None if exc else None


def mark_revoked(connection: AdPlatformConnection, error: AdPlatformError) -> None:
    """The platform no longer accepts the grant: its accounts stop importing until the owner reconnects."""
    connection.status = REVOKED
    connection.last_error = str(error)
    for account in db.session.scalars(select(AdAccount).where(AdAccount.connection_id == connection.id)):
        account.status = REVOKED
        set_account_error(account, error)
    db.session.commit()
    log.warning("%s connection %s revoked for workspace %s", connection.platform, connection.id,
                connection.workspace_id)


def disconnect(connection: AdPlatformConnection) -> None:
    """Forget the tokens; the accounts stay (with their imported spend and settings) but stop importing."""
    for account in db.session.scalars(select(AdAccount).where(AdAccount.connection_id == connection.id)):
        account.status = DISCONNECTED
        account.connection_id = None
        forget_account_tokens(account)
    db.session.delete(connection)
    db.session.commit()


def needs_reconnect(workspace_id: int) -> bool:
    """A grant was revoked, or an enabled account's own tokens were (reconnecting its platform cures both)."""
    if db.session.scalar(select(AdPlatformConnection.id).where(
            AdPlatformConnection.workspace_id == workspace_id, AdPlatformConnection.status == REVOKED).limit(1)):
        return True
    return db.session.scalar(select(AdAccount.id).where(
        AdAccount.workspace_id == workspace_id, AdAccount.enabled.is_(True), AdAccount.status == REVOKED,
        AdAccount.connection_id.is_not(None)).limit(1)) is not None
