"""Benchmark: POST /api/leads under gunicorn + PostgreSQL + Redis, against a minimal Flask JSON handler.

    python tests/bench/intake_throughput.py [--seconds 10] [--connections 32] [--workers 4] [--rounds 2]
                                            [--compare-rollups]

Both apps run under the same gunicorn settings, one after the other, in rounds (minimal, intake, minimal, …), so
the ratio is measured under the same machine load. The load comes from `wrk` (Debian's; installed with apt-get
when missing) with a Lua script that sends a distinct lead per request: a Python load generator would be the
bottleneck on a 2-core machine. Prints accepted leads/s, p50/p99 latency, the minimal handler's figures and the
ratio; checks that every accepted lead is in the database. --compare-rollups adds, in each round, a run with the
report rollups' and credit rollups' lead triggers disabled, and prints the throughput with rollups as a share
of that.

The workspace starts with --history leads of the past 90 days, and the database is ANALYZEd as autovacuum would
have done in a live system: a fresh table without statistics gets plans no running Leadpath ever sees.

Needs PostgreSQL (trust auth for `postgres` on 127.0.0.1) and Redis; uses its own database (dropped and created)
and the Redis database given by --redis-url (flushed). The intake's rate limits are raised out of the way, but the
limiter still runs (with its Redis storage), as does the whole production path.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from cpu import cpu_snapshot, cpu_split, describe_split  # noqa: E402

LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(tid)
  workspace = args[1]
  run = args[2]
  math.randomseed(thread_id * 7919 + tonumber(run) % 100000)
end

request = function()
  counter = counter + 1
  local n = thread_id * 10000000 + counter
  local body = string.format(
    '{"userAccountId":"%s","name":"Bench %d","phone":"+7999%07d","email":"bench%s-%d@example.com",' ..
    '"message":"Benchmark lead","utm_source":"google","utm_medium":"cpc","utm_campaign":"spring",' ..
    '"landing_page":"https://shop.example/?utm_source=google","first_touch":{"utm_source":"yandex",' ..
    '"utm_campaign":"winter","timestamp":1700000000000}}',
    workspace, n, math.random(0, 9999999), run, n)
  return wrk.format("POST", "/api/leads", {["Content-Type"] = "application/json",
                                           ["Idempotency-Key"] = "bench-" .. run .. "-" .. n}, body)
end

done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, non2xx, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"""

