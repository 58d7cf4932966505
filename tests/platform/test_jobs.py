"""Job infrastructure: enqueue only after commit, survive Redis being down, run in the app context."""
import pytest
from fixtures.support import make_app

from portal.extensions import db
from portal.jobs.queues import DEFAULT, enqueue, get_queue
from portal.models import Workspace

JOB = "fixtures.jobs.record_workspace_name"


def test_job_waits_for_the_commit(app_context):
    workspace = Workspace(name="Queued")
    db.session.add(workspace)
    db.session.flush()
    enqueue(DEFAULT, JOB, workspace.id)
    assert get_queue(DEFAULT).count == 0  # not before the row is committed
    db.session.commit()
    assert get_queue(DEFAULT).count == 1


def test_after_only_reads_the_job_goes_at_once(app_context):
    workspace = Workspace(name="Read")
    db.session.add(workspace)
    db.session.commit()
    enqueue(DEFAULT, JOB, workspace.id)  # reading workspace.id opened a transaction that wrote nothing
    assert get_queue(DEFAULT).count == 1


def test_rollback_drops_the_job(app_context):
    workspace = Workspace(name="Never")
    db.session.add(workspace)
    db.session.flush()
    enqueue(DEFAULT, JOB, workspace.id)
    db.session.rollback()
    db.session.add(Workspace(name="Later"))
    db.session.commit()
    assert get_queue(DEFAULT).count == 0


def test_same_job_id_waits_once(app_context):
    enqueue(DEFAULT, JOB, 1, job_id="push-1")
    enqueue(DEFAULT, JOB, 1, job_id="push-1")
    assert get_queue(DEFAULT).count == 1


def test_redis_down_does_not_break_the_commit(database_schema, caplog):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        db.session.add(Workspace(name="Kept"))
        enqueue(DEFAULT, JOB, 1)
        db.session.commit()
        assert db.session.scalar(db.select(Workspace.name).where(Workspace.name == "Kept")) == "Kept"
        db.session.execute(db.delete(Workspace))
        db.session.commit()
    assert "Could not enqueue" in caplog.text


@pytest.mark.integration
def test_worker_runs_jobs_in_the_app_context(app, redis_client):
    from portal.jobs.worker import build_worker

    with app.app_context():
        workspace = Workspace(name="Worked")
        db.session.add(workspace)
        db.session.commit()
        enqueue(DEFAULT, JOB, workspace.id)
        workspace_id = workspace.id
    build_worker(app, [DEFAULT]).work(burst=True)
    assert redis_client.get(f"test:job-ran:{workspace_id}") == b"portal:Worked"


def test_in_process_worker_runs_jobs_without_redis(database_schema):
    import time

    from portal.jobs.worker import start_in_process
    from portal.periodic_jobs import PERIODIC_JOBS

    app = make_app(REDIS_URL=None)
    stop = start_in_process(app, PERIODIC_JOBS)
    try:
        with app.app_context():
            workspace = Workspace(name="Threaded")
            db.session.add(workspace)
            db.session.commit()
            enqueue(DEFAULT, JOB, workspace.id)
            client = app.extensions["leadpath_redis"]
            deadline = time.monotonic() + 10
            while client.get(f"test:job-ran:{workspace.id}") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get(f"test:job-ran:{workspace.id}") == b"portal:Threaded"
            db.session.execute(db.delete(Workspace))
            db.session.commit()
    finally:
        stop.set()


