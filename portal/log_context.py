"""One log format for web requests and jobs: every line carries request id or job id and workspace id.

Never log tokens, secrets, full phone numbers or e-mail addresses: pass them through portal.masking first.
"""
import logging
import random
import sys
import time
from contextvars import ContextVar

from flask import Flask, g, request

from portal.masking import mask_path

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
job_id_var: ContextVar[str] = ContextVar("job_id", default="-")
workspace_id_var: ContextVar[str] = ContextVar("workspace_id", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s job=%(job_id)s ws=%(workspace_id)s] %(message)s"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        record.workspace_id = workspace_id_var.get()
        return True


def configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_leadpath", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(ContextFilter())
        handler._leadpath = True
        root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # we write our own request line
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app.before_request(_start_request)
    app.after_request(_log_request)


def _start_request() -> None:
    g.request_id = start_request(request.headers.get("X-Request-ID", ""))
    g.request_started = time.perf_counter()


def start_request(incoming_request_id: str) -> str:
    """Begin a request's log context (the Flask portal and the ingest layer alike): its request id (returned, for
    the X-Request-ID answer header) and no workspace yet."""
    request_id = new_request_id(incoming_request_id)
    request_id_var.set(request_id)
    workspace_id_var.set("-")
    return request_id


def new_request_id(incoming: str) -> str:
    """The caller's X-Request-ID when it is a plausible one, else a new id. It needs to be unique, not secret:
    no system call for random bytes (random reseeds after fork)."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else f"{random.getrandbits(64):016x}"


def _log_request(response):
    started = g.get("request_started")
    if started is not None:
        # The user the request already loaded, if any: loading it here would query the database, which may be
        # the very thing that failed (the 503 page while PostgreSQL restarts).
        user = g.get("_login_user")
        if user is not None and getattr(user, "is_authenticated", False):
            workspace_id_var.set(str(user.workspace_id))
        log_request(request.method, request.path, response.status_code, started)
        response.headers["X-Request-ID"] = g.request_id
    return response


_request_log = logging.getLogger("portal.request")


def log_request(method: str, path: str, status: int, started: float) -> None:
    """The one access log line of a request (`started`: its time.perf_counter()), its path masked."""
    if _request_log.isEnabledFor(logging.INFO):
        duration_ms = (time.perf_counter() - started) * 1000
        _request_log.info("%s %s %s %.1fms", method, mask_path(path), status, duration_ms)

