"""Thin views: Settings → amoCRM and the /amocrm/* endpoints of the connect flow."""
from urllib.parse import urlencode

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.auth.decorators import owner_required
from portal.connection import bp, services
from portal.connection.forms import LongLivedTokenForm, PipelineForm
from portal.errors import error_response
from portal.extensions import csrf
from portal.sync.services import sync_health
from portal.webhooks import services as webhook_services  # a module: it imports this package's client

SCOPES = "crm,notifications"


@bp.app_context_processor
def _reauth_banner() -> dict:
    """Every page: owners see "Reconnect amoCRM" while the connection waits for re-authorization."""
    if not (current_user and current_user.is_authenticated and current_user.is_owner):
        return {"amocrm_needs_reauth": False}
    return {"amocrm_needs_reauth": services.needs_reauth(current_user.workspace_id)}


def _button(state: str) -> dict:
    """The data-* attributes of the official button: the shared integration, or the variant that makes
    amoCRM create an integration for this workspace and send its keys to /amocrm/secrets."""
    config = current_app.config
    attributes = {"title": "Connect amoCRM", "compact": "false", "class-name": "amocrm-button", "color": "blue",
                  "state": state, "mode": "popup", "error-callback": "leadpathAmocrmDenied"}
    if services.uses_shared_integration():
        attributes["client-id"] = config["AMOCRM_CLIENT_ID"]
    else:
        attributes.update({"name": "Leadpath", "description": "Leads with UTM tags in, won deals back for ROI.",
                           "redirect_uri": services.callback_url(), "secrets_uri": services.secrets_url(),
                           "logo": url_for("static", filename="img/favicon.svg", _external=True),
                           "scopes": SCOPES})
    return attributes


def _consent_url(state: str) -> str:
    params = {"state": state, "mode": "popup"}
    button = _button(state)
    if "client-id" in button:
        params["client_id"] = button["client-id"]
    else:
        params.update({key: button[key] for key in ("name", "description", "redirect_uri", "secrets_uri", "scopes")})
    return current_app.config["AMOCRM_OAUTH_URL"] + "?" + urlencode(params)


def _page(pipeline_form=None, token_form=None, status: int = 200):
    connection = services.connection_of(current_user.workspace_id)
    pipeline_form = pipeline_form or PipelineForm()
    pipeline_form.target.choices = services.status_choices(connection)
    if connection and connection.pipeline_id and not pipeline_form.is_submitted():
        pipeline_form.target.data = f"{connection.pipeline_id}:{connection.status_id}"
    button = None
    if current_user.is_owner:
        state, _ = services.create_state(current_user.workspace_id, current_user.id)
        button = _button(state)
    return render_template("connection/settings.html", connection=connection, button=button,
                           pipeline_form=pipeline_form, token_form=token_form or LongLivedTokenForm(),
                           webhook_url=services.webhook_destination(current_user.workspace),
                           webhook=webhook_services.webhook_health(current_user.workspace_id),
                           sync=sync_health(current_user.workspace_id),
                           oauth_origin=_origin(current_app.config["AMOCRM_OAUTH_URL"])), status


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/settings/amocrm")
@login_required
def settings_page():
    return _page()


@bp.post("/settings/amocrm/pipeline")
@owner_required
def choose_pipeline():
    form = PipelineForm()
    form.target.choices = services.status_choices(services.connection_of(current_user.workspace_id))
    if form.validate_on_submit():
        pipeline_id, _, status_id = form.target.data.partition(":")
        try:
            services.choose_pipeline(current_user.workspace_id, int(pipeline_id), int(status_id))
        except (services.ConnectError, ValueError) as error:
            flash(str(error), "error")
        else:
            flash("New leads will go to the chosen pipeline and status.", "success")
        return redirect(url_for("connection.settings_page"))
    return _page(pipeline_form=form, status=400)


