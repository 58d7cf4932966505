"""All models, one module per aggregate."""
from portal.models.activity import SyncLogEntry, WebhookEvent
from portal.models.ad_spend import AdSpend
from portal.models.amocrm import AmoCRMConnection, AmoCRMContact, OAuthState
from portal.models.deal import Deal
from portal.models.lead import Lead
from portal.models.user import Invite, User, UserSession
from portal.models.workspace import ApiToken, Workspace

__all__ = [
    "AdSpend",
    "AmoCRMConnection",
    "AmoCRMContact",
    "ApiToken",
    "Invite",
    "Lead",
    "OAuthState",
    "Deal",
    "SyncLogEntry",
    "User",
    "UserSession",
    "WebhookEvent",
    "Workspace",
]
