"""Benchmark: what the rollup triggers add to a single-row INSERT, in plain SQL (no app, no network).

    python tests/bench/trigger_cost.py [--rows 20000] [--repeats 3] [--database lp_bench_triggers]
                                       [--redis-url redis://127.0.0.1:6379/15]

On a fresh database with the real migrations and one workspace, runs --rows single-row INSERTs into `leads` (each
its own statement, in one PL/pgSQL loop and one transaction, rolled back) with the report rollups' trigger and the
credit rollups' trigger on or off in every combination, then --rows single-row INSERTs into `visits` with the
visits' trigger on and off. Prints the best of --repeats seconds for each, and each as a multiple of the INSERT
without triggers. Needs PostgreSQL with trust auth for `postgres` on 127.0.0.1; drops and creates its database.
"""
import argparse
import subprocess
import sys
import time

from intake_throughput import ROOT, prepare_database

LEAD_TRIGGERS = {"report": "leads_rollup", "credit": "leads_credit_rollup"}
VISIT_TRIGGERS = ("visits_credit_rollup",)

LEAD_LOOP = """
DO $$
BEGIN
    FOR n IN 1..{rows} LOOP
        INSERT INTO leads (workspace_id, name, message, utm_source, utm_medium, utm_campaign, landing_page,
                           first_utm_source, first_utm_medium, is_spam, sync_status, sync_attempts, created_at)
        VALUES ({workspace}, 'Bench ' || n, '', 'google', 'cpc', 'campaign-' || (n % 40), 'https://example.com/p',
                CASE WHEN n % 3 = 0 THEN 'yandex' END, CASE WHEN n % 3 = 0 THEN 'cpc' END, false, 'new', 0, now());
    END LOOP;
END $$"""

VISIT_LOOP = """
DO $$
BEGIN
    FOR n IN 1..{rows} LOOP
        INSERT INTO visits (workspace_id, visitor_id, visit_id, started_at, created_at, utm_source, utm_medium,
                            utm_campaign, landing_page, referrer)
        VALUES ({workspace}, 'visitor-' || n, 'visit-' || n, now(), now(), 'google', 'cpc',
                'campaign-' || (n % 40), 'https://example.com/p' || (n % 7), 'https://www.google.com/');
    END LOOP;
END $$"""


def timed(connection, statement: str, repeats: int) -> float:
    """The best of `repeats` runs of the statement, each in a transaction rolled back."""
    from sqlalchemy import text

    best = float("inf")
    for _ in range(repeats):
        transaction = connection.begin()
        started = time.perf_counter()
        connection.execute(text(statement))
        best = min(best, time.perf_counter() - started)
        transaction.rollback()
    return best


def set_triggers(connection, table: str, triggers, enabled: bool) -> None:
    from sqlalchemy import text

    with connection.begin():
        for trigger in triggers:
            connection.execute(text(f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", default="lp_bench_triggers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="flushed by the database setup")
    args = parser.parse_args()

    url, _public_id = prepare_database(args.database, args.redis_url, 0)
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        workspace = connection.execute(text("SELECT min(id) FROM workspaces")).scalar_one()
        connection.commit()
        print(f"{args.rows:,} single-row INSERTs, best of {args.repeats}")
        leads = LEAD_LOOP.format(rows=args.rows, workspace=workspace)
        results = {}
        for label, enabled in (("no triggers", ()), ("report rollups' trigger", ("report",)),
                               ("credit rollups' trigger", ("credit",)), ("both triggers", ("report", "credit"))):
            for name, trigger in LEAD_TRIGGERS.items():
                set_triggers(connection, "leads", (trigger,), name in enabled)
            results[label] = timed(connection, leads, args.repeats)
        for label, seconds in results.items():
            print(f"  leads, {label:<26} {seconds:6.2f} s  ×{seconds / results['no triggers']:.1f}")
        visits = VISIT_LOOP.format(rows=args.rows, workspace=workspace)
        results = {}
        for label, enabled in (("no trigger", False), ("visits' trigger", True)):
            set_triggers(connection, "visits", VISIT_TRIGGERS, enabled)
            results[label] = timed(connection, visits, args.repeats)
        for label, seconds in results.items():
            print(f"  visits, {label:<25} {seconds:6.2f} s  ×{seconds / results['no trigger']:.1f}")
    engine.dispose()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", args.database],
                   check=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
