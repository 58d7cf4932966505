"""Fault suite: the fault table of docs/operations.md, rerun against real processes, one fault at a time.

Web (gunicorn), two `flask worker` processes (4 threads each) and a `flask scheduler`, the amoCRM sandbox under
gunicorn, a redis-server and a PostgreSQL cluster of the suite's own (so stopping and crashing them disturbs nothing
else on the machine). Workspaces connected to sandbox accounts receive leads (POST /api/leads) and amoCRM webhooks
(POST /webhooks/amocrm/…, status changes of their deals) at a steady rate throughout, each sent again like the
snippet and amoCRM would (same idempotency key / same body, on 5xx and connection errors) until answered. Each
phase injects one fault:

  worker SIGKILL mid-push · Redis stopped, then started empty · PostgreSQL stopped cleanly · PostgreSQL crashed
  (SIGKILL to the postmaster; recovery from the WAL) · amoCRM 5xx · amoCRM timeouts and answers dropped after the
  write (unknown outcome) · amoCRM 429s · every access token expired while both workers push and process

After a drain it prints, per phase, for leads: offered / accepted (2xx) / stored / pushed / duplicated (deals in the
sandbox per lead beyond one) / lost (accepted but not stored, or stored but not pushed), and for webhooks: offered /
acknowledged / stored / lost (acknowledged, event not in the database), with the 5xx answers seen by the senders.
Targets: 0 lost, 0 duplicated, no 500 (a 503 while the database is unreachable is the intended answer).

    python tests/bench/faults.py [--phase-seconds 20] [--rate 3] [--workspaces 4] [--only crash,redis]

`run_faults()` is what tests/chaos/test_fault_suite.py calls with a short PostgreSQL-crash phase.
"""
import argparse
import itertools
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.soak import Stack, Tally, send_lead  # noqa: E402
from fixtures.live_services import PostgresCluster, wait_for  # noqa: E402
from fixtures.sync import connect_workspace  # noqa: E402
from fixtures.webhooks import account_pairs, deal_pairs  # noqa: E402

from portal.amocrm.scheduling import PUSH_LEADS  # noqa: E402
from portal.sandbox.control import SandboxControl  # noqa: E402

DATABASE = "leadpath_faults"


@dataclass
class WebhookTally:
    offered: int = 0
    acknowledged: set = field(default_factory=set)  # event ids answered 200
    answers: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Phase:
    name: str
    inject: object  # called at `at` seconds into the phase
    heal: object = None  # called at `heal_at` seconds (or when the phase ends)
    at: float = 3.0
    heal_at: float | None = None
    leads: Tally = field(default_factory=Tally)
    webhooks: WebhookTally = field(default_factory=WebhookTally)
    notes: list = field(default_factory=list)


