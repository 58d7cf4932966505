"""Benchmark: POST /api/visits (the snippet's beacon) under gunicorn + PostgreSQL + Redis, against a minimal Flask
JSON handler, side by side in one run.

    python tests/bench/visits_throughput.py [--seconds 10] [--connections 32] [--workers 4] [--rounds 2]
                                            [--history 200000]

As tests/bench/intake_throughput.py (whose gunicorn, wrk and database helpers it uses): both apps under the same
gunicorn settings, in rounds (minimal, visits, minimal, …), the load from `wrk` with a Lua script that sends a
distinct visit per request as sendBeacon does (text/plain, a browser's User-Agent). Prints accepted beacons/s,
p50/p99 latency, the minimal handler's figures and the ratio; then counts the visits table: every beacon answered
202 (warm-ups and readiness checks included) must be a stored row.

The workspace starts with --history visits of the past 90 days, analyzed. Needs PostgreSQL (trust auth for
`postgres` on 127.0.0.1) and Redis; uses its own database (dropped and created) and the Redis database given by
--redis-url (flushed). The rate limits are raised out of the way; the limiter still runs, with its Redis storage.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from cpu import cpu_snapshot, cpu_split, describe_split  # noqa: E402
from intake_throughput import ROOT, Gunicorn, describe, ensure_wrk, prepare_database  # noqa: E402

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")

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
  run = tonumber(args[2]) % 4294967296
  agent = args[3]
end

request = function()
  counter = counter + 1
  local visit = string.format("%08x%08x%016x", run, thread_id, counter)
  local visitor = string.format("%08x%08x%016x", run, thread_id + 1000, counter % 5000)
  local body = string.format(
    '{"userAccountId":"%s","visitor_id":"%s","visit_id":"%s","utm_source":"google","utm_medium":"cpc",' ..
    '"utm_campaign":"spring","gclid":"Cj0KCQ%d","referrer":"https://www.google.com/",' ..
    '"landing_page":"https://shop.example/?utm_source=google&utm_medium=cpc","device":"mobile"}',
    workspace, visitor, visit, counter)
  return wrk.format("POST", "/api/visits", {["Content-Type"] = "text/plain;charset=UTF-8",
                                            ["User-Agent"] = agent, ["Origin"] = "https://shop.example"}, body)
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

MINIMAL_APP = '''"""The baseline: the least a Flask JSON endpoint does (read the JSON body, answer 202 with JSON)."""
import json

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/visits")
def visits():
    data = json.loads(request.get_data())
    return jsonify(success=bool(data)), 202
'''

HISTORY_SQL = """
INSERT INTO visits (workspace_id, visitor_id, visit_id, started_at, utm_source, utm_medium, utm_campaign, referrer,
                    landing_page, device, created_at)
SELECT :workspace_id, md5('visitor' || (n / 3)), md5('visit' || n), now() - (n % 90) * interval '1 day',
       (ARRAY['google', 'yandex', 'vk', NULL])[n % 4 + 1], 'cpc', 'campaign-' || (n % 40),
       'https://www.google.com/', 'https://shop.example/', 'desktop', now() - (n % 90) * interval '1 day'
