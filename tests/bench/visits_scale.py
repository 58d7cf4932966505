"""Benchmark: does time partitioning of `visits` pay at 10M rows? The same operations on the plain table (as the
migrations make it) and on a copy partitioned by month of started_at, with the same indexes.

    python tests/bench/visits_scale.py [--rows 10000000] [--workspaces 50] [--samples 2000]

Prints, for each table: its size with indexes, the mean and p99 of a single-row INSERT … ON CONFLICT DO NOTHING in
autocommit (the beacon's statement, prepared), of a lead's chain lookup (one visitor's visits in time order, the
attribution's read), of a day's visits of a workspace (a report's read), and the time to prune one retention batch
(5,000 rows) and to drop a month (the partitioned table's cheap retention; the plain table has to DELETE).

The rows: --workspaces workspaces, three visits per visitor on average, spread over 13 months. Needs PostgreSQL
(trust auth for `postgres` on 127.0.0.1); uses its own database (dropped and created). Loading 10M rows takes
minutes on two cores.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FILL_SQL = """
INSERT INTO {table} (workspace_id, visitor_id, visit_id, started_at, utm_source, utm_medium, utm_campaign, referrer,
                     landing_page, device, ip_hash, created_at)
SELECT w, md5('visitor' || (n / 3)), md5('visit' || n), t, (ARRAY['google', 'yandex', 'vk', NULL])[n % 4 + 1],
       'cpc', 'campaign-' || (n % 40), 'https://www.google.com/', 'https://shop.example/landing?utm_source=google',
       'desktop', md5('ip' || (n % 100000)), t
FROM (SELECT n, :first_workspace + (n / 3) % :workspaces AS w,
             now() - interval '395 days' * ((n::bigint * 7919) % 1000003) / 1000003.0 AS t
      FROM generate_series(:start, :stop) AS n) AS rows
