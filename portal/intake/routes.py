from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import DBAPIError, OperationalError

from portal.auth.decorators import owner_required
from portal.errors import error_response
from portal.extensions import csrf, db, limiter
from portal.intake import bp
from portal.intake.forms import LeadFormSettingsForm
from portal.intake.services import (
    SettingsInvalid,
    WorkspaceNotFound,
    accept_lead,
    check_rate_limits,
    find_workspace,
    origin_allowed,
    update_lead_form_settings,
)
from portal.intake.submission import (
    HONEYPOT_FIELD,
    IDEMPOTENCY_HEADER,
    WORKSPACE_HEADER,
    BodyError,
    SubmissionInvalid,
    read_document,
    validate,
    workspace_public_id,
)

ACCEPTED_MESSAGE = "Thank you! Your request has been received."
CORS_ENDPOINTS = ("intake.submit", "intake.preflight")
PREFLIGHT_MAX_AGE = 86400
_LIMIT_NAMES = {"ip": "address", "workspace": "workspace"}


@bp.post("/api/leads", provide_automatic_options=False)
@csrf.exempt
@limiter.exempt  # limited below by check_rate_limits: both limits in one Redis call
def submit():
    """Accept a lead from a landing page: 201 new, 200 replayed idempotency key, 4xx JSON otherwise."""
    app = current_app._get_current_object()
    try:
        document = read_document(request, app.config["LEAD_MAX_BODY_BYTES"])
    except BodyError as error:
        document, body_error = None, error
    else:
        body_error = None
    # Every request counts, bad bodies included (they are keyed to the workspace "-").
    public_id = workspace_public_id(document or {}, request.headers)
    exceeded = check_rate_limits(app, request.remote_addr or "127.0.0.1", public_id or "-")
    if exceeded is not None:
        response = error_response(429, f"Too many leads from this {_LIMIT_NAMES[exceeded.name]}: "
                                       f"try again in {exceeded.retry_after} s.")
        response[0].headers["Retry-After"] = str(exceeded.retry_after)
        return response
    if body_error is not None:
        return error_response(body_error.status, body_error.message)
    try:
        return _accept(app, document, public_id)
    except DBAPIError as error:  # PostgreSQL down or restarting: 503, the snippet retries with backoff
        if not (error.connection_invalidated or isinstance(error, OperationalError)):
            raise
        db.session.rollback()
        response = error_response(503, "Leads cannot be stored right now: please try again in a moment.")
        response[0].headers["Retry-After"] = "5"
        return response


def _accept(app, document: dict, public_id: str | None):
    try:
        workspace = find_workspace(public_id)
    except WorkspaceNotFound:
        return _unknown_workspace()
    if not origin_allowed(workspace, request.headers.get("Origin"), _own_origins):
        return error_response(403, "This site is not allowed to send leads to this workspace.")
    try:
        submission = validate(document, request.headers, workspace.country)
    except SubmissionInvalid as invalid:
        return error_response(400, "Some fields are not valid.", errors=invalid.errors)
    user_agent = request.headers.get("User-Agent", "")[:512].replace("\x00", "") or None
    try:
        accepted = accept_lead(workspace, submission, request.remote_addr, user_agent)
    except WorkspaceNotFound:
        return _unknown_workspace()
    body = {"success": True, "leadId": accepted.lead_id, "message": ACCEPTED_MESSAGE}
    return jsonify(body), 201 if accepted.created else 200


def _unknown_workspace():
    return error_response(404, f"Unknown workspace: check userAccountId (or the {WORKSPACE_HEADER} header).")


@bp.route("/api/leads", methods=["OPTIONS"], provide_automatic_options=False)
def preflight():
    """CORS preflight: any origin may ask; the POST itself enforces the workspace's allowed origins."""
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {IDEMPOTENCY_HEADER}, {WORKSPACE_HEADER}"
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


@bp.after_request
def _cors_headers(response):
    # The refusal (403) too: the page can then show it instead of retrying; it reveals nothing.
    if request.endpoint in CORS_ENDPOINTS:
        origin = request.headers.get("Origin")
        response.headers["Access-Control-Allow-Origin"] = origin or "*"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        response.vary.add("Origin")
    return response


def _own_origins() -> tuple[str, ...]:
    """The portal's own pages (the Settings test form) may always post."""
    own = [request.host_url.rstrip("/").lower()]
    if current_app.config.get("PUBLIC_BASE_URL"):
        own.append(current_app.config["PUBLIC_BASE_URL"].lower())
    return tuple(own)


@bp.get("/settings/lead-form")
@login_required
def settings_page():
    return _render_settings(LeadFormSettingsForm(obj=current_user.workspace))


@bp.post("/settings/lead-form")
@owner_required
def update_settings():
    form = LeadFormSettingsForm()
    if form.validate_on_submit():
        try:
            update_lead_form_settings(current_user.workspace, form.allowed_origins.data or "",
                                      form.duplicate_window_hours.data)
        except SettingsInvalid as error:
            form.allowed_origins.errors = [*form.allowed_origins.errors, str(error)]
        else:
            flash("Lead form settings saved.", "success")
            return redirect(url_for("intake.settings_page"))
    return _render_settings(form), 400


def _render_settings(form):
    workspace = current_user.workspace
    base = current_app.config.get("PUBLIC_BASE_URL")
    script_path = url_for("static", filename="js/leadpath.js")
    script_url = base + script_path if base else url_for("static", filename="js/leadpath.js", _external=True)
    return render_template("intake/settings.html", form=form, workspace=workspace, script_url=script_url,
                           script_path=script_path, honeypot_field=HONEYPOT_FIELD)
