"""Soak under faults: 20 workspaces connected to the amoCRM sandbox, leads arriving at a steady rate through the
API (gunicorn, HTTP), deals won and lost with webhooks flowing back, while faults are injected:

  sandbox 5xx, timeouts and responses dropped after the write; HTML 429s under a tight rate limit; every access
  token expired; a worker killed with SIGKILL; Redis restarted (empty); PostgreSQL restarted (full run only —
  the cluster is shared, `--no-postgres-restart` skips it; the API must answer 503, never 500, meanwhile).

The client retries like the snippet: same idempotency key, on 5xx and connection errors, with backoff.
At the end it prints leads offered / accepted / pushed, duplicated deals and lost leads (both must be 0), sales
expected vs recorded, the worst lead-to-deal delay, and the RSS of the web and worker processes (growth < 10 %).

    python tests/bench/soak.py [--minutes 5] [--workspaces 20] [--rate 4] [--no-postgres-restart]

Uses its own PostgreSQL database (leadpath_bench_soak, created and dropped), its own redis-server on a free port,
the sandbox and the portal under gunicorn, two `flask worker` processes and a `flask scheduler`.
`run_soak()` is what tests/test_soak_short.py calls (on the test database, without the PostgreSQL restart).
"""
import argparse
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.live_services import Processes, RedisServer, children_of, free_port, rss_kib, wait_for  # noqa: E402
from fixtures.sync import connect_workspace  # noqa: E402

from portal.sandbox.control import SandboxControl  # noqa: E402

DATABASE = "leadpath_bench_soak"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WON, LOST = 142, 143
SOURCES = ("google", "yandex", "vk")
PG_RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]


@dataclass
class Tally:
    offered: int = 0
    accepted: dict = field(default_factory=dict)  # lead id → offered at (epoch seconds)
    rejected: Counter = field(default_factory=Counter)  # 4xx answers (there should be none)
    answers: Counter = field(default_factory=Counter)  # every HTTP status seen by the client, retries included
    html_500: int = 0
    expected_sales: dict = field(default_factory=dict)  # deal id → ("won", amount) | ("lost", 0)
    faults: list = field(default_factory=list)
    outage_answers: Counter = field(default_factory=Counter)  # statuses while PostgreSQL restarts
    lock: threading.Lock = field(default_factory=threading.Lock)


class Stack:
    """The services of one soak run."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.redis = RedisServer()
        self.sandbox_port, self.portal_port = free_port(), free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.servers: list[subprocess.Popen] = []
        self.env = {**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": database_url,
                    "TEST_REDIS_URL": self.redis.url, "PUBLIC_BASE_URL": self.portal_url, "LOG_LEVEL": "WARNING",
                    "AMOCRM_TIMEOUT_SECONDS": "2", "LEAD_RATE_LIMIT_IP": "100000 per minute",
                    "LEAD_RATE_LIMIT_WORKSPACE": "100000 per minute", "SCHEDULER_TICK_SECONDS": "2"}
        self.processes = Processes(self.env, queues=("amocrm", "webhooks", "default"), worker_args=("--threads", "4"))

    def start(self):
        self.redis.start()
        self.servers.append(self._gunicorn("portal.sandbox:create_app()", self.sandbox_port, workers=1, threads=32))
        self.web = self._gunicorn("wsgi:app", self.portal_port, workers=2, threads=8)
        self.servers.append(self.web)
        if not (wait_for(lambda: _up(self.sandbox_url + "/_sandbox/state")) and
                wait_for(lambda: _up(self.portal_url + "/healthz"))):
            raise RuntimeError("the sandbox or the portal did not start")
        self.processes.start(workers=2)

    def _gunicorn(self, target: str, port: int, workers: int, threads: int):
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads",
                                 str(threads), "-b", f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning",
                                 target], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def memory(self) -> dict:
        """RSS (KiB) of the portal's gunicorn workers and of the worker process that is never killed."""
        return {"web": sum(rss_kib(pid) for pid in children_of(self.web.pid)),
                "worker": rss_kib(self.processes.workers[1].pid)}

    def stop(self):
        self.processes.stop()
        for server in reversed(self.servers):
            server.terminate()
        for server in self.servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        self.redis.stop()


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def send_lead(stack: Stack, tally: Tally, public_id: str, n: int, give_up_after: float) -> None:
    """One visitor's lead, retried like the snippet: same idempotency key, on 5xx and connection errors."""
    key = uuid.uuid4().hex
    body = {"userAccountId": public_id, "idempotency_key": key, "name": f"Soak {n}", "phone": f"+7915{n:07d}",
            "utm_source": SOURCES[n % len(SOURCES)], "utm_medium": "cpc", "utm_campaign": f"c{n % 5}"}
    offered_at = time.time()
    with tally.lock:
        tally.offered += 1
    delay = 0.5
    session = requests.Session()
    while time.time() - offered_at < give_up_after:
        try:
            response = session.post(f"{stack.portal_url}/api/leads", json=body, timeout=10,
                                    headers={"Idempotency-Key": key})
        except requests.RequestException:
            status = "connection error"
        else:
            status = response.status_code
            if status in (200, 201):
                with tally.lock:
                    tally.answers[status] += 1
                    tally.accepted[response.json()["leadId"]] = offered_at
                return
            if status == 500 and "text/html" in response.headers.get("Content-Type", ""):
                tally.html_500 += 1
            if 400 <= status < 500 and status != 429:
                with tally.lock:
                    tally.answers[status] += 1
                    tally.rejected[status] += 1
                return
        with tally.lock:
            tally.answers[status] += 1
        time.sleep(delay + random.random() * delay)
        delay = min(delay * 2, 5)


