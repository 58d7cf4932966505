"""RQ workers whose jobs run inside the app context, each with its own database session.

`flask --app wsgi worker [QUEUES…]` runs `AppWorker` in the foreground (no fork per job: the app, its
connection pools and imports are reused, and SIGKILL mid-job loses nothing the database does not know).
With no REDIS_URL, `start_in_process` runs a `ThreadWorker` and the scheduler in daemon threads.

RQ's own loop quits when it loses Redis (anything but a dequeue that fails to connect ends it); `keep_working`
does not: it waits for Redis with backoff, logging it, and carries on with a fresh worker. Only a stop request
(SIGTERM, SIGINT) or a burst run that found the queues empty ends it.
"""
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence

from flask import Flask
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from portal.extensions import db, redis_connection
from portal.jobs import scheduler
from portal.jobs.queues import QUEUE_NAMES, get_queue
from portal.log_context import job_id_var, workspace_id_var

log = logging.getLogger(__name__)

RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0


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


def keep_working(app: Flask, queue_names, worker_class=AppWorker, *, stop: threading.Event | None = None,
                 **work_options) -> None:
    """Run workers of the queues one after the other until a stop is requested (SIGTERM/SIGINT to this process,
    or `stop` set) or, with `burst=True`, the queues are empty. A worker that ends for any other reason (Redis
    went away, RQ met an error in its own bookkeeping) is followed by a fresh one once Redis answers again."""
    stop = stop or threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    while not stop.is_set():
        rq_worker = None
        try:
            rq_worker = build_worker(app, queue_names, worker_class)
            rq_worker.work(**work_options)
        except StopRequested:
            return
        except RedisError as error:
            log.warning("worker lost its Redis connection: %s", error.__class__.__name__)
        if rq_worker is not None and (rq_worker._stop_requested or rq_worker._shutdown_requested_date):
            return
        if work_options.get("burst") and _redis_answers(app):
            return
        if main_thread:  # RQ's handlers belong to the worker that ended: until the next one, a signal stops us
            signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
            signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
        wait_for_redis(app, stop)


def wait_for_redis(app: Flask, stop: threading.Event, sleep: Callable[[float], bool] | None = None) -> None:
    """Return once Redis answers a PING (or `stop` is set), retrying with exponential backoff up to
    RECONNECT_MAX_SECONDS between attempts, one warning per attempt."""
    sleep = sleep or stop.wait
    delay = RECONNECT_FIRST_SECONDS
    while not stop.is_set():
        if _redis_answers(app):
            log.warning("Redis answers again: the worker carries on")
            return
        log.warning("Redis unreachable: the worker retries in %.1f s", delay)
        sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)


def _redis_answers(app: Flask) -> bool:
    with app.app_context():
        try:
            return bool(redis_connection.client.ping())
        except RedisError:
            return False


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
    stopping = threading.Event()
    workers: list[ThreadWorker] = []

    class StoppableWorker(ThreadWorker):
        """Known to the signal handler while it runs, so a stop reaches whichever worker a thread has now."""

        def work(self, *args, **kwargs):
            workers.append(self)
            try:
                if stopping.is_set():
                    return False
                return super().work(*args, **kwargs)
            finally:
                workers.remove(self)

    def stop(signum, frame):
        stopping.set()
        for rq_worker in list(workers):
            try:
                rq_worker.request_stop(signum, frame)
            except StopRequested:  # an idle worker's way to say "stop now": meant for its thread, not this one
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runners = [threading.Thread(target=keep_working, args=(app, queue_names, StoppableWorker), name=f"rq-worker-{n}",
                                daemon=True, kwargs={"stop": stopping, "burst": burst,
                                                     "logging_level": app.config["LOG_LEVEL"]})
               for n in range(threads)]
    for runner in runners:
        runner.start()
    while any(runner.is_alive() for runner in runners):
        # After a stop, idle workers may wait minutes in a blocking dequeue: the process ends (its threads are
        # daemons) as soon as no job is running.
        if stopping.is_set() and not any(rq_worker.get_state() == WorkerStatus.BUSY for rq_worker in list(workers)):
            return
        for runner in runners:
            runner.join(0.5)
