"""Two rows of the fault suite (tests/bench/faults.py), short: leads and amoCRM webhooks offered while the
PostgreSQL cluster is crashed (SIGKILL to its postmaster, recovery from the WAL on restart) and while a worker is
SIGKILLed mid-push. The suite's own cluster and redis-server take the faults; nothing else on the machine does.
What was acknowledged is stored and pushed once; while the database is down the answers are 503, never 500."""
import pytest
from bench.faults import run_faults, table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_a_postgresql_crash_and_a_killed_worker_lose_and_double_nothing():
    rows, totals = run_faults(phase_seconds=12, rate=3, workspaces=2, only=["crashed", "sigkill mid-push"],
                              log=lambda line: None)
    print("\n" + table(rows, totals))
    assert [row["phase"] for row in rows] == ["worker SIGKILL mid-push (each worker once)",
                                              "PostgreSQL crashed (SIGKILL postmaster)"]
    for row in rows:
        assert row["accepted"] == row["offered"] > 30 and row["acknowledged"] == row["webhooks_offered"] > 30
        assert (row["stored"], row["pushed"], row["webhooks_stored"]) == (row["accepted"],) * 2 + (
            row["acknowledged"],)
        assert (row["duplicated"], row["lost"], row["webhooks_lost"]) == (0, 0, 0)
        assert 500 not in row["lead_5xx"] and 500 not in row["webhook_5xx"] and row["html_500"] == 0
    crash = rows[1]
    assert crash["lead_5xx"].get(503) and crash["webhook_5xx"].get(503)  # the outage was met, and answered 503
    assert totals["untagged_deals"] == totals["disconnected"] == 0 and totals["restarts"] >= 2