def close_deals(app, control: SandboxControl, tally: Tally, stop: threading.Event) -> None:
    """Win or lose the deals of pushed leads (a third stays open), as managers in amoCRM would."""
    from portal.extensions import db
    from portal.models import Lead

    decided: set[int] = set()
    while not stop.is_set():
        try:
            with app.app_context():
                rows = db.session.execute(select(Lead.id, Lead.amocrm_lead_id).where(
                    Lead.sync_status == "synced", Lead.amocrm_lead_id.is_not(None))).all()
                db.session.rollback()
        except Exception:  # noqa: BLE001 (PostgreSQL restarting: try again later)
            stop.wait(1)
            continue
        for lead_id, deal_id in rows:
            if lead_id in decided:
                continue
            decided.add(lead_id)
            if lead_id % 3 == 2:
                continue  # stays open
            won = lead_id % 3 == 0
            price = 1000 + (lead_id % 50) * 100 if won else None
            control.move_lead(deal_id, WON if won else LOST, price=price)
            tally.expected_sales[deal_id] = ("won", Decimal(price)) if won else ("lost", None)
        stop.wait(1)


def restart_postgres(stack: Stack, tally: Tally, public_id: str) -> None:
    """Restart the cluster while probing the API: it must answer 503 (never 500) until the database is back."""
    done = threading.Event()

    def probe():
        session = requests.Session()
        while not done.is_set():
            # No phone or e-mail: 400 while the database is up (so no lead is stored), 503 while it is down.
            try:
                response = session.post(f"{stack.portal_url}/api/leads", timeout=5,
                                        json={"userAccountId": public_id, "name": "Probe"})
                tally.outage_answers[f"/api/leads {response.status_code}"] += 1
            except requests.RequestException:
                tally.outage_answers["/api/leads connection error"] += 1
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    subprocess.run(PG_RESTART, check=True, capture_output=True)
    wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0, timeout=60)
    time.sleep(1)
    done.set()
    prober.join()


