"""Ad spend import: a 90-day backfill of one ad account with `--campaigns` campaigns (500 by default) from each
platform's sandbox, run with the sandbox's documented limits on (Yandex Direct: 20 Reports requests per 10 s,
5 offline reports queued, large reports built offline and polled after retryIn; VK Ads: 10 requests a second,
200 ids and pages of 50 per request; Google Ads: searchStream batches of 10,000 rows, the daily operations quota).

Prints per platform: rows imported, API requests (and Yandex's report answers by status), seconds for the whole
backfill through the import (runs one after another as one worker would: fetch, convert, replace the days in
PostgreSQL with its rollup triggers), and seconds to import the same days again (idempotent: the row count stays
the same).

    python tests/bench/adspend_import.py [--campaigns 500] [--days 90] [--build-seconds 2]

Uses its own PostgreSQL database (leadpath_bench_adspend, created and dropped) and an in-process queue.
"""
import argparse
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.yandex_direct import CLIENT_ID, CLIENT_SECRET, grant  # noqa: E402

from config import TestingConfig  # noqa: E402
from portal import create_app  # noqa: E402
from portal.adplatforms import importer  # noqa: E402
from portal.adplatforms.base import TokenSet  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import AdAccount, AdPlatformConnection, AdSpend, SpendImport, Workspace  # noqa: E402
from portal.models.ad_account import QUEUED, WAITING  # noqa: E402
from portal.models.types import utcnow  # noqa: E402
from portal.sandbox import google_ads as google_sandbox  # noqa: E402
from portal.sandbox import vk_ads as vk_sandbox  # noqa: E402
from portal.sandbox.server import serve_in_thread  # noqa: E402
from portal.sandbox.yandex_direct import create_app as create_yandex_sandbox  # noqa: E402

DATABASE = "leadpath_bench_adspend"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"


def yandex_direct(campaigns: int, build_seconds: float):
    """The Yandex Direct sandbox with its documented limits, one advertiser of `campaigns` campaigns; returns the
    server, the app settings that point at it, the account (id, currency) and its tokens."""
    server = serve_in_thread(create_yandex_sandbox({
        "YD_CLIENT_ID": CLIENT_ID, "YD_CLIENT_SECRET": CLIENT_SECRET, "YD_REPORT_BUILD_SECONDS": build_seconds,
        "YD_RETRY_IN": max(int(build_seconds / 2), 1)}))
    requests.post(f"{server.url}/_sandbox/clients", json={"login": "bench-advertiser", "currency": "RUB",
                                                         "campaigns": campaigns}, timeout=30).raise_for_status()

    class Control:
        url = server.url

        def code(self, login, redirect_uri="http://127.0.0.1/cb", state=None):
            return requests.post(f"{server.url}/_sandbox/authorize", timeout=10,
                                 json={"login": login, "redirect_uri": redirect_uri}).json()

    tokens = grant(Control(), "bench-advertiser")
    settings = {"YANDEX_DIRECT_CLIENT_ID": CLIENT_ID, "YANDEX_DIRECT_CLIENT_SECRET": CLIENT_SECRET,
                "YANDEX_DIRECT_OAUTH_URL": server.url, "YANDEX_DIRECT_API_URL": server.url}

    def requests_made() -> str:
        calls = requests.get(f"{server.url}/_sandbox/state", timeout=10).json()["calls"]
        reports = Counter(call["status"] for call in calls if call["path"].endswith("/reports"))
        return f"{len(calls)} (reports by status: {dict(sorted(reports.items()))})"

    return server, settings, ("bench-advertiser", "RUB"), tokens, requests_made


def vk_ads(campaigns: int, _build_seconds: float):
    """The VK Ads sandbox at its default limits; advertiser 1001 with `campaigns` ad plans."""
    server = serve_in_thread(vk_sandbox.create_app({}))
    requests.post(f"{server.url}/_sandbox/users/1001/ad_plans", json={"count": campaigns - 3}, timeout=30)
    answer = requests.post(f"{server.url}/api/v2/oauth2/token.json", timeout=10, data={
        "grant_type": "client_credentials", "client_id": "vk-sandbox-client",
        "client_secret": "vk-sandbox-secret"}).json()
    tokens = TokenSet(answer["access_token"], answer["refresh_token"])
    settings = {"VK_ADS_CLIENT_ID": "vk-sandbox-client", "VK_ADS_CLIENT_SECRET": "vk-sandbox-secret",
                "VK_ADS_API_URL": server.url}
    return (server, settings, ("1001", "RUB"), tokens,
            lambda: str(len(requests.get(f"{server.url}/_sandbox/calls", timeout=10).json())))


