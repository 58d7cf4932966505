"""Connecting a workspace to amoCRM: OAuth state, the callback's code exchange, the connection row, pipelines,
the workspace webhook, long-lived tokens, disconnect, and `client_for` — the one way code gets an API client.

Every function takes the workspace explicitly. Failures a person must read are `ConnectError` (the message
is shown as is); `NotConnected` means there is no usable connection.
"""
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, has_request_context, request, url_for
from sqlalchemy import delete, select

from portal.amocrm import oauth
from portal.amocrm.client import AmoCRMClient, CallRecord
from portal.amocrm.errors import AmoCRMError, OAuthError, TransportError, ValidationFailed
from portal.connection.tokens import LONG_LIVED, ConnectionTokens, NotConnected, StaticTokens
from portal.extensions import db
from portal.models import AmoCRMConnection, AmoCRMContact, OAuthState, Workspace
from portal.models.amocrm import CONNECTED, DISCONNECTED
from portal.models.types import utcnow

__all__ = ["ConnectError", "NotConnected", "client_for"]

STATE_TTL = timedelta(minutes=10)
WEBHOOK_SETTINGS = ("add_lead", "update_lead", "status_lead", "delete_lead")
# Contact events keep the contacts index fresh; an account (or plan) that refuses them still gets the deal events.
CONTACT_WEBHOOK_SETTINGS = ("add_contact", "update_contact", "delete_contact")
CONTACTS_INDEX_JOB = "portal.amocrm.contacts_index_job.build_contacts_index"
SECRETS_WAIT_SECONDS = 5.0
INCOMING_STATUS_TYPE = 1
WON_STATUS_ID, LOST_STATUS_ID = 142, 143

log = logging.getLogger(__name__)


class ConnectError(Exception):
    """A connection attempt failed; the message tells the owner what to do."""


# -- URLs --------------------------------------------------------------------------------------------

def public_base_url() -> str | None:
    """PUBLIC_BASE_URL, else the host of the current request (None outside a request)."""
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/")
    return request.host_url.rstrip("/") if has_request_context() else None


def callback_url() -> str | None:
    """The OAuth redirect URI; None outside a request when PUBLIC_BASE_URL is not set."""
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/") + "/amocrm/callback"
    return url_for("connection.callback", _external=True) if has_request_context() else None


def secrets_url() -> str:
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured.rstrip("/") + "/amocrm/secrets"
    return url_for("connection.secrets_hook", _external=True)


def webhook_destination(workspace: Workspace) -> str:
    return f"{public_base_url()}/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"


def uses_shared_integration() -> bool:
    config = current_app.config
    return bool(config.get("AMOCRM_CLIENT_ID") and config.get("AMOCRM_CLIENT_SECRET"))


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


def record_secrets(state: str, client_id: str, client_secret: str) -> bool:
    """amoCRM's secrets_uri call: keep the integration keys made for this state. False for an unusable state."""
    row = db.session.scalar(select(OAuthState).where(OAuthState.state_hash == _hash(state)))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return False
    row.client_id, row.client_secret = client_id, client_secret
    db.session.commit()
    log.info("amoCRM integration keys received for workspace %s", row.workspace_id)
    return True


def _usable_state(workspace_id: int, user_id: int, state: str | None) -> OAuthState:
    row = db.session.scalar(select(OAuthState).where(OAuthState.state_hash == _hash(state or "")))
    if row is None or row.workspace_id != workspace_id:
        raise ConnectError("This connection link is not valid. Start again from Settings → amoCRM.")
    if row.user_id != user_id:
        raise ConnectError("This connection was started by another user. Start again from Settings → amoCRM.")
    if row.used_at is not None:
        raise ConnectError("This connection link was used already. Start again from Settings → amoCRM.")
    if row.expires_at < utcnow():
        raise ConnectError("This connection link expired (they last 10 minutes). Start again from Settings → amoCRM.")
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
            raise ConnectError("amoCRM has not sent this integration's keys yet. Wait a few seconds and reload "
                               "this page, or start again from Settings → amoCRM.")
        time.sleep(0.25)
        db.session.refresh(row)


