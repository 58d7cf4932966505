"""Benchmark: webhook acknowledgement under 32 concurrent senders, and events processed per second by one worker.

    cd tests && python bench/webhooks_perf.py [--duration 20] [--workers 2] [--threads 1] [--events 6000]

Needs PostgreSQL, Redis and Debian's `wrk` (apt-get install -y wrk). It builds its own database
(BENCH_DATABASE_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/leadpath_bench_webhooks, dropped
and created) and uses BENCH_REDIS_URL (default redis://127.0.0.1:6379/11, flushed). The web side is gunicorn
with the production config's sync workers (--threads > 1 runs gthread); every request is a realistic ~1.3 KB
`leads[status]` + `leads[update]` body with a distinct deal, so dedupe never short-cuts it.

Processing reads each batch's deals from amoCRM (`GET /api/v4/leads?filter[id][]=…`, 100 per call; on an account
without the filtering feature, pages of 250 recently updated deals), so its phase
runs against the amoCRM sandbox under gunicorn, at amoCRM's 7 requests/s: a workspace connected to a sandbox
account with `--events` deals, one webhook event per deal stored through the inbox, then one worker drains them.
Targets: ≥ 1,000 webhooks/s acknowledged with p99 ≤ 50 ms (on 2 cores; read it as the ratio to the minimal
handler measured in the same run); ≥ 300 events/s processed per worker.
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
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "bench")]

from cpu import cpu_snapshot, cpu_split, describe_split  # noqa: E402

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


def make_app(**overrides):
    from config import ProductionConfig
    from portal import create_app

    return create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=REDIS_URL,
                      ENCRYPTION_KEYS=[environment()["ENCRYPTION_KEYS"]], SECRET_KEY=SECRET_KEY,
                      RATELIMIT_STORAGE_URI=REDIS_URL, LOG_LEVEL="WARNING", **overrides)


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
        before = cpu_snapshot()
        result = subprocess.run(["wrk", "-t", "4", "-c", "32", "-d", f"{duration}s", "--latency", "-s", script.name,
                                 f"http://127.0.0.1:{PORT}{path}"], capture_output=True, text=True, check=True)
        after = cpu_snapshot()
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
    requests_made = int(re.search(r"(\d+) requests in", output).group(1))
    # CPU per request does not depend on what else the machine runs, as the rate does.
    used = cpu_split(before, after, {"app": {server.pid}, "postgres": "postgres", "redis": "redis-server",
                                     "wrk": set()}, finished_children="wrk")
    return {"rate": rate, "requests": requests_made, "cpu": used, "app_cpu_ms": used["app"] * 1000 / requests_made,
            "p50_ms": _ms(p50), "p99_ms": _ms(p99), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "load_before": load_before, "load_after": load(), "raw": output}


def _ms(match) -> float:
    value, unit = float(match.group(1)), match.group(2)
    return {"us": value / 1000, "ms": value, "s": value * 1000}[unit]


def start_sandbox() -> tuple[subprocess.Popen, str]:
    """The amoCRM sandbox under gunicorn on a free port (amoCRM's 7 requests/s per integration and account)."""
    from fixtures.live_services import free_port, wait_for

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "8", "-b",
                               f"127.0.0.1:{port}", "--log-level", "warning", "portal.sandbox:create_app()"],
                              cwd=ROOT, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import requests

    def up() -> bool:
        try:
            return requests.get(url + "/_sandbox/state", timeout=1).ok
        except requests.RequestException:
            return False

    if not wait_for(up, timeout=30):
        server.kill()
        raise RuntimeError("the sandbox did not start")
    return server, url


def seed_events(sandbox_url: str, events: int, list_filters: str) -> int:
    """A workspace connected to the sandbox's account, `events` deals in it (made through amoCRM's API, 250 per
    call), and one stored webhook event per deal (a status change, through the inbox as the acknowledgement
    stores it; its processing is scheduled). The acknowledgement phase's events (deals amoCRM never had) are
    removed first. `list_filters`: "applied" (an account with amoCRM's filtering feature) or "ignored" (without it:
    a `filter[id][]` read answers the unfiltered list). Each event's last_modified is when its deals were made.
    → the workspace's id."""
    import requests
    from fixtures.sync import connect_workspace
    from sqlalchemy import text

    from portal.amocrm.inbox import receive_webhook
    from portal.extensions import db
    from portal.models import Workspace
    from portal.sandbox.control import SandboxControl

    control = SandboxControl(sandbox_url)
    redirect_uri = "http://127.0.0.1/amocrm/callback"
    keys = control.create_integration("Leadpath (bench)", redirect_uri)
    app = make_app(AMOCRM_DEV_HOSTS=[urlsplit(sandbox_url).netloc])
    with app.app_context():
        db.session.execute(text("TRUNCATE webhook_events, webhook_receipts RESTART IDENTITY CASCADE"))
        db.session.commit()
        app.extensions["leadpath_redis"].flushdb()
    control.set_account(control.main_account()["id"], list_filters=list_filters)
    connected = connect_workspace(app, control, "Bench processing", None, keys["client_id"], keys["client_secret"],
                                  redirect_uri)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {connected.tokens['access_token']}"
    deal_ids = []
    made_from = int(time.time())
    while len(deal_ids) < events:
        batch = [{"name": f"Deal {len(deal_ids) + n}", "price": 50000, "pipeline_id": connected.pipeline_id,
                  "status_id": connected.status_id} for n in range(min(250, events - len(deal_ids)))]
        response = session.post(f"{sandbox_url}/api/v4/leads", json=batch, timeout=30)
        if response.status_code == 429:
            time.sleep(1)
            continue
        response.raise_for_status()
        deal_ids += [lead["id"] for lead in response.json()["_embedded"]["leads"]]
    account = connected.account
    with app.app_context():
        workspace = db.session.get(Workspace, connected.id)
        public_id, secret = workspace.public_id, workspace.webhook_secret
        for deal_id in deal_ids:
            body = urlencode([(f"leads[status][0][{key}]", str(value)) for key, value in (
                ("id", deal_id), ("status_id", connected.status_id), ("pipeline_id", connected.pipeline_id),
                ("old_status_id", connected.status_id), ("price", 50000), ("last_modified", made_from))]
                + [("account[subdomain]", account["subdomain"]), ("account[id]", str(account["id"]))])
            receive_webhook(public_id, secret, body.encode())
        db.session.remove()
    return connected.id


