"""The loop that enqueues periodic jobs. `flask --app wsgi scheduler` runs it with the list of `portal.periodic_jobs`;
any number may run: a Redis key per job and period makes sure each is enqueued once per period across them all.

The loop also moves RQ's delayed jobs (Retry intervals) to their queues when they fall due.
"""
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask
from redis.exceptions import RedisError
from rq.scheduler import RQScheduler

from portal.extensions import redis_connection
from portal.jobs.queues import QUEUE_NAMES, PendingJob, get_queue, send

log = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class Periodic:
    name: str
    every_seconds: int
    queue: str
    func: str


def every(seconds: int, queue: str, func: str) -> Periodic:
    """A periodic job: `func` (dotted path) on `queue` every `seconds`, named after the function."""
    return Periodic(func.rsplit(".", 1)[-1], seconds, queue, func)


def tick(jobs: Sequence[Periodic], rq_scheduler: RQScheduler | None = None) -> list[str]:
    """Enqueue the periodic jobs that are due. Returns their names."""
    client = redis_connection.client
    due = []
    for job in jobs:
        if client.set(f"leadpath:periodic:{job.name}", "1", nx=True, ex=job.every_seconds):
            send(PendingJob(job.queue, job.func, (), job_id=f"periodic-{job.name}"))
            due.append(job.name)
    if rq_scheduler is not None:
        rq_scheduler.acquire_locks()
        rq_scheduler.enqueue_scheduled_jobs()
    return due


def run(app: Flask, jobs: Sequence[Periodic], stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    with app.app_context():
        rq_scheduler = RQScheduler([get_queue(name) for name in QUEUE_NAMES], redis_connection.client,
                                   logging_level="WARNING")
        log.info("scheduler started with %d periodic jobs", len(jobs))
        interval = min(1.0, app.config["SCHEDULER_TICK_SECONDS"])
        delay = None  # seconds to the next try while Redis is unreachable
        while not stop.is_set():
            try:
                tick(jobs, rq_scheduler)
            except RedisError as exc:  # never fatal: wait for Redis with backoff
                delay = min(delay * 2, RECONNECT_MAX_SECONDS) if delay else interval
                log.warning("scheduler tick failed (%s): retrying in %.1f s", exc.__class__.__name__, delay)
                stop.wait(delay)
                continue
            if delay is not None:
                log.warning("Redis answers again: the scheduler carries on")
                delay = None
            stop.wait(interval)