# -- the callback ------------------------------------------------------------------------------------

def complete_authorization(workspace: Workspace, user_id: int, *, state: str | None, code: str | None,
                           referer: str | None) -> AmoCRMConnection:
    """The OAuth callback: check state and referer, exchange the code, read the account and pipelines,
    subscribe the webhook, store the connection and enqueue the reconciliation backfill."""
    config = current_app.config
    row = _usable_state(workspace.id, user_id, state)
    try:
        host = oauth.account_host(referer, config["AMOCRM_ALLOWED_DOMAINS"], config["AMOCRM_DEV_HOSTS"])
    except oauth.InvalidReferer as exc:
        log.warning("amoCRM callback with a referer that is not amoCRM refused (workspace %s)", workspace.id)
        raise ConnectError("The answer did not come from an amoCRM account address, so nothing was sent. "
                           "Start again from Settings → amoCRM.") from exc
    if not code:
        raise ConnectError("amoCRM sent no authorization code. Start again from Settings → amoCRM.")
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
        raise ConnectError("amoCRM could not be reached to finish connecting. Try again in a minute.") from exc
    api = AmoCRMClient(base, StaticTokens(pair.access_token), timeout=timeout)
    try:
        account = api.get_account()
    except AmoCRMError as exc:
        raise ConnectError("amoCRM accepted the connection but its account could not be read. Try again.") from exc

    connection = _connection_row(workspace.id)
    own_integration = client_id != config.get("AMOCRM_CLIENT_ID")
    _store(connection, host=host, account=account, auth_type="oauth", client_id=client_id,
           client_secret=client_secret if own_integration else None, access_token=pair.access_token,
           refresh_token=pair.refresh_token, expires_at=pair.expires_at)
    _after_connect(workspace, connection, api)
    db.session.commit()
    log.info("amoCRM connected for workspace %s (account %s)", workspace.id, connection.amocrm_account_id)
    return connection


def _exchange_failure(exc: OAuthError) -> str:
    hint = (exc.hint or "").lower()
    if "expired" in hint or "revoked" in hint:
        return "The authorization from amoCRM expired or was used already. Start again from Settings → amoCRM."
    if "redirect uri" in hint:
        return ("amoCRM says this portal's address is not the integration's redirect address. Ask the "
                "administrator to check the integration settings, then start again.")
    if "client" in hint:
        return ("amoCRM did not accept this portal's integration keys. Ask the administrator to check them, "
                "then start again.")
    return f"amoCRM refused the connection ({exc.hint or 'unknown reason'}). Start again from Settings → amoCRM."


def _connection_row(workspace_id: int) -> AmoCRMConnection:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        connection = AmoCRMConnection(workspace_id=workspace_id)
        db.session.add(connection)
    return connection


def _store(connection: AmoCRMConnection, *, host: str, account: dict, auth_type: str, client_id: str | None,
           client_secret: str | None, access_token: str, refresh_token: str | None,
           expires_at: datetime | None) -> None:
    now = utcnow()
    account_id = _int_or_none(account.get("id"))
    if connection.amocrm_account_id is not None and account_id != connection.amocrm_account_id:
        # Contact ids learned from the previous account name nothing in this one.
        db.session.execute(delete(AmoCRMContact).where(AmoCRMContact.workspace_id == connection.workspace_id))
    connection.base_domain = host
    connection.amocrm_account_id = account_id
    connection.account_name = str(account.get("name") or "")[:255] or None
    connection.auth_type = auth_type
    connection.client_id, connection.client_secret = client_id, client_secret
    connection.access_token, connection.refresh_token = access_token, refresh_token
    connection.expires_at = expires_at
    connection.status = CONNECTED
    connection.last_error = None
    connection.connected_at = now
    connection.last_refresh_at = now


