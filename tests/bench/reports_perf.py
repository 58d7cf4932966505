"""Server time of the reports on a large workspace (PostgreSQL).

    python tests/bench/reports_perf.py [--leads 1000000] [--sales 100000] [--spend-rows 20000] [--runs 7]
                                       [--cold-runs 5] [--visits 10000000] [--credited 0.3]

Creates a dedicated database (dropped at the end), migrates it, fills one workspace with `demo-data`'s generator
(plus a small second workspace, so every query must filter by tenant), runs VACUUM ANALYZE as autovacuum would,
then times each page through the Flask test client (rendering included) and prints p50 / min / max.

The load runs with the report rollups' triggers disabled and then builds the rollups with `reports rebuild` (timed
and printed), as an operator loading a large backfill would. "cold" is the first request of a freshly created app
(new connection pool, nothing cached in the process; no Redis at all), repeated --cold-runs times; "warm" the
following requests. Table sizes and bytes per row are printed for docs/scale.md.
Visits (--visits, spread over the year and over a visitor per 1.5 leads, a tenth of landing paths, a seventh with
an external referrer) are loaded with one set-based INSERT, and --credited of the leads get a two-visit chain
in lead_credits (an earlier visit from another source, then the lead's own tags), as attribution would write them;
then the credit rollups are rebuilt (timed) like the report rollups.
Targets: ROI full year cold ≤ 300 ms p50 (1M leads, 10M visits; the default model and a split one) and warm
≤ 50 ms, leads page ≤ 150 ms with any filter and at any depth, dashboard ≤ 300 ms.
"""
import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from config import TestingConfig  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402