FROM generate_series(1, :history) AS n
"""


class BeaconServer(Gunicorn):
    def wait_until_serving(self, public_id: str, timeout: float = 120) -> None:
        """Waits for three 202s; `self.accepted` counts every beacon it got one for (each stored, in the app)."""
        deadline = time.monotonic() + timeout
        self.accepted = 0
        while time.monotonic() < deadline and self.accepted < 3:
            body = json.dumps({"userAccountId": public_id, "visitor_id": "f" * 32,
                               "visit_id": f"{time.time_ns():032x}"}).encode()
            request = urllib.request.Request(f"{self.url}/api/visits", data=body, method="POST",
                                             headers={"Content-Type": "text/plain", "User-Agent": CHROME})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.accepted += response.status == 202
            except OSError:
                time.sleep(0.2)
        if self.accepted < 3:
            self.stop()
            raise RuntimeError("gunicorn did not start serving")


def add_history(database_url: str, public_id: str, history: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        workspace_id = connection.execute(text("SELECT id FROM workspaces WHERE public_id = :p"),
                                          {"p": public_id}).scalar_one()
        connection.execute(text(HISTORY_SQL), {"workspace_id": workspace_id, "history": history})
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE visits"))
    engine.dispose()


def count_visits(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM visits")).scalar_one()
    engine.dispose()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (both apps): 2 per core")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--history", type=int, default=200_000, help="visits the workspace has already")
    parser.add_argument("--database", default="leadpath_bench_visits")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    wrk = ensure_wrk()
    database_url, public_id = prepare_database(args.database, args.redis_url, 0)
    add_history(database_url, public_id, args.history)
    workdir = Path(tempfile.mkdtemp(prefix="leadpath-bench-"))
    script = workdir / "visits.lua"
    script.write_text(LUA)
    (workdir / "minimal_app.py").write_text(MINIMAL_APP)

    base_env = {key: value for key, value in os.environ.items()
                if not key.startswith(("LEADPATH_", "LEAD_", "VISIT_"))}
    app_env = {
        **base_env, "LEADPATH_CONFIG": "production", "SECRET_KEY": "bench-secret", "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url, "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "VISIT_RATE_LIMIT_IP": "100000000 per minute", "VISIT_RATE_LIMIT_WORKSPACE": "100000000 per minute",
        "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    }
    minimal_env = {**base_env, "PYTHONPATH": str(workdir)}
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}; gunicorn --workers {args.workers} (sync); wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds}s; {args.rounds} round(s); {args.history} visits before", flush=True)

    results: dict[str, list[dict]] = {"minimal": [], "visits": []}
    accepted_in_all = 0  # every 202 of the Leadpath app: probes, warm-ups and measured runs
    for round_number in range(1, args.rounds + 1):
        for name, spec, env, cwd in (("minimal", "minimal_app:app", minimal_env, workdir),
                                     ("visits", "wsgi:app", app_env, ROOT)):
            server = BeaconServer(spec, args.workers, env, cwd)
            try:
                server.wait_until_serving(public_id)
                warmup = run_wrk(wrk, server.url, script, public_id, args.warmup, args) if args.warmup else None
                before = cpu_snapshot()
                result = run_wrk(wrk, server.url, script, public_id, args.seconds, args)
                after = cpu_snapshot()
            finally:
                server.stop()
            if name == "visits":
                accepted_in_all += server.accepted + result["accepted"] + (warmup["accepted"] if warmup else 0)
            results[name].append(result)
            print(f"round {round_number}: " + describe(name, result), flush=True)
            if name == "visits":
                ratio = result["per_second"] / results["minimal"][-1]["per_second"]
                print(f"         ratio in this round: {ratio:.0%}", flush=True)
            used = cpu_split(before, after, {"app": {server.process.pid}, "postgres": "postgres",
                                             "redis": "redis-server", "wrk": set()}, finished_children="wrk")
            print("         " + describe_split(used, result["requests"], "request"), flush=True)

    def mean(name: str, key: str) -> float:
        return sum(result[key] for result in results[name]) / len(results[name])

    visits_rate, minimal_rate = mean("visits", "per_second"), mean("minimal", "per_second")
    stored = count_visits(database_url) - args.history
    load_after = os.getloadavg()
    worst_p99 = max(result["p99_us"] for result in results["visits"]) / 1000
    print()
    print(f"visits:  {visits_rate:.0f} beacons/s, p50 {mean('visits', 'p50_us') / 1000:.1f} ms, "
          f"p99 {mean('visits', 'p99_us') / 1000:.1f} ms (worst round {worst_p99:.1f} ms)")
    print(f"minimal: {minimal_rate:.0f} req/s,   p50 {mean('minimal', 'p50_us') / 1000:.1f} ms, "
          f"p99 {mean('minimal', 'p99_us') / 1000:.1f} ms")
    ratios = sorted(visits["per_second"] / minimal["per_second"]
                    for visits, minimal in zip(results["visits"], results["minimal"], strict=True))
    print(f"ratio:   {visits_rate / minimal_rate:.0%} of the minimal handler's throughput "
          f"(rounds: {', '.join(f'{ratio:.0%}' for ratio in ratios)})")
    # Each beacon carries a visit id of its own, so stored ≥ answered means every 202 is a row. A few more rows than
    # answers are beacons stored while wrk stopped (it stops without reading their answers): at most one per
    # connection and wrk run.
    in_flight_bound = args.connections * args.rounds * (2 if args.warmup else 1)
    consistent = accepted_in_all <= stored <= accepted_in_all + in_flight_bound
    print(f"visits stored: {stored}; beacons answered 202: {accepted_in_all}; "
          f"{'every answered beacon is stored' if consistent else 'MISMATCH'} "
          f"({stored - accepted_in_all} stored whose answer wrk did not read, at most {in_flight_bound})")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if consistent else 1


def run_wrk(wrk: str, url: str, script: Path, public_id: str, seconds: int, args) -> dict:
    """wrk with the Lua script's arguments: the workspace, a run number (keeps visit ids distinct), the agent."""
    completed = subprocess.run(
        [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s", "--timeout", "5s",
         "-s", str(script), url, "--", public_id, str(time.time_ns() // 1000), CHROME],
        capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line.removeprefix("WRK_RESULT "))
            result["accepted"] = result["requests"] - result["non2xx"]
            result["per_second"] = result["accepted"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError("wrk printed no result:\n" + completed.stdout + completed.stderr)


if __name__ == "__main__":
    sys.exit(main())
