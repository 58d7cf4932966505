"""The navigation shared by every page and the display names of stored states. (Numbers, money and dates are
formatted by the locale filters of portal.i18n.)"""
from flask import Flask, current_app, has_request_context, request
from flask_babel import lazy_gettext as _l

from portal.auth.decorators import can

# Feature blueprints appear in the navigation once they are registered.
NAV_ITEMS = [("dashboard.index", _l("Dashboard")), ("leads.index", _l("Leads")), ("reports.roi", _l("Reports")),
             ("settings.index", _l("Settings"))]
# Blueprints without a menu item of their own, and the item they sit under (ad spend is reached from the report).
NAV_SECTIONS = {"spend": "reports"}
# Stored states (leads' sync, deals, roles, sync log entries) as a reader sees them.
STATE_LABELS = {
    "pending": _l("waiting"), "synced": _l("in amoCRM"), "failed": _l("failed"), "skipped": _l("not sent"),
    "open": _l("open"), "won": _l("won"), "lost": _l("lost"), "none": _l("no deal"),
    "owner": _l("owner"), "member": _l("member"),
    "ok": _l("ok"), "error": _l("error"), "retry": _l("retry"),
    "outbound": _l("to amoCRM"), "inbound": _l("from amoCRM"),
    "connected": _l("connected"), "needs_reauth": _l("needs reconnecting"), "blocked": _l("blocked by amoCRM"),
    "disconnected": _l("not connected"),
    # ad accounts and their imports (portal.models.ad_account)
    "revoked": _l("access revoked"), "queued": _l("queued"), "running": _l("running"),
    "waiting": _l("waiting to retry"), "done": _l("done"),
    "backfill": _l("first import"), "daily": _l("daily"), "manual": _l("on request"),
}
# The report's own row names (portal.reports.services NONE_LABEL, AMOCRM_NO_UTM); tag values are shown as they are.
GROUP_LABELS = {"(none)": _l("(none)"), "(amoCRM, no UTM)": _l("(amoCRM, no UTM)")}


def register_template_helpers(app: Flask) -> None:
    app.context_processor(_navigation)
    app.add_template_global(can)  # {% if can('leads.change') %}: controls only for roles that may use them
    app.add_template_filter(state_label)
    app.add_template_filter(group_label)


def _navigation() -> dict:
    registered = current_app.view_functions
    return {"nav_items": [item for item in NAV_ITEMS if item[0] in registered], "nav_section": nav_section()}


def nav_section() -> str:
    """The menu item the current page belongs to: the top blueprint of its endpoint ("settings.api_tokens.index"
    is under Settings), or the item NAV_SECTIONS puts it under."""
    top = (request.endpoint or "").split(".")[0] if has_request_context() else ""
    return NAV_SECTIONS.get(top, top)


def state_label(state: str | None) -> str:
    """The reader's word for a stored state; an unknown one is shown as stored."""
    if state is None:
        return "—"
    return str(STATE_LABELS.get(state, state))


def group_label(label: str) -> str:
    """A report row's name: the report's own names in the reader's language, tag values as they are."""
    return str(GROUP_LABELS.get(label, label))