SERVER = os.environ.get("BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "benchmark password"
WARM_TARGETS_MS = {"roi_year": 50, "leads_first": 150, "leads_page_1000": 150, "leads_search": 150,
                   "leads_deal_won": 150, "leads_deal_lost": 150, "leads_deal_open": 150, "dashboard": 300}
COLD_TARGETS_MS = {"roi_year": 300, "roi_year_first_touch_closed": 300, "roi_year_linear": 300}
SOURCES = "ARRAY['google', 'yandex', 'facebook', 'vk', 'instagram', 'email', NULL]"
MEDIUMS = "ARRAY['cpc', 'cpc', 'paid_social', 'cpc', 'social', 'newsletter', NULL]"
# Visits in one statement: a random source (the same index for its medium), campaign and day of the year.
LOAD_VISITS = f"""
INSERT INTO visits (workspace_id, visitor_id, visit_id, started_at, utm_source, utm_medium, utm_campaign,
                    landing_page, referrer, device, created_at)
SELECT :workspace, 'v' || (g % :visitors), 'bench-' || g, now() - random() * interval '365 days',
       ({SOURCES})[x.i], ({MEDIUMS})[x.i], CASE WHEN x.i < 7 THEN ({SOURCES})[x.i] || '_c' || x.c END,
       'https://shop.example/landing/' || (g % 10), CASE WHEN g % 7 = 0 THEN 'https://news.example/a' END,
       'desktop', now()
FROM generate_series(:first, :last) g,
     LATERAL (SELECT 1 + floor(random() * 7)::int + 0 * g AS i, 1 + floor(random() * 4)::int AS c) x
"""
# A two-touch chain for a share of the leads: another source first, the lead's own tags last.
LOAD_CREDITS = f"""
INSERT INTO lead_credits (workspace_id, lead_id, position, visit_id, touched_at, direct, source, medium, campaign,
                          content, term, landing_path, referrer_domain, weight_first, weight_last,
                          weight_last_non_direct, weight_linear, weight_u_shaped, weight_time_decay)
SELECT l.workspace_id, l.id, p.position, NULL, l.created_at - (1 - p.position) * interval '3 days', false,
       CASE WHEN p.position = 0 THEN coalesce(({SOURCES})[1 + l.id % 7], '') ELSE leadpath_tag(l.utm_source) END,
       CASE WHEN p.position = 0 THEN coalesce(({MEDIUMS})[1 + l.id % 7], '') ELSE leadpath_tag(l.utm_medium) END,
       CASE WHEN p.position = 0 THEN '' ELSE leadpath_tag(l.utm_campaign) END,
       CASE WHEN p.position = 0 THEN '' ELSE leadpath_tag(l.utm_content) END,
       CASE WHEN p.position = 0 THEN '' ELSE leadpath_tag(l.utm_term) END,
       CASE WHEN p.position = 0 THEN '/landing/' || (l.id % 10) ELSE leadpath_url_path(l.landing_page) END,
       CASE WHEN p.position = 0 THEN '' ELSE leadpath_url_domain(l.referrer) END,
       p.wf, p.wl, p.wn, p.wa, p.wu, p.wt
FROM leads l CROSS JOIN (VALUES (0, 1000000, 0, 0, 500000, 500000, 371498),
                                (1, 0, 1000000, 1000000, 500000, 500000, 628502)) p(position, wf, wl, wn, wa, wu, wt)
WHERE l.workspace_id = :workspace AND l.id % 1000 < :per_mille
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--spend-rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--visits", type=int, default=10_000_000)
    parser.add_argument("--credited", type=float, default=0.3, help="share of leads with a two-visit chain")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = f"leadpath_bench_reports_{os.getpid()}"
    admin = create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        run(f"{SERVER}/{name}", args)
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(url: str, args) -> None:
    import logging

    from flask_migrate import upgrade

    from portal.models import Deal, Lead, User, Visit, Workspace
    from portal.reports import credits
    from portal.reports.demo_data import generate
    from portal.reports.rollups import rebuild

    def make_app():
        made = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None, WTF_CSRF_ENABLED=False)
        made.logger.disabled = True
        return made

    app = make_app()
    logging.getLogger("portal.request").setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
        workspace, other = Workspace(name="Bench", timezone="Europe/Moscow"), Workspace(name="Other tenant")
        db.session.add_all([workspace, other])
        db.session.flush()
        user = User(workspace_id=workspace.id, email="bench@example.com", role="owner")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
        workspace_id, other_id = workspace.id, other.id
        started = time.monotonic()
        # Loading is not what is measured: build the secondary indexes once after the load instead of
        # maintaining them row by row (on a 128 MB shared_buffers server that is the difference between
        # minutes and most of an hour).
        indexes = [index for model in (Lead, Deal, Visit) for index in model.__table__.indexes if not index.unique]
        for index in indexes:
            index.drop(db.engine)
        with db.engine.begin() as connection:
            for table in ("leads", "deals", "ad_spend", "visits"):
                connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        generate(other_id, 20_000, seed=2)
        print(f"other tenant loaded in {time.monotonic() - started:.0f}s", flush=True)
        generate(workspace_id, args.leads, args.sales, args.spend_rows, days=365, seed=1)
        print(f"data: {args.leads} leads, {args.sales} sales, {args.spend_rows} spend rows "
              f"in {time.monotonic() - started:.0f}s", flush=True)
        chunk = 1_000_000
        for first in range(1, args.visits + 1, chunk):
            db.session.execute(text(LOAD_VISITS), {"workspace": workspace_id, "visitors": max(args.leads * 2 // 3, 1),
                                                   "first": first, "last": min(first + chunk - 1, args.visits)})
            db.session.commit()
        db.session.execute(text(LOAD_VISITS), {"workspace": other_id, "visitors": 10_000, "first": args.visits + 1,
                                               "last": args.visits + 100_000})
        db.session.execute(text(LOAD_CREDITS), {"workspace": workspace_id, "per_mille": int(args.credited * 1000)})
        db.session.commit()
        print(f"{args.visits} visits and chains for {args.credited:.0%} of the leads "
              f"in {time.monotonic() - started:.0f}s", flush=True)
        for index in indexes:
            index.create(db.engine)
        print(f"indexes built; {time.monotonic() - started:.0f}s in all", flush=True)
        with db.engine.begin() as connection:
            for table in ("leads", "deals", "ad_spend", "visits"):
                connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        for rebuilt in (other_id, workspace_id):
            rebuild_started = time.monotonic()
            rows = rebuild(rebuilt)
            print(f"rollups rebuilt for workspace {rebuilt}: {rows} rows in {time.monotonic() - rebuild_started:.1f}s",
                  flush=True)
            rebuild_started = time.monotonic()
            rows = credits.rebuild(rebuilt)
            print(f"credit rollups rebuilt for workspace {rebuilt}: {rows} rows in "
                  f"{time.monotonic() - rebuild_started:.1f}s", flush=True)
        db.session.remove()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        print_sizes(args)

    client = app.test_client()
    response = client.post("/login", data={"email": "bench@example.com", "password": PASSWORD})
    assert response.status_code == 302, response.status_code

    # The cursor of page 1,000 (50 leads a page): walk it once, as a user clicking "Older" would.
    cursor = page_1000_cursor(client)
    with app.app_context():
        from portal.models import LeadCredit

        chained_lead = db.session.scalar(select(LeadCredit.lead_id).order_by(LeadCredit.lead_id.desc()).limit(1))
    cases = {
        "roi_year": "/reports/roi?period=365d",
        "roi_year_first_touch_closed": "/reports/roi?period=365d&attribution=first&basis=closed",
        "roi_year_linear": "/reports/roi?period=365d&model=linear",
        "roi_year_models_compared": "/reports/roi/models?period=365d",
        "lead_page_chain": f"/leads/{chained_lead}",
        "roi_year_drill_google": "/reports/roi?period=365d&source=google",
        "roi_30d": "/reports/roi?period=30d",
        "dashboard": "/?period=30d",
        "leads_first": "/leads",
        "leads_page_1000": f"/leads?after={cursor}",
        "leads_search": "/leads?source=google&sync=synced&q=anna",
        "leads_phone_search": "/leads?q=%2B7912",
        "leads_deal_won": "/leads?deal=won",
        "leads_deal_lost": "/leads?deal=lost",
        "leads_deal_open": "/leads?deal=open",
        "api_roi_year": "/api/reports/roi?period=365d",
    }
    load = os.getloadavg()
    print(f"load average before timing: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"{'case':30} {'cold p50':>9} {'warm p50':>9} {'min':>7} {'max':>7}  targets (cold: a fresh app's "
          f"first request)")
    token = api_token(app)
    for case, path in cases.items():
        headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
        colds = []
        for _ in range(args.cold_runs):
            fresh = make_app()
            fresh_client = fresh.test_client()
            fresh_client.post("/login", data={"email": "bench@example.com", "password": PASSWORD})
            colds.append(timed(fresh_client, path, headers))
            with fresh.app_context():
                db.engine.dispose()
        timings = [timed(client, path, headers) for _ in range(args.runs + 1)][1:]
        verdicts = []
        for label, target, value in (("cold", COLD_TARGETS_MS.get(case), statistics.median(colds)),
                                     ("warm", WARM_TARGETS_MS.get(case), statistics.median(timings))):
            if target is not None:
                verdicts.append(f"{label} ≤ {target} {'ok' if value <= target else 'MISSED'}")
        print(f"{case:30} {statistics.median(colds):9.1f} {statistics.median(timings):9.1f} {min(timings):7.1f} "
              f"{max(timings):7.1f}  {', '.join(verdicts)}", flush=True)
    load = os.getloadavg()
    print(f"load average after timing: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def timed(client, path: str, headers: dict) -> float:
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    response.get_data()
    assert response.status_code == 200, (path, response.status_code)
    return (time.perf_counter() - started) * 1000


def print_sizes(args) -> None:
    """Rows and bytes (heap + indexes + TOAST) of each table, and per lead / deal / spend row."""
    per = {"leads": args.leads + 20_000, "deals": args.sales + 2_000, "ad_spend": args.spend_rows}
    per.update({"visits": args.visits + 100_000, "lead_credits": args.leads + 20_000})
    for table in ("leads", "deals", "ad_spend", "report_rollups", "visits", "lead_credits", "credit_rollups"):
        rows, size = db.session.execute(text(
            f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")).one()
        unit = per.get(table, args.leads + 20_000)
        per_lead = table in ("leads", "report_rollups", "lead_credits", "credit_rollups")
        print(f"size {table:15} {rows:>10} rows {size / 2**20:9.1f} MiB  {size / max(unit, 1):7.0f} bytes per "
              f"{'lead' if per_lead else table.rstrip('s')}", flush=True)


def page_1000_cursor(client) -> str:
    path = "/leads"
    for _ in range(999):
        html = client.get(path).get_data(as_text=True)
        path = re.search(r'id="next-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    return re.search(r"after=([^&]+)", path).group(1)


def api_token(app) -> str:
    from portal.models import Workspace
    from portal.reports.api_tokens import create_token

    with app.app_context():
        workspace_id = db.session.scalar(select(Workspace.id).where(Workspace.name == "Bench"))
        return create_token(workspace_id, "bench")[1]


if __name__ == "__main__":
    main()
