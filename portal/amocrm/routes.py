"""Thin views: the /amocrm/* endpoints of the connect flow, and the Settings → amoCRM tab (`settings_bp`, mounted
under /settings by the settings area)."""
from urllib.parse import urlsplit

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.amocrm import authorization, connection, custom_fields, delivery_check, regions, unsorted
from portal.amocrm.forms import DeliveryModeForm, FieldMappingForm, LongLivedTokenForm, PipelineForm, RegionForm
from portal.amocrm.subscription import rotate_webhook_secret, webhook_health
from portal.amocrm.sync_admin import sync_health
from portal.auth.decorators import permission_required
from portal.auth.permissions import MANAGE_AMOCRM
from portal.errors import error_response
from portal.extensions import csrf
from portal.models.amocrm import DELIVER_AS_DEAL, DELIVER_TO_UNSORTED

# The button's endpoints, the OAuth callback, secrets_uri, status and disconnect.
bp = Blueprint("connection", __name__)
# Settings → amoCRM: the connection, the pipeline for new leads, the webhook, a long-lived token.
settings_bp = Blueprint("amocrm", __name__, url_prefix="/amocrm")

@bp.app_context_processor
def _reauth_banner() -> dict:
    """Every page: owners see "Reconnect amoCRM" while the connection waits for re-authorization."""
    if not (current_user and current_user.is_authenticated and current_user.is_owner):
        return {"amocrm_needs_reauth": False}
    return {"amocrm_needs_reauth": connection.needs_reauth(current_user.workspace_id)}


def _page(pipeline_form=None, token_form=None, status: int = 200, region_form=None):
    current = connection.connection_of(current_user.workspace_id)
    region = regions.of_connection(current)
    pipeline_form = pipeline_form or PipelineForm()
    pipeline_form.target.choices = connection.status_choices(current)
    if current and current.pipeline_id and not pipeline_form.is_submitted():
        pipeline_form.target.data = f"{current.pipeline_id}:{current.status_id}"
    button = None
    if current_user.is_owner:
        state, _expires_at = authorization.create_state(current_user.workspace_id, current_user.id)
        button = authorization.button_attributes(state, region.name)
    region_form = region_form or RegionForm(formdata=None, region=region.name)
    test_lead = delivery_check.latest_test_lead(current_user.workspace_id)
    return render_template("connection/settings.html", connection=current, button=button, region=region,
                           region_form=region_form, test_lead=test_lead,
                           pipeline_form=pipeline_form, token_form=token_form or LongLivedTokenForm(),
                           webhook_url=connection.webhook_destination(current_user.workspace),
                           webhook=webhook_health(current_user.workspace_id),
                           sync=sync_health(current_user.workspace_id),
                           oauth_origin=_origin(region.oauth_url)), status


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@settings_bp.get("")
@login_required
def index():
    return _page()


@settings_bp.post("/pipeline")
@permission_required(MANAGE_AMOCRM)
def choose_pipeline():
    form = PipelineForm()
    form.target.choices = connection.status_choices(connection.connection_of(current_user.workspace_id))
    if form.validate_on_submit():
        pipeline_id, _colon, status_id = form.target.data.partition(":")
        try:
            connection.choose_pipeline(current_user.workspace_id, int(pipeline_id), int(status_id))
        except (connection.ConnectError, ValueError) as error:
            flash(str(error), "error")
        else:
            flash(_("New leads will go to the chosen pipeline and status."), "success")
        return redirect(url_for("settings.amocrm.index"))
    return _page(pipeline_form=form, status=400)


@settings_bp.post("/delivery")
@permission_required(MANAGE_AMOCRM)
def choose_delivery():
    """Settings → amoCRM → Delivery: a deal in the chosen stage, or Unsorted."""
    form = DeliveryModeForm()
    if form.validate_on_submit():
        try:
            unsorted.choose_delivery_mode(current_user.workspace_id, form.mode.data)
        except ValueError:
            flash(_("Connect amoCRM first."), "error")
        else:
            flash(_("New leads go to Unsorted in amoCRM.") if form.mode.data == DELIVER_TO_UNSORTED
                  else _("New leads go to amoCRM as deals."), "success")
    else:
        flash(_("Choose how new leads reach amoCRM."), "error")
    return redirect(url_for("settings.amocrm.index") + "#amocrm-delivery")


