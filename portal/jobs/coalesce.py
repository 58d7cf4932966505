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
- Under a stream of items each process sets the marker at most once per workspace per SCHEDULE_DEBOUNCE_SECONDS
  (`_Debounce`): items committed within that time are covered by one more SET NX when it ends, made by a thread
  of the process. That call comes after their commits, so it finds the marker of a job that has not started yet
  (which will read them) or schedules a new one: the protocol above holds, one Redis round trip per item is saved,
  and an item waits at most that long longer. (A process that dies before the call leaves its items to the
  sweeper, as a Redis outage does.)
"""
import atexit
import logging
import os
import threading
import time

from flask import Flask, current_app
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
        self._debounce = _Debounce(self._schedule_now)

    def job_id(self, workspace_id: int) -> str:
        return f"{self.name}-{workspace_id}"

    def marker(self, workspace_id: int) -> str:
        """The Redis key that says a job for the workspace was scheduled moments ago."""
        return f"leadpath:scheduled:{self.name}:{workspace_id}"

    def schedule(self, workspace_id: int, force: bool = False) -> bool:
        """Make sure a job for the workspace is waiting. Call after commit. `force` skips the marker (sweepers).
        False when Redis could not be reached: the items are safe in the database and the sweeper schedules them
        once Redis is back."""
        seconds = current_app.config["SCHEDULE_DEBOUNCE_SECONDS"]
        if not force and seconds > 0 and not self._debounce.now(workspace_id, seconds):
            return True  # this process sets the marker again when the time is up
        return self._schedule_now(workspace_id, force)

    def _schedule_now(self, workspace_id: int, force: bool = False) -> bool:
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


class _Debounce:
    """Per process, one call per key per `seconds`: the first call is made at once, and calls asked for within
    the time after it are made once, by a thread, when the time is up (in the app context of the last asker)."""

    def __init__(self, call) -> None:
        self.call = call
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the child has no thread, and maybe a held lock
        atexit.register(self.flush)

    def _reset(self) -> None:
        self.lock = threading.Condition()
        self.last: dict[int, float] = {}  # key → when its last call was made (or is due)
        self.due: dict[int, float] = {}  # keys with a call to make, and when
        self.app: Flask | None = None
        self.thread: threading.Thread | None = None

    def now(self, key: int, seconds: float) -> bool:
        """True: make the call now. False: a call is due when this key's time is up."""
        now = time.monotonic()
        with self.lock:
            last = self.last.get(key)
            if last is None or now - last >= seconds:
                if len(self.last) > 10_000:  # bounded: drop keys quiet for longer than the window
                    self.last = {k: t for k, t in self.last.items() if now - t < seconds or k in self.due}
                self.last[key] = now
                return True
            if key not in self.due:
                if self.thread is None:
                    thread = threading.Thread(target=self._run, name="schedule-debounce", daemon=True)
                    try:
                        thread.start()
                    except RuntimeError:  # no thread to be had (interpreter shutdown, a thread limit): call now
                        return True
                    self.thread = thread
                self.due[key] = last + seconds
                self.lock.notify()
            self.app = current_app._get_current_object()
            return False

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.due:
                    self.lock.wait()
                key, at = min(self.due.items(), key=lambda item: item[1])
                wait = at - time.monotonic()
                if wait > 0:
                    self.lock.wait(wait)
                    continue
                del self.due[key]
                self.last[key] = time.monotonic()
                app = self.app
            self._call(app, key)

    def flush(self) -> None:
        """Make every due call now (at exit: the thread is a daemon)."""
        with self.lock:
            due, app = list(self.due), self.app
            self.due.clear()
        for key in due:
            self._call(app, key)

    def _call(self, app: Flask, key: int) -> None:
        try:
            with app.app_context():
                self.call(key)
        except Exception:  # noqa: BLE001 - the thread must live on; the sweeper covers what is missed
            log.exception("scheduling a job for workspace %s failed", key)
