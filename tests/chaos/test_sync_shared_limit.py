"""amoCRM's rate limit is per integration and account, whoever calls. Two workspaces connected to one account through
one integration are pushed at the same time by two `flask worker` processes: every call of both passes the one
limiter in Redis, so the sandbox, enforcing amoCRM's 7 requests/s, never has to answer 429. (With a limiter per
process the two would send up to 14 requests/s and be refused.)"""
import os

import pytest
from fixtures.live_services import Processes, RedisServer, wait_until
from fixtures.support import DATABASE_URL, empty_tables, make_app
from fixtures.sync import connect_workspace

from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.models import Lead, SyncLogEntry

LEADS_PER_WORKSPACE = 1000  # 20 batches each: 40 calls, about 6 s at 7 requests/s

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def insert_pending_leads(app, workspace_id: int) -> None:
    with app.app_context():
        db.session.execute(Lead.__table__.insert(), [
            {"workspace_id": workspace_id, "name": f"Lead {n}", "phone": f"+7926{workspace_id:03d}{n:04d}",
             "message": "", "utm_source": "google", "utm_campaign": "spring", "sync_status": "pending",
             "sync_attempts": 0, "is_spam": False} for n in range(LEADS_PER_WORKSPACE)])
        db.session.commit()


def pending(app) -> int:
    with app.app_context():
        count = db.session.scalar(db.select(db.func.count(Lead.id)).where(Lead.sync_status != "synced"))
        db.session.rollback()
        return count


def test_two_worker_processes_share_one_integrations_rate_limit(database_schema, sandbox):
    redis_server = RedisServer()
    redis_server.start()
    app = make_app(REDIS_URL=redis_server.url)
    processes = None
    try:
        first = connect_workspace(app, sandbox, "Shop on the high street")
        second = connect_workspace(app, sandbox, "The same shop online", account_id=first.account["id"])
        sandbox.config(rate_limit_per_sec=7)
        for workspace in (first, second):
            insert_pending_leads(app, workspace.id)
        processes = Processes({**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": DATABASE_URL,
                               "TEST_REDIS_URL": redis_server.url}, queues=("amocrm",))
        processes.start(workers=2)
        with app.app_context():
            for workspace in (first, second):
                schedule_push(workspace.id, force=True)
        wait_until(lambda: pending(app) == 0, timeout=120, every=0.5, message="every lead pushed")

        assert sandbox.counters()["http_429"] == 0, processes.log_tail()
        assert len(sandbox.state()["leads"]) == 2 * LEADS_PER_WORKSPACE
        with app.app_context():
            spans = [db.session.execute(db.select(db.func.min(SyncLogEntry.created_at),
                                                  db.func.max(SyncLogEntry.created_at))
                                        .where(SyncLogEntry.workspace_id == workspace.id)).one()
                     for workspace in (first, second)]
        # The two pushes overlapped in time: both processes were calling amoCRM at once.
        assert max(start for start, _end in spans) < min(end for _start, end in spans)
    finally:
        if processes:
            processes.stop()
        redis_server.stop()
        empty_tables(app)