def run_soak(database_url: str, minutes: float, workspaces: int = 20, rate: float = 4.0,
             postgres_restart: bool = False, drain_seconds: float = 240, log=print) -> dict:
    """Run the soak against `database_url` (already migrated) and return its figures."""
    from fixtures.support import make_app

    from portal.amocrm.subscription import check_webhook
    from portal.extensions import db
    from portal.models import Deal, Lead, Workspace

    stack = Stack(database_url)
    stack.start()
    tally = Tally()
    stop_closing = threading.Event()
    app = make_app(SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=stack.redis.url, PUBLIC_BASE_URL=stack.portal_url)
    try:
        control = SandboxControl(stack.sandbox_url)
        # The 429 storm below squeezes every account to 0.3 requests/s, far below amoCRM's 7/s, so the 429s it
        # provokes are the soak's doing, not the client's excess: amoCRM's per-address block (tested on its own,
        # tests/sandbox/fidelity, tests/amocrm/test_sync_wire.py) would turn it into a pause of every workspace.
        control.config(webhook_retry_delays=[1, 2, 4, 8, 15, 30, 60], webhook_timeout=5, block_after_429s=100_000)
        # The integration's redirect URI must be the portal's callback: token refreshes send it.
        redirect_uri = f"{stack.portal_url}/amocrm/callback"
        keys = control.create_integration("Leadpath (soak)", redirect_uri)
        accounts = [control.state()["accounts"][0]["id"]] + [
            control.create_account(name=f"Soak {n}")["id"] for n in range(1, workspaces)]
        ids = [connect_workspace(app, control, f"Soak {n}", account, keys["client_id"], keys["client_secret"],
                                 redirect_uri).id for n, account in enumerate(accounts)]
        with app.app_context():
            for workspace_id in ids:
                # "ok" when the scheduler's first webhook check (it runs at start) subscribed it already.
                assert check_webhook(workspace_id)["status"] in ("resubscribed", "ok")
            public_ids = [db.session.get(Workspace, workspace_id).public_id for workspace_id in ids]
        assert len(control.state()["webhooks"]) == workspaces, "a webhook was not subscribed"

        closer = threading.Thread(target=close_deals, args=(app, control, tally, stop_closing), daemon=True)
        closer.start()
        duration = minutes * 60
        base_faults = {"http_500_rate": 0.05, "timeout_rate": 0.02, "timeout_seconds": 3,
                       "drop_after_commit_rate": 0.03}

        def inject(name, action):
            log(f"  {time.monotonic() - started:6.1f}s  {name}")
            tally.faults.append(name)
            action()

        plan = [
            (0.10, "sandbox: 5% × 500, 2% timeouts (3 s), 3% responses dropped after the write",
             lambda: control.faults(**base_faults)),
            (0.25, "sandbox: HTML 429s (rate limit 0.3/s per account) on top", lambda: control.faults(
                **base_faults, rate_limit_per_sec=0.3, html_429=True)),
            (0.35, "sandbox: every access token expired", lambda: (control.faults(**base_faults),
                                                                   control.expire_tokens())),
            (0.45, "worker killed with SIGKILL", lambda: stack.processes.kill_worker(0)),
            (0.55, "Redis restarted (empty)", stack.redis.restart),
        ]
        if postgres_restart:
            plan.append((0.70, "PostgreSQL restarted", lambda: restart_postgres(stack, tally, public_ids[0])))
        plan.append((0.85, "sandbox faults cleared", lambda: control.faults()))

        last_progress = [0.0]

        def settled():
            stack.processes.supervise()
            with app.app_context():
                statuses = dict(db.session.execute(select(Lead.sync_status, db.func.count(Lead.id))
                                                   .group_by(Lead.sync_status)).all())
                recorded = db.session.scalar(select(db.func.count(Deal.id)).where(Deal.state.in_(("won", "lost"))))
                db.session.rollback()
            if time.monotonic() - last_progress[0] > 10:
                last_progress[0] = time.monotonic()
                log(f"  {time.monotonic() - started:6.1f}s  accepted {len(tally.accepted)}, leads {statuses}, "
                    f"sales closed {recorded}/{len(tally.expected_sales)}")
            return statuses.get("synced", 0) == len(tally.accepted) and recorded >= len(tally.expected_sales)

        memory_start = None
        started = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=32)
        n = 0
        while (elapsed := time.monotonic() - started) < duration:
            while plan and elapsed >= plan[0][0] * duration:
                _, name, action = plan.pop(0)
                inject(name, action)
            if memory_start is None and elapsed >= 0.08 * duration:
                memory_start = stack.memory()
            due = int(elapsed * rate) + 1
            while n < due:
                pool.submit(send_lead, stack, tally, public_ids[n % workspaces], n, 600)
                n += 1
            settled()
            time.sleep(0.05)
        for _, name, action in plan:
            inject(name, action)
        log(f"  {time.monotonic() - started:6.1f}s  load stopped; draining")
        pool.shutdown(wait=True)

        wait_for(settled, timeout=drain_seconds, every=1)
        time.sleep(3)  # let the closer catch the last pushed leads and their webhooks come back
        wait_for(settled, timeout=60, every=1)
        stop_closing.set()
        closer.join(10)
        memory_end = stack.memory()
        seconds = time.monotonic() - started

        deals = control.state()["leads"]
        lead_of_deal = {}
        tags = Counter()
        for deal in deals:
            ours = [t["name"] for t in deal["_embedded"]["tags"] if t["name"].startswith("lp-")]
            if ours:
                tags[int(ours[0][3:])] += 1
                lead_of_deal[deal["id"]] = int(ours[0][3:])
        with app.app_context():
            leads = db.session.execute(select(Lead.id, Lead.sync_status, Lead.synced_at, Lead.amocrm_lead_id)).all()
            sales = {row.amocrm_lead_id: (row.state, row.amount if row.state == "won" else None)
                     for row in db.session.scalars(select(Deal)).all()}
            db.session.rollback()
        accepted = set(tally.accepted)
        pushed = sum(1 for lead in leads if lead.sync_status == "synced" and lead.id in accepted)
        lost = len(accepted - set(tags))
        duplicated = sum(count - 1 for count in tags.values()) + sum(1 for d in deals if d["id"] not in lead_of_deal)
        recorded = sum(1 for deal_id, expected in tally.expected_sales.items() if sales.get(deal_id) == expected)
        delays = [lead.synced_at.timestamp() - tally.accepted[lead.id] for lead in leads
                  if lead.synced_at and lead.id in tally.accepted]
        counters = control.counters()
        return {
            "seconds": seconds, "workspaces": workspaces, "offered": tally.offered, "accepted": len(accepted),
            "rejected": dict(tally.rejected), "pushed": pushed, "duplicated": duplicated, "lost": lost,
            "deals": len(deals), "sales_expected": len(tally.expected_sales), "sales_recorded": recorded,
            "worst_delay": max(delays, default=0.0), "answers": dict(tally.answers), "html_500": tally.html_500,
            "outage_answers": dict(tally.outage_answers), "faults": tally.faults,
            "memory_start": memory_start or memory_end, "memory_end": memory_end,
            "restarts": stack.processes.restarts,
            "sandbox": {key: counters.get(key) for key in ("http_500", "timeouts", "drops_after_commit", "http_429",
                                                            "tokens_refreshed")},
        }
    finally:
        stop_closing.set()
        if "control" in locals():
            control.faults()
        with app.app_context():
            db.engine.dispose()
        stack.stop()


