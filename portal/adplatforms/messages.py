"""What went wrong with an ad platform, in the viewer's language. The wire clients cannot use Flask-Babel, so their
errors carry a kind and parameters (portal.adplatforms.base.AdPlatformError) besides their English detail; the
portal stores the three (spend_imports.error_*, ad_accounts.error_* / last_error) and renders the kind here when a
page is drawn, the platform's own words under it as a secondary line."""
from flask_babel import gettext as _


def error_text(kind: str | None, params: dict | None = None) -> str:
    """The owner-facing sentence for an error kind: what happened and what to do next."""
    params = params or {}
    if kind == "revoked":
        return _("The platform no longer accepts Leadpath's access. Reconnect it in Settings → Ad accounts; "
                 "settings and imported spend stay.")
    if kind == "token_limit":
        return _("The platform refused another access token: VK Ads keeps at most five per app and user. "
                 "Disconnect connections of this VK Ads user you no longer use (or delete the app's tokens for it "
                 "in VK Ads), then turn the import on again.")
    if kind == "retry_later":
        return _("The platform is busy or limits requests; the import is tried again by itself.")
    if kind == "missing_rate":
        return _("No exchange rate from %(source)s to %(target)s: ask the administrator to add "
                 "%(source)s:%(target)s=<rate> to the AD_SPEND_RATES setting, then import again.",
                 source=params.get("source", "?"), target=params.get("target", "?"))
    if kind == "unreadable_rates":
        return _("The AD_SPEND_RATES setting cannot be read; ask the administrator to write it like USD:RUB=92.5.")
    if kind == "unexpected":
        return _("An unexpected error stopped this import; it is logged for the operators.")
    return _("The platform refused the request. Its answer is below; if it persists, reconnect the account.")


# Kinds whose English detail is Leadpath's own wording of the same sentence, not the platform's answer
OWN_KINDS = frozenset({"missing_rate", "unreadable_rates", "unexpected"})


def error_detail(kind: str | None, detail: str | None) -> str | None:
    """The platform's own words to show under `error_text`, when they add something."""
    return None if kind in OWN_KINDS else detail
