"""A stream of leads asks Redis to schedule its workspace's push once per SCHEDULE_DEBOUNCE_SECONDS per process,
and what came in meanwhile is still scheduled when that time is up (portal.jobs.coalesce._Debounce)."""
import os
import threading
import time

import pytest
from fixtures.intake import make_workspace, post_lead

from portal.amocrm.scheduling import PUSHES, push_started
from portal.jobs import queues
from portal.jobs.queues import AMOCRM, get_queue
from portal.redis_direct import DirectCommands

WINDOW = 0.4


@pytest.fixture
def workspace(app):
    app.config["SCHEDULE_DEBOUNCE_SECONDS"] = WINDOW
    PUSHES._debounce._reset()  # no window left over from another test
    return make_workspace(app)


@pytest.fixture
def marker_calls(monkeypatch):
    """The SET NX of the scheduling marker, counted (the intake's only other Redis call, its rate limits, goes to
    the limiter's in-memory storage in tests)."""
    calls = []
    execute = DirectCommands.execute

    def counting(self, *args):
        if args[0] == "SET":
            calls.append(args[1])
        return execute(self, *args)

    monkeypatch.setattr(DirectCommands, "execute", counting)
    return calls


def waiting(app) -> int:
    with app.app_context():
        return get_queue(AMOCRM).count


def wait_for(condition, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_burst_sets_the_marker_once_now_and_once_when_the_window_ends(app, client, workspace, marker_calls):
    _, public_id = workspace
    started = time.monotonic()
    for n in range(8):
        assert post_lead(client, public_id, email=f"lead{n}@example.com").status_code == 201
    assert time.monotonic() - started < WINDOW, "the burst took longer than the window: the machine is too slow"
    assert len(marker_calls) == 1 and waiting(app) == 1
    assert wait_for(lambda: len(marker_calls) == 2)
    time.sleep(WINDOW)
    assert len(marker_calls) == 2 and waiting(app) == 1  # the push still waiting covers them all


def test_a_lead_committed_after_the_push_started_is_scheduled_when_the_window_ends(app, client, workspace):
    workspace_id, public_id = workspace
    post_lead(client, public_id, email="one@example.com")
    with app.app_context():
        get_queue(AMOCRM).empty()  # a worker took the job…
        push_started(workspace_id)  # …and cleared the marker before reading leads: it will not see the next one
    asked = time.monotonic()
    post_lead(client, public_id, email="two@example.com")
    assert waiting(app) == 0  # within the window: not yet…
    assert wait_for(lambda: waiting(app) == 1)  # …but when it ends, a new push waits for the second lead
    assert time.monotonic() - asked < WINDOW + 1


def test_a_quiet_workspace_is_scheduled_at_once(app, client, workspace, marker_calls):
    workspace_id, public_id = workspace
    post_lead(client, public_id, email="one@example.com")
    with app.app_context():
        get_queue(AMOCRM).empty()
        push_started(workspace_id)
    time.sleep(WINDOW + 0.05)
    post_lead(client, public_id, email="two@example.com")
    assert waiting(app) == 1 and len(marker_calls) == 2


def test_the_sweeper_is_never_debounced(app, workspace, marker_calls):
    workspace_id, _ = workspace
    with app.app_context():
        assert PUSHES.schedule(workspace_id) and PUSHES.schedule(workspace_id, force=True)
    assert len(marker_calls) == 2


@pytest.mark.integration
def test_concurrent_forced_schedules_enqueue_one_job(app, workspace, monkeypatch):
    """Sweepers in several processes may force the same workspace's push at the same moment: one job waits.
    (Each "is one waiting?" answer takes 20 ms here, as on a loaded machine, so the callers overlap.)"""
    workspace_id, _ = workspace
    is_waiting = queues._is_waiting

    def slow_is_waiting(*args):
        answer = is_waiting(*args)
        time.sleep(0.02)
        return answer

    monkeypatch.setattr(queues, "_is_waiting", slow_is_waiting)
    callers = 50
    barrier = threading.Barrier(callers)
    answers = []

    def schedule() -> None:
        with app.app_context():
            barrier.wait()
            answers.append(PUSHES.schedule(workspace_id, force=True))

    threads = [threading.Thread(target=schedule) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * callers
    with app.app_context():
        queue = get_queue(AMOCRM)
        assert queue.count == 1 and queue.job_ids == [PUSHES.job_id(workspace_id)]


def test_a_forked_child_starts_with_no_window_and_no_lock_held(app, workspace):
    workspace_id, _ = workspace
    with app.app_context():
        PUSHES._debounce.now(workspace_id, 60)
        assert not PUSHES._debounce.now(workspace_id, 60)  # a call is due in the parent's thread
    with PUSHES._debounce.lock:  # held by another thread at the moment of the fork
        pid = os.fork()
        if pid == 0:
            debounce = PUSHES._debounce
            ok = debounce.lock.acquire(timeout=1) and not debounce.due and debounce.thread is None
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    PUSHES._debounce._reset()
