"""The intake's combined rate limits (portal.ratelimit): both limits in one Redis call, failing open."""
import socket
import time
import uuid

import pytest
from fixtures.intake import make_workspace, post_lead
from fixtures.support import REDIS_URL, make_app

from portal.ratelimit import MemoryCounters, RateLimiter, parse_limit


@pytest.fixture
def workspace(app):
    return make_workspace(app)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _counters(ip_limit: str, workspace_limit: str, ip: str, workspace: str):
    return [("ip:" + ip, parse_limit(ip_limit)), ("workspace:" + workspace, parse_limit(workspace_limit))]


def test_parse_limit_reads_flask_limiter_notation():
    assert (parse_limit("30 per minute").amount, parse_limit("30 per minute").seconds) == (30, 60)
    assert parse_limit("1200/hour").seconds == 3600


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_ip_limit_first_and_an_over_limit_ip_does_not_use_the_workspace_budget(storage):
    if storage == "redis" and not REDIS_URL:
        pytest.skip("needs a real Redis (TEST_REDIS_URL)")
    limiter = RateLimiter(REDIS_URL if storage == "redis" else "memory://", {})
    workspace, run = f"ws-{uuid.uuid4().hex}", uuid.uuid4().hex  # keys of this run's own in a shared Redis
    flood = [limiter.hit(_counters("2 per minute", "4 per minute", f"{run}-1", workspace)) for _ in range(5)]
    assert [index for index, _ in flood] == [0, 0, 1, 1, 1]  # the IP limit (index 1) answers
    assert all(1 <= ttl <= 60 for _, ttl in flood[2:])
    # The flooding address counted only twice against the workspace: others still have 2 of its 4.
    others = [limiter.hit(_counters("2 per minute", "4 per minute", f"{run}-other-{n}", workspace))[0]
              for n in range(3)]
    assert others == [0, 0, 2]  # then the workspace limit (index 2)


def test_memory_counters_open_a_new_window_when_the_old_one_ends(monkeypatch):
    import portal.ratelimit as limits

    clock = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: clock[0])
    counters = MemoryCounters()
    limit = [("ip:x", parse_limit("1 per minute"))]
    assert counters.check(limit)[0] == 0
    index, retry_after = counters.check(limit)
    assert index == 1 and retry_after == 60
    clock[0] += 61
    assert counters.check(limit)[0] == 0


def test_unreachable_limit_storage_fails_open_and_counts_in_memory(database_schema, workspace, caplog):
    app = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_free_port()}/0", LEAD_RATE_LIMIT_IP="2 per minute",
                   RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2, "socket_timeout": 0.2})
    client = app.test_client()
    statuses = [post_lead(client, workspace[1], phone=f"+7999123456{n}").status_code for n in range(3)]
    assert statuses == [201, 201, 429]  # still limited, in this process
    assert "Rate-limit storage unreachable" in caplog.text


@pytest.mark.integration
def test_limits_are_shared_through_redis_by_every_process(database_schema, workspace):
    if not REDIS_URL:
        pytest.skip("needs a real Redis (TEST_REDIS_URL)")
    # Counters are keyed by the workspace's public id: a fresh one per test.
    first, second = (make_app(RATELIMIT_STORAGE_URI=REDIS_URL, LEAD_RATE_LIMIT_WORKSPACE="4 per hour")
                     for _ in range(2))
    for n in range(4):
        app = first if n % 2 else second
        assert post_lead(app.test_client(), workspace[1], email=f"v{n}@example.com").status_code == 201
    response = post_lead(first.test_client(), workspace[1], email="late@example.com")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert response.get_json()["success"] is False


def test_a_trusted_clear_answer_is_believed_briefly_and_forgotten_on_a_local_add():
    if not REDIS_URL:
        pytest.skip("needs a real Redis (TEST_REDIS_URL)")
    here, elsewhere = RateLimiter(REDIS_URL, {}), RateLimiter(REDIS_URL, {})  # two processes
    counters = [(f"guess-{uuid.uuid4().hex}", parse_limit("2 per minute"))]
    assert here.blocked(counters, trust_clear_for=0.5) == (0, 0)
    elsewhere.add(counters)
    elsewhere.add(counters)
    assert elsewhere.blocked(counters)[0] == 1
    time.sleep(0.6)  # another process's additions show up once the trusted answer is older than trust_clear_for
    assert here.blocked(counters, trust_clear_for=0.5)[0] == 1
    fresh = [(f"guess-{uuid.uuid4().hex}", parse_limit("1 per minute"))]
    assert here.blocked(fresh, trust_clear_for=60) == (0, 0)
    here.add(fresh)  # this process's own addition is seen at once
    assert here.blocked(fresh, trust_clear_for=60)[0] == 1
