"""All models, one module per aggregate."""
from portal.models.activity import SyncLogEntry, WebhookEvent, WebhookReceipt
from portal.models.amocrm import AmoCRMConnection, AmoCRMContact, OAuthState
from portal.models.lead import Lead
from portal.models.sale import AdSpend, Sale
from portal.models.user import Invite, User
from portal.models.workspace import ApiToken, Workspace

__all__ = [
    "AdSpend",
    "AmoCRMConnection",
    "AmoCRMContact",
    "ApiToken",
    "Invite",
    "Lead",
    "OAuthState",
    "Sale",
    "SyncLogEntry",
    "User",
    "WebhookEvent",
    "WebhookReceipt",
    "Workspace",
]
