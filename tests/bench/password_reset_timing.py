"""How long "Forgot your password?" takes for an address with an account and for one without (PostgreSQL).

    BENCH_REDIS_URL=redis://127.0.0.1:6379/15 python tests/bench/password_reset_timing.py [--runs 400]
                                                                             [--floor 0.25]

Creates a dedicated database (dropped at the end), migrates it, makes many accounts, then posts the form through
the Flask test client (the view, the service, rendering and the database: what a network observer's timing is made
of, minus the network) for known and unknown addresses, interleaved, and prints p50, p90 and the mean of each and
their difference. The per-account mail limit is lifted so every known address gets its mail: the costly case.
Known addresses are each asked for once, so none is throttled. An unknown address does the same reads, token,
mail rendering and sealing (portal.auth.password_reset); only the two INSERTs and the job's enqueueing differ.
It runs twice: with no floor (the work itself) and with PASSWORD_RESET_MIN_SECONDS (--floor, the default setting).
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from config import TestingConfig  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402

SERVER = os.environ.get("BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
# The mail's delivery job is enqueued in Redis, as in production (a Redis database the bench may write to).
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--floor", type=float, default=0.25)
    args = parser.parse_args()
    name = f"leadpath_bench_reset_{os.getpid()}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(f"{SERVER}/{name}", args.runs, args.floor)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, runs: int, floor: float) -> None:
    from flask_migrate import upgrade

    from portal.models import User, Workspace

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=REDIS, WTF_CSRF_ENABLED=False,
                     RATELIMIT_ENABLED=False, PASSWORD_RESET_MAILS_PER_ACCOUNT=10 ** 6,
                     PASSWORD_RESET_MIN_SECONDS=0.0)
    with app.app_context():
        upgrade()
        workspace = Workspace(name="Bench")
        db.session.add(workspace)
        db.session.flush()
        for number in range(runs):
            user = User(workspace_id=workspace.id, email=f"known{number}@example.com", name="Known", role="owner")
            user.password_hash = "x"  # never logged in: hashing a password per account would only slow the setup
            db.session.add(user)
        db.session.commit()
    client = app.test_client()
    for number in range(20):  # warm up both paths: templates compiled, connections open
        client.post("/password/forgot", data={"email": f"warm{number}@example.com"})
    measure(client, "no floor", range(0, runs // 2))
    app.config["PASSWORD_RESET_MIN_SECONDS"] = floor
    measure(client, f"floor {floor * 1000:.0f} ms", range(runs // 2, runs))


def measure(client, title: str, numbers) -> None:
    timings = {"known": [], "unknown": []}
    for number in numbers:
        for kind in ("known", "unknown"):
            started = time.perf_counter()
            response = client.post("/password/forgot", data={"email": f"{kind}{number}@example.com"})
            timings[kind].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
    print(title)
    for kind, values in timings.items():
        values.sort()
        print(f"  {kind:8} p50 {statistics.median(values):7.2f} ms  p90 {values[int(len(values) * 0.9)]:7.2f} ms  "
              f"mean {statistics.mean(values):7.2f} ms  (n={len(values)})")
    difference = statistics.median(timings["known"]) - statistics.median(timings["unknown"])
    print(f"  difference of the medians: {difference:+.2f} ms")

if __name__ == "__main__":
    main()