def _after_connect(workspace: Workspace, connection: AmoCRMConnection, api: AmoCRMClient) -> None:
    """Pipelines and the webhook: failures here leave the connection usable with `last_error` set. Then the
    backfill of deals, and the push of leads that waited while the workspace was not connected."""
    from portal.jobs.queues import AMOCRM, DEFAULT, enqueue
    from portal.jobs.sync_schedule import PUSH_LEADS, push_job_id

    problems = []
    try:
        apply_pipelines(connection, api.get_pipelines())
    except AmoCRMError:
        problems.append("the pipelines could not be read (use Refresh pipelines)")
    try:
        apply_lead_fields(connection, api.iter_lead_custom_fields())
    except AmoCRMError:
        connection.lead_field_codes = None  # unknown: every value is sent, and a refused field is learned then
    destination = webhook_destination(workspace)
    try:
        hook = subscribe_workspace_webhook(api, destination)
    except AmoCRMError:
        problems.append("the webhook could not be subscribed (reconnect to retry)")
    else:
        connection.webhook_id = _int_or_none(hook.get("id")) if isinstance(hook, dict) else None
        connection.webhook_destination = destination
        connection.webhook_disabled = False
        connection.webhook_checked_at = utcnow()
    connection.last_error = ("Connected, but " + " and ".join(problems) + ".") if problems else None
    enqueue(DEFAULT, "portal.jobs.reconcile.reconcile_workspace", workspace.id, job_id=f"reconcile-{workspace.id}")
    enqueue(DEFAULT, CONTACTS_INDEX_JOB, workspace.id, job_id=f"contacts-index-{workspace.id}")
    enqueue(AMOCRM, PUSH_LEADS, workspace.id, job_id=push_job_id(workspace.id))


def subscribe_workspace_webhook(api: AmoCRMClient, destination: str) -> dict:
    """Subscribe deal and contact events; when amoCRM refuses the contact events, the deal events alone."""
    try:
        return api.subscribe_webhook(destination, WEBHOOK_SETTINGS + CONTACT_WEBHOOK_SETTINGS)
    except ValidationFailed:
        log.info("amoCRM refused contact events for this webhook; deal events only")
        return api.subscribe_webhook(destination, WEBHOOK_SETTINGS)


def apply_pipelines(connection: AmoCRMConnection, pipelines: list[dict]) -> None:
    """Store the pipelines; keep the chosen pipeline/status when they still exist, else pick the defaults:
    the main pipeline and its first working status after "incoming" (leads land where the team works), or the
    incoming status when the pipeline has no other."""
    connection.pipelines = {"pipelines": [_pipeline_summary(p) for p in pipelines], "read_at": utcnow().isoformat()}
    if _status_exists(connection.pipelines, connection.pipeline_id, connection.status_id):
        return
    summaries = connection.pipelines["pipelines"]
    main = next((p for p in summaries if p["is_main"]), summaries[0] if summaries else None)
    if main is None:
        connection.pipeline_id = connection.status_id = None
        return
    working = [s for s in main["statuses"] if s["type"] != INCOMING_STATUS_TYPE
               and s["id"] not in (WON_STATUS_ID, LOST_STATUS_ID)]
    incoming = [s for s in main["statuses"] if s["type"] == INCOMING_STATUS_TYPE]
    chosen = (working or incoming or main["statuses"] or [None])[0]
    connection.pipeline_id = main["id"]
    connection.status_id = chosen["id"] if chosen else None


def apply_lead_fields(connection: AmoCRMConnection, fields) -> None:
    """Store the codes of the account's deal fields: a tracking value (UTM_*, GCLID, YCLID, FBCLID…) for a field
    the account lacks is dropped at push instead of making amoCRM refuse the lead."""
    connection.lead_field_codes = sorted({str(item["code"]) for item in fields
                                          if isinstance(item, dict) and item.get("code")})