"""


def connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def prepare(database: str, rows: int, workspaces: int) -> str:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from config import TestingConfig
    from portal import create_app
    from portal.extensions import db
    from portal.models import Workspace

    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None)
    with app.app_context():
        upgrade()
        db.session.add_all(Workspace(name=f"Scale {number}") for number in range(workspaces))
        db.session.commit()
        first = db.session.scalar(db.select(db.func.min(Workspace.id)))
        db.engine.dispose()
    raw = f"postgresql://postgres@127.0.0.1:5432/{database}"
    with connect(raw) as connection:
        # The partitioned copy: the same columns and indexes, one partition per month.
        connection.execute("CREATE TABLE visits_by_month (LIKE visits INCLUDING DEFAULTS) PARTITION BY RANGE "
                           "(started_at)")
        months = connection.execute("SELECT generate_series(date_trunc('month', now() - interval '14 months'), "
                                    "date_trunc('month', now() + interval '1 month'), interval '1 month')").fetchall()
        for (month,) in months:
            name = f"visits_by_month_{month:%Y_%m}"
            connection.execute(f"CREATE TABLE {name} PARTITION OF visits_by_month FOR VALUES FROM ('{month}') "
                               f"TO ('{month}'::timestamptz + interval '1 month')")
        # A unique key of a partitioned table must include the partition key.
        connection.execute("ALTER TABLE visits_by_month ADD PRIMARY KEY (id, started_at)")
        connection.execute("CREATE UNIQUE INDEX ON visits_by_month (workspace_id, visit_id, started_at)")
        connection.execute("CREATE INDEX ON visits_by_month (workspace_id, visitor_id, started_at)")
        connection.execute("CREATE INDEX ON visits_by_month (workspace_id, started_at)")
        connection.execute("CREATE SEQUENCE visits_by_month_id")
        connection.execute("ALTER TABLE visits_by_month ALTER COLUMN id SET DEFAULT nextval('visits_by_month_id')")
        step = 1_000_000
        for table in ("visits", "visits_by_month"):
            started = time.monotonic()
            for start in range(1, rows + 1, step):
                connection.execute(FILL_SQL.format(table=table).replace(":first_workspace", str(first))
                                   .replace(":workspaces", str(workspaces)).replace(":start", str(start))
                                   .replace(":stop", str(min(start + step - 1, rows))))
                print(f"  {table}: {min(start + step - 1, rows):,} rows, {time.monotonic() - started:.0f} s",
                      flush=True)
        connection.execute("VACUUM ANALYZE visits")
        connection.execute("VACUUM ANALYZE visits_by_month")
    return raw


def timed(connection, sql: str, params_list: list[tuple], prepare: bool = True) -> list[float]:
    times = []
    for params in params_list:
        started = time.perf_counter()
        connection.execute(sql, params, prepare=prepare).fetchall() if sql.lstrip().upper().startswith("SELECT") \
            else connection.execute(sql, params, prepare=prepare)
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"mean {statistics.fmean(ordered):6.2f} ms, p99 {ordered[int(len(ordered) * 0.99) - 1]:6.2f} ms"


def measure(raw: str, samples: int) -> None:
    with connect(raw) as connection:
        workspaces = [row[0] for row in connection.execute("SELECT id FROM workspaces ORDER BY id")]
        visitors = connection.execute(f"SELECT workspace_id, visitor_id FROM visits TABLESAMPLE SYSTEM (1) "
                                      f"LIMIT {samples}").fetchall()
        for table in ("visits", "visits_by_month"):
            size = connection.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{table}')) , "
                                      f"(SELECT count(*) FROM {table})").fetchone() if table == "visits" else \
                connection.execute("SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))), "
                                   "(SELECT count(*) FROM visits_by_month) FROM pg_inherits "
                                   "WHERE inhparent = 'visits_by_month'::regclass").fetchone()
            print(f"{table}: {size[1]:,} rows, {size[0]} with indexes")
            now_ns = time.time_ns()
            inserts = [(workspaces[n % len(workspaces)], f"{n:032x}", f"{now_ns:016x}{n:016x}")
                       for n in range(samples)]
            insert_sql = (f"INSERT INTO {table} (workspace_id, visitor_id, visit_id, started_at, utm_source, "
                          "referrer, landing_page, device, ip_hash, created_at) VALUES (%s, %s, %s, now(), 'google', "
                          "'https://www.google.com/', 'https://shop.example/', 'mobile', md5('x'), now()) "
                          "ON CONFLICT DO NOTHING")
            print(f"  insert (autocommit):   {summary(timed(connection, insert_sql, inserts))}")
            chain_sql = (f"SELECT visit_id, started_at, utm_source, utm_medium, utm_campaign, referrer FROM {table} "
                         "WHERE workspace_id = %s AND visitor_id = %s ORDER BY started_at")
            print(f"  chain lookup:          {summary(timed(connection, chain_sql, visitors))}")
            day_sql = (f"SELECT count(*), count(DISTINCT visitor_id) FROM {table} WHERE workspace_id = %s "
                       "AND started_at >= now() - interval '40 days' AND started_at < now() - interval '39 days'")
            print(f"  a workspace's day:     {summary(timed(connection, day_sql, [(w,) for w in workspaces]))}")
            started = time.perf_counter()
            deleted = connection.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE workspace_id = %s AND "
                "started_at < now() - interval '390 days' LIMIT 5000)", (workspaces[0],)).rowcount
            print(f"  prune batch ({deleted} rows): {(time.perf_counter() - started) * 1000:.0f} ms")
        oldest = connection.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = "
                                    "'visits_by_month'::regclass ORDER BY 1 LIMIT 1").fetchone()[0]
        started = time.perf_counter()
        connection.execute(f"DROP TABLE {oldest}")
        print(f"visits_by_month: dropping the oldest month ({oldest}): {(time.perf_counter() - started) * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--database", default="leadpath_bench_visits_scale")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run filled")
    args = parser.parse_args()
    raw = (f"postgresql://postgres@127.0.0.1:5432/{args.database}" if args.reuse
           else prepare(args.database, args.rows, args.workspaces))
    measure(raw, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
