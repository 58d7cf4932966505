"""Login throttling that slows password guessing without locking the real owner out.

Only failed attempts count, and each counts against buckets with progressive delay: a bucket's first
`amount` failures (within `window` of each other) are free; after that, each further attempt waits
30 s, 1 min, 2 min, … (doubling, at most the window) after the bucket's last failure. Success clears the
client's own bucket.

Who is counted where (OWASP's "device cookie" pattern):
- A browser holding a **device cookie** for the account (issued after a successful login there, signed and bound
  to the account) counts only against its own bucket. Strangers' failures never slow it down, so the owner keeps
  logging in while an attack on the account goes on. A device that fails too often loses that privilege until
  its bucket cools down.
- Any other client counts against three buckets: (address, account), which holds the tight limit; the account
  as a whole for all such clients (a guesser spreading over many addresses); and the address as a whole, a much
  looser one, so one attacker behind a NAT trying many accounts does not stop their neighbours logging in.

E-mails are normalised (case, surrounding spaces) before they name a bucket, and bucket keys are keyed hashes:
no address or e-mail appears in Redis. Redis unreachable: the buckets live in this process's memory meanwhile.
"""
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from redis.exceptions import RedisError

from portal.auth.services import normalize_email
from portal.extensions import redis_connection
from portal.ratelimit import Limit, parse_limit

log = logging.getLogger(__name__)

KEY_PREFIX = "leadpath:login"
FIRST_DELAY_SECONDS = 30
REDIS_RETRY_SECONDS = 5.0
DEVICE_COOKIE_SALT = "leadpath-login-device"


def _keyed(kind: str, *parts: str) -> str:
    digest = hmac.new(current_app.secret_key.encode(), "\x00".join(parts).encode(), hashlib.sha256)
    return f"{KEY_PREFIX}:{kind}:{digest.hexdigest()[:32]}"


def account_key(email: str) -> str:
    return _keyed("account", normalize_email(email))


@dataclass(frozen=True)
class Bucket:
    key: str
    limit: Limit

    def wait_seconds(self, failures: int, last_failure: float, now: float) -> int:
        """Seconds until this bucket admits the next attempt (0: now)."""
        if failures < self.limit.amount:
            return 0
        delay = min(FIRST_DELAY_SECONDS * 2 ** (failures - self.limit.amount), self.limit.seconds)
        return max(0, int(last_failure + delay - now + 0.999))