def _pipeline_summary(pipeline: dict) -> dict:
    statuses = (pipeline.get("_embedded") or {}).get("statuses") or []
    return {"id": _int_or_none(pipeline.get("id")), "name": str(pipeline.get("name") or ""),
            "is_main": bool(pipeline.get("is_main")),
            "statuses": sorted(({"id": _int_or_none(s.get("id")), "name": str(s.get("name") or ""),
                                 "type": _int_or_none(s.get("type")) or 0, "sort": _int_or_none(s.get("sort")) or 0}
                                for s in statuses if isinstance(s, dict)), key=lambda s: s["sort"])}


def _status_exists(pipelines: dict | None, pipeline_id: int | None, status_id: int | None) -> bool:
    for pipeline in (pipelines or {}).get("pipelines", []):
        if pipeline["id"] == pipeline_id:
            return any(s["id"] == status_id for s in pipeline["statuses"])
    return False


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- the settings page's actions ----------------------------------------------------------------------

def connection_of(workspace_id: int) -> AmoCRMConnection | None:
    return db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))


def status_choices(connection: AmoCRMConnection | None) -> list[tuple[str, str]]:
    """("pipeline_id:status_id", "Pipeline → Status") for every status a new lead may start in."""
    choices = []
    for pipeline in ((connection.pipelines if connection else None) or {}).get("pipelines", []):
        for status in pipeline["statuses"]:
            if status["id"] not in (WON_STATUS_ID, LOST_STATUS_ID):
                choices.append((f"{pipeline['id']}:{status['id']}", f"{pipeline['name']} → {status['name']}"))
    return choices


def choose_pipeline(workspace_id: int, pipeline_id: int, status_id: int) -> None:
    connection = connection_of(workspace_id)
    if connection is None or not _status_exists(connection.pipelines, pipeline_id, status_id):
        raise ConnectError("Choose a pipeline and status from the list.")
    connection.pipeline_id, connection.status_id = pipeline_id, status_id
    db.session.commit()


def refresh_pipelines(workspace_id: int) -> None:
    """Read the pipelines and the deal fields again (Settings → amoCRM, "Refresh pipelines")."""
    try:
        api = client_for(workspace_id)
        pipelines = api.get_pipelines()
        fields = list(api.iter_lead_custom_fields())
    except NotConnected as exc:
        raise ConnectError("Connect amoCRM first.") from exc
    except AmoCRMError as exc:
        raise ConnectError("amoCRM did not answer; try again in a minute.") from exc
    connection = connection_of(workspace_id)
    db.session.refresh(connection)  # the provider may have stored a new token pair meanwhile
    apply_pipelines(connection, pipelines)
    apply_lead_fields(connection, fields)
    db.session.commit()


def connect_long_lived(workspace: Workspace, host_text: str, token: str) -> AmoCRMConnection:
    """A private integration's long-lived token pasted by the owner, checked by reading the account."""
    config = current_app.config
    try:
        host = oauth.account_host(_strip_url(host_text), config["AMOCRM_ALLOWED_DOMAINS"], config["AMOCRM_DEV_HOSTS"])
    except oauth.InvalidReferer as exc:
        raise ConnectError("Enter your amoCRM address, like example.amocrm.ru.") from exc
    token = token.strip()
    if not token.isascii() or not token.isprintable():  # a JWT is letters, digits, "-", "_" and dots
        raise ConnectError("This is not an amoCRM token. Copy it again from the integration's “Keys and scopes” tab.")
    base = oauth.base_url(host, config["AMOCRM_DEV_HOSTS"])
    api = AmoCRMClient(base, StaticTokens(token), timeout=config["AMOCRM_TIMEOUT_SECONDS"])
    try:
        account = api.get_account()
    except TransportError as exc:
        raise ConnectError(f"{host} could not be reached. Check the address and try again.") from exc
    except AmoCRMError as exc:
        raise ConnectError("amoCRM did not accept this token. Copy it again from the integration's "
                           "“Keys and scopes” tab.") from exc
    connection = _connection_row(workspace.id)
    _store(connection, host=host, account=account, auth_type=LONG_LIVED, client_id=None, client_secret=None,
           access_token=token, refresh_token=None, expires_at=_jwt_expiry(token))
    _after_connect(workspace, connection, api)
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


