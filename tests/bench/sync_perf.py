"""Sync engine throughput against the sandbox enforcing amoCRM's limit of 7 requests/s per integration and account.

Prints: how long the contacts index of a `--contacts`-contact account takes to build (returning-customer matching:
half the one-workspace run's leads are people that account already has, typed as managers type phones); leads
pushed per second for one workspace, amoCRM calls per lead and 429s; the same for ten workspaces at once with two
worker processes; and how long a lone lead takes to reach amoCRM (p50, p95).

    python tests/bench/sync_perf.py [--contacts 100000] [--leads 3000] [--workspaces 10] [--per-workspace 1000]
                                    [--lone 20]

Uses its own PostgreSQL database (leadpath_bench_sync, created and dropped), its own redis-server on a free port,
the sandbox under gunicorn (one process: its state is in memory) and real `flask worker` processes.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.cpu import cpu_snapshot, cpu_split, describe_split  # noqa: E402
from fixtures.live_services import free_port, wait_for  # noqa: E402
from fixtures.sync import connect_workspace  # noqa: E402

from portal.sandbox.control import SandboxControl  # noqa: E402

DATABASE = "leadpath_bench_sync"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
CLIENT_ID, CLIENT_SECRET = "leadpath-sandbox-client", "leadpath-sandbox-secret"
REDIRECT_URI = "http://127.0.0.1:5000/amocrm/callback"


class Services:
    def __init__(self):
        self.processes = []
        self.redis_port, self.sandbox_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.env = {**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": DATABASE_URL,
                    "TEST_REDIS_URL": self.redis_url, "LOG_LEVEL": "WARNING"}

    def start(self):
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()
        self.spawn(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"])
        wait_for(lambda: self._ping())
        self.sandbox = self.spawn([sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gthread", "--threads", "32",
                                   "-b", f"127.0.0.1:{self.sandbox_port}", "--log-level", "warning",
                                   "portal.sandbox:create_app()"])
        wait_for(lambda: self._up(self.sandbox_url + "/_sandbox/state"))

    def spawn(self, command, **kwargs):
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, **kwargs)
        self.processes.append(process)
        return process

    def workers(self, count: int, threads: int):
        return [self.spawn([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "amocrm", "--threads",
                            str(threads)]) for _ in range(count)]

    def stop_processes(self, processes):
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    def stop(self):
        self.stop_processes(reversed(self.processes))
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()

    def _ping(self):
        try:
            return redis.Redis.from_url(self.redis_url).ping()
        except redis.ConnectionError:
            return False

    @staticmethod
    def _up(url):
        import requests

        try:
            return requests.get(url, timeout=1).ok
        except requests.RequestException:
            return False


def insert_leads(app, workspace_id: int, count: int) -> None:
    from portal.extensions import db
    from portal.models import Lead

    rows = [{"workspace_id": workspace_id, "name": f"Bench {n}", "phone": f"+7926{workspace_id:03d}{n:04d}",
             "email": None, "message": "", "utm_source": "bench", "utm_medium": "cpc", "utm_campaign": f"c{n % 5}",
             "sync_status": "pending", "sync_attempts": 0, "is_spam": False} for n in range(count)]
    with app.app_context():
        db.session.execute(Lead.__table__.insert(), rows)
        db.session.commit()


def seed_contacts(app, connected, count: int, returning: int) -> float:
    """`count` contacts in the workspace's account, as a manager types them (`8 926 …`): the first `returning` have
    the phones of the first bench leads. Created through the workspace's rate limiter; then the contacts index is
    built the way connecting builds it. Returns the build's seconds and the last contact id made."""
    from fixtures.sync import StaticTokens

    from portal.amocrm.api.client import AmoCRMClient
    from portal.amocrm.jobs import build_contacts_index
    from portal.amocrm.limiter import limiter_for_workspace

    def phone(n):
        if n < returning:
            return f"8 926 {connected.id:03d}-{n // 100:02d}-{n % 100:02d}"
        return f"8 (915) {n // 10000:03d}-{n % 10000 // 100:02d}-{n % 100:02d}"

    last_id = 0
    with app.app_context():
        api = AmoCRMClient(f"http://{connected_host(app, connected.id)}",
                           StaticTokens(connected.tokens["access_token"]),
                           before_request=limiter_for_workspace(connected.id).wait, timeout=60)
        for start in range(0, count, 250):
            answer = api.request("POST", "/api/v4/contacts", json=[
                {"name": f"Client {n}", "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": phone(n), "enum_code": "WORK"}]}]}
                for n in range(start, min(count, start + 250))])
            last_id = max([last_id] + [item["id"] for item in answer["_embedded"]["contacts"]])
        started = time.time()
        build_contacts_index(connected.id)
        return time.time() - started, last_id