@pytest.mark.integration
def test_a_threaded_worker_process_runs_jobs_side_by_side(app, redis_client):
    """`flask worker --threads N`: N jobs at once in one process, each in its own app context."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from fixtures.support import DATABASE_URL, REDIS_URL

    with app.app_context():
        workspaces = [Workspace(name=f"Threaded {n}") for n in range(6)]
        db.session.add_all(workspaces)
        db.session.commit()
        for workspace in workspaces:
            enqueue(DEFAULT, "fixtures.jobs.slow_record", workspace.id)
        ids = [workspace.id for workspace in workspaces]
    env = {**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "TEST_REDIS_URL": REDIS_URL, "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "default", "--threads", "3",
                             "--burst"], cwd=Path(__file__).parents[2], env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert all(redis_client.get(f"test:job-ran:{workspace_id}") for workspace_id in ids)
    spans = [tuple(map(float, redis_client.get(f"test:job-span:{workspace_id}").split())) for workspace_id in ids]
    running_at_once = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert running_at_once == 3


def test_a_postgresql_pool_keeps_database_pool_size_connections():
    """Threaded workers hold two connections per push: the pool must keep them rather than close and reopen."""
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://leadpath@127.0.0.1:1/unused", DATABASE_POOL_SIZE=14)
    with app.app_context():
        assert db.engine.pool.size() == 14  # no connection is made to find out


@pytest.mark.integration
@pytest.mark.parametrize("threads", [1, 2])
def test_a_worker_process_outlives_redis_and_then_runs_a_job(database_schema, threads):
    """Redis stops under a running `flask worker` and comes back: the worker never exits, logs the outage, and
    then processes a job enqueued after the restart."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import redis
    from fixtures.live_services import RedisServer, wait_until
    from fixtures.support import DATABASE_URL

    server = RedisServer()
    server.start()
    app = make_app(REDIS_URL=server.url)
    with app.app_context():
        workspace = Workspace(name="Outage")
        db.session.add(workspace)
        db.session.commit()
        workspace_id = workspace.id
    env = {**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "TEST_REDIS_URL": server.url, "PYTHONPATH": str(Path(__file__).parents[1]), "LOG_LEVEL": "INFO"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "default", "--threads",
                               str(threads)], cwd=Path(__file__).parents[2], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        client = redis.Redis.from_url(server.url)
        wait_until(lambda: client.keys("rq:worker:*"), timeout=30, message="the worker to register")
        server.stop()
        time.sleep(4)  # RQ's loop meets the lost connection (heartbeats, dequeue) several times in this while
        assert worker.poll() is None, "the worker exited when Redis went away"
        server.start()  # same port, empty
        with app.app_context():
            enqueue(DEFAULT, JOB, workspace_id)
        client = redis.Redis.from_url(server.url)
        assert wait_until(lambda: client.get(f"test:job-ran:{workspace_id}"), timeout=60,
                          message="the job to run after Redis came back")
        assert worker.poll() is None
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
        server.stop()
        with app.app_context():
            db.session.execute(db.delete(Workspace).where(Workspace.id == workspace_id))
            db.session.commit()
    assert worker.returncode == 0, output[-3000:]
    assert "Redis" in output


@pytest.mark.integration
def test_the_in_progress_entry_of_a_sigkilled_worker_is_cleaned_at_once(database_schema):
    """A worker killed mid-job leaves its job "started" in RQ; the periodic cleaner hands it back right away."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from fixtures.live_services import RedisServer, wait_until
    from fixtures.support import DATABASE_URL
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    from portal.jobs.dead_workers import clean_jobs_of_dead_workers

    server = RedisServer()
    server.start()
    app = make_app(REDIS_URL=server.url)
    with app.app_context():
        workspace = Workspace(name="Killed")
        db.session.add(workspace)
        db.session.commit()
        workspace_id = workspace.id
        enqueue(DEFAULT, "fixtures.jobs.slow_record", workspace_id, job_id="slow-one")
    env = {**os.environ, "LEADPATH_CONFIG": "testing", "TEST_DATABASE_URL": DATABASE_URL,
           "TEST_REDIS_URL": server.url, "PYTHONPATH": str(Path(__file__).parents[1])}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "default"],
                              cwd=Path(__file__).parents[2], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        with app.app_context():
            started = StartedJobRegistry(queue=get_queue(DEFAULT))
            wait_until(lambda: started.get_job_ids(cleanup=False), timeout=30, message="the job to start")
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            assert started.get_job_ids() == ["slow-one"]  # RQ's own cleanup does not see it yet
            assert clean_jobs_of_dead_workers() == 1
            assert started.get_job_ids(cleanup=False) == []
            assert FailedJobRegistry(queue=get_queue(DEFAULT)).get_job_ids() == ["slow-one"]
    finally:
        if worker.poll() is None:
            worker.kill()
        server.stop()
        with app.app_context():
            db.session.execute(db.delete(Workspace).where(Workspace.id == workspace_id))
            db.session.commit()


def test_the_cleaner_of_dead_workers_runs_every_15_seconds():
    from portal.periodic_jobs import PERIODIC_JOBS

    assert [(job.every_seconds, job.queue) for job in PERIODIC_JOBS
            if job.func == "portal.jobs.dead_workers.clean_jobs_of_dead_workers"] == [(15, DEFAULT)]
