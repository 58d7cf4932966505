"""One waiting job per workspace for a stream of work items (leads to push, webhook events to apply), scheduled
cheaply enough for a hot path.

The protocol:
- After an item commits, its producer calls `schedule(workspace_id)`. That sets a short-lived Redis marker (SET NX);
  only the call that sets it goes on to enqueue, so a burst of items costs one enqueue per `marker_seconds`. The
  enqueue itself is skipped while a job with the same id is waiting.
- The job must call `started(workspace_id)` FIRST, before it reads its items: that clears the marker, so an item
  committed after the job has read its batch schedules a new job instead of being skipped.
- A marker that outlives its job (the job was lost, Redis failed between the two steps) expires in
  `marker_seconds`; and a sweeper calls `schedule(..., force=True)` for workspaces with items waiting too long,
  whatever the marker says. So no item is left without a scheduled job for long.
"""
import logging
import time

from redis.exceptions import RedisError

from portal.extensions import redis_connection
from portal.jobs.queues import PendingJob, send
from portal.redis_direct import direct

WARN_EVERY_SECONDS = 60

log = logging.getLogger(__name__)


class CoalescedJob:
    def __init__(self, queue: str, func: str, name: str, marker_seconds: float = 2):
        self.queue = queue
        self.func = func
        self.name = name
        self.marker_seconds = marker_seconds
        self._last_warning = 0.0

    def job_id(self, workspace_id: int) -> str:
        return f"{self.name}-{workspace_id}"

    def marker(self, workspace_id: int) -> str:
        """The Redis key that says a job for the workspace was scheduled moments ago."""
        return f"leadpath:scheduled:{self.name}:{workspace_id}"

    def schedule(self, workspace_id: int, force: bool = False) -> bool:
        """Make sure a job for the workspace is waiting. Call after commit. `force` skips the marker (sweepers).
        False when Redis could not be reached: the items are safe in the database and the sweeper schedules them
        once Redis is back."""
        client = redis_connection.client
        try:
            marked = direct(client).execute("SET", self.marker(workspace_id), b"1", "NX", "PX",
                                            int(self.marker_seconds * 1000))
            if marked is None and not force:
                return True
        except RedisError as error:
            self._warn_unreachable(error)
            return False
        if send(PendingJob(self.queue, self.func, (workspace_id,), job_id=self.job_id(workspace_id))):
            return True
        try:
            client.delete(self.marker(workspace_id))  # let the next item try again
        except RedisError:
            pass
        return False

    def started(self, workspace_id: int) -> None:
        """The job has started: items committed from now on must schedule another one."""
        try:
            redis_connection.client.delete(self.marker(workspace_id))
        except RedisError as error:
            self._warn_unreachable(error)

    def _warn_unreachable(self, error: Exception) -> None:
        """One warning a minute per process: during an outage every item would log one otherwise."""
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            log.warning("Redis unreachable, %s left to the sweeper: %s", self.name, error.__class__.__name__)
