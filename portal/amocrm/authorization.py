"""Authorizing a workspace's amoCRM connection: the OAuth state and the integration keys amoCRM sends to
secrets_uri, the callback's code exchange, or a long-lived token pasted by the owner. Either way the result is stored
by `portal.amocrm.connection.store_connection` and followed by `after_connect`.
"""
import hashlib
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import jwt
from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from portal.amocrm import regions
from portal.amocrm.api import oauth
from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.api.errors import AmoCRMError, OAuthError, TransportError
from portal.amocrm.connection import (
    ConnectError,
    after_connect,
    callback_url,
    chosen_region,
    connection_row,
    secrets_url,
    store_connection,
    uses_shared_integration,
)
from portal.amocrm.token_provider import LONG_LIVED, StaticTokens
from portal.crypto import column_context, seal
from portal.extensions import db
from portal.models import AmoCRMConnection, OAuthState, Workspace
from portal.models.types import utcnow

SCOPES = "crm,notifications"
STATE_TTL = timedelta(minutes=10)
SECRETS_WAIT_SECONDS = 5.0

log = logging.getLogger(__name__)


# -- the button -------------------------------------------------------------------------------------

def button_attributes(state: str, region_name: str | None = None) -> dict:
    """The data-* attributes of the region's official button: the shared integration, or the variant that makes
    amoCRM create an integration for this workspace and send its keys to /amocrm/secrets. Kommo's button takes
    `data-theme` where amoCRM's takes `data-color` (Kommo's button documentation)."""
    config = current_app.config
    region = regions.region(region_name)
    attributes = {"title": _("Connect %(brand)s", brand=region.label), "compact": "false",
                  "class-name": "amocrm-button", "state": state, "mode": "popup",
                  "error-callback": "leadpathAmocrmDenied"}
    if region.name == regions.KOMMO:
        attributes["theme"] = "light"
    else:
        attributes["color"] = "blue"
    if uses_shared_integration():
        attributes["client-id"] = config["AMOCRM_CLIENT_ID"]
    else:
        attributes.update({"name": "Leadpath", "description": _("Leads with UTM tags in, won deals back for ROI."),
                           "redirect_uri": callback_url(), "secrets_uri": secrets_url(),
                           "logo": url_for("static", filename="img/favicon.svg", _external=True),
                           "scopes": SCOPES})
    return attributes


def consent_url(state: str, region_name: str | None = None) -> str:
    """The region's consent page for the same integration as the button (the link for when the button does not
    load)."""
    params = {"state": state, "mode": "popup"}
    button = button_attributes(state, region_name)
    if "client-id" in button:
        params["client_id"] = button["client-id"]
    else:
        params.update({key: button[key] for key in ("name", "description", "redirect_uri", "secrets_uri", "scopes")})
    return regions.region(region_name).oauth_url + "?" + urlencode(params)


# -- state -----------------------------------------------------------------------------------------

def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def create_state(workspace_id: int, user_id: int) -> tuple[str, datetime]:
    """A fresh single-use state bound to workspace and user (only its hash is stored). Old ones are swept."""
    now = utcnow()
    db.session.execute(delete(OAuthState).where(OAuthState.workspace_id == workspace_id,
                                                OAuthState.expires_at < now - timedelta(days=1)))
    state = secrets.token_urlsafe(32)
    expires_at = now + STATE_TTL
    db.session.add(OAuthState(workspace_id=workspace_id, user_id=user_id, state_hash=_hash(state),
                              expires_at=expires_at))
    db.session.commit()
    return state, expires_at


class SecretsAlreadyReceived(Exception):
    """The state's integration keys came before: the first post wins, later ones change nothing."""


def record_secrets(state: str, client_id: str, client_secret: str) -> bool:
    """amoCRM's secrets_uri call: keep the integration keys made for this state. False for an unusable state;
    SecretsAlreadyReceived when keys were recorded for it already (the first post wins, even one arriving at the
    same moment: the write is conditional on the row having none)."""
    row = db.session.scalar(select(OAuthState).where(OAuthState.state_hash == _hash(state)))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return False
    state_id, workspace_id, already = row.id, row.workspace_id, row.client_id is not None
    db.session.rollback()
    if already:
        raise SecretsAlreadyReceived
    written = db.session.execute(
        update(OAuthState).where(OAuthState.id == state_id, OAuthState.client_id.is_(None))
        .values(client_id=client_id,
                client_secret=seal(client_secret, column_context("oauth_states", "client_secret", workspace_id)))
    ).rowcount
    db.session.commit()
    if written != 1:
        raise SecretsAlreadyReceived
    log.info("amoCRM integration keys received for workspace %s", workspace_id)
    return True


def _usable_state(workspace_id: int, user_id: int, state: str | None) -> OAuthState:
    row = db.session.scalar(select(OAuthState).where(OAuthState.state_hash == _hash(state or "")))
    if row is None or row.workspace_id != workspace_id:
        raise ConnectError(_("This connection link is not valid. Start again from Settings → amoCRM."))
    if row.user_id != user_id:
        raise ConnectError(_("This connection was started by another user. Start again from Settings → amoCRM."))
    if row.used_at is not None:
        raise ConnectError(_("This connection link was used already. Start again from Settings → amoCRM."))
    if row.expires_at < utcnow():
        raise ConnectError(_("This connection link expired (they last 10 minutes). "
                             "Start again from Settings → amoCRM."))
    return row


