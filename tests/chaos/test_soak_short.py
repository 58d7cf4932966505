"""The soak of tests/bench/soak.py, short (about a minute and a half of load): 20 workspaces, leads through the API
under gunicorn, deals won and lost with webhooks back, while the sandbox fails (5xx, timeouts, dropped responses,
HTML 429s, expired tokens), a worker is SIGKILLed and Redis restarts. PostgreSQL is NOT restarted here: the
cluster is shared with everything else on the machine (the full soak does it; test_journey_db_down.py covers
the 503 answers)."""
import pytest
from bench.soak import report, run_soak
from fixtures.support import DATABASE_URL, empty_tables, make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(200)
def test_nothing_is_lost_or_doubled_under_faults(database_schema):
    try:
        result = run_soak(DATABASE_URL, minutes=1.5, workspaces=20, rate=3, postgres_restart=False,
                          drain_seconds=60, log=lambda line: None)
    finally:
        empty_tables(make_app())
    print("\n" + report(result))
    assert len(result["faults"]) == 6
    assert result["accepted"] == result["offered"] > 200
    assert result["pushed"] == result["accepted"]
    assert (result["duplicated"], result["lost"]) == (0, 0)
    assert result["sales_recorded"] == result["sales_expected"] > 50
    assert result["answers"].get(500, 0) == 0 and result["html_500"] == 0
    assert result["sandbox"]["http_500"] and result["sandbox"]["http_429"] and result["sandbox"]["tokens_refreshed"]
    assert result["restarts"] >= 1  # the killed worker came back
    for role in ("web", "worker"):
        assert result["memory_end"][role] < result["memory_start"][role] * 1.10, (role, result["memory_start"],
                                                                                   result["memory_end"])
