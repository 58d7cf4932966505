"""Re-tagging an ad account's stored spend after a mapping change, in PostgreSQL with its rollup triggers: one
account of `--campaigns` campaigns × `--days` days of imported rows.

Prints seconds and UPDATE statements for: utm_campaign switched from the campaign's id to its name (every row
changes), one campaign given its own tags (its rows change), and saving again with nothing changed (no row
changes, nothing written). For comparison, the same first change done row by row as the import did before
(the rows read into Python, an executemany UPDATE of the changed ones).

    python tests/bench/adspend_retag.py [--campaigns 500] [--days 90]

Uses its own PostgreSQL database (leadpath_bench_retag, created and dropped).
"""
import argparse
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, event, insert, select, text, update

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from config import TestingConfig  # noqa: E402
from portal import create_app  # noqa: E402
from portal.adplatforms import importer  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import AdAccount, AdCampaignTags, AdSpend, Workspace  # noqa: E402
from portal.models.types import utcnow  # noqa: E402

DATABASE = "leadpath_bench_retag"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"


def seed(campaigns: int, days: int) -> int:
    workspace = Workspace(name="bench retag")
    db.session.add(workspace)
    db.session.flush()
    account = AdAccount(workspace_id=workspace.id, platform="vk_ads", external_id="bench", name="bench",
                        currency="RUB", enabled=True, utm_source="vk", utm_medium="cpc", campaign_tag="id")
    db.session.add(account)
    db.session.flush()
    now, first = utcnow(), date(2026, 1, 1)
    rows = [{"workspace_id": workspace.id, "ad_account_id": account.id, "date": first + timedelta(days=day),
             "campaign_id": str(7_000_000 + number), "campaign_name": f"Campaign {number}", "utm_source": "vk",
             "utm_medium": "cpc", "utm_campaign": str(7_000_000 + number), "amount": Decimal("12.50"),
             "original_amount": Decimal("12.50"), "original_currency": "RUB", "currency": "RUB",
             "vat_included": False, "created_at": now, "updated_at": now}
            for day in range(days) for number in range(campaigns)]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(AdSpend), rows[start:start + 5000])
    db.session.commit()
    return account.id


def timed(label: str, change) -> None:
    updates = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE AD_SPEND"):
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    started = time.perf_counter()
    changed = change()
    db.session.commit()
    seconds = time.perf_counter() - started
    event.remove(db.engine, "before_cursor_execute", count)
    print(f"{label}: {changed} rows changed in {seconds:.2f} s, {len(updates)} UPDATE statements")


def row_by_row(account: AdAccount) -> int:
    """The former way: every row read into Python, the changed ones updated by primary key."""
    overrides = importer.campaign_overrides(account.id)
    changes = []
    for row in db.session.execute(select(AdSpend.id, AdSpend.campaign_id, AdSpend.campaign_name, AdSpend.utm_source,
                                         AdSpend.utm_medium, AdSpend.utm_campaign)
                                  .where(AdSpend.ad_account_id == account.id)):
        tags = importer.tags_for(account, overrides, row.campaign_id or "", row.campaign_name or "")
        if tags != (row.utm_source, row.utm_medium, row.utm_campaign):
            changes.append({"id": row.id, "utm_source": tags[0], "utm_medium": tags[1], "utm_campaign": tags[2]})
    if changes:
        db.session.execute(update(AdSpend), changes)
    return len(changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    try:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=DATABASE_URL, REDIS_URL=None, LOG_LEVEL="WARNING")
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            account_id = seed(args.campaigns, args.days)
            account = db.session.get(AdAccount, account_id)
            print(f"{args.campaigns} campaigns × {args.days} days = {args.campaigns * args.days} rows")

            def by_name():
                account.campaign_tag = "name"
                return importer.retag_account(account)

            def one_override():
                db.session.add(AdCampaignTags(workspace_id=account.workspace_id, ad_account_id=account.id,
                                              campaign_id="7000000", utm_source="vk-special", utm_medium="cpm",
                                              utm_campaign="spring-sale"))
                db.session.flush()
                return importer.retag_account(account)

            def back_to_id_row_by_row():
                account.campaign_tag = "id"
                return row_by_row(account)

            timed("utm_campaign id → name (set-based)", by_name)
            timed("one campaign's own tags (set-based)", one_override)
            timed("saved again, nothing changed (set-based)", lambda: importer.retag_account(account))
            timed("utm_campaign name → id (row by row, the former way)", back_to_id_row_by_row)
            db.session.remove()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
