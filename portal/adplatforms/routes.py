"""Settings → Ad accounts: connect an ad platform (OAuth with a server-made state), choose the accounts to import,
their tags and VAT, per-campaign tags, the daily import hour, "Import now", the import history, and the spend no
lead matches. Owners change things; members read. The portal-wide reconnect banner is here too."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.adplatforms import connections, importer, messages, services
from portal.adplatforms.forms import AccountSettingsForm, CampaignTagsForm, ConfirmForm, ImportHourForm
from portal.adplatforms.registry import PLATFORMS, VAT_EITHER, configured_platforms, platform
from portal.adplatforms.unmatched import unmatched_spend
from portal.auth.decorators import permission_required
from portal.auth.permissions import MANAGE_AD_ACCOUNTS
from portal.extensions import db
from portal.i18n import number
from portal.models import AdAccount, AdCampaignTags, AdPlatformConnection
from portal.reports.periods import PRESETS, parse_period, warn_about_period
from portal.tenancy import current_workspace_id, get_owned_or_404, scoped

settings_bp = Blueprint("ad_accounts", __name__, url_prefix="/ad-accounts")


settings_bp.add_app_template_global(messages.error_text, "ad_error_text")
settings_bp.add_app_template_global(messages.error_detail, "ad_error_detail")


@settings_bp.app_context_processor
def _reconnect_banner() -> dict:
    """Every page: owners see "Reconnect" while an ad platform refuses Leadpath's access."""
    if not (current_user and current_user.is_authenticated and current_user.is_owner):
        return {"ad_accounts_need_reconnect": False}
    return {"ad_accounts_need_reconnect": connections.needs_reconnect(current_user.workspace_id)}


def _platform_or_404(name: str):
    entry = platform(name)
    if entry is None:
        abort(404)
    return entry


@settings_bp.get("")
@login_required
def index():
    workspace_id = current_workspace_id()
    accounts = list(db.session.scalars(scoped(AdAccount).order_by(AdAccount.platform, AdAccount.name)))
    connected = list(db.session.scalars(scoped(AdPlatformConnection).order_by(AdPlatformConnection.connected_at)))
    return render_template(
        "adplatforms/index.html", accounts=accounts, connections=connected, platforms=PLATFORMS,
        available=configured_platforms(current_app.config), history=services.history(workspace_id),
        account_names={account.id: account.name for account in accounts},
        hour_form=ImportHourForm(hour=current_user.workspace.ad_import_hour), confirm=ConfirmForm())


@settings_bp.post("/connect/<platform_name>")
@permission_required(MANAGE_AD_ACCOUNTS)
def connect(platform_name: str):
    entry = _platform_or_404(platform_name)
    if not entry.configured(current_app.config):
        flash(_("%(platform)s is not set up on this Leadpath installation yet; ask its administrator.",
                platform=entry.display_name), "error")
        return redirect(url_for("settings.ad_accounts.index"))
    return redirect(connections.start_authorization(current_workspace_id(), current_user.id, entry))


@settings_bp.get("/<platform_name>/callback")
@permission_required(MANAGE_AD_ACCOUNTS)
def callback(platform_name: str):
    entry = _platform_or_404(platform_name)
    workspace = current_user.workspace
    try:
        _connection, accounts = connections.complete_authorization(
            workspace, current_user.id, entry, state=request.args.get("state"), code=request.args.get("code"),
            error=request.args.get("error"))
    except connections.ConnectError as error:
        flash(str(error), "error")
        return redirect(url_for("settings.ad_accounts.index"))
    started = 0
    for account in accounts:
        if account.enabled and account.last_import_at is None:
            started += len(importer.queue_backfill(account, workspace))
    db.session.commit()
    if started:
        flash(_("%(platform)s connected. Spend of the last 90 days is being imported; it appears in the reports "
                "in a few minutes.", platform=entry.display_name), "success")
    else:
        flash(_("%(platform)s connected: %(count)s accounts found. Turn on the import of the ones whose spend "
                "Leadpath should count.", platform=entry.display_name, count=number(len(accounts))), "success")
    return redirect(url_for("settings.ad_accounts.index"))


@settings_bp.post("/connections/<int:connection_id>/disconnect")
@permission_required(MANAGE_AD_ACCOUNTS)
def disconnect(connection_id: int):
    connections.disconnect(get_owned_or_404(AdPlatformConnection, connection_id))
    flash(_("Disconnected. Spend imported so far stays; no more is imported until you connect again."), "info")
    return redirect(url_for("settings.ad_accounts.index"))