def _integration_keys(row: OAuthState) -> tuple[str, str]:
    """The state's own integration (button secrets variant), else the shared one; waits briefly for the
    secrets_uri call, which may arrive after the browser."""
    deadline = time.monotonic() + (SECRETS_WAIT_SECONDS if not uses_shared_integration() else 0)
    while True:
        if row.client_id and row.client_secret:
            return row.client_id, row.client_secret
        if uses_shared_integration():
            config = current_app.config
            return config["AMOCRM_CLIENT_ID"], config["AMOCRM_CLIENT_SECRET"]
        if time.monotonic() >= deadline:
            raise ConnectError(_("amoCRM has not sent this integration's keys yet. Wait a few seconds and reload "
                                 "this page, or start again from Settings → amoCRM."))
        time.sleep(0.25)
        db.session.refresh(row)


# -- the callback ------------------------------------------------------------------------------------

def complete_authorization(workspace: Workspace, user_id: int, *, state: str | None, code: str | None,
                           referer: str | None) -> AmoCRMConnection:
    """The OAuth callback: check state and referer, exchange the code, read the account and pipelines,
    subscribe the webhook, store the connection and enqueue the reconciliation backfill."""
    config = current_app.config
    row = _usable_state(workspace.id, user_id, state)
    region = regions.region(chosen_region(workspace.id))
    try:
        host = regions.account_host(referer, region.name)
    except oauth.InvalidReferer as exc:
        log.warning("amoCRM callback with a referer outside the %s region refused (workspace %s)", region.name,
                    workspace.id)
        if region.name == regions.KOMMO:
            raise ConnectError(_("The answer did not come from a Kommo account address, so nothing was sent. "
                                 "Check the region chosen in Settings → amoCRM and start again.")) from exc
        raise ConnectError(_("The answer did not come from an amoCRM account address, so nothing was sent. "
                             "Start again from Settings → amoCRM.")) from exc
    if not code:
        raise ConnectError(_("amoCRM sent no authorization code. Start again from Settings → amoCRM."))
    client_id, client_secret = _integration_keys(row)
    row.used_at = utcnow()  # single use, whatever happens next (the code is single use too)
    db.session.commit()

    base = oauth.base_url(host, config["AMOCRM_DEV_HOSTS"])
    timeout = config["AMOCRM_TIMEOUT_SECONDS"]
    try:
        pair = oauth.exchange_code(base, client_id, client_secret, code, callback_url(), timeout=timeout)
    except OAuthError as exc:
        raise ConnectError(_exchange_failure(exc)) from exc
    except AmoCRMError as exc:
        raise ConnectError(_("amoCRM could not be reached to finish connecting. Try again in a minute.")) from exc
    api = AmoCRMClient(base, StaticTokens(pair.access_token), timeout=timeout)
    try:
        account = api.get_account()
    except AmoCRMError as exc:
        raise ConnectError(_("amoCRM accepted the connection but its account could not be read. Try again.")) from exc

    connection = connection_row(workspace.id)
    own_integration = client_id != config.get("AMOCRM_CLIENT_ID")
    store_connection(connection, host=host, account=account, auth_type="oauth", client_id=client_id,
           client_secret=client_secret if own_integration else None, access_token=pair.access_token,
           refresh_token=pair.refresh_token, expires_at=pair.expires_at)
    connection.region = region.name
    after_connect(workspace, connection, api)
    db.session.commit()
    log.info("amoCRM connected for workspace %s (account %s)", workspace.id, connection.amocrm_account_id)
    return connection


def _exchange_failure(exc: OAuthError) -> str:
    hint = (exc.hint or "").lower()
    if "expired" in hint or "revoked" in hint:
        return _("The authorization from amoCRM expired or was used already. Start again from Settings → amoCRM.")
    if "redirect uri" in hint:
        return _("amoCRM says this portal's address is not the integration's redirect address. Ask the "
                 "administrator to check the integration settings, then start again.")
    if "client" in hint:
        return _("amoCRM did not accept this portal's integration keys. Ask the administrator to check them, "
                 "then start again.")
    return _("amoCRM refused the connection (%(reason)s). Start again from Settings → amoCRM.",
             reason=exc.hint or _("unknown reason"))


def connect_long_lived(workspace: Workspace, host_text: str, token: str) -> AmoCRMConnection:
    """A private integration's long-lived token pasted by the owner, checked by reading the account."""
    config = current_app.config
    try:
        host = oauth.account_host(_strip_url(host_text), regions.all_domains(), config["AMOCRM_DEV_HOSTS"])
    except oauth.InvalidReferer as exc:
        raise ConnectError(_("Enter your amoCRM address, like example.amocrm.ru.")) from exc
    token = token.strip()
    if not token.isascii() or not token.isprintable():  # a JWT is letters, digits, "-", "_" and dots
        raise ConnectError(_("This is not an amoCRM token. "
                             "Copy it again from the integration's “Keys and scopes” tab."))
    base = oauth.base_url(host, config["AMOCRM_DEV_HOSTS"])
    api = AmoCRMClient(base, StaticTokens(token), timeout=config["AMOCRM_TIMEOUT_SECONDS"])
    try:
        account = api.get_account()
    except TransportError as exc:
        raise ConnectError(_("%(host)s could not be reached. Check the address and try again.", host=host)) from exc
    except AmoCRMError as exc:
        raise ConnectError(_("amoCRM did not accept this token. Copy it again from the integration's "
                             "“Keys and scopes” tab.")) from exc
    connection = connection_row(workspace.id)
    store_connection(connection, host=host, account=account, auth_type=LONG_LIVED, client_id=None, client_secret=None,
           access_token=token, refresh_token=None, expires_at=_jwt_expiry(token))
    connection.region = regions.region_of_host(host, chosen_region(workspace.id))
    after_connect(workspace, connection, api)
    db.session.commit()
    return connection


def _strip_url(text: str) -> str:
    text = (text or "").strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return text.rstrip("/")


def _jwt_expiry(token: str) -> datetime | None:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError):
        return None