def process(limit_seconds: int, sandbox_url: str) -> dict:
    """One worker (in this process, as `flask worker webhooks` runs it) drains the queue for at most
    `limit_seconds` (a running job finishes its batch); events/s = processed events / elapsed."""
    from sqlalchemy import func, select, text

    from portal.extensions import db
    from portal.jobs.queues import WEBHOOKS, get_queue
    from portal.jobs.worker import build_worker
    from portal.models import WebhookEvent

    app = make_app(AMOCRM_DEV_HOSTS=[urlsplit(sandbox_url).netloc])  # the sandbox is spoken to over plain http
    with app.app_context():
        # Events waiting, not jobs: one job per workspace drains all of its events in batches.
        waiting = db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.status == "received"))
        db.session.rollback()
    worker = build_worker(app, [WEBHOOKS])
    deadline = time.monotonic() + limit_seconds
    started = time.perf_counter()
    load_before = load()
    while time.monotonic() < deadline:
        if not worker.work(burst=True, max_jobs=200, logging_level="WARNING"):
            break
        with app.app_context():
            if get_queue(WEBHOOKS).count == 0:
                break
    elapsed = time.perf_counter() - started
    with app.app_context():
        statuses = dict(db.session.execute(select(WebhookEvent.status, func.count(WebhookEvent.id))
                                           .group_by(WebhookEvent.status)).all())
        deals = db.session.scalar(text("SELECT count(*) FROM deals"))
    processed = statuses.get("processed", 0)
    return {"waiting": waiting, "processed": processed, "statuses": statuses, "deals": deals, "seconds": elapsed,
            "rate": processed / elapsed, "load_before": load_before, "load_after": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers: 1 per core is best here")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker: > 1 runs gthread")
    parser.add_argument("--process-seconds", type=int, default=60)
    parser.add_argument("--events", type=int, default=6000, help="deals in the sandbox, one webhook event each")
    parser.add_argument("--list-filters", choices=("applied", "ignored"), default="applied",
                        help="the sandbox account has amoCRM's filtering feature (applied) or not (ignored)")
    parser.add_argument("--no-minimal", action="store_true", help="skip the minimal handler's run")
    args = parser.parse_args()
    path = prepare()
    server_kind = f"{args.workers} sync" if args.threads == 1 else f"{args.workers}x{args.threads} gthread"
    ack = acknowledge(path, args.duration, args.workers, args.threads)
    print(ack["raw"])
    print(f"ACK  {ack['rate']:.0f} webhooks/s, p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms, "
          f"non-2xx {ack['non_2xx']} (gunicorn {server_kind}, 32 connections; "
          f"load {ack['load_before']} → {ack['load_after']}, {os.cpu_count()} cores)")
    print("     " + describe_split(ack["cpu"], ack["requests"], "acknowledgement"))
    if not args.no_minimal:
        base = acknowledge(path, args.duration, args.workers, args.threads, minimal=True)
        print(f"MIN  {base['rate']:.0f} req/s, p50 {base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms (a minimal "
              f"Flask form handler, same settings; load {base['load_before']} → {base['load_after']}); "
              f"ack ratio {ack['rate'] / base['rate']:.0%}")
        print("     " + describe_split(base["cpu"], base["requests"], "request"))
        print(f"     app CPU per request: the acknowledgement {ack['app_cpu_ms']:.2f} ms, the minimal handler "
              f"{base['app_cpu_ms']:.2f} ms: {base['app_cpu_ms'] / ack['app_cpu_ms']:.0%} (the ratio on an idle "
              f"machine, where the app's CPU is what limits both)")
    sandbox, sandbox_url = start_sandbox()
    try:
        from portal.sandbox.control import SandboxControl

        control = SandboxControl(sandbox_url)
        seed_events(sandbox_url, args.events, args.list_filters)
        seeded = sum(control.counters()["requests_by_account"].values())
        worked = process(args.process_seconds, sandbox_url)
        calls = sum(control.counters()["requests_by_account"].values()) - seeded
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    print(f"WORK {worked['rate']:.0f} events/s by one worker, deals read from the amoCRM sandbox at 7 requests/s, "
          f"list filters {args.list_filters} "
          f"({worked['processed']} of {worked['waiting']} processed in {worked['seconds']:.1f} s, events by status "
          f"{worked['statuses']}, {worked['deals']} deals recorded, {calls} amoCRM calls; "
          f"load {worked['load_before']} → {worked['load_after']})")


if __name__ == "__main__":
    main()
