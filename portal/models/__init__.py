"""All models, one module per aggregate."""
from portal.crypto import register as register_encrypted_columns
from portal.extensions import db
from portal.models.activity import SyncLogEntry, WebhookEvent, WebhookReceipt
from portal.models.ad_account import AdAccount, AdCampaignTags, AdOAuthState, AdPlatformConnection, SpendImport
from portal.models.ad_spend import AdSpend
from portal.models.amocrm import AmoCRMConnection, AmoCRMContact, OAuthState
from portal.models.deal import Deal
from portal.models.lead import Lead
from portal.models.lead_credit import LeadCredit
from portal.models.mail import OutboxMail, PasswordReset
from portal.models.report_rollup import CreditRollup, ReportRollup
from portal.models.user import Invite, User, UserSession
from portal.models.visit import Visit
from portal.models.workspace import ApiToken, Workspace

register_encrypted_columns(db.Model)  # secrets sealed for their row on flush, opened on load

__all__ = [
    "AdAccount",
    "AdCampaignTags",
    "AdOAuthState",
    "AdPlatformConnection",
    "AdSpend",
    "AmoCRMConnection",
    "AmoCRMContact",
    "ApiToken",
    "CreditRollup",
    "Invite",
    "Lead",
    "LeadCredit",
    "OAuthState",
    "OutboxMail",
    "PasswordReset",
    "Deal",
    "ReportRollup",
    "SpendImport",
    "SyncLogEntry",
    "User",
    "UserSession",
    "Visit",
    "WebhookEvent",
    "WebhookReceipt",
    "Workspace",
]
