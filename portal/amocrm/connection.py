"""A workspace's amoCRM connection: the addresses amoCRM is given, the connection row (stored once authorized, then
the pipelines read, the webhook subscribed, the backfill and the waiting leads' push enqueued), the pipelines, what
Settings shows and changes, disconnect, and `client_for` — the one way code gets an API client. Authorizing (OAuth
or a long-lived token) is `portal.amocrm.authorization`.

Every function takes the workspace explicitly. Failures a person must read are `ConnectError` (the message
is shown as is); `NotConnected` means there is no usable connection.
"""
import logging
from collections.abc import Callable
from datetime import datetime

from flask import current_app, has_request_context, request, url_for
from flask_babel import gettext as _
from sqlalchemy import delete, select

from portal.amocrm import regions
from portal.amocrm.api.client import AmoCRMClient, CallRecord
from portal.amocrm.api.errors import AmoCRMError, ValidationFailed
from portal.amocrm.api.field_values import fields_record
from portal.amocrm.limiter import limiter_for_workspace
from portal.amocrm.scheduling import BUILD_CONTACTS_INDEX, PUSH_LEADS, RECONCILE_RETRY, RECONCILE_WORKSPACE, push_job_id
from portal.amocrm.token_provider import ConnectionTokens, NotConnected
from portal.extensions import db
from portal.jobs.queues import AMOCRM, DEFAULT, enqueue
from portal.metrics.services import count_amocrm_call
from portal.models import AmoCRMConnection, AmoCRMContact, Workspace
from portal.models.amocrm import CONNECTED, DISCONNECTED
from portal.models.types import utcnow

__all__ = ["ConnectError", "NotConnected", "client_for"]

WEBHOOK_SETTINGS = ("add_lead", "update_lead", "status_lead", "delete_lead")
# Contact events keep the contacts index fresh; an account (or plan) that refuses them still gets the deal events.
CONTACT_WEBHOOK_SETTINGS = ("add_contact", "update_contact", "delete_contact")
# Unsorted items added and gone (accepted or declined): they name the leads to read again. Their codes are only
# partly documented, so they ride with the contact events; the lead's own events say the same in any case.
UNSORTED_WEBHOOK_SETTINGS = ("add_unsorted", "delete_unsorted")
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

# -- storing a new connection -----------------------------------------------------------------------

def connection_row(workspace_id: int) -> AmoCRMConnection:
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        connection = AmoCRMConnection(workspace_id=workspace_id)
        db.session.add(connection)
    return connection


def store_connection(connection: AmoCRMConnection, *, host: str, account: dict, auth_type: str, client_id: str | None,
           client_secret: str | None, access_token: str, refresh_token: str | None,
           expires_at: datetime | None) -> None:
    now = utcnow()
    account_id = int_or_none(account.get("id"))
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


def after_connect(workspace: Workspace, connection: AmoCRMConnection, api: AmoCRMClient) -> None:
    """Pipelines and the webhook: failures here leave the connection usable with `last_error` set. Then the
    backfill of deals, and the push of leads that waited while the workspace was not connected."""
    problems = []
    try:
        apply_pipelines(connection, api.get_pipelines())
    except AmoCRMError:
        problems.append("the pipelines could not be read (use Refresh pipelines)")
    try:
        lead_fields = list(api.iter_lead_custom_fields())
    except AmoCRMError:
        lead_fields = None
        connection.lead_field_codes = None  # unknown: every value is sent, and a refused field is learned then
    else:
        apply_lead_fields(connection, lead_fields)
        read_custom_fields(connection, api, lead_fields)
    destination = webhook_destination(workspace)
    try:
        hook = subscribe_workspace_webhook(api, destination)
    except AmoCRMError:
        problems.append("the webhook could not be subscribed (reconnect to retry)")
    else:
        connection.webhook_id = int_or_none(hook.get("id")) if isinstance(hook, dict) else None
        connection.webhook_destination = destination
        connection.webhook_disabled = False
        connection.webhook_checked_at = utcnow()
    connection.last_error = ("Connected, but " + " and ".join(problems) + ".") if problems else None
    enqueue(DEFAULT, RECONCILE_WORKSPACE, workspace.id, job_id=f"reconcile-{workspace.id}",
            retry=RECONCILE_RETRY)  # the backfill, tried again soon after an error
    enqueue(DEFAULT, BUILD_CONTACTS_INDEX, workspace.id, job_id=f"contacts-index-{workspace.id}")
    enqueue(AMOCRM, PUSH_LEADS, workspace.id, job_id=push_job_id(workspace.id))


def read_custom_fields(connection: AmoCRMConnection, api: AmoCRMClient, lead_fields: list[dict]) -> None:
    """Keep the deal and contact fields for Settings → amoCRM → Custom fields and the push's mapping, as Refresh
    there does (`portal.amocrm.custom_fields`). A failed read keeps what was read before and does not fail the
    connect: Refresh reads them again."""
    try:
        contact_fields = list(api.iter_custom_fields("contacts"))
    except AmoCRMError:
        log.info("the contact fields could not be read at connect; Refresh in Settings reads them")
        return
    connection.custom_fields = fields_record({"leads": lead_fields, "contacts": contact_fields},
                                             utcnow().isoformat())


