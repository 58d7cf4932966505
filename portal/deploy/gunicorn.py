"""gunicorn settings for Leadpath: `gunicorn -c python:portal.deploy.gunicorn wsgi:app`.

Tuned by environment variables (a systemd unit's Environment= lines), with defaults for a small machine:

  GUNICORN_BIND              127.0.0.1:8000   nginx proxies to it; never bind a public interface
  GUNICORN_WORKERS           2 × cores (at most 8)
  GUNICORN_THREADS           1                 sync workers; more than 1 runs gthread workers with that many threads
  GUNICORN_TIMEOUT           30                a request stuck longer is killed and its worker replaced
  GUNICORN_FORWARDED_ALLOW_IPS 127.0.0.1      proxies whose X-Forwarded-Proto gunicorn believes
  GUNICORN_ACCESS_LOG        -                 "-" = stdout (journald); empty disables the access log

Sync workers are the default: behind nginx, which buffers slow clients, they answer the lead intake and the
amoCRM webhooks fastest. On 2 cores, 4 sync workers acknowledge ~1,000 webhooks/s with p99 ~50 ms (2 workers:
~1,300/s, p99 35 ms) where 4 × 4 gthread workers manage ~900/s with p99 ~250 ms, and 8 sync workers lose to
context switching (tests/bench/intake_throughput.py, tests/bench/webhooks_perf.py).

The access log records the path without its query string: query strings carry user input (a lead search by
e-mail or phone, report filters, login `next`) that must not end up in log files; the secrets in paths (a webhook
URL's secret, an invitation's token) are masked.
The application's own logs mask personal data.
"""
import multiprocessing
import os

from gunicorn.glogging import Logger

from portal.masking import mask_path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = _int("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2, 8))
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Replace workers now and then so a slow leak cannot grow without bound; jitter keeps them from restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# Import the app once in the master: workers fork with the code loaded (less memory, errors at start-up).
# create_app opens no connections, so nothing is shared across the fork.
preload_app = True
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
# Request line and header limits: a public endpoint must not be fed unbounded headers.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# %(U)s is the path without the query string, its secrets masked (AccessLogger); the client address is nginx's
# X-Real-IP when present.
access_log_format = '%({x-real-ip}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'


class AccessLogger(Logger):
    """gunicorn's logger, with the secrets that travel in paths (a webhook URL's secret, an invitation's token)
    masked in the access log, as in the app's own request log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        if atoms.get("U"):
            atoms["U"] = mask_path(atoms["U"])
        return atoms


logger_class = AccessLogger