def google_ads(campaigns: int, _build_seconds: float):
    """The Google Ads sandbox at its default quota; customer 1111111111 (USD) with `campaigns` campaigns."""
    server = serve_in_thread(google_sandbox.create_app({}))
    requests.post(f"{server.url}/_sandbox/customers/1111111111/campaigns", json={"count": campaigns - 2},
                  timeout=30)
    state = server.app.extensions["google_ads_sandbox"]
    tokens = TokenSet(state.issue("owner@sandbox.test")["access_token"])
    settings = {"GOOGLE_ADS_CLIENT_ID": "google-sandbox-client.apps.googleusercontent.com",
                "GOOGLE_ADS_CLIENT_SECRET": "google-sandbox-secret", "GOOGLE_ADS_API_URL": server.url,
                "GOOGLE_ADS_TOKEN_URL": f"{server.url}/token"}
    return server, settings, ("1111111111", "USD"), tokens, lambda: str(len(state.calls))


# platform name → its sandbox starter
PLATFORMS = {"yandex_direct": yandex_direct, "vk_ads": vk_ads, "google_ads": google_ads}


def run_all(app) -> float:
    """Run every queued or waiting import of the database, the waits honoured, as one worker would."""
    started = time.perf_counter()
    with app.app_context():
        while True:
            run = db.session.scalars(select(SpendImport).where(SpendImport.status.in_((QUEUED, WAITING)))
                                     .order_by(SpendImport.retry_at.is_not(None), SpendImport.retry_at,
                                               SpendImport.id).limit(1)).first()
            if run is None:
                return time.perf_counter() - started
            if run.status == WAITING and run.retry_at > utcnow():
                time.sleep((run.retry_at - utcnow()).total_seconds())
            importer.run_import(run.id)
            db.session.remove()


def bench_platform(name: str, starter, args) -> None:
    server, settings, (external_id, currency), tokens, requests_made = starter(args.campaigns, args.build_seconds)
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=None, AD_SPEND_RATES="USD:RUB=90",
                     AD_REPORT_WAIT_SECONDS=120, AD_IMPORT_BACKFILL_DAYS=args.days, LOG_LEVEL="WARNING", **settings)
    with app.app_context():
        workspace = Workspace(name=f"bench {name}")
        db.session.add(workspace)
        db.session.flush()
        connection = AdPlatformConnection(workspace_id=workspace.id, platform=name, access_token=tokens.access_token,
                                          refresh_token=tokens.refresh_token, expires_at=tokens.expires_at)
        db.session.add(connection)
        db.session.flush()
        account = AdAccount(workspace_id=workspace.id, connection_id=connection.id, platform=name,
                            external_id=external_id, name=external_id, currency=currency, enabled=True,
                            utm_source=name, utm_medium="cpc")
        db.session.add(account)
        db.session.flush()
        importer.queue_backfill(account, workspace)
        db.session.commit()
        account_id = account.id
    first = run_all(app)
    with app.app_context():
        rows = db.session.scalar(select(func.count(AdSpend.id)).where(AdSpend.ad_account_id == account_id))
        failed = db.session.scalar(select(func.count(SpendImport.id)).where(SpendImport.status == "failed"))
        account = db.session.get(AdAccount, account_id)
        importer.queue_backfill(account, db.session.get(Workspace, account.workspace_id))
        db.session.commit()
    again = run_all(app)
    with app.app_context():
        rows_again = db.session.scalar(select(func.count(AdSpend.id)).where(AdSpend.ad_account_id == account_id))
    print(f"{name}: {args.days} days × {args.campaigns} campaigns → {rows} rows in {first:.1f} s "
          f"(failed runs: {failed}); again: {rows_again} rows in {again:.1f} s; API requests {requests_made()}")
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--build-seconds", type=float, default=2.0, help="how long the sandbox builds a report")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS))
    args = parser.parse_args()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    try:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=None)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        for name in args.platform or list(PLATFORMS):
            bench_platform(name, PLATFORMS[name], args)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
