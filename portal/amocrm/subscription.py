"""The health of a workspace's webhook subscription in amoCRM: what Settings shows, the periodic check that
re-creates a missing or disabled subscription, and rotating the secret in its URL."""
import json
import logging

from flask import current_app
from sqlalchemy import select

from portal.amocrm.api.errors import AmoCRMError
from portal.amocrm.connection import client_for, subscribe_workspace_webhook
from portal.amocrm.scheduling import CHECK_WEBHOOK
from portal.amocrm.sync_log import current_job_id
from portal.extensions import db
from portal.ingest.workspaces import forget_workspace
from portal.jobs.queues import AMOCRM, enqueue
from portal.models import AmoCRMConnection, SyncLogEntry, Workspace
from portal.models.types import utcnow
from portal.models.workspace import new_webhook_secret

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/amocrm/"


def webhook_health(workspace_id: int) -> dict:
    """What Settings shows about the workspace's webhook: when the last one arrived, when the subscription was
    last checked in amoCRM, whether amoCRM had disabled it (and it could not be re-created), and the last
    automatic re-subscription."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    if connection is None:
        return {"subscribed": False, "last_webhook_at": None, "checked_at": None, "disabled": False,
                "last_resubscribed_at": None}
    resubscribed = db.session.scalar(
        select(SyncLogEntry.created_at).where(SyncLogEntry.workspace_id == workspace_id,
                                              SyncLogEntry.operation == "webhook resubscribe",
                                              SyncLogEntry.outcome == "ok")
        .order_by(SyncLogEntry.created_at.desc()).limit(1))
    return {"subscribed": bool(connection.webhook_destination), "last_webhook_at": connection.last_webhook_at,
            "checked_at": connection.webhook_checked_at, "disabled": connection.webhook_disabled,
            "last_resubscribed_at": resubscribed}


def check_webhook(workspace_id: int) -> dict:
    """Look for our subscription in amoCRM (`GET /api/v4/webhooks`); re-create it when it is missing, disabled,
    or still points at a rotated secret (then the old destination is removed). Records webhook_checked_at and
    webhook_disabled on the connection. Raises NotConnected / AmoCRMError."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    workspace = db.session.get(Workspace, workspace_id)
    expected = _expected_destination(workspace, connection)
    stored = connection.webhook_destination if connection else None
    client = client_for(workspace_id)
    db.session.rollback()
    if expected is None:
        return {"status": "unknown destination"}  # never subscribed and no PUBLIC_BASE_URL to build one from
    hooks = client.list_webhooks()
    ours = next((hook for hook in hooks if hook.get("destination") == expected), None)
    problem = "missing" if ours is None else ("disabled" if ours.get("disabled") else None)
    result = {"status": "ok"}
    error = None
    if problem:
        try:
            hook = subscribe_workspace_webhook(client, expected)
            result = {"status": "resubscribed", "was": problem, "webhook_id": hook.get("id")}
        except AmoCRMError as exc:
            error = f"{exc.__class__.__name__}: {str(exc)[:300]}"
            result = {"status": "failed", "was": problem}
    if stored and stored != expected and any(hook.get("destination") == stored for hook in hooks) and not error:
        try:
            client.unsubscribe_webhook(stored)
        except AmoCRMError:
            log.warning("old webhook destination of workspace %s not removed", workspace_id)

    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    connection.webhook_checked_at = utcnow()
    connection.webhook_disabled = bool(problem == "disabled" and error)
    if problem and not error:
        connection.webhook_destination = expected
        connection.webhook_id = result.get("webhook_id") if isinstance(result.get("webhook_id"), int) else None
    if problem:
        db.session.add(SyncLogEntry(
            workspace_id=workspace_id, direction="outbound", operation="webhook resubscribe",
            outcome="error" if error else "ok", error=error, response=json.dumps({"was": problem}),
            job_id=current_job_id()))
    db.session.commit()
    return result


def _expected_destination(workspace: Workspace, connection: AmoCRMConnection | None) -> str | None:
    """Our webhook URL with the workspace's current secret, on the base the subscription already uses (else
    PUBLIC_BASE_URL)."""
    base = None
    if connection is not None and connection.webhook_destination and WEBHOOK_PATH in connection.webhook_destination:
        base = connection.webhook_destination.split(WEBHOOK_PATH, 1)[0]
    base = base or current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return None
    return f"{base.rstrip('/')}{WEBHOOK_PATH}{workspace.public_id}/{workspace.webhook_secret}"


def rotate_webhook_secret(workspace_id: int) -> None:
    """A new webhook secret; the subscription in amoCRM moves to the new URL in a job (the old URL answers 404
    from now on, so amoCRM events in flight are retried to it and then recovered by reconciliation)."""
    workspace = db.session.get(Workspace, workspace_id)
    workspace.webhook_secret = new_webhook_secret()
    enqueue(AMOCRM, CHECK_WEBHOOK, workspace_id, job_id=f"check-webhook-{workspace_id}")
    db.session.commit()
    forget_workspace(workspace.public_id)

