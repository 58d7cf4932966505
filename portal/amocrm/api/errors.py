"""Typed errors for everything amoCRM can answer. Callers catch these, never `requests` exceptions."""
from typing import Any


class AmoCRMError(Exception):
    """Any failed amoCRM call. `status` is the HTTP status (None when there was no answer), `body` the
    decoded JSON answer, or its text when it was not JSON."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransportError(AmoCRMError):
    """Timeout, refused or dropped connection. `ambiguous` is True when the request was a write that may
    have been applied before the answer was lost (retry only with deduplication)."""

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class RateLimited(AmoCRMError):
    """429. `retry_after` in seconds when amoCRM said (JSON `retry_after` or a Retry-After header)."""

    def __init__(self, message: str, *, status: int | None = 429, body: Any = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class AccountBlocked(AmoCRMError):
    """403 with amoCRM's nginx HTML page: the account's API access is blocked (after repeated limit violations),
    on every call, the token endpoint included. Stop and alert; it is not a revoked token."""


class Forbidden(AmoCRMError):
    """403 with a problem-JSON body: the integration's user lacks the rights for this call (webhooks and custom
    fields are admin-only, a user may be denied creating deals). Only that kind of call is affected."""


class Unauthorized(AmoCRMError):
    """401 even after one refresh-and-replay."""


class ValidationFailed(AmoCRMError):
    """400 with `validation-errors`; `errors` is a flat list of {request_id, code, path, detail}."""

    def __init__(self, message: str, *, status: int | None = 400, body: Any = None,
                 errors: list[dict] | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.errors = errors or []


class ServerError(AmoCRMError):
    """5xx (502 included): amoCRM's trouble, usually transient."""


class BatchTooLarge(ServerError):
    """504 on a write: the batch was too big for amoCRM. Split it and retry."""


class OAuthError(AmoCRMError):
    """The token endpoint refused (amoCRM's problem JSON). `hint` is amoCRM's reason, e.g.
    "Authorization code has expired"."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None,
                 hint: str | None = None) -> None:
        super().__init__(message, status=status, body=body)
        self.hint = hint


class TokenRevoked(OAuthError):
    """The refresh token was used already or revoked: the connection must be re-authorized by a person."""
