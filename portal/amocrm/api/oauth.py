"""amoCRM's OAuth token endpoint, and where it may be spoken to.

The `referer` of the OAuth redirect names the account's host. It comes from the browser, so it is checked
before anything is sent: `account_host()` accepts only subdomains of amoCRM's domains (no port) or a
configured development host (the sandbox), and `base_url()` gives https for the former, http only for the latter.
The client secret goes nowhere but `{base_url}/oauth2/access_token` of an accepted host.
"""
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests

from portal.amocrm.api.client import decode_body, error_for
from portal.amocrm.api.errors import AmoCRMError, OAuthError, TokenRevoked, TransportError

REVOKED_HINT = "Token has been revoked"
_HOST = re.compile(r"^(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
                   r"(?::(?P<port>\d{1,5}))?$")


class InvalidReferer(ValueError):
    """The `referer` is not an amoCRM account host we may talk to."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: datetime  # UTC, from server_time (or our clock) + expires_in

    def __repr__(self) -> str:  # never print tokens by accident
        return f"TokenSet(expires_at={self.expires_at.isoformat()})"


def _matches_dev_host(host: str, port: str | None, dev_hosts: Sequence[str]) -> bool:
    for entry in dev_hosts:
        entry_host, _, entry_port = entry.strip().lower().partition(":")
        if entry_host == host and (not entry_port or entry_port == port):
            return True
    return False


def _matches_domain(host: str, domains: Sequence[str]) -> bool:
    for domain in domains:
        suffix = "." + domain.strip().lower().lstrip(".")
        if len(suffix) > 1 and host.endswith(suffix) and len(host) > len(suffix):
            return True
    return False


def account_host(referer: str | None, allowed_domains: Sequence[str], dev_hosts: Sequence[str] = ()) -> str:
    """The account host named by `referer` (`example.amocrm.ru`, or `127.0.0.1:5001` for a dev host),
    lower-cased; raises InvalidReferer for anything else (schemes, paths, credentials, other domains)."""
    value = (referer or "").strip().lower()
    match = _HOST.match(value) if len(value) <= 253 else None
    if match is None:
        raise InvalidReferer("The amoCRM account address is missing or malformed.")
    host, port = match.group("host"), match.group("port")
    if _matches_dev_host(host, port, dev_hosts):
        return value
    if port is None and _matches_domain(host, allowed_domains):
        return value
    raise InvalidReferer(f"{value} is not an amoCRM address.")


def base_url(host: str, dev_hosts: Sequence[str] = ()) -> str:
    """https://host for amoCRM; http://host only for a configured development host (the sandbox)."""
    name, _, port = host.lower().partition(":")
    scheme = "http" if _matches_dev_host(name, port or None, dev_hosts) else "https"
    return f"{scheme}://{host}"


def exchange_code(base: str, client_id: str, client_secret: str, code: str, redirect_uri: str, *,
                  session: requests.Session | None = None, timeout: float = 15.0) -> TokenSet:
    """Trade an authorization code (single use, 20 minutes) for a token pair."""
    return _token_call(base, {"client_id": client_id, "client_secret": client_secret,
                              "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                       session, timeout)


def refresh(base: str, client_id: str, client_secret: str, refresh_token: str, redirect_uri: str | None = None, *,
            session: requests.Session | None = None, timeout: float = 15.0) -> TokenSet:
    """A new pair for a refresh token. The old refresh token is burnt by amoCRM: store the new pair at once.
    Raises TokenRevoked when the refresh token was used already or revoked."""
    body = {"client_id": client_id, "client_secret": client_secret, "grant_type": "refresh_token",
            "refresh_token": refresh_token}
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    return _token_call(base, body, session, timeout)


@dataclass(frozen=True)
class AccountDomain:
    """Where an account lives now, as `GET /oauth2/account/current/subdomain` says."""

    account_id: int | None
    subdomain: str
    domain: str  # the account's host, e.g. `newname.amocrm.ru`


def api_domain_of(access_token: str | None) -> str | None:
    """The `api_domain` claim of an amoCRM access token (`api-b.amocrm.ru`): the host that answers the subdomain
    lookup. Read without verifying the signature: it only chooses where to ask, and that host is checked against
    the allowed domains before anything is sent. None when the token is no JWT or has no such claim (old tokens)."""
    try:
        claims = jwt.decode(access_token or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    value = claims.get("api_domain") if isinstance(claims, dict) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def account_domain(base: str, refresh_token: str, *, session: requests.Session | None = None,
                   timeout: float = 15.0) -> AccountDomain:
    """Ask amoCRM where the account of `refresh_token` lives now (after a subdomain rename the old host answers
    404 or 401). `base` is the API host of the token's `api_domain` claim. The refresh token travels in
    `X-Refresh-Token` and is not used up (PHP SDK `AmoCRMOAuth::getAccountDomainByRefreshToken`)."""
    url = base.rstrip("/") + "/oauth2/account/current/subdomain"
    try:
        response = (session or requests).get(url, timeout=timeout,
                                             headers={"X-Refresh-Token": refresh_token, "Accept": "application/json"})
    except requests.RequestException as exc:
        raise TransportError(f"{exc.__class__.__name__} on the amoCRM subdomain lookup") from exc
    body = decode_body(response)
    if response.status_code != 200 or not isinstance(body, dict):
        raise AmoCRMError(f"amoCRM answered {response.status_code} to the subdomain lookup",
                          status=response.status_code, body=_without_secrets(body))
    domain, subdomain = body.get("domain"), body.get("subdomain")
    if not isinstance(domain, str) or not domain.strip():
        raise AmoCRMError("amoCRM's subdomain lookup named no domain", status=200, body=body)
    account_id = body.get("id")
    return AccountDomain(account_id if isinstance(account_id, int) and not isinstance(account_id, bool) else None,
                         str(subdomain or ""), domain.strip().lower())


def _token_call(base: str, payload: dict, session: requests.Session | None, timeout: float) -> TokenSet:
    url = base.rstrip("/") + "/oauth2/access_token"
    try:
        response = (session or requests).post(url, json=payload, timeout=timeout,
                                               headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise TransportError(f"{exc.__class__.__name__} on the amoCRM token endpoint") from exc
    body = decode_body(response)
    if response.status_code == 200 and isinstance(body, dict):
        return _token_set(body)
    if isinstance(body, dict) and body.get("hint") and 400 <= response.status_code < 500:
        hint = str(body["hint"])
        error_class = TokenRevoked if hint == REVOKED_HINT else OAuthError
        raise error_class(f"amoCRM refused the token request: {hint}", status=response.status_code,
                          body=_without_secrets(body), hint=hint)
    if response.status_code == 200:
        raise AmoCRMError("amoCRM's token endpoint answered something that is not JSON", status=200)
    error = error_for("POST", response, _without_secrets(body))
    if type(error) is AmoCRMError and 400 <= response.status_code < 500:
        raise OAuthError(str(error), status=response.status_code, body=error.body)
    raise error


def _token_set(body: dict[str, Any]) -> TokenSet:
    try:
        access, refresh_token = str(body["access_token"]), str(body["refresh_token"])
        expires_in = int(body.get("expires_in") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise AmoCRMError("amoCRM's token answer has no token pair") from exc
    try:
        issued = datetime.fromtimestamp(int(body["server_time"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        issued = datetime.now(UTC)
    # Our clock decides when to refresh: never trust a server time that is in our future.
    issued = min(issued, datetime.now(UTC))
    return TokenSet(access, refresh_token, issued + timedelta(seconds=expires_in))


def _without_secrets(body: Any) -> Any:
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if "token" not in key and "secret" not in key}
    return body