def disconnect(workspace: Workspace) -> None:
    """Remove the webhook at amoCRM (best effort), wipe the secrets, keep the row and all history."""
    connection = connection_of(workspace.id)
    if connection is None:
        return
    if connection.webhook_destination and connection.status == CONNECTED:
        try:
            client_for(workspace.id).unsubscribe_webhook(connection.webhook_destination)
        except (AmoCRMError, NotConnected):
            log.warning("amoCRM webhook of workspace %s could not be removed at disconnect", workspace.id)
        db.session.refresh(connection)
    connection.status = DISCONNECTED
    connection.access_token = connection.refresh_token = connection.client_secret = None
    connection.expires_at = None
    connection.webhook_id = None
    connection.webhook_destination = None
    connection.last_error = None
    db.session.commit()


def status_payload(connection: AmoCRMConnection | None) -> dict:
    """GET /amocrm/status (seed 000's shape plus status and errors)."""
    if connection is None:
        return {"connected": False, "status": DISCONNECTED, "subdomain": None, "accountId": None,
                "tokenExpiresAt": None, "lastRefreshAt": None, "lastError": None}
    return {"connected": connection.status == CONNECTED, "status": connection.status,
            "subdomain": _subdomain(connection.base_domain),
            "baseDomain": connection.base_domain, "accountId": connection.amocrm_account_id,
            "tokenExpiresAt": _iso(connection.expires_at), "lastRefreshAt": _iso(connection.last_refresh_at),
            "connectedAt": _iso(connection.connected_at), "lastError": connection.last_error,
            "pipelineId": connection.pipeline_id, "statusId": connection.status_id}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- the client everyone uses ---------------------------------------------------------------------------

def client_for(workspace_id: int, *, before_request: Callable[[], None] | None = None,
               on_call: Callable[[CallRecord], None] | None = None) -> AmoCRMClient:
    """An API client for the workspace's connection, with the shared DB-backed token provider. Every call waits
    for the workspace's shared rate limiter unless `before_request` replaces it.
    Raises NotConnected when the workspace has no connection with status `connected`."""
    connection = connection_of(workspace_id)
    if connection is None or connection.status != CONNECTED or not connection.access_token:
        raise NotConnected("amoCRM is not connected for this workspace")
    config = current_app.config
    tokens = ConnectionTokens(workspace_id, access_token=connection.access_token, expires_at=connection.expires_at,
                              redirect_uri=callback_url() if config.get("PUBLIC_BASE_URL") else None)
    if before_request is None:
        from portal.sync.limiter import limiter_for_workspace

        before_request = limiter_for_workspace(workspace_id).wait
    return AmoCRMClient(oauth.base_url(connection.base_domain, config["AMOCRM_DEV_HOSTS"]), tokens,
                        timeout=config["AMOCRM_TIMEOUT_SECONDS"], before_request=before_request,
                        on_call=_counted(on_call))


def _counted(on_call: Callable[[CallRecord], None] | None) -> Callable[[CallRecord], None]:
    """Every API call also bumps the /metrics counters (calls, 429s)."""
    from portal.metrics.services import count_amocrm_call

    def record(call: CallRecord) -> None:
        count_amocrm_call(call.status)
        if on_call is not None:
            on_call(call)

    return record


def _subdomain(base_domain: str | None) -> str | None:
    """`example` of `example.amocrm.ru`; a dev host such as the sandbox's `127.0.0.1:5001` has none."""
    if not base_domain or ":" in base_domain or base_domain.replace(".", "").isdigit():
        return None
    return base_domain.split(".")[0]


def needs_reauth(workspace_id: int) -> bool:
    connection = connection_of(workspace_id)
    return connection is not None and connection.status == "needs_reauth"
