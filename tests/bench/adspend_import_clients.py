"""Benchmark: one account's cost per campaign and day fetched by the VK Ads and Google Ads wire clients from their
sandboxes, within each platform's documented limits.

    cd tests && python bench/adspend_import_clients.py [--campaigns 500] [--days 90] [--rounds 3]

Each sandbox runs in this process on a free port (werkzeug's threaded server, as in the tests); nothing else is
needed. VK Ads: an advertiser with `--campaigns` ad plans, read in pages of 50, statistics in requests of at most
200 ids and 92 days, under the sandbox's default per-user limit of 10 requests a second. Google Ads: a customer
with `--campaigns` campaigns, one searchStream answered in batches of 10,000 rows. Every round checks that the
cost fetched equals what the sandbox's figures say (exact Decimal sums).

`fetch_from_sandboxes(campaigns, days)` is the same measurement as a function, for the spend-import benchmark.
"""
import argparse
import logging
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from portal.adplatforms.base import AdAccountInfo, TokenSet  # noqa: E402
from portal.adplatforms.google_ads.client import GoogleAdsClient  # noqa: E402
from portal.adplatforms.vk_ads.client import VKAdsClient  # noqa: E402
from portal.sandbox import google_ads as google_sandbox  # noqa: E402
from portal.sandbox import vk_ads as vk_sandbox  # noqa: E402
from portal.sandbox.server import serve_in_thread  # noqa: E402
from portal.sandbox.spend_figures import daily_figures  # noqa: E402


def expected_total(seed: str, campaign_ids, first: date, last: date, *, micros: bool) -> Decimal:
    total = Decimal(0)
    for campaign_id in campaign_ids:
        day = first
        while day <= last:
            impressions, _, hundredths = daily_figures(seed, campaign_id, day)
            if impressions or not micros:
                total += Decimal(hundredths) / 100
            day += timedelta(days=1)
    return total


def vk_round(campaigns: int, days: int) -> dict:
    server = serve_in_thread(vk_sandbox.create_app({}))
    try:
        requests.post(f"{server.url}/_sandbox/users/1001/ad_plans", json={"count": campaigns - 3}, timeout=30)
        client = VKAdsClient(client_id="vk-sandbox-client", client_secret="vk-sandbox-secret", api_url=server.url,
                             session=requests.Session())
        token = requests.post(f"{server.url}/api/v2/oauth2/token.json", timeout=10, data={
            "grant_type": "client_credentials", "client_id": "vk-sandbox-client",
            "client_secret": "vk-sandbox-secret"}).json()
        tokens = TokenSet(access_token=token["access_token"], refresh_token=token["refresh_token"])
        account = AdAccountInfo("1001", "advertiser", "RUB", "Europe/Moscow")
        last = datetime.now(ZoneInfo("Europe/Moscow")).date()
        first = last - timedelta(days=days - 1)
        started = time.perf_counter()
        rows = client.campaign_days(tokens, account, first, last)
        elapsed = time.perf_counter() - started
        calls = requests.get(f"{server.url}/_sandbox/calls", timeout=10).json()
        ids = [int(campaign_id) for campaign_id in client.campaigns(tokens)]
        assert sum(row.cost for row in rows) == expected_total("vk", ids, first, last, micros=False)
        return {"seconds": elapsed, "rows": len(rows), "requests": len(calls)}
    finally:
        server.shutdown()


def google_round(campaigns: int, days: int) -> dict:
    server = serve_in_thread(google_sandbox.create_app({"GOOGLE_SANDBOX_REDIRECT_URIS": ["http://127.0.0.1:9/cb"]}))
    try:
        requests.post(f"{server.url}/_sandbox/customers/1111111111/campaigns", json={"count": campaigns - 2},
                      timeout=30)
        client = GoogleAdsClient(client_id="google-sandbox-client.apps.googleusercontent.com",
                                 client_secret="google-sandbox-secret", api_url=server.url,
                                 token_url=f"{server.url}/token", session=requests.Session())
        state = server.app.extensions["google_ads_sandbox"]
        tokens = TokenSet(access_token=state.issue("owner@sandbox.test")["access_token"])
        account = AdAccountInfo("1111111111", "Direct advertiser", "USD", "America/New_York")
        last = datetime.now(ZoneInfo("America/New_York")).date()
        first = last - timedelta(days=days - 1)
        started = time.perf_counter()
        rows = client.campaign_days(tokens, account, first, last)
        elapsed = time.perf_counter() - started
        ids = [campaign["id"] for campaign in state.campaigns_of("1111111111")]
        assert sum(row.cost for row in rows) == expected_total("google", ids, first, last, micros=True)
        return {"seconds": elapsed, "rows": len(rows), "requests": len(state.calls)}
    finally:
        server.shutdown()


def fetch_from_sandboxes(campaigns: int = 500, days: int = 90) -> dict[str, dict]:
    """{platform: {seconds, rows, requests}} of one fetch of one account from each sandbox."""
    return {"vk_ads": vk_round(campaigns, days), "google_ads": google_round(campaigns, days)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    results: dict[str, list[dict]] = {"vk_ads": [], "google_ads": []}
    for _ in range(options.rounds):
        for platform, figures in fetch_from_sandboxes(options.campaigns, options.days).items():
            results[platform].append(figures)
    print(f"{options.campaigns} campaigns × {options.days} days, one account, {options.rounds} rounds")
    for platform, rounds in results.items():
        seconds = [figures["seconds"] for figures in rounds]
        print(f"{platform:11} rows {rounds[0]['rows']:6}  requests {rounds[0]['requests']:3}  "
              f"median {statistics.median(seconds):6.2f} s  min {min(seconds):6.2f} s  max {max(seconds):6.2f} s  "
              f"rows/s {rounds[0]['rows'] / statistics.median(seconds):8.0f}")


if __name__ == "__main__":
    main()
