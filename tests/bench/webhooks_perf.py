"""Benchmark: webhook acknowledgement under 32 concurrent senders, and events processed per second by one worker.

    cd tests && python bench/webhooks_perf.py [--duration 20] [--workers 2] [--threads 1]

Needs PostgreSQL, Redis and Debian's `wrk` (apt-get install -y wrk). It builds its own database
(BENCH_DATABASE_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/leadpath_bench_webhooks, dropped
and created) and uses BENCH_REDIS_URL (default redis://127.0.0.1:6379/11, flushed). The web side is gunicorn
with the production config's sync workers (--threads > 1 runs gthread); every request is a realistic ~1.3 KB
`leads[status]` + `leads[update]` body with a distinct deal, so dedupe never short-cuts it. Targets: ≥ 1,000
webhooks/s acknowledged with p99 ≤ 50 ms; ≥ 300 events/s processed per worker.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/leadpath_bench_webhooks")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
SECRET_KEY = "bench-secret-key-not-for-production"
ACCOUNT_ID = 17769199
PORT = int(os.environ.get("BENCH_PORT", 8731))

LUA = r"""
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  base = tonumber(tid) * 10000000
end
local tail = "&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=142&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=7039101"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D=9217056&leads%5Bstatus%5D%5B0%5D%5Bprice%5D=50000"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0"
  .. "&leads%5Bstatus%5D%5B0%5D%5Blast_modified%5D=1704912474&leads%5Bstatus%5D%5B0%5D%5Bcreated_at%5D=1704900000"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bid%5D=24807"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bname%5D=utm_source"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=google"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B1%5D%5Bid%5D=24809"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B1%5D%5Bname%5D=utm_campaign"
  .. "&leads%5Bstatus%5D%5B0%5D%5Bcustom_fields%5D%5B1%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=spring"
  .. "&leads%5Bstatus%5D%5B0%5D%5Btags%5D%5B0%5D%5Bid%5D=11&leads%5Bstatus%5D%5B0%5D%5Btags%5D%5B0%5D%5Bname%5D=vip"
  .. "&account%5Bsubdomain%5D=example&account%5Bid%5D=ACCOUNT"
  .. "&account%5B_links%5D%5Bself%5D=https%3A%2F%2Fexample.amocrm.ru"
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
function request()
  counter = counter + 1
  local body = "leads%5Bstatus%5D%5B0%5D%5Bid%5D=" .. (base + counter) .. tail
  return wrk.format("POST", nil, headers, body)
end
""".replace("ACCOUNT", str(ACCOUNT_ID))


def environment() -> dict:
    from config import derived_fernet_key

    return {**os.environ, "LEADPATH_CONFIG": "production", "SECRET_KEY": SECRET_KEY, "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL, "ENCRYPTION_KEYS": derived_fernet_key(SECRET_KEY), "LOG_LEVEL": "WARNING",
            "WEBHOOK_GUESS_RATE_LIMIT": "20 per minute"}


def prepare() -> tuple[str, str]:
    """A fresh database with the schema and one connected workspace. → (webhook path, nothing)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(DATABASE_URL)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    os.environ.update(environment())
    app = make_app()
    from flask_migrate import upgrade

    from portal.extensions import db
    from portal.models import AmoCRMConnection, Workspace

    with app.app_context():
        upgrade()
        app.extensions["leadpath_redis"].flushdb()
        workspace = Workspace(name="Bench")
        db.session.add(workspace)
        db.session.flush()
        db.session.add(AmoCRMConnection(workspace_id=workspace.id, amocrm_account_id=ACCOUNT_ID, status="connected",
                                        pipelines={"pipelines": [{"id": 9217056, "statuses": [{"id": 7039101}]}]}))
        db.session.commit()
        return f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"


def make_app():
    from config import ProductionConfig
    from portal import create_app

    return create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=REDIS_URL,
                      ENCRYPTION_KEYS=[environment()["ENCRYPTION_KEYS"]], SECRET_KEY=SECRET_KEY,
                      RATELIMIT_STORAGE_URI=REDIS_URL, LOG_LEVEL="WARNING")


def load() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


MINIMAL_APP = '''"""The baseline: the least a Flask webhook endpoint does (read the form body, answer JSON)."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return "ok"


@app.post("/webhooks/amocrm/<public_id>/<secret>")
def webhook(public_id, secret):
    return jsonify(success=True, fields=len(request.form))
'''


