"""RQ workers whose jobs run inside the app context, each with its own database session.

`flask --app wsgi worker [QUEUES…]` runs `AppWorker` in the foreground (no fork per job: the app, its
connection pools and imports are reused, and SIGKILL mid-job loses nothing the database does not know).
With no REDIS_URL, `start_in_process` runs a `ThreadWorker` and the scheduler in daemon threads.
"""
import logging
import signal
import threading
import time
from collections.abc import Sequence

from flask import Flask
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from portal.extensions import db, redis_connection
from portal.jobs import scheduler
from portal.jobs.queues import QUEUE_NAMES, get_queue
from portal.log_context import job_id_var, workspace_id_var

log = logging.getLogger(__name__)


class AppWorker(SimpleWorker):
    app: Flask

    def perform_job(self, job, queue, execution) -> bool:
        with self.app.app_context():
            job_token = job_id_var.set(job.id)
            workspace_token = workspace_id_var.set("-")
            started = time.perf_counter()
            try:
                ok = super().perform_job(job, queue, execution)
                log.info("job %s %s in %.0fms", job.func_name, "finished" if ok else "failed",
                         (time.perf_counter() - started) * 1000)
                return ok
            finally:
                db.session.remove()
                job_id_var.reset(job_token)
                workspace_id_var.reset(workspace_token)


class ThreadWorker(AppWorker):
    """An AppWorker that can live in a thread: no signal handlers, timeouts by timer."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


def build_worker(app: Flask, queue_names, worker_class=AppWorker) -> AppWorker:
    with app.app_context():
        queues = [get_queue(name) for name in queue_names]
        worker = worker_class(queues, connection=redis_connection.client)
    worker.app = app
    return worker


def start_in_process(app: Flask, periodic_jobs: Sequence[scheduler.Periodic]) -> threading.Event:
    """Worker and scheduler threads for the demo (fakeredis). Returns an event that stops the scheduler."""
    worker = build_worker(app, QUEUE_NAMES, ThreadWorker)
    threading.Thread(target=worker.work, kwargs={"logging_level": "WARNING"}, name="rq-worker",
                     daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=scheduler.run, args=(app, periodic_jobs, stop), name="scheduler", daemon=True).start()
    return stop


def run_threaded(app: Flask, queue_names, threads: int, *, burst: bool = False) -> None:
    """`threads` ThreadWorkers in this process; SIGTERM/SIGINT let each finish its current job, then exit.
    Delayed jobs are moved to their queues by `flask scheduler` (RQ's own scheduler needs the main thread)."""
    workers = [build_worker(app, queue_names, ThreadWorker) for _ in range(threads)]

    def stop(signum, frame):
        for rq_worker in workers:
            rq_worker.request_stop(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runners = [threading.Thread(target=rq_worker.work, name=f"rq-worker-{n}", daemon=True,
                                kwargs={"burst": burst, "logging_level": app.config["LOG_LEVEL"]})
               for n, rq_worker in enumerate(workers)]
    for runner in runners:
        runner.start()
    while any(runner.is_alive() for runner in runners):
        for runner in runners:
            runner.join(0.5)
