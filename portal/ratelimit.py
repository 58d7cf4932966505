"""Rate limits for the hot machine endpoints (lead intake, webhooks) in one Redis round trip.

Flask-Limiter with two decorators cost ~2 ms of CPU and four Redis round trips per request (two hits, two reads
for the rate-limit headers). Here several fixed-window counters are handled by one Lua script (EVALSHA):

- `hit(counters)` increments them in order and stops at the first one over its limit (for the intake: the IP
  counter first, so one flooding address does not use up its workspace's budget for every other visitor),
  answering with that window's remaining seconds, which the view sends as `Retry-After` with the 429;
- `blocked(counters)` only reads them (one MGET), and `add(counters)` only counts (the webhook URL's failed
  guesses: every request is checked, only 404s are counted).

Storage is `RATELIMIT_STORAGE_URI` (the same setting as Flask-Limiter's): a redis:// URL, or `memory://` (the
demo and tests) for counters in this process. **Fail open**: when Redis cannot be reached, the counting falls back
to process memory (as Flask-Limiter's in-memory fallback did) and Redis is tried again after `RETRY_SECONDS`, so
an outage costs no lead and no per-request connect timeout.
"""
import logging
import threading
import time
from dataclasses import dataclass

import redis
from flask import Flask
from limits import parse
from redis.exceptions import RedisError

from portal.redis_direct import direct

log = logging.getLogger(__name__)

EXTENSION_KEY = "leadpath_rate_limiter"
RETRY_SECONDS = 5.0
KEY_PREFIX = "leadpath:limit"

# KEYS: the counters in order; ARGV: amount, seconds for each. Returns {index of the limit exceeded or 0, ttl}.
SCRIPT = """
for i = 1, #KEYS do
  local amount = tonumber(ARGV[2 * i - 1])
  local seconds = tonumber(ARGV[2 * i])
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], seconds)
  end
  if count > amount then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 0 then
      redis.call('EXPIRE', KEYS[i], seconds)
      ttl = seconds
    end
    return {i, ttl}
  end
end
return {0, 0}
"""

# KEYS: the counters; ARGV: seconds for each. Increments all of them.
ADD_SCRIPT = """
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[i]))
  end
end
return 0
"""


@dataclass(frozen=True)
class Limit:
    amount: int
    seconds: int
    text: str


_parsed: dict[str, Limit] = {}


def parse_limit(text: str) -> Limit:
    """"30 per minute" → Limit(30, 60); parsed once per distinct string."""
    limit = _parsed.get(text)
    if limit is None:
        item = parse(text)
        limit = _parsed[text] = Limit(item.amount, item.get_expiry(), text)
    return limit


class MemoryCounters:
    """Fixed windows in this process: `memory://` storage, and the fallback while Redis is unreachable."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key → (window end, count)
        self._lock = threading.Lock()

    def check(self, counters: list[tuple[str, Limit]], count: bool = True, stop: bool = True) -> tuple[int, int]:
        """(1-based index of the first counter over its limit, or 0; seconds left in its window).
        `count`: increment (else only read); `stop`: stop counting at the first one over."""
        now = time.monotonic()
        found = (0, 0)
        with self._lock:
            if len(self._windows) > 100_000:  # bounded: drop the expired windows
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            for index, (key, limit) in enumerate(counters, start=1):
                ends, hits = self._windows.get(key, (0.0, 0))
                if ends <= now:
                    ends, hits = now + limit.seconds, 0
                if count:
                    hits += 1
                    self._windows[key] = (ends, hits)
                if (hits > limit.amount if count else hits >= limit.amount) and not found[0]:
                    found = (index, max(1, int(ends - now + 0.999)))
                    if stop:
                        break
        return found


class RateLimiter:
    """Counters in Redis (RATELIMIT_STORAGE_URI), or in memory for `memory://` and while Redis is unreachable."""

    def __init__(self, storage_uri: str, options: dict) -> None:
        self.memory = MemoryCounters()
        self.redis = None
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            self.redis = redis.Redis.from_url(storage_uri, **options)
            self._hit = self.redis.register_script(SCRIPT)
            self._add = self.redis.register_script(ADD_SCRIPT)
        self._redis_down_until = 0.0
        self._clear_until: dict[tuple[str, ...], float] = {}

    def hit(self, counters: list[tuple[str, Limit]]) -> tuple[int, int]:
        """Count, in order, until one is over its limit: (its 1-based index or 0, seconds left in its window)."""
        if self._redis_usable():
            try:
                index, ttl = direct(self.redis).run(self._hit, _keys(counters), [n for _k, limit in counters
                                                                                for n in (limit.amount, limit.seconds)])
                return int(index), max(1, int(ttl))
            except RedisError as error:
                self._redis_failed(error)
        return self.memory.check(counters)

    def blocked(self, counters: list[tuple[str, Limit]], trust_clear_for: float = 0) -> tuple[int, int]:
        """Without counting: the first counter that reached its limit (index, seconds left) or (0, 0).

        `trust_clear_for`: a "not blocked" answer is believed for that many seconds without asking Redis again,
        unless this process `add`s to those counters meanwhile (other processes' additions show up that late)."""
        keys = tuple(_keys(counters))
        now = time.monotonic()
        if self._clear_until.get(keys, 0.0) > now:
            return 0, 0
        if self._redis_usable():
            try:
                values = self.redis.mget(keys)
                for index, (value, (_key, limit)) in enumerate(zip(values, counters, strict=True), start=1):
                    if value is not None and int(value) >= limit.amount:
                        return index, max(1, int(self.redis.ttl(keys[index - 1])))
                if trust_clear_for:
                    if len(self._clear_until) > 10_000:  # bounded: one entry per client address
                        self._clear_until.clear()
                    self._clear_until[keys] = now + trust_clear_for
                return 0, 0
            except RedisError as error:
                self._redis_failed(error)
        return self.memory.check(counters, count=False)

    def add(self, counters: list[tuple[str, Limit]]) -> None:
        """Count one more on every counter."""
        self._clear_until.pop(tuple(_keys(counters)), None)
        if self._redis_usable():
            try:
                self._add(keys=_keys(counters), args=[limit.seconds for _key, limit in counters])
                return
            except RedisError as error:
                self._redis_failed(error)
        self.memory.check(counters, stop=False)

    def _redis_usable(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, error: Exception) -> None:
        self._redis_down_until = time.monotonic() + RETRY_SECONDS
        log.warning("Rate-limit storage unreachable, counting in memory for %ss: %s", RETRY_SECONDS,
                    error.__class__.__name__)


def _keys(counters: list[tuple[str, Limit]]) -> list[str]:
    return [f"{KEY_PREFIX}:{limit.amount}/{limit.seconds}:{key}" for key, limit in counters]


def rate_limiter(app: Flask) -> RateLimiter:
    """The app's limiter, made on first use from RATELIMIT_STORAGE_URI and RATELIMIT_STORAGE_OPTIONS."""
    limiter = app.extensions.get(EXTENSION_KEY)
    if limiter is None:
        limiter = app.extensions[EXTENSION_KEY] = RateLimiter(
            app.config.get("RATELIMIT_STORAGE_URI") or "memory://",
            dict(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}))
    return limiter