def acknowledge(path: str, duration: int, workers: int, threads: int, minimal: bool = False) -> dict:
    """wrk against the webhook URL: the real app, or (`minimal`) MINIMAL_APP under the same gunicorn settings."""
    workdir = tempfile.mkdtemp(prefix="leadpath-bench-")
    if minimal:
        Path(workdir, "minimal_app.py").write_text(MINIMAL_APP)
    worker_class = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), *worker_class,
         "-b", f"127.0.0.1:{PORT}", "--log-level", "warning", "minimal_app:app" if minimal else "wsgi:app"],
        cwd=workdir if minimal else ROOT, env=environment())
    try:
        deadline = time.monotonic() + 20
        import requests

        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(LUA)
        subprocess.run(["wrk", "-t", "4", "-c", "32", "-d", "3s", "-s", script.name,
                        f"http://127.0.0.1:{PORT}{path}"], capture_output=True, check=True)  # warm up
        load_before = load()
        result = subprocess.run(["wrk", "-t", "4", "-c", "32", "-d", f"{duration}s", "--latency", "-s", script.name,
                                 f"http://127.0.0.1:{PORT}{path}"], capture_output=True, text=True, check=True)
        os.unlink(script.name)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    output = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rate": rate, "p50_ms": _ms(p50), "p99_ms": _ms(p99), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "load_before": load_before, "load_after": load(), "raw": output}


def _ms(match) -> float:
    value, unit = float(match.group(1)), match.group(2)
    return {"us": value / 1000, "ms": value, "s": value * 1000}[unit]


def process(limit_seconds: int) -> dict:
    """One worker (in this process, as `flask worker webhooks` runs it) drains the queue for at most
    `limit_seconds` (a running job finishes its batch); events/s = processed events / elapsed."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.jobs.queues import WEBHOOKS, get_queue
    from portal.jobs.worker import build_worker
    from portal.models import WebhookEvent

    app = make_app()
    with app.app_context():
        # Events waiting, not jobs: one job per workspace drains all of its events in batches.
        waiting = db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.status == "received"))
        db.session.rollback()
    worker = build_worker(app, [WEBHOOKS])
    deadline = time.monotonic() + limit_seconds
    started = time.perf_counter()
    load_before = load()
    processed_jobs = 0
    while time.monotonic() < deadline:
        if not worker.work(burst=True, max_jobs=200, logging_level="WARNING"):
            break
        processed_jobs += 200
        with app.app_context():
            if get_queue(WEBHOOKS).count == 0:
                break
    elapsed = time.perf_counter() - started
    with app.app_context():
        processed = db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.status == "processed"))
    return {"waiting": waiting, "processed": processed, "seconds": elapsed, "rate": processed / elapsed,
            "load_before": load_before, "load_after": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers: 1 per core is best here")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker: > 1 runs gthread")
    parser.add_argument("--process-seconds", type=int, default=30)
    parser.add_argument("--no-minimal", action="store_true", help="skip the minimal handler's run")
    args = parser.parse_args()
    path = prepare()
    server_kind = f"{args.workers} sync" if args.threads == 1 else f"{args.workers}x{args.threads} gthread"
    ack = acknowledge(path, args.duration, args.workers, args.threads)
    print(ack["raw"])
    print(f"ACK  {ack['rate']:.0f} webhooks/s, p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms, "
          f"non-2xx {ack['non_2xx']} (gunicorn {server_kind}, 32 connections; "
          f"load {ack['load_before']} → {ack['load_after']}, {os.cpu_count()} cores)")
    if not args.no_minimal:
        base = acknowledge(path, args.duration, args.workers, args.threads, minimal=True)
        print(f"MIN  {base['rate']:.0f} req/s, p50 {base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms (a minimal "
              f"Flask form handler, same settings; load {base['load_before']} → {base['load_after']}); "
              f"ack ratio {ack['rate'] / base['rate']:.0%}")
    worked = process(args.process_seconds)
    print(f"WORK {worked['rate']:.0f} events/s by one worker ({worked['processed']} of {worked['waiting']} queued in "
          f"{worked['seconds']:.1f} s; load {worked['load_before']} → {worked['load_after']})")


if __name__ == "__main__":
    main()
