"""What every ad platform's wire client gives the import: tokens, the accounts a token reaches, and cost per
campaign and day. Clients are plain libraries (no Flask, no database): built from their base URLs, the app's
OAuth client, a `requests.Session` and a timeout, they map the platform's answers to these types and errors.
"""
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None  # UTC; None: the platform gave no lifetime


@dataclass(frozen=True)
class AdAccountInfo:
    """One advertiser account a token reaches (an agency's client, a manager's customer, or the user's own)."""
    external_id: str  # Yandex: the client login; VK Ads: the user id; Google Ads: the 10-digit customer id
    name: str
    currency: str  # ISO 4217, as the platform reports it
    timezone: str | None = None  # IANA name, when the platform reports one
    manager_id: str | None = None  # the agency / manager account calls go through, when there is one


@dataclass(frozen=True)
class CampaignDay:
    """Cost of one campaign on one day (the platform's day), in the account's currency, in currency units."""
    day: date
    campaign_id: str
    campaign_name: str
    cost: Decimal
    vat_included: bool
    impressions: int = 0
    clicks: int = 0


class AdPlatformError(Exception):
    """The platform refused or failed. The message is the platform's detail in English (no tokens); `kind` and
    `params` are what the portal renders in the owner's language (portal.adplatforms.messages)."""

    kind = "refused"

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message)
        self.params = {name: str(value) for name, value in params.items()}


class TokenRevoked(AdPlatformError):
    """The token is dead (revoked, expired beyond refresh, wrong client): the owner must connect again."""

    kind = "revoked"


class TokenLimitReached(AdPlatformError):
    """The platform holds as many tokens for this user and app as it allows (VK Ads: five) and refused one more."""

    kind = "token_limit"


class RetryLater(AdPlatformError):
    """A limit was hit or a report is still being built: the same call may succeed after `retry_after` seconds."""

    kind = "retry_later"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlatformClient(Protocol):
    platform: str  # "yandex_direct" | "vk_ads" | "google_ads"

    def authorization_url(self, state: str, redirect_uri: str) -> str: ...

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet: ...

    def refresh(self, tokens: TokenSet) -> TokenSet: ...

    def accounts(self, tokens: TokenSet) -> list[AdAccountInfo]: ...

    def account_tokens(self, tokens: TokenSet, account: AdAccountInfo) -> TokenSet | None:
        """Tokens the account must be read with, obtained with the connection's `tokens` (store them with the
        account and refresh them with `refresh`), or None when the connection's tokens read it."""
        ...

    def campaign_days(self, tokens: TokenSet, account: AdAccountInfo, first: date, last: date) -> list[CampaignDay]:
        """Every campaign's cost per day from `first` to `last` inclusive; waits out offline reports itself only
        within one call's budget, else raises RetryLater."""
        ...