def linked_to_known(app, workspace_id: int, last_seeded: int) -> int:
    from portal.extensions import db
    from portal.models import Lead

    with app.app_context():
        return db.session.scalar(select(func.count(Lead.id)).where(Lead.workspace_id == workspace_id,
                                                                   Lead.amocrm_contact_id <= last_seeded))


def connected_host(app, workspace_id: int) -> str:
    from portal.extensions import db
    from portal.models import AmoCRMConnection

    return db.session.scalar(select(AmoCRMConnection.base_domain).where(AmoCRMConnection.workspace_id == workspace_id))


def schedule(app, workspace_ids) -> None:
    from portal.amocrm.scheduling import schedule_push

    with app.app_context():
        for workspace_id in workspace_ids:
            schedule_push(workspace_id, force=True)


def synced_span(app, workspace_ids, after_id=0):
    """(synced count, first created_at, last synced_at) of the leads after `after_id` in the workspaces."""
    from portal.extensions import db
    from portal.models import Lead

    with app.app_context():
        row = db.session.execute(select(func.count(Lead.id), func.min(Lead.created_at), func.max(Lead.synced_at))
                                 .where(Lead.workspace_id.in_(workspace_ids), Lead.id > after_id,
                                        Lead.sync_status == "synced")).one()
        db.session.rollback()
        return row


def last_lead_id(app) -> int:
    from portal.extensions import db
    from portal.models import Lead

    with app.app_context():
        return db.session.scalar(select(func.coalesce(func.max(Lead.id), 0)))


def push_run(app, services, control, workspace_ids, per_workspace, workers, threads):
    after_id = last_lead_id(app)
    for workspace_id in workspace_ids:
        insert_leads(app, workspace_id, per_workspace)
    control.reset_counters()
    processes = services.workers(workers, threads)
    time.sleep(3)  # worker start-up is not what is measured
    started = time.time()
    cpu_before = cpu_snapshot()
    schedule(app, workspace_ids)
    total = per_workspace * len(workspace_ids)
    # The time is taken from the last synced_at, not from this poll, which can be seldom: each poll counts the
    # run's leads, a load of its own on the machine being measured.
    finished = wait_for(lambda: synced_span(app, workspace_ids, after_id)[0] == total, timeout=600, every=1.0)
    cpu_after = cpu_snapshot()
    count, _, last = synced_span(app, workspace_ids, after_id)
    services.stop_processes(processes)
    counters = control.counters()
    seconds = last.timestamp() - started
    return {"leads": total, "synced": count, "finished": finished, "seconds": seconds,
            "leads_per_second": count / seconds, "calls": sum(counters["requests"].values()),
            "http_429": counters["http_429"],
            "cpu": describe_split(cpu_split(cpu_before, cpu_after, {
                "workers": {process.pid for process in processes}, "sandbox": {services.sandbox.pid},
                "postgres": "postgres", "redis": "redis-server"}), count, "lead")}