@bp.post("/settings/amocrm/webhook/rotate")
@owner_required
def rotate_webhook():
    webhook_services.rotate_webhook_secret(current_user.workspace_id)
    flash("The webhook secret was changed; amoCRM's subscription moves to the new address in a moment.", "success")
    return redirect(url_for("connection.settings_page"))


@bp.post("/settings/amocrm/pipelines/refresh")
@owner_required
def refresh_pipelines():
    try:
        services.refresh_pipelines(current_user.workspace_id)
    except services.ConnectError as error:
        flash(str(error), "error")
    else:
        flash("Pipelines reloaded from amoCRM.", "success")
    return redirect(url_for("connection.settings_page"))


@bp.post("/settings/amocrm/long-lived-token")
@owner_required
def long_lived_token():
    form = LongLivedTokenForm()
    if form.validate_on_submit():
        try:
            services.connect_long_lived(current_user.workspace, form.base_domain.data, form.token.data)
        except services.ConnectError as error:
            form.token.errors.append(str(error))
        else:
            flash("amoCRM connected with the long-lived token.", "success")
            return redirect(url_for("connection.settings_page"))
    return _page(token_form=form, status=400)


@bp.post("/amocrm/state")
@owner_required
def new_state():
    state, expires_at = services.create_state(current_user.workspace_id, current_user.id)
    return jsonify({"state": state, "expiresAt": expires_at.isoformat()})


@bp.get("/amocrm/auth")
@owner_required
def auth():
    state, _ = services.create_state(current_user.workspace_id, current_user.id)
    return redirect(_consent_url(state))


@bp.get("/amocrm/callback")
@owner_required
def callback():
    if request.args.get("error"):
        return _callback_result(False, "Access was not granted in amoCRM, so nothing changed. To connect, "
                                "start again from Settings → amoCRM and choose “Allow”.", 400)
    try:
        connection = services.complete_authorization(
            current_user.workspace, current_user.id, state=request.args.get("state"),
            code=request.args.get("code"), referer=request.args.get("referer"))
    except services.ConnectError as error:
        return _callback_result(False, str(error), 400)
    message = f"amoCRM connected: {connection.account_name or connection.base_domain}."
    if connection.last_error:
        message += " " + connection.last_error
    flash(message, "success")
    return _callback_result(True, message, 200)


def _callback_result(ok: bool, message: str, status: int):
    return render_template("connection/callback.html", ok=ok, message=message), status


@bp.post("/amocrm/secrets")
@csrf.exempt
def secrets_hook():
    """amoCRM's server posts the keys of the integration it made for a state. Answers exactly 200 when kept."""
    try:
        body = request.get_json(silent=True, force=True)
    except RecursionError:  # nested deeper than the JSON decoder recurses; silent=True only covers ValueError
        body = None
    if not isinstance(body, dict):
        return error_response(400, "Expected a JSON object.")
    values = {key: body.get(key) for key in ("client_id", "client_secret", "state")}
    if not all(isinstance(value, str) and 0 < len(value) <= 1024 for value in values.values()):
        return error_response(400, "client_id, client_secret and state are required strings.")
    if not all(value.isascii() and value.isprintable() for value in values.values()):  # as amoCRM makes them
        return error_response(400, "client_id, client_secret and state are printable ASCII.")
    if len(values["client_id"]) > 64:
        return error_response(400, "client_id is too long.")
    try:
        recorded = services.record_secrets(values["state"], values["client_id"], values["client_secret"])
    except services.SecretsAlreadyReceived:
        return error_response(409, "The keys for this state were received already.")
    if not recorded:
        return error_response(404, "Unknown or expired state.")
    return jsonify({"success": True}), 200


@bp.get("/amocrm/status")
def status():
    if not current_user.is_authenticated:
        return error_response(401, "Log in first.")
    return jsonify(services.status_payload(services.connection_of(current_user.workspace_id)))


@bp.post("/amocrm/disconnect")
@owner_required
def disconnect():
    services.disconnect(current_user.workspace)
    flash("amoCRM disconnected. Leads and sales stay; new leads wait until you connect again.", "info")
    return redirect(url_for("connection.settings_page"))