@settings_bp.app_context_processor
def _delivery_settings() -> dict:
    """What templates/settings/amocrm_delivery.html shows: its form and the workspace's Unsorted counts."""
    def delivery(connection):
        form = DeliveryModeForm(formdata=None, mode=connection.delivery_mode if connection else DELIVER_AS_DEAL)
        return {"form": form, "counts": unsorted.unsorted_counts(current_user.workspace_id)}
    return {"amocrm_delivery": delivery}


@settings_bp.post("/fields/refresh")
@permission_required(MANAGE_AMOCRM)
def refresh_fields():
    """Settings → amoCRM → Custom fields: read the account's deal and contact fields again."""
    try:
        read = custom_fields.refresh_custom_fields(current_user.workspace_id)
    except custom_fields.FieldsError as error:
        flash(str(error), "error")
    else:
        flash(_("Custom fields read from amoCRM: %(leads)s of deals, %(contacts)s of contacts.",
                leads=len(read["leads"]), contacts=len(read["contacts"])), "success")
    return redirect(url_for("settings.amocrm.index") + "#amocrm-fields")


@settings_bp.post("/fields/mapping")
@permission_required(MANAGE_AMOCRM)
def save_field_mapping():
    """Settings → amoCRM → Custom fields: which extra form field goes to which amoCRM field."""
    if not FieldMappingForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(url_for("settings.amocrm.index") + "#amocrm-fields")
    chosen = {}
    for key, name in request.form.items():
        if key.startswith("name-") and name:
            chosen[name] = request.form.get("field-" + key[len("name-"):], "")
    try:
        mapped = custom_fields.save_mapping(current_user.workspace_id, chosen)
    except custom_fields.FieldsError as error:
        flash(str(error), "error")
    else:
        flash(_("Mapping saved: %(count)s form fields go to amoCRM fields; the others go into a note on the deal.",
                count=mapped), "success")
    return redirect(url_for("settings.amocrm.index") + "#amocrm-fields")


@settings_bp.app_context_processor
def _fields_settings() -> dict:
    """What templates/settings/amocrm_fields.html shows: the fields as last read, the extra field names seen, the
    mapping."""
    def fields(connection):
        return {"fields": custom_fields.mappable_fields(connection),
                "read_at": ((connection.custom_fields or {}).get("read_at") if connection else None),
                "names": custom_fields.extra_field_names(current_user.workspace_id, connection),
                "mapping": (connection.field_mapping or {}) if connection else {}, "form": FieldMappingForm()}
    return {"amocrm_fields": fields}


@settings_bp.post("/webhook/rotate")
@permission_required(MANAGE_AMOCRM)
def rotate_webhook():
    rotate_webhook_secret(current_user.workspace_id)
    flash(_("The webhook secret was changed; amoCRM's subscription moves to the new address in a moment."), "success")
    return redirect(url_for("settings.amocrm.index"))


@settings_bp.post("/pipelines/refresh")
@permission_required(MANAGE_AMOCRM)
def refresh_pipelines():
    try:
        connection.refresh_pipelines(current_user.workspace_id)
    except connection.ConnectError as error:
        flash(str(error), "error")
    else:
        flash(_("Pipelines reloaded from amoCRM."), "success")
    return redirect(url_for("settings.amocrm.index"))


@settings_bp.post("/long-lived-token")
@permission_required(MANAGE_AMOCRM)
def long_lived_token():
    form = LongLivedTokenForm()
    if form.validate_on_submit():
        try:
            authorization.connect_long_lived(current_user.workspace, form.base_domain.data, form.token.data)
        except connection.ConnectError as error:
            form.token.errors.append(str(error))
        else:
            flash(_("amoCRM connected with the long-lived token."), "success")
            return redirect(url_for("settings.amocrm.index"))
    return _page(token_form=form, status=400)


