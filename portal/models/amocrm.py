from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import EncryptedText
from portal.extensions import db
from portal.models.tenant import TenantOwned
from portal.models.types import JSONDocument, UTCDateTime, utcnow

CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
DISCONNECTED = "disconnected"
BLOCKED = "blocked"  # amoCRM answered 403 to everything: sync stops until someone looks

# delivery_mode: how a lead reaches amoCRM
DELIVER_AS_DEAL = "deal"  # a deal (and contact) in the chosen pipeline and stage
DELIVER_TO_UNSORTED = "unsorted"  # an incoming lead in Unsorted, for a manager to accept or decline


class AmoCRMConnection(TenantOwned, db.Model):
    """The workspace's one amoCRM account link. Secrets are encrypted at rest."""

    __tablename__ = "amocrm_connections"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The account's host (`example.amocrm.ru`, `example.kommo.com`): the OAuth `referer`, updated when amoCRM says the
    # account was renamed. Every URL to the account is built from it.
    base_domain: Mapped[str | None] = mapped_column(String(255))
    # amocrm | kommo (portal.amocrm.regions), chosen before connecting; None: the configured default (AMOCRM_REGION).
    region: Mapped[str | None] = mapped_column(String(8))
    amocrm_account_id: Mapped[int | None] = mapped_column(BigInteger)
    account_name: Mapped[str | None] = mapped_column(String(255))
    auth_type: Mapped[str] = mapped_column(String(16), default="oauth")  # oauth | long_lived
    client_id: Mapped[str | None] = mapped_column(String(64))
    client_secret: Mapped[str | None] = mapped_column(EncryptedText)
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedText)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=DISCONNECTED)
    pipeline_id: Mapped[int | None] = mapped_column(BigInteger)
    status_id: Mapped[int | None] = mapped_column(BigInteger)
    pipelines: Mapped[dict | None] = mapped_column(JSONDocument)  # last read of /api/v4/leads/pipelines
    webhook_id: Mapped[int | None] = mapped_column(BigInteger)
    webhook_destination: Mapped[str | None] = mapped_column(EncryptedText)  # it carries the webhook secret
    webhook_disabled: Mapped[bool] = mapped_column(default=False)
    webhook_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_limit_per_sec: Mapped[int | None] = mapped_column()  # None: the configured default
    last_error: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reconciled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The codes of the account's deal fields (tracking fields UTM_SOURCE, GCLID… included), read at connect and
    # corrected when amoCRM refuses one: a value for a field the account lacks is dropped, not sent.
    lead_field_codes: Mapped[list | None] = mapped_column(JSONDocument)
    # {code: {"count": n, "last_at": iso}} of values dropped for lack of a field, shown in Settings → amoCRM.
    dropped_fields: Mapped[dict | None] = mapped_column(JSONDocument)
    delivery_mode: Mapped[str] = mapped_column(String(16), default=DELIVER_AS_DEAL, server_default=DELIVER_AS_DEAL)
    # The account's custom fields as last read: {"leads": [...], "contacts": [...], "read_at": iso}, each field
    # {id, name, code, type, enums: [{id, value}]} (`portal.amocrm.custom_fields`).
    custom_fields: Mapped[dict | None] = mapped_column(JSONDocument)
    # {extra form field name: {"entity": "leads"|"contacts", "field_id": id}}
    field_mapping: Mapped[dict | None] = mapped_column(JSONDocument)


class OAuthState(TenantOwned, db.Model):
    """A server-made OAuth `state`: single use, 10 minutes, bound to workspace and user; only its hash is kept."""

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Received through secrets_uri when the button made amoCRM create an integration for this workspace.
    client_id: Mapped[str | None] = mapped_column(String(64))
    client_secret: Mapped[str | None] = mapped_column(EncryptedText)


class AmoCRMContact(TenantOwned, db.Model):
    """The workspace's contacts index (`portal.amocrm.contacts_index`): a phone (E.164) or e-mail → amoCRM contact
    id, from amoCRM's own data."""

    __tablename__ = "amocrm_contacts"
    # The second index serves the contacts index's updates by contact (a contact's keys replaced or forgotten).
    __table_args__ = (UniqueConstraint("workspace_id", "key"),
                      Index("ix_amocrm_contacts_workspace_contact", "workspace_id", "amocrm_contact_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(254))
    amocrm_contact_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