def lone_leads(app, services, workspace_id, samples):
    from portal.extensions import db
    from portal.models import Lead, Workspace

    processes = services.workers(1, 2)
    scheduler = services.spawn([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"])
    time.sleep(3)
    client = app.test_client()
    with app.app_context():
        public_id = db.session.get(Workspace, workspace_id).public_id
    delays = []
    for n in range(samples):
        started = time.monotonic()
        response = client.post("/api/leads", json={"userAccountId": public_id, "name": f"Lone {n}",
                                                   "phone": f"+7925{n:07d}", "utm_source": "bench"})
        lead_id = response.json["leadId"]

        def synced(lead_id=lead_id):
            with app.app_context():
                status = db.session.scalar(select(Lead.sync_status).where(Lead.id == lead_id))
                db.session.rollback()
                return status == "synced"

        wait_for(synced, timeout=30, every=0.01)
        delays.append(time.monotonic() - started)
        time.sleep(0.3)
    services.stop_processes([*processes, scheduler])
    delays.sort()
    return {"p50": statistics.median(delays), "p95": delays[max(0, int(len(delays) * 0.95) - 1)],
            "max": delays[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts in the one-workspace run's account")
    parser.add_argument("--leads", type=int, default=3000, help="leads for the one-workspace run")
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--per-workspace", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=5, help="threads per worker process, ten-workspace run")
    parser.add_argument("--lone", type=int, default=20, help="lone leads timed one by one")
    args = parser.parse_args()

    services = Services()
    services.start()
    os.environ.update(services.env)
    try:
        from fixtures.support import make_app
        from flask_migrate import upgrade

        app = make_app(SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=services.redis_url,
                       LEAD_RATE_LIMIT_IP="100000 per minute", LEAD_RATE_LIMIT_WORKSPACE="100000 per minute")
        with app.app_context():
            upgrade()
        control = SandboxControl(services.sandbox_url, timeout=120)  # its state holds the contacts: large
        accounts = [control.state()["accounts"][0]["id"]] + [
            control.create_account(name=f"Bench {n}")["id"] for n in range(1, args.workspaces)]
        connected = [connect_workspace(app, control, f"Bench {n}", account, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI)
                     for n, account in enumerate(accounts)]
        workspaces = [workspace.id for workspace in connected]
        control.set_duplicate_control(accounts[0], False)  # only the contacts index may find returning customers
        returning = min(args.leads // 2, 10_000)
        build, last_seeded = seed_contacts(app, connected[0], args.contacts, returning)
        print(f"contacts index: {args.contacts} contacts indexed in {build:.1f}s "
              f"({args.contacts / max(build, 0.001):.0f} contacts/s, 250 per call within the rate limit); "
              f"{returning} of the {args.leads} leads below are returning customers")

        one = push_run(app, services, control, workspaces[:1], args.leads, workers=1, threads=1)
        print(f"one workspace: {linked_to_known(app, workspaces[0], last_seeded)} leads linked to contacts the "
              f"account already had")
        print(f"one workspace: {one['synced']}/{one['leads']} leads in {one['seconds']:.1f}s = "
              f"{one['leads_per_second']:.0f} leads/s; {one['calls']} amoCRM calls "
              f"({one['calls'] / max(one['synced'], 1):.3f} per lead); {one['http_429']} × 429\n  {one['cpu']}")
        many = push_run(app, services, control, workspaces, args.per_workspace, workers=2, threads=args.threads)
        print(f"{len(workspaces)} workspaces, 2 workers × {args.threads} threads: {many['synced']}/{many['leads']} "
              f"leads in {many['seconds']:.1f}s = {many['leads_per_second']:.0f} leads/s; {many['calls']} calls "
              f"({many['calls'] / max(many['synced'], 1):.3f} per lead); {many['http_429']} × 429\n  {many['cpu']}")
        lone = lone_leads(app, services, workspaces[0], args.lone)
        print(f"lone lead to amoCRM ({args.lone} samples): p50 {lone['p50'] * 1000:.0f} ms, "
              f"p95 {lone['p95'] * 1000:.0f} ms, max {lone['max'] * 1000:.0f} ms")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        with app.app_context():
            from portal.extensions import db

            db.engine.dispose()
    finally:
        services.stop()


if __name__ == "__main__":
    main()
