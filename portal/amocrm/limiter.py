"""amoCRM's request limit, shared by every worker process: a sliding-window log in Redis per integration and account.

amoCRM allows 7 requests per second per integration in an account and answers 429 past it; repeated violations
block the account. The log admits a call only while fewer than `rate` calls were admitted in the last window, so
no window of that length ever holds more than `rate` calls, whichever processes made them; bursts within a window
are allowed, so a slow batch does not waste the calls the next one could make. The window is a little longer than
a second (WINDOW_MS) so network jitter cannot squeeze `rate` + 1 calls into one of amoCRM's seconds. Time comes
from Redis, so every process agrees on it.
"""
import time
import uuid

from flask import current_app
from redis import Redis
from sqlalchemy import select

from portal.extensions import db, redis_connection
from portal.models import AmoCRMConnection

WINDOW_MS = 1050

_ADMIT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000
local window, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local paused_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused_until > now_ms then
  return tostring(paused_until - now_ms)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < rate then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now_ms)
"""

_PAUSE = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000 + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_ms), 'PX', math.ceil(tonumber(ARGV[1])) + 1000)
end
return 1
"""


class RequestLimiter:
    """`wait()` blocks until this caller may send one request."""

    def __init__(self, redis: Redis, key: str, rate_per_sec: float, sleep=time.sleep):
        if rate_per_sec < 1:
            raise ValueError("rate must be at least one request per second")
        self.redis = redis
        self.keys = [f"leadpath:amocrm-rate:{key}", f"leadpath:amocrm-pause:{key}"]
        self.rate = int(rate_per_sec)
        self.sleep = sleep
        self._admit = redis.register_script(_ADMIT)
        self._pause = redis.register_script(_PAUSE)

    def wait(self) -> float:
        """Returns the seconds spent waiting."""
        waited = 0.0
        while True:
            wait_ms = float(self._admit(keys=self.keys, args=[WINDOW_MS, self.rate, uuid.uuid4().hex]))
            if wait_ms <= 0:
                return waited
            seconds = min(wait_ms / 1000, 1.0) + 0.001
            self.sleep(seconds)
            waited += seconds

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (amoCRM said 429 with a retry-after)."""
        self._pause(keys=self.keys[1:], args=[seconds * 1000])


def limiter_for_workspace(workspace_id: int) -> RequestLimiter:
    """The limiter every amoCRM call for this workspace goes through: keyed by integration and account, at the
    connection's own rate (amoCRM's paid packages allow more) or the configured default."""
    connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == workspace_id))
    key = f"{connection.client_id}:{connection.amocrm_account_id}" if connection else f"workspace:{workspace_id}"
    rate = (connection.rate_limit_per_sec if connection else None) or current_app.config["AMOCRM_RATE_LIMIT_PER_SEC"]
    return RequestLimiter(redis_connection.client, key, float(rate))