MINIMAL_APP = '''"""The baseline: the least a Flask JSON endpoint does (read the JSON body, answer 201 with JSON)."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/leads")
def leads():
    data = request.get_json()
    return jsonify(success=True, leadId=len(data), message="ok"), 201
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk with apt-get …", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


HISTORY_SQL = """
INSERT INTO leads (workspace_id, name, phone, email, message, utm_source, utm_medium, utm_campaign, first_touch_at,
                   is_spam, sync_status, sync_attempts, created_at)
SELECT :workspace_id, 'Earlier ' || n, '+7916' || lpad(n::text, 7, '0'), 'earlier' || n || '@example.com', '',
       'google', 'cpc', 'campaign-' || (n % 40), now() - (n % 90) * interval '1 day', false, 'synced', 0,
       now() - (n % 90) * interval '1 day' - (n % 1440) * interval '1 minute'
FROM generate_series(1, :history) AS n
"""


def prepare_database(database: str, redis_url: str, history: int) -> tuple[str, str]:
    """A fresh database with the real migrations, one workspace and its `history` of leads, analyzed.
    Returns (DATABASE_URL, workspace public id)."""
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from config import TestingConfig
    from portal import create_app
    from portal.extensions import db
    from portal.models import Workspace

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=redis_url)
    with app.app_context():
        upgrade()
        workspace = Workspace(name="Bench")
        db.session.add(workspace)
        db.session.commit()
        public_id = workspace.public_id
        db.session.execute(db.text(HISTORY_SQL), {"workspace_id": workspace.id, "history": history})
        db.session.commit()
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(db.text("ANALYZE"))
        app.extensions["leadpath_redis"].flushdb()
        db.engine.dispose()
    return url, public_id


def set_rollup_trigger(database_url: str, enabled: bool) -> None:
    """Switch the report rollups' and the credit rollups' triggers on leads (portal.reports.rollup_sql,
    portal.reports.credit_sql) on or off."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        for trigger in ("leads_rollup", "leads_credit_rollup"):
            connection.execute(text(f"ALTER TABLE leads {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"))
    engine.dispose()


def count_leads(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM leads")).scalar_one()
    engine.dispose()
    return count


class Gunicorn:
    def __init__(self, app_spec: str, workers: int, env: dict, cwd: Path, threads: int = 1) -> None:
        self.port = free_port()
        worker_class = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else \
            ["--worker-class", "sync"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), *worker_class, "--preload",
             "--bind", f"127.0.0.1:{self.port}", "--backlog", "2048", "--log-level", "warning", app_spec],
            cwd=cwd, env=env)

    def wait_until_serving(self, public_id: str, timeout: float = 120) -> None:
        """The port opens before the workers can answer: wait for real answers from the endpoint."""
        deadline = time.monotonic() + timeout
        answered = 0
        while time.monotonic() < deadline and answered < 3:
            body = json.dumps({"userAccountId": public_id, "email": f"ready{time.time_ns()}@example.com"}).encode()
            request = urllib.request.Request(f"{self.url}/api/leads", data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answered += response.status in (200, 201)
            except OSError:
                time.sleep(0.2)
        if answered < 3:
            self.stop()
            raise RuntimeError("gunicorn did not start serving")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_wrk(wrk: str, url: str, script: Path, workspace: str, seconds: int, connections: int, threads: int) -> dict:
    completed = subprocess.run(
        [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script),
         url, "--", workspace, str(time.time_ns())], capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line.removeprefix("WRK_RESULT "))
            seconds_taken = result["duration_us"] / 1e6
            result["accepted"] = result["requests"] - result["non2xx"]
            result["per_second"] = result["accepted"] / seconds_taken
            return result
    raise RuntimeError("wrk printed no result:\n" + completed.stdout + completed.stderr)


def describe(name: str, result: dict) -> str:
    return (f"{name:<16} {result['per_second']:>8.0f} /s accepted   p50 {result['p50_us'] / 1000:6.1f} ms   "
            f"p99 {result['p99_us'] / 1000:6.1f} ms   ({result['accepted']} ok, {result['non2xx']} non-2xx, "
            f"{result['connect'] + result['read'] + result['write'] + result['timeout']} socket errors)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (both apps): 2 per core")
    parser.add_argument("--gunicorn-threads", type=int, default=1, help="threads per worker: > 1 runs gthread")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--history", type=int, default=100_000, help="leads the workspace has already")
    parser.add_argument("--database", default="leadpath_bench_intake")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--compare-rollups", action="store_true",
                        help="also run the intake with the report rollups' lead trigger disabled, in each round")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    wrk = ensure_wrk()
    database_url, public_id = prepare_database(args.database, args.redis_url, args.history)
    workdir = Path(tempfile.mkdtemp(prefix="leadpath-bench-"))
    script = workdir / "leads.lua"
    script.write_text(LUA)
    (workdir / "minimal_app.py").write_text(MINIMAL_APP)

    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("LEADPATH_", "LEAD_"))}
    intake_env = {
        **base_env, "LEADPATH_CONFIG": "production", "SECRET_KEY": "bench-secret", "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url, "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LEAD_RATE_LIMIT_IP": "100000000 per minute", "LEAD_RATE_LIMIT_WORKSPACE": "100000000 per minute",
        "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    }
    minimal_env = {**base_env, "PYTHONPATH": str(workdir)}
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}; gunicorn --workers {args.workers} (sync); wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds}s; {args.rounds} round(s)", flush=True)

    results: dict[str, list[dict]] = {"minimal": [], "intake": [], "no-rollups": []}
    variants = [("minimal", "minimal_app:app", minimal_env, workdir), ("intake", "wsgi:app", intake_env, ROOT)]
    if args.compare_rollups:
        variants.append(("no-rollups", "wsgi:app", intake_env, ROOT))
    for round_number in range(1, args.rounds + 1):
        for name, spec, env, cwd in variants:
            if args.compare_rollups:
                set_rollup_trigger(database_url, enabled=name != "no-rollups")
            server = Gunicorn(spec, args.workers, env, cwd, args.gunicorn_threads)
            try:
                server.wait_until_serving(public_id)
                if args.warmup:
                    run_wrk(wrk, server.url, script, public_id, args.warmup, args.connections, args.threads)
                before = cpu_snapshot()
                result = run_wrk(wrk, server.url, script, public_id, args.seconds, args.connections, args.threads)
                after = cpu_snapshot()
            finally:
                server.stop()
            results[name].append(result)
            print(f"round {round_number}: " + describe(name, result), flush=True)
            if name == "intake":  # the minimal handler ran just before: the ratio of this round
                ratio = result["per_second"] / results["minimal"][-1]["per_second"]
                print(f"         ratio in this round: {ratio:.0%}", flush=True)
            if name == "no-rollups":  # the intake with rollups ran just before
                ratio = results["intake"][-1]["per_second"] / result["per_second"]
                print(f"         with rollups / without, this round: {ratio:.1%}", flush=True)
            used = cpu_split(before, after, {"app": {server.process.pid}, "postgres": "postgres",
                                             "redis": "redis-server", "wrk": set()}, finished_children="wrk")
            print("         " + describe_split(used, result["requests"], "request"), flush=True)

    def mean(name: str, key: str) -> float:
        return sum(result[key] for result in results[name]) / len(results[name])

    intake_rate, minimal_rate = mean("intake", "per_second"), mean("minimal", "per_second")
    accepted = sum(result["accepted"] for result in results["intake"])
    stored = count_leads(database_url) - args.history
    load_after = os.getloadavg()
    print()
    print(f"intake:  {intake_rate:.0f} leads/s, p50 {mean('intake', 'p50_us') / 1000:.1f} ms, "
          f"p99 {mean('intake', 'p99_us') / 1000:.1f} ms")
    print(f"minimal: {minimal_rate:.0f} req/s,   p50 {mean('minimal', 'p50_us') / 1000:.1f} ms, "
          f"p99 {mean('minimal', 'p99_us') / 1000:.1f} ms")
    ratios = sorted(intake["per_second"] / minimal["per_second"]
                    for intake, minimal in zip(results["intake"], results["minimal"], strict=True))
    print(f"ratio:   {intake_rate / minimal_rate:.0%} of the minimal handler's throughput "
          f"(rounds: {', '.join(f'{ratio:.0%}' for ratio in ratios)})")
    if args.compare_rollups:
        without = mean("no-rollups", "per_second")
        print(f"rollups: {intake_rate:.0f} leads/s with the report rollups' trigger, {without:.0f} without: "
              f"{intake_rate / without:.1%}")
        accepted += sum(result["accepted"] for result in results["no-rollups"])
    print(f"leads in the database: {stored} (accepted during measured runs: {accepted}; warm-ups add the rest)")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if stored >= accepted else 1


if __name__ == "__main__":
    sys.exit(main())