def report(result: dict) -> str:
    mem = [(role, result["memory_start"][role], result["memory_end"][role]) for role in ("web", "worker")]
    lines = [
        f"soak: {result['seconds']:.0f} s, {result['workspaces']} workspaces; faults: " + "; ".join(result["faults"]),
        f"leads offered {result['offered']}, accepted {result['accepted']}, pushed {result['pushed']}, "
        f"rejected {result['rejected'] or 0}",
        f"duplicated deals {result['duplicated']}, lost {result['lost']} ({result['deals']} deals in amoCRM)",
        f"sales expected {result['sales_expected']}, recorded {result['sales_recorded']}",
        f"worst lead-to-deal delay {result['worst_delay']:.1f} s",
        "memory (RSS) " + ", ".join(f"{role} {start / 1024:.0f} → {end / 1024:.0f} MiB "
                                    f"({(end - start) / max(start, 1) * 100:+.1f}%)" for role, start, end in mem),
        f"client saw {result['answers']} (HTML 500 pages: {result['html_500']}); probes while PostgreSQL restarted: "
        f"{result['outage_answers'] or 'not restarted'}",
        f"sandbox counters {result['sandbox']}; process restarts {result['restarts']}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--rate", type=float, default=4, help="leads per second offered")
    parser.add_argument("--no-postgres-restart", action="store_true",
                        help="skip restarting the (shared) PostgreSQL cluster")
    args = parser.parse_args()

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
    try:
        from fixtures.support import make_app
        from flask_migrate import upgrade

        app = make_app(SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=None)
        with app.app_context():
            upgrade()
            from portal.extensions import db

            db.engine.dispose()
        result = run_soak(database_url, args.minutes, args.workspaces, args.rate,
                          postgres_restart=not args.no_postgres_restart)
        print(report(result))
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
              f"finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    finally:
        admin.dispose()  # its pooled connection did not survive the PostgreSQL restart
        with create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