# -- the region (amoCRM or Kommo), chosen before connecting ---------------------------------------------

@settings_bp.post("/region")
@permission_required(MANAGE_AMOCRM)
def choose_region():
    form = RegionForm()
    if form.validate_on_submit():
        try:
            connection.choose_region(current_user.workspace_id, form.region.data)
        except connection.ConnectError as error:
            flash(str(error), "error")
            return redirect(url_for("settings.amocrm.index"))
        flash(_("%(brand)s chosen: its button below connects your account.",
                brand=regions.region(form.region.data).label), "success")
        return redirect(url_for("settings.amocrm.index"))
    return _page(region_form=form, status=400)


# -- "Send a test lead" -----------------------------------------------------------------------------------

@settings_bp.post("/test-lead")
@permission_required(MANAGE_AMOCRM)
def send_test_lead():
    try:
        delivery_check.send_test_lead(current_user.workspace_id)
    except connection.ConnectError as error:
        flash(str(error), "error")
    else:
        flash(_("Test lead sent to amoCRM's queue. Its result shows below in a few seconds."), "success")
    return redirect(url_for("settings.amocrm.index") + "#amocrm-test-lead")


@bp.post("/amocrm/state")
@permission_required(MANAGE_AMOCRM)
def new_state():
    state, expires_at = authorization.create_state(current_user.workspace_id, current_user.id)
    return jsonify({"state": state, "expiresAt": expires_at.isoformat()})


@bp.get("/amocrm/auth")
@permission_required(MANAGE_AMOCRM)
def auth():
    state, _expires_at = authorization.create_state(current_user.workspace_id, current_user.id)
    return redirect(authorization.consent_url(state, connection.chosen_region(current_user.workspace_id)))


@bp.get("/amocrm/callback")
@permission_required(MANAGE_AMOCRM)
def callback():
    if request.args.get("error"):
        # Shown here without JavaScript; amocrm-callback.js takes the reader (or tells the opener) back to
        # Settings → amoCRM, which says the same (?amocrm=denied).
        return _callback_result(False, _("Access was not granted in amoCRM, so nothing changed. To connect, "
                                         "start again from Settings → amoCRM and choose “Allow”."), 400,
                                outcome="denied")
    try:
        connected = authorization.complete_authorization(
            current_user.workspace, current_user.id, state=request.args.get("state"),
            code=request.args.get("code"), referer=request.args.get("referer"))
    except connection.ConnectError as error:
        return _callback_result(False, str(error), 400)
    message = _("amoCRM connected: %(account)s.", account=connected.account_name or connected.base_domain)
    if connected.last_error:
        message += " " + connected.last_error
    flash(message, "success")
    return _callback_result(True, message, 200)


def _callback_result(ok: bool, message: str, status: int, outcome: str = ""):
    return render_template("connection/callback.html", ok=ok, message=message, outcome=outcome), status


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
        recorded = authorization.record_secrets(values["state"], values["client_id"], values["client_secret"])
    except authorization.SecretsAlreadyReceived:
        return error_response(409, "The keys for this state were received already.")
    if not recorded:
        return error_response(404, "Unknown or expired state.")
    return jsonify({"success": True}), 200


@bp.get("/amocrm/status")
def status():
    if not current_user.is_authenticated:
        return error_response(401, "Log in first.")
    return jsonify(connection.status_payload(connection.connection_of(current_user.workspace_id)))


@bp.post("/amocrm/disconnect")
@permission_required(MANAGE_AMOCRM)
def disconnect():
    connection.disconnect(current_user.workspace)
    flash(_("amoCRM disconnected. Leads and deals stay; new leads wait until you connect again."), "info")
    return redirect(url_for("settings.amocrm.index"))