class FailureStore:
    """Failure counts and last-failure times: in Redis, or in memory while Redis is unreachable."""

    def __init__(self) -> None:
        self._memory: dict[str, tuple[int, float, float]] = {}  # key → (failures, last failure, expires)
        self._lock = threading.Lock()
        self._redis_down_until = 0.0

    def read(self, keys: list[str]) -> list[tuple[int, float]]:
        if self._redis_usable():
            try:
                pipe = redis_connection.client.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, "n", "t")
                return [(int(n or 0), float(t or 0)) for n, t in pipe.execute()]
            except RedisError as error:
                self._redis_failed(error)
        now = time.time()
        with self._lock:
            return [(entry[0], entry[1]) if (entry := self._memory.get(key)) and entry[2] > now else (0, 0.0)
                    for key in keys]

    def add_failure(self, buckets: list[Bucket], now: float) -> None:
        if self._redis_usable():
            try:
                pipe = redis_connection.client.pipeline(transaction=True)
                for bucket in buckets:
                    pipe.hincrby(bucket.key, "n", 1)
                    pipe.hset(bucket.key, "t", now)
                    pipe.expire(bucket.key, bucket.limit.seconds)
                pipe.execute()
                return
            except RedisError as error:
                self._redis_failed(error)
        with self._lock:
            if len(self._memory) > 100_000:  # bounded: drop the cooled-down buckets
                self._memory = {k: v for k, v in self._memory.items() if v[2] > now}
            for bucket in buckets:
                failures, _last, expires = self._memory.get(bucket.key, (0, 0.0, 0.0))
                failures = failures + 1 if expires > now else 1
                self._memory[bucket.key] = (failures, now, now + bucket.limit.seconds)

    def clear(self, key: str) -> None:
        if self._redis_usable():
            try:
                redis_connection.client.delete(key)
            except RedisError as error:
                self._redis_failed(error)
        with self._lock:
            self._memory.pop(key, None)

    def _redis_usable(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _redis_failed(self, error: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        log.warning("Login throttle storage unreachable, counting in memory for %ss: %s", REDIS_RETRY_SECONDS,
                    error.__class__.__name__)


def _store() -> FailureStore:
    store = current_app.extensions.get("leadpath_login_throttle")
    if store is None:
        store = current_app.extensions["leadpath_login_throttle"] = FailureStore()
    return store


def _device_serializer() -> URLSafeSerializer:
    """Signs with SECRET_KEY; verifies with it and SECRET_KEY_FALLBACKS (a key rotation keeps devices known)."""
    keys = [*(current_app.config["SECRET_KEY_FALLBACKS"] or ()), current_app.secret_key]  # the newest last
    return URLSafeSerializer(keys, salt=DEVICE_COOKIE_SALT)


def _account_digest(email: str) -> str:
    """What binds a device cookie to its account: the e-mail's digest (the cookie is signed, so not forgeable)."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()


def device_cookie_value(email: str) -> str:
    """A new device cookie for the account of `email`."""
    return _device_serializer().dumps({"account": _account_digest(email), "nonce": secrets.token_urlsafe(16)})


def _device_nonce(email: str) -> str | None:
    """The nonce of this browser's device cookie if it is valid and was issued for this account."""
    cookie = request.cookies.get(current_app.config["LOGIN_DEVICE_COOKIE_NAME"])
    if not cookie or len(cookie) > 300:
        return None
    try:
        data = _device_serializer().loads(cookie)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("account") != _account_digest(email):
        return None
    return str(data.get("nonce", "")) or None


class LoginAttempt:
    """The buckets one login attempt counts against (see the module's docstring)."""

    def __init__(self, email: str) -> None:
        config = current_app.config
        self.email = normalize_email(email)
        account = account_key(self.email)
        address = request.remote_addr or "unknown"
        per_client = parse_limit(config["LOGIN_FAILURES_PER_CLIENT"])
        self.client_bucket = Bucket(_keyed("client", account, address), per_client)
        self.untrusted_buckets = [
            self.client_bucket,
            Bucket(_keyed("untrusted", account), parse_limit(config["LOGIN_FAILURES_PER_ACCOUNT"])),
            Bucket(_keyed("address", address), parse_limit(config["LOGIN_FAILURES_PER_ADDRESS"]))]
        nonce = _device_nonce(self.email)
        self.device_bucket = Bucket(_keyed("device", account, nonce), per_client) if nonce else None
        self._store = _store()
        self._now = time.time()
        self._trusted = False
        if self.device_bucket is not None:
            # A device that keeps failing is a device no more (until its bucket cools down).
            failures, _last = self._store.read([self.device_bucket.key])[0]
            self._trusted = failures < per_client.amount

    @property
    def trusted_device(self) -> bool:
        return self._trusted

    def _buckets(self) -> list[Bucket]:
        return [self.device_bucket] if self._trusted else self.untrusted_buckets

    def wait_seconds(self) -> int:
        """Seconds before this client may try this account again (0: now)."""
        buckets = self._buckets()
        states = self._store.read([bucket.key for bucket in buckets])
        wait = max(bucket.wait_seconds(failures, last, self._now)
                   for bucket, (failures, last) in zip(buckets, states, strict=True))
        if wait:
            # The bucket keys are keyed hashes: the line names no e-mail and no address.
            log.warning("Login attempt held back %ss (%s client, %s)", wait,
                        "known" if self._trusted else "unknown", self.client_bucket.key.rsplit(":", 1)[-1][:12])
        return wait

    def failed(self) -> None:
        self._store.add_failure(self._buckets(), self._now)

    def succeeded(self) -> None:
        self._store.clear((self.device_bucket if self._trusted else self.client_bucket).key)
