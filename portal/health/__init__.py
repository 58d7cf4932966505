"""Liveness and readiness probes."""
import time

from flask import Blueprint, jsonify
from sqlalchemy import text

from portal.extensions import csrf, db, limiter, redis_connection

bp = Blueprint("health", __name__)
limiter.exempt(bp)
csrf.exempt(bp)


@bp.get("/healthz")
def healthz():
    """The process is alive and serving; checks nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to serve: the database and Redis answer. 503 with the failing part otherwise."""
    checks = {"database": _check(lambda: db.session.execute(text("SELECT 1"))),
              "redis": _check(lambda: redis_connection.client.ping())}
    ready = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # any failure means not ready; the class name says which kind
        db.session.rollback()
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
