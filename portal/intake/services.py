"""Accepting leads and the lead-form settings. Every function takes the workspace explicitly and commits once.

The hot path (`accept_lead`) is one prepared INSERT … RETURNING in autocommit: the repeat check is a subquery of
the INSERT and a replayed idempotency key an ON CONFLICT DO NOTHING, so a new lead costs one round trip to
PostgreSQL. The workspace is read from a per-process cache for a few seconds.
"""
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import UnprocessableEntity

from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.ingest.workspaces import CachedWorkspace, cached_workspace, forget_workspace, parse_origins
from portal.intake.store import insert_lead
from portal.intake.submission import ATTRIBUTION_KEYS, FIRST_TOUCH_KEYS, LeadSubmission, fingerprint
from portal.models import Lead, Workspace
from portal.models.lead import PENDING
from portal.models.types import utcnow
from portal.ratelimit import parse_limit, rate_limiter

MAX_ORIGINS = 50
MAX_DUPLICATE_WINDOW_HOURS = 24 * 30


class WorkspaceNotFound(Exception):
    pass


class SettingsInvalid(Exception):
    pass


class IdempotencyKeyReused(UnprocessableEntity):
    """The idempotency key came before with a different body: 422, as payment APIs answer. An HTTP exception
    carrying its status and message, so the endpoint answers it like werkzeug's own refusals."""

    status = 422
    message = description = ("This Idempotency-Key was already used with a different lead. Send a new key for a "
                             "new lead, or the same body to get the first answer again.")


@dataclass(frozen=True)
class Accepted:
    lead_id: int
    created: bool  # False: an idempotency key seen before; nothing was stored


def find_workspace(public_id: str | None) -> CachedWorkspace:
    """The workspace with that public id, from the per-process cache (at most LEAD_WORKSPACE_CACHE_SECONDS old)."""
    workspace = cached_workspace(public_id, current_app.config["LEAD_WORKSPACE_CACHE_SECONDS"]) if public_id else None
    if workspace is None:
        raise WorkspaceNotFound
    return workspace


def origin_allowed(workspace: CachedWorkspace, origin: str | None, own_origins: Callable[[], tuple[str, ...]]) -> bool:
    """Any origin when the list is empty; requests without an Origin (servers, curl) are not browsers'.
    `own_origins` (the portal's own, always allowed) is called only when a list is set."""
    if not workspace.allowed_origins or not origin:
        return True
    origin = origin.rstrip("/").lower()
    return origin in workspace.allowed_origins or origin in own_origins()