def subscribe_workspace_webhook(api: AmoCRMClient, destination: str) -> dict:
    """Subscribe deal, contact and Unsorted events; when amoCRM refuses the others, the deal events alone."""
    try:
        return api.subscribe_webhook(destination, WEBHOOK_SETTINGS + CONTACT_WEBHOOK_SETTINGS
                                     + UNSORTED_WEBHOOK_SETTINGS)
    except ValidationFailed:
        log.info("amoCRM refused contact events for this webhook; deal events only")
        return api.subscribe_webhook(destination, WEBHOOK_SETTINGS)





# -- pipelines --------------------------------------------------------------------------------------

def apply_lead_fields(connection: AmoCRMConnection, fields) -> None:
    """Store the codes of the account's deal fields: a tracking value (UTM_*, GCLID, YCLID, FBCLID…) for a field
    the account lacks is dropped at push instead of making amoCRM refuse the lead."""
    connection.lead_field_codes = sorted({str(item["code"]) for item in fields
                                          if isinstance(item, dict) and item.get("code")})


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


def _pipeline_summary(pipeline: dict) -> dict:
    statuses = (pipeline.get("_embedded") or {}).get("statuses") or []
    return {"id": int_or_none(pipeline.get("id")), "name": str(pipeline.get("name") or ""),
            "is_main": bool(pipeline.get("is_main")),
            "statuses": sorted(({"id": int_or_none(s.get("id")), "name": str(s.get("name") or ""),
                                 "type": int_or_none(s.get("type")) or 0, "sort": int_or_none(s.get("sort")) or 0}
                                for s in statuses if isinstance(s, dict)), key=lambda s: s["sort"])}


def _status_exists(pipelines: dict | None, pipeline_id: int | None, status_id: int | None) -> bool:
    for pipeline in (pipelines or {}).get("pipelines", []):
        if pipeline["id"] == pipeline_id:
            return any(s["id"] == status_id for s in pipeline["statuses"])
    return False


def int_or_none(value) -> int | None:
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
        raise ConnectError(_("Choose a pipeline and status from the list."))
    connection.pipeline_id, connection.status_id = pipeline_id, status_id
    db.session.commit()


def refresh_pipelines(workspace_id: int) -> None:
    """Read the pipelines and the deal fields again (Settings → amoCRM, "Refresh pipelines")."""
    try:
        api = client_for(workspace_id)
        pipelines = api.get_pipelines()
        fields = list(api.iter_lead_custom_fields())
    except NotConnected as exc:
        raise ConnectError(_("Connect amoCRM first.")) from exc
    except AmoCRMError as exc:
        raise ConnectError(_("amoCRM did not answer; try again in a minute.")) from exc
    connection = connection_of(workspace_id)
    db.session.refresh(connection)  # the provider may have stored a new token pair meanwhile
    apply_pipelines(connection, pipelines)
    apply_lead_fields(connection, fields)
    db.session.commit()



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


def chosen_region(workspace_id: int) -> str:
    """The workspace's region (amocrm | kommo): the one it connected with, or chose before connecting."""
    return regions.of_connection(connection_of(workspace_id)).name


def choose_region(workspace_id: int, region_name: str) -> None:
    """Settings → amoCRM: the region whose button, consent page and account domains the next connect uses."""
    if region_name not in regions.REGION_NAMES:
        raise ConnectError(_("Choose amoCRM or Kommo."))
    connection = connection_row(workspace_id)
    if connection.status == CONNECTED:  # its host, tokens and renames belong to the region it connected in
        raise ConnectError(_("To switch between amoCRM and Kommo, disconnect first."))
    connection.region = region_name
    db.session.commit()


def account_link(connection: AmoCRMConnection | None, path: str = "") -> str | None:
    """A URL in the connected account (`https://example.amocrm.ru/leads/detail/7`), from its current host."""
    if connection is None or not connection.base_domain:
        return None
    return regions.account_url(connection.base_domain) + path


def status_payload(connection: AmoCRMConnection | None) -> dict:
    """GET /amocrm/status: whether and to which account the workspace is connected, its token's life and errors."""
    if connection is None:
        return {"connected": False, "status": DISCONNECTED, "subdomain": None, "accountId": None,
                "tokenExpiresAt": None, "lastRefreshAt": None, "lastError": None}
    return {"connected": connection.status == CONNECTED, "status": connection.status,
            "subdomain": _subdomain(connection.base_domain),
            "baseDomain": connection.base_domain, "region": regions.of_connection(connection).name,
            "accountId": connection.amocrm_account_id,
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
                              redirect_uri=callback_url() if config.get("PUBLIC_BASE_URL") else None,
                              base_domain=connection.base_domain)
    if before_request is None:
        before_request = limiter_for_workspace(workspace_id).wait
    return AmoCRMClient(regions.account_url(connection.base_domain), tokens,
                        timeout=config["AMOCRM_TIMEOUT_SECONDS"], before_request=before_request,
                        on_call=_counted(on_call))


def _counted(on_call: Callable[[CallRecord], None] | None) -> Callable[[CallRecord], None]:
    """Every API call also bumps the /metrics counters (calls, 429s)."""
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