def send_webhook(portal_url: str, tally: WebhookTally, path: str, body: str, give_up_after: float) -> None:
    """One amoCRM webhook, sent again (same body) until answered 2xx, as amoCRM retries a failed delivery."""
    with tally.lock:
        tally.offered += 1
    started, delay = time.monotonic(), 0.5
    session = requests.Session()
    while time.monotonic() - started < give_up_after:
        try:
            response = session.post(portal_url + path, data=body, timeout=10,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
            status = response.status_code
        except requests.RequestException:
            status = "connection error"
        with tally.lock:
            tally.answers[status] += 1
            if status == 200:
                tally.acknowledged.add(response.json()["event_id"])
                return
        if isinstance(status, int) and 400 <= status < 500 and status != 429:
            return
        time.sleep(delay + random.random() * delay)
        delay = min(delay * 2, 5)


class Suite:
    """The stack, the workspaces and the load of one run."""

    def __init__(self, phase_seconds: float, rate: float, workspaces: int, log=print):
        self.phase_seconds, self.rate, self.workspace_count, self.log = phase_seconds, rate, workspaces, log
        self.cluster = PostgresCluster()
        self.stack = None
        self.workspaces: list[dict] = []  # {id, public_id, path, account_id, pipeline_id, status_id}
        self.deals: dict[int, list[int]] = {}  # workspace id → its pushed deals (for the webhooks' bodies)
        self.body_counter = itertools.count(int(time.time()))
        self.pool = ThreadPoolExecutor(max_workers=96)

    # Set-up and tear-down

    def start(self):
        self.cluster.create()
        admin = create_engine(self.cluster.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()
        database_url = self.cluster.url(DATABASE)
        from fixtures.support import make_app
        from flask_migrate import upgrade

        migrate = make_app(SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=None)
        with migrate.app_context():
            upgrade()
            from portal.extensions import db

            db.engine.dispose()
        self.stack = Stack(database_url)
        # Retries come back within seconds (the suite's phases are short); no lead runs out of attempts.
        self.stack.env.update({"SYNC_MAX_BACKOFF_SECONDS": "10", "SYNC_MAX_ATTEMPTS": "1000",
                               "LOG_LEVEL": "WARNING"})
        self.stack.start()
        self.app = make_app(SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=self.stack.redis.url,
                            PUBLIC_BASE_URL=self.stack.portal_url)
        self.control = SandboxControl(self.stack.sandbox_url)
        self.control.config(webhook_retry_delays=[1, 2, 4, 8, 15, 30, 60], webhook_timeout=5,
                            block_after_429s=100_000)
        self._connect_workspaces()

    def _connect_workspaces(self):
        from portal.extensions import db
        from portal.models import Workspace

        redirect_uri = f"{self.stack.portal_url}/amocrm/callback"
        keys = self.control.create_integration("Leadpath (faults)", redirect_uri)
        accounts = [self.control.state()["accounts"][0]["id"]] + [
            self.control.create_account(name=f"Faults {n}")["id"] for n in range(1, self.workspace_count)]
        for n, account in enumerate(accounts):
            connected = connect_workspace(self.app, self.control, f"Faults {n}", account, keys["client_id"],
                                          keys["client_secret"], redirect_uri)
            with self.app.app_context():
                workspace = db.session.get(Workspace, connected.id)
                self.workspaces.append({
                    "id": workspace.id, "public_id": workspace.public_id, "account_id": account,
                    "path": f"/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}",
                    "pipeline_id": connected.pipeline_id, "status_id": connected.status_id})
                db.session.rollback()
            self.deals[connected.id] = []

    def stop(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            if self.stack:
                self.control.faults()
                with self.app.app_context():
                    from portal.extensions import db

                    db.engine.dispose()
                self.stack.stop()
        finally:
            self.cluster.destroy()

    # The load

    def offer(self, phase: Phase, n: int):
        workspace = self.workspaces[n % len(self.workspaces)]
        self.pool.submit(send_lead, self.stack, phase.leads, workspace["public_id"], n, 300)
        deals = self.deals[workspace["id"]]
        deal_id = random.choice(deals) if deals else 90_000_000 + n  # unknown to amoCRM until deals exist
        # A distinct last_modified makes each body distinct: amoCRM's repeats of one body are deduplicated.
        body = "&".join(f"{key}={value}" for key, value in [
            *deal_pairs("status", deal_id, status_id=workspace["status_id"], pipeline_id=workspace["pipeline_id"],
                        updated_at=next(self.body_counter)), *account_pairs(workspace["account_id"])])
        self.pool.submit(send_webhook, self.stack.portal_url, phase.webhooks, workspace["path"], body, 300)

    def refresh_deals(self):
        from portal.extensions import db
        from portal.models import Lead

        try:
            with self.app.app_context():
                for workspace_id, deal_id in db.session.execute(select(Lead.workspace_id, Lead.amocrm_lead_id).where(
                        Lead.amocrm_lead_id.is_not(None)).order_by(Lead.id.desc()).limit(400)).all():
                    if deal_id not in self.deals[workspace_id]:
                        self.deals[workspace_id].append(deal_id)
                db.session.rollback()
        except Exception:  # noqa: BLE001 (the database is down in this phase: keep the deals known so far)
            pass

    # The phases

    def phases(self) -> list[Phase]:
        stack, cluster, control = self.stack, self.cluster, self.control
        half = self.phase_seconds / 2
        return [
            Phase("no fault", lambda: None),
            Phase("worker SIGKILL mid-push (each worker once)", lambda: self.kill_workers_mid_push()),
            Phase("Redis stopped, started empty", stack.redis.stop, stack.redis.start, heal_at=3 + half),
            Phase("PostgreSQL stopped cleanly (fast)", cluster.stop, cluster.start, heal_at=3 + half),
            Phase("PostgreSQL crashed (SIGKILL postmaster)", cluster.crash, cluster.start, heal_at=3 + half / 2),
            Phase("amoCRM 5xx (30 % of calls)", lambda: control.faults(http_500_rate=0.3), control.faults, at=0),
            Phase("amoCRM timeouts 10 %, answers dropped after the write 15 %", lambda: control.faults(
                timeout_rate=0.1, timeout_seconds=3, drop_after_commit_rate=0.15), control.faults, at=0),
            Phase("amoCRM 429 (HTML page; 1 request/s per account)", lambda: control.faults(
                rate_limit_per_sec=1, html_429=True), control.faults, at=0),
            Phase("tokens expired, both workers refreshing", lambda: self.expire_tokens_under_load()),
        ]

    def kill_workers_mid_push(self):
        """SIGKILL each worker once, while it runs a push (RQ's registry says so) after a burst of leads."""
        phase = self.current
        for index in (0, 1):
            for _n in range(20):
                self.offer(phase, next(self.serial))
            pid = self.stack.processes.workers[index].pid
            pushing = wait_for(lambda pid=pid: self.running_push(pid), timeout=5, every=0.02)
            self.stack.processes.kill_worker(index)
            phase.notes.append(f"worker {index} killed {'mid-push' if pushing else 'with no push running'}")
            time.sleep(2)

    def running_push(self, pid: int) -> bool:
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(self.stack.redis.url)
        try:
            return any(worker.pid == pid and (job := worker.get_current_job()) is not None
                       and job.func_name == PUSH_LEADS for worker in Worker.all(connection=connection))
        finally:
            connection.close()

    def expire_tokens_under_load(self):
        """Every access token expired, then a burst for every workspace: pushes and webhook processing on both
        workers meet the 401 together and refresh (one refresh per workspace must win; amoCRM rotates refresh
        tokens, so two refreshes with one token would revoke the connection)."""
        self.control.expire_tokens()
        for _n in range(10 * len(self.workspaces)):
            self.offer(self.current, next(self.serial))

    def run(self, only: list[str] | None = None) -> list[Phase]:
        phases = [phase for phase in self.phases()
                  if not only or any(word.lower() in phase.name.lower() for word in only)]
        self.serial = itertools.count()
        started = time.monotonic()
        for phase in phases:
            self.current = phase
            self.log(f"{time.monotonic() - started:6.1f}s  {phase.name}")
            phase_start = time.monotonic()
            injected = healed = False
            offered = 0
            last_refresh = 0.0
            while (elapsed := time.monotonic() - phase_start) < self.phase_seconds:
                if not injected and elapsed >= phase.at:
                    injected = True
                    threading.Thread(target=phase.inject, daemon=True).start()
                if injected and not healed and phase.heal and phase.heal_at is not None and elapsed >= phase.heal_at:
                    healed = True
                    phase.heal()
                while offered < int(elapsed * self.rate) + 1:
                    self.offer(phase, next(self.serial))
                    offered += 1
                if time.monotonic() - last_refresh > 3:
                    last_refresh = time.monotonic()
                    self.refresh_deals()
                self.stack.processes.supervise()
                time.sleep(0.05)
            if phase.heal and not healed:
                phase.heal()
        self.log(f"{time.monotonic() - started:6.1f}s  load stopped; draining")
        self.pool.shutdown(wait=True)
        self.drain(phases)
        return phases

    def drain(self, phases: list[Phase], timeout: float = 240):
        from portal.extensions import db
        from portal.models import Lead, WebhookEvent

        accepted = {lead_id for phase in phases for lead_id in phase.leads.accepted}

        def settled():
            self.stack.processes.supervise()
            with self.app.app_context():
                synced = db.session.scalar(select(db.func.count(Lead.id)).where(
                    Lead.id.in_(accepted), Lead.sync_status == "synced"))
                waiting = db.session.scalar(select(db.func.count(WebhookEvent.id)).where(
                    WebhookEvent.status == "received"))
                db.session.rollback()
            return synced == len(accepted) and waiting == 0

        if not wait_for(settled, timeout=timeout, every=1):
            self.log("  not settled after the drain: the figures below show what is missing")

    # The figures

    def figures(self, phases: list[Phase]) -> list[dict]:
        from portal.extensions import db
        from portal.models import AmoCRMConnection, Lead, WebhookEvent

        deals_of_lead = Counter()
        untagged = 0
        for deal in self.control.state()["leads"]:
            ours = [tag["name"] for tag in deal["_embedded"]["tags"] if tag["name"].startswith("lp-")]
            if ours:
                deals_of_lead[int(ours[0][3:])] += 1
            else:
                untagged += 1
        with self.app.app_context():
            leads = dict(db.session.execute(select(Lead.id, Lead.sync_status)).all())
            events = set(db.session.scalars(select(WebhookEvent.id)).all())
            processed = set(db.session.scalars(select(WebhookEvent.id).where(
                WebhookEvent.status != "received")).all())
            disconnected = db.session.scalar(select(db.func.count(AmoCRMConnection.id)).where(
                AmoCRMConnection.status != "connected"))
            db.session.rollback()
        rows = []
        for phase in phases:
            accepted = set(phase.leads.accepted)
            stored = accepted & set(leads)
            pushed = {lead_id for lead_id in stored if leads[lead_id] == "synced" and deals_of_lead[lead_id] >= 1}
            acknowledged = phase.webhooks.acknowledged
            lead_5xx = Counter({status: count for status, count in phase.leads.answers.items()
                                if isinstance(status, int) and status >= 500})
            webhook_5xx = Counter({status: count for status, count in phase.webhooks.answers.items()
                                   if isinstance(status, int) and status >= 500})
            rows.append({
                "phase": phase.name, "notes": phase.notes,
                "offered": phase.leads.offered, "accepted": len(accepted), "stored": len(stored),
                "pushed": len(pushed), "duplicated": sum(deals_of_lead[lead_id] - 1 for lead_id in accepted
                                                         if deals_of_lead[lead_id] > 1),
                "lost": len(accepted - pushed), "rejected": dict(phase.leads.rejected),
                "lead_5xx": dict(lead_5xx), "html_500": phase.leads.html_500,
                "webhooks_offered": phase.webhooks.offered, "acknowledged": len(acknowledged),
                "webhooks_stored": len(acknowledged & events), "webhooks_processed": len(acknowledged & processed),
                "webhooks_lost": len(acknowledged - events), "webhook_5xx": dict(webhook_5xx),
            })
        counters = self.control.counters()
        totals = {"untagged_deals": untagged, "disconnected": disconnected,
                  "restarts": self.stack.processes.restarts,
                  "sandbox": {key: counters.get(key) for key in (
                      "http_500", "timeouts", "drops_after_commit", "http_429", "tokens_refreshed",
                      "refresh_revoked")}}
        return rows, totals


def run_faults(phase_seconds: float = 20, rate: float = 3, workspaces: int = 4, only: list[str] | None = None,
               log=print) -> tuple[list[dict], dict]:
    suite = Suite(phase_seconds, rate, workspaces, log)
    try:
        suite.start()
        phases = suite.run(only)
        return suite.figures(phases)
    finally:
        suite.stop()


def table(rows: list[dict], totals: dict) -> str:
    def fives(answers: dict) -> str:
        return " ".join(f"{status}×{count}" for status, count in sorted(answers.items())) or "0"

    lines = [f"{'fault':<58} {'leads: offered accepted stored pushed dup lost 5xx':<58} "
             f"webhooks: offered acked stored lost 5xx"]
    for row in rows:
        lines.append(
            f"{row['phase']:<58} {row['offered']:>7} {row['accepted']:>8} {row['stored']:>6} {row['pushed']:>6} "
            f"{row['duplicated']:>3} {row['lost']:>4} {fives(row['lead_5xx']):<12} "
            f"{row['webhooks_offered']:>9} {row['acknowledged']:>5} {row['webhooks_stored']:>6} "
            f"{row['webhooks_lost']:>4} {fives(row['webhook_5xx'])}")
    lines += [f"  {row['phase']}: {'; '.join(row['notes'])}" for row in rows if row["notes"]]
    lines.append(f"deals without a lead's tag: {totals['untagged_deals']}; connections needing reconnection: "
                 f"{totals['disconnected']}; process restarts: {totals['restarts']}; HTML 500 pages: "
                 f"{sum(row['html_500'] for row in rows)}; 4xx refusals: "
                 f"{sum(sum(row['rejected'].values()) for row in rows)}")
    lines.append(f"webhooks processed: {sum(row['webhooks_processed'] for row in rows)} of "
                 f"{sum(row['acknowledged'] for row in rows)} acknowledged; sandbox counters {totals['sandbox']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=3, help="leads (and as many webhooks) offered per second")
    parser.add_argument("--workspaces", type=int, default=4)
    parser.add_argument("--only", default="", help="comma-separated words: run only the phases naming one")
    args = parser.parse_args()
    rows, totals = run_faults(args.phase_seconds, args.rate, args.workspaces,
                              [word for word in args.only.split(",") if word] or None)
    print(table(rows, totals))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    sys.exit(0 if all(row["lost"] == row["duplicated"] == row["webhooks_lost"] == 0
                      and 500 not in row["lead_5xx"] and 500 not in row["webhook_5xx"] for row in rows)
             and totals["untagged_deals"] == totals["disconnected"] == 0 else 1)


if __name__ == "__main__":
    main()