def accept_lead(workspace: CachedWorkspace, submission: LeadSubmission, ip: str | None,
                user_agent: str | None) -> Accepted:
    """Store the lead (committed when this returns) and schedule its push unless it is spam or a repeat.

    The lead is written by one INSERT in autocommit mode: PostgreSQL commits it (and flushes its WAL) before
    answering, so one round trip stores it durably. A replayed idempotency key inserts nothing
    (ON CONFLICT DO NOTHING): with the same body (the same `fingerprint`) it answers with the lead it created,
    with another body it raises IdempotencyKeyReused (nothing is stored, the first lead is untouched).
    """
    now = utcnow()
    first = submission.first_touch or {key: submission.attribution.get(key) for key in FIRST_TOUCH_KEYS}
    check_repeats = not submission.is_spam and workspace.duplicate_window_hours > 0
    params = {
        "p_workspace_id": workspace.id, "p_name": submission.name, "p_phone": submission.phone,
        "p_email": submission.email, "p_message": submission.message,
        **{f"p_{key}": submission.attribution.get(key) for key in ATTRIBUTION_KEYS},
        **{f"p_first_{key}": first.get(key) for key in FIRST_TOUCH_KEYS},
        "p_first_touch_at": submission.first_touch_at or now, "p_ip": ip, "p_user_agent": user_agent,
        "p_idempotency_key": submission.idempotency_key,
        "p_idempotency_fingerprint": fingerprint(submission) if submission.idempotency_key else None,
        "p_is_spam": submission.is_spam, "p_created_at": now,
        "p_visitor_id": submission.visitor_id, "p_visit_id": submission.visit_id,
        "p_extra_fields": json.dumps(submission.extra_fields, ensure_ascii=False) if submission.extra_fields else None,
        "match_phone": submission.phone if check_repeats else None,
        "match_email": submission.email if check_repeats else None,
        "window_start": now - timedelta(hours=max(workspace.duplicate_window_hours, 0)),
    }
    try:
        row = insert_lead(params)
    except IntegrityError as error:  # the only other constraint: the workspace, deleted since it was cached
        forget_workspace(workspace.public_id)
        raise WorkspaceNotFound from error
    if row is None:  # the key was used before: answer with the lead it created, if the body is the same
        first = db.session.execute(select(Lead.id, Lead.idempotency_fingerprint)
                                   .where(Lead.workspace_id == workspace.id,
                                          Lead.idempotency_key == submission.idempotency_key)).first()
        db.session.rollback()
        if first is None:
            raise RuntimeError("idempotency key conflict without a lead")
        # Leads stored before fingerprints were kept have none: their key answers as it always did.
        if first.idempotency_fingerprint not in (None, params["p_idempotency_fingerprint"]):
            raise IdempotencyKeyReused()
        return Accepted(first.id, created=False)
    lead_id, sync_status = row
    if sync_status == PENDING:
        schedule_push(workspace.id)
    return Accepted(lead_id, created=True)


def check_origin(origin: str) -> str:
    try:
        parts = urlsplit(origin)
        hostname, _port = parts.hostname, parts.port  # both raise ValueError for a broken [host] or port
    except ValueError:
        hostname = None
    if not hostname or parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise SettingsInvalid(_("%(origin)s is not an origin like https://example.com (no path).",
                                origin=repr(origin)))
    return origin


def update_lead_form_settings(workspace: Workspace, allowed_origins: str, duplicate_window_hours: int) -> None:
    origins = [check_origin(origin) for origin in parse_origins(allowed_origins)]
    if len(origins) > MAX_ORIGINS:
        raise SettingsInvalid(_("At most %(count)s origins.", count=MAX_ORIGINS))
    if not 0 <= duplicate_window_hours <= MAX_DUPLICATE_WINDOW_HOURS:
        raise SettingsInvalid(_("The duplicate window is 0 to %(hours)s hours.", hours=MAX_DUPLICATE_WINDOW_HOURS))
    workspace.allowed_origins = "\n".join(dict.fromkeys(origins))
    workspace.duplicate_window_hours = duplicate_window_hours
    db.session.commit()
    forget_workspace(workspace.public_id)


@dataclass(frozen=True)
class LimitExceeded:
    name: str  # which limit: "ip" or "workspace"
    retry_after: int  # seconds until its window ends (≥ 1)


def check_rate_limits(app, ip: str, workspace_key: str) -> LimitExceeded | None:
    """Count this request against the IP limit, then the workspace limit (one Redis call, failing open to
    in-process counting: portal.ratelimit); the first exceeded, or None."""
    counters = [("lead-ip:" + ip, parse_limit(app.config["LEAD_RATE_LIMIT_IP"])),
                ("lead-workspace:" + workspace_key, parse_limit(app.config["LEAD_RATE_LIMIT_WORKSPACE"]))]
    index, retry_after = rate_limiter(app).hit(counters)
    if index == 0:
        return None
    return LimitExceeded("ip" if index == 1 else "workspace", retry_after)


def preflight_over_limit(app, ip: str) -> int:
    """Count a preflight or an origin question that names a workspace (it costs a workspace read) against the
    address's lead limit: the seconds until it may ask again when that limit is reached, else 0."""
    index, retry_after = rate_limiter(app).hit([("lead-ip:" + ip, parse_limit(app.config["LEAD_RATE_LIMIT_IP"]))])
    return 0 if index == 0 else max(int(retry_after), 1)
