"""Jobs left "in progress" by a worker that died (SIGKILL, OOM, a lost host), handed to RQ's abandoned-job path.

RQ notices such a job only when its execution's heartbeat expires (up to a job's monitoring interval plus a
minute) and then only at a worker's maintenance run (every ten minutes): meanwhile the job shows as started and a
job with its id is not enqueued again. Every `EVERY_SECONDS` (`portal.periodic_jobs`) this job looks at each
started execution: if its worker ran on this host and its process is gone, or its worker is no longer registered
at all, the execution is expired at once and `StartedJobRegistry.cleanup` retries the job (if it has retries left)
or marks it failed. The work itself is never lost: pushes and webhook events are rows the sweepers schedule again.
"""
import logging
import os
import socket

from rq.executions import Execution
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from portal.extensions import redis_connection
from portal.jobs.queues import QUEUE_NAMES, get_queue

EVERY_SECONDS = 15

log = logging.getLogger(__name__)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def worker_is_dead(worker_name: str, connection) -> bool:
    """True when the worker is surely gone: no longer registered, or registered from this host by a process
    that no longer exists. A worker on another host that stopped answering is left to RQ's heartbeat expiry."""
    if not worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=connection)
    if worker is None:
        return True
    return worker.hostname == socket.gethostname() and worker.pid is not None and _process_gone(worker.pid)


def clean_jobs_of_dead_workers() -> int:
    """Expire the started executions of dead workers and let RQ retry or fail their jobs. Returns how many."""
    connection = redis_connection.client
    cleaned = 0
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(queue=get_queue(name))
        dead = []
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                worker_name = Execution.fetch(execution_id, job_id, connection).worker_name
            except ValueError:  # the execution's record is gone: nothing runs it
                worker_name = None
            if worker_name is None or worker_is_dead(worker_name, connection):
                dead.append(f"{job_id}:{execution_id}")
        if dead:
            connection.zadd(registry.key, dict.fromkeys(dead, 0), xx=True)
            registry.cleanup()
            cleaned += len(dead)
            log.warning("%d job(s) of dead workers on %s handed back to RQ", len(dead), name)
    return cleaned