@settings_bp.post("/schedule")
@permission_required(MANAGE_AD_ACCOUNTS)
def schedule():
    form = ImportHourForm()
    if form.validate_on_submit():
        services.set_import_hour(current_user.workspace, form.hour.data)
        flash(_("Daily import time saved."), "success")
    else:
        flash(_("Enter an hour from 0 to 23."), "error")
    return redirect(url_for("settings.ad_accounts.index"))


def _settings_form(account: AdAccount, **kwargs) -> AccountSettingsForm:
    """The account's settings; the VAT choice only where the platform can report either way."""
    form = AccountSettingsForm(**kwargs)
    entry = PLATFORMS.get(account.platform)
    if entry is None or entry.vat != VAT_EITHER:
        del form.include_vat
    return form


def _account_page(account: AdAccount, form=None, tags_form=None, status: int = 200):
    form = form or _settings_form(account, obj=account)
    overrides = list(db.session.scalars(select(AdCampaignTags).where(AdCampaignTags.ad_account_id == account.id)
                                        .order_by(AdCampaignTags.campaign_id)))
    return render_template("adplatforms/account.html", account=account, form=form,
                           tags_form=tags_form or CampaignTagsForm(utm_source=account.utm_source,
                                                                   utm_medium=account.utm_medium),
                           overrides=overrides, campaigns=services.campaigns_seen(account),
                           history=services.history(account.workspace_id, account.id),
                           platform=PLATFORMS.get(account.platform), confirm=ConfirmForm()), status


@settings_bp.get("/<int:account_id>")
@login_required
def account_page(account_id: int):
    return _account_page(get_owned_or_404(AdAccount, account_id))


@settings_bp.post("/<int:account_id>")
@permission_required(MANAGE_AD_ACCOUNTS)
def save_account(account_id: int):
    account = get_owned_or_404(AdAccount, account_id)
    form = _settings_form(account)
    if not form.validate_on_submit():
        return _account_page(account, form=form, status=400)
    try:
        done = services.save_account_settings(
            account, current_user.workspace, enabled=form.enabled.data, utm_source=form.utm_source.data,
            utm_medium=form.utm_medium.data, campaign_tag=form.campaign_tag.data,
            include_vat=bool(form.include_vat.data) if "include_vat" in form else False)
    except services.AdAccountError as error:
        form.enabled.errors.append(str(error))
        return _account_page(account, form=form, status=400)
    message = _("Saved. Rows given the new tags: %(count)s.", count=number(done["retagged"]))
    if done["runs"]:
        message += " " + _("Its spend is being imported.")
    flash(message, "success")
    return redirect(url_for("settings.ad_accounts.account_page", account_id=account.id))


@settings_bp.post("/<int:account_id>/import")
@permission_required(MANAGE_AD_ACCOUNTS)
def import_now(account_id: int):
    account = get_owned_or_404(AdAccount, account_id)
    if ConfirmForm().validate_on_submit():
        try:
            services.import_now(account, current_user.workspace)
        except services.AdAccountError as error:
            flash(str(error), "error")
        else:
            flash(_("Import started; its result appears in the history below."), "success")
    return redirect(url_for("settings.ad_accounts.account_page", account_id=account.id))


@settings_bp.post("/<int:account_id>/campaigns")
@permission_required(MANAGE_AD_ACCOUNTS)
def save_campaign_tags(account_id: int):
    account = get_owned_or_404(AdAccount, account_id)
    form = CampaignTagsForm()
    if not form.validate_on_submit():
        return _account_page(account, tags_form=form, status=400)
    changed = services.save_campaign_tags(account, form.campaign_id.data, form.utm_source.data,
                                          form.utm_medium.data or "", form.utm_campaign.data or "")
    flash(_("Campaign tags saved. Rows given the new tags: %(count)s.", count=number(changed)), "success")
    return redirect(url_for("settings.ad_accounts.account_page", account_id=account.id) + "#campaign-tags")


@settings_bp.post("/<int:account_id>/campaigns/<int:tags_id>/delete")
@permission_required(MANAGE_AD_ACCOUNTS)
def delete_campaign_tags(account_id: int, tags_id: int):
    account = get_owned_or_404(AdAccount, account_id)
    tags = get_owned_or_404(AdCampaignTags, tags_id)
    if tags.ad_account_id != account.id:
        abort(404)
    changed = services.delete_campaign_tags(account, tags)
    flash(_("The campaign takes the account's tags again. Rows given the new tags: %(count)s.",
            count=number(changed)), "info")
    return redirect(url_for("settings.ad_accounts.account_page", account_id=account.id) + "#campaign-tags")


@settings_bp.get("/unmatched")
@login_required
def unmatched():
    warn_about_period(request.args)
    period = parse_period(request.args, current_user.workspace.timezone, default="30d")
    return render_template("adplatforms/unmatched.html", rows=unmatched_spend(current_workspace_id(), period),
                           period=period, presets=PRESETS)
