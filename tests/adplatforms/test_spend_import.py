"""Ad spend that arrives by itself: connecting Yandex Direct through its sandbox (OAuth with a server-made state),
the 90-day backfill, re-imports that never double, partial failures retried by range, a revoked token, currency
conversion, manual and imported rows side by side, tags that follow the mapping, and the spend no lead matches."""
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fixtures.support import log_in, post_form
from fixtures.yandex_direct import CLIENT_ID, CLIENT_SECRET, grant, make_client
from sqlalchemy import func, select

from portal.adplatforms import connections, importer, jobs
from portal.adplatforms.base import AdAccountInfo
from portal.extensions import db
from portal.models import AdAccount, AdPlatformConnection, AdSpend, Lead, SpendImport, User, Workspace
from portal.models.ad_account import DONE, FAILED, QUEUED, REVOKED, WAITING
from portal.models.types import utcnow

PAGE = "/settings/ad-accounts"


@pytest.fixture
def ad_app(app, yandex):
    app.config.update(YANDEX_DIRECT_CLIENT_ID=CLIENT_ID, YANDEX_DIRECT_CLIENT_SECRET=CLIENT_SECRET,
                      YANDEX_DIRECT_OAUTH_URL=yandex.url, YANDEX_DIRECT_API_URL=yandex.url,
                      AD_SPEND_RATES="USD:RUB=90", AD_REPORT_WAIT_SECONDS=5)
    return app


@pytest.fixture
def owner_client(ad_app, owner):
    client = ad_app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    return client


def connect(client, login: str, decision: str = "allow"):
    """The owner's way through: Connect → the platform's consent page → back to the callback."""
    started = post_form(client, f"{PAGE}/connect/yandex_direct", {}, page=PAGE)
    assert started.status_code == 302
    consent = requests.post(started.headers["Location"], data={"login": login, "decision": decision},
                            allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    assert back.path == f"{PAGE}/yandex_direct/callback"
    return client.get(f"{back.path}?{back.query}")


def run_queued(app) -> list[str]:
    with app.app_context():
        ids = db.session.scalars(select(SpendImport.id).where(SpendImport.status == QUEUED)
                                 .order_by(SpendImport.id)).all()
        return [jobs.import_spend(import_id) for import_id in ids]


def spend_rows(app):
    with app.app_context():
        return db.session.execute(select(AdSpend.date, AdSpend.campaign_id, AdSpend.amount, AdSpend.utm_source,
                                         AdSpend.utm_medium, AdSpend.utm_campaign, AdSpend.original_amount,
                                         AdSpend.original_currency).where(AdSpend.ad_account_id.is_not(None))
                                  .order_by(AdSpend.date, AdSpend.campaign_id)).all()


def expected_cost(yandex, login: str, first, last, agency: str | None = None) -> Decimal:
    client = make_client(yandex.url)
    tokens = grant(yandex, agency or login)
    days = client.campaign_days(tokens, AdAccountInfo(login, login, "RUB", manager_id=agency), first, last)
    return sum((day.cost for day in days), Decimal(0))


def only_account(app) -> AdAccount:
    with app.app_context():
        return db.session.scalars(select(AdAccount)).one()


def test_connecting_an_advertiser_imports_the_last_90_days(ad_app, owner_client, yandex):
    page = connect(owner_client, "sandbox-advertiser")
    assert page.status_code == 302
    with ad_app.app_context():
        runs = db.session.scalars(select(SpendImport).order_by(SpendImport.first_day)).all()
        assert len(runs) == 3 and (runs[-1].last_day - runs[0].first_day).days == 89
        first, last = runs[0].first_day, runs[-1].last_day
        connection = db.session.scalars(select(AdPlatformConnection)).one()
        stored = db.session.execute(select(AdPlatformConnection.__table__.c.access_token)).scalar_one()
        assert connection.access_token and connection.access_token not in stored  # sealed at rest
    assert run_queued(ad_app) == [DONE, DONE, DONE]
    rows = spend_rows(ad_app)
    assert rows and sum(row.amount for row in rows) == expected_cost(yandex, "sandbox-advertiser", first, last)
    assert {(row.utm_source, row.utm_medium) for row in rows} == {("yandex", "cpc")}
    assert all(row.utm_campaign == row.campaign_id for row in rows)
    listing = owner_client.get("/reports/spend?period=90d").get_data(as_text=True)
    assert "Imported" in listing


def test_importing_the_same_days_again_replaces_them(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    before = spend_rows(ad_app)
    account = only_account(ad_app)
    for _attempt in range(2):
        post_form(owner_client, f"{PAGE}/{account.id}/import", {}, page=f"{PAGE}/{account.id}")
        assert run_queued(ad_app) == [DONE]
    assert spend_rows(ad_app) == before


def test_a_failed_range_is_retried_alone_and_nothing_doubles(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-agency")
    with ad_app.app_context():
        accounts = db.session.scalars(select(AdAccount).order_by(AdAccount.external_id)).all()
        assert [account.enabled for account in accounts] == [False, False]  # an agency's clients wait for a choice
        rub = accounts[0]
    saved = post_form(owner_client, f"{PAGE}/{rub.id}", {"enabled": "y", "utm_source": "yandex", "utm_medium": "cpc",
                                                         "campaign_tag": "id"}, page=f"{PAGE}/{rub.id}")
    assert saved.status_code == 302
    yandex.faults(http_500=1)
    assert run_queued(ad_app) == [WAITING, DONE, DONE]
    with ad_app.app_context():
        waiting = db.session.scalars(select(SpendImport).where(SpendImport.status == WAITING)).one()
        assert waiting.retry_at > utcnow() and "failed" in waiting.error
        waiting.retry_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.import_due_accounts()["resent"] == 1
        first = db.session.scalar(select(func.min(SpendImport.first_day)))
        last = db.session.scalar(select(func.max(SpendImport.last_day)))
    assert run_queued(ad_app) == [DONE]
    rows = spend_rows(ad_app)
    assert sum(row.amount for row in rows) == expected_cost(yandex, "agency-client-rub", first, last,
                                                            agency="sandbox-agency")
    assert len(rows) == len({(row.date, row.campaign_id) for row in rows})
    history = owner_client.get(f"{PAGE}/{rub.id}").get_data(as_text=True)
    assert "Import history" in history and "done" in history


def test_a_revoked_token_marks_the_connection_and_asks_to_reconnect(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    yandex.revoke("sandbox-advertiser")
    assert run_queued(ad_app) == [FAILED, FAILED, FAILED]
    with ad_app.app_context():
        assert db.session.scalars(select(AdPlatformConnection)).one().status == REVOKED
        assert db.session.scalars(select(AdAccount)).one().status == REVOKED
    dashboard = owner_client.get("/").get_data(as_text=True)
    assert "Reconnect ad accounts" in dashboard
    assert "no longer accepts" in owner_client.get(PAGE).get_data(as_text=True)
    connect(owner_client, "sandbox-advertiser")
    assert "Reconnect ad accounts" not in owner_client.get("/").get_data(as_text=True)
    with ad_app.app_context():
        assert db.session.scalar(select(func.count(AdPlatformConnection.id))) == 1
        account = db.session.scalars(select(AdAccount)).one()
        assert account.status == "connected" and account.enabled


def test_tokens_are_refreshed_before_they_expire(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    with ad_app.app_context():
        connection = db.session.scalars(select(AdPlatformConnection)).one()
        old_access, old_refresh = connection.access_token, connection.refresh_token
        connection.expires_at = utcnow() + timedelta(days=2)
        db.session.commit()
        tokens = connections.fresh_tokens(connection.id)
        assert tokens.access_token != old_access
        db.session.expire_all()
        connection = db.session.get(AdPlatformConnection, connection.id)
        assert connection.refresh_token != old_refresh and connection.last_refresh_at is not None
        assert connection.expires_at > utcnow() + timedelta(days=300)


def test_spend_in_another_currency_is_converted_and_keeps_the_original(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-agency")
    with ad_app.app_context():
        usd = db.session.scalars(select(AdAccount).where(AdAccount.currency == "USD")).one()
    post_form(owner_client, f"{PAGE}/{usd.id}", {"enabled": "y", "utm_source": "yandex", "utm_medium": "cpc",
                                                 "campaign_tag": "id"}, page=f"{PAGE}/{usd.id}")
    assert set(run_queued(ad_app)) == {DONE}
    rows = spend_rows(ad_app)
    assert rows and all(row.original_currency == "USD" and row.amount == (row.original_amount * 90).quantize(
        Decimal("0.01")) for row in rows)
    ad_app.config["AD_SPEND_RATES"] = "EUR:RUB=100"
    post_form(owner_client, f"{PAGE}/{usd.id}/import", {}, page=f"{PAGE}/{usd.id}")
    assert run_queued(ad_app) == [FAILED]
    with ad_app.app_context():
        failed = db.session.scalars(select(SpendImport).where(SpendImport.status == FAILED)).one()
        assert "USD:RUB" in failed.error and "AD_SPEND_RATES" in failed.error
    assert spend_rows(ad_app) == rows  # a failed run changes nothing


def test_typed_and_imported_spend_coexist_on_the_same_tags(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    imported = spend_rows(ad_app)[0]
    typed = post_form(owner_client, "/reports/spend", {"date": imported.date.isoformat(), "utm_source": "yandex",
                                                       "utm_medium": "cpc", "utm_campaign": imported.utm_campaign,
                                                       "amount": "10"}, page="/reports/spend")
    assert typed.status_code == 302
    with ad_app.app_context():
        same_tags = db.session.scalars(select(AdSpend).where(AdSpend.date == imported.date,
                                                             AdSpend.utm_campaign == imported.utm_campaign)).all()
        assert sorted(row.ad_account_id is None for row in same_tags) == [False, True]
        imported_id = next(row.id for row in same_tags if row.ad_account_id)
        typed_id = next(row.id for row in same_tags if row.ad_account_id is None)
    assert owner_client.get(f"/reports/spend/{imported_id}/edit").status_code == 404
    assert owner_client.get(f"/reports/spend/{typed_id}/edit").status_code == 200


def test_changing_the_mapping_retags_the_stored_rows(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    account = only_account(ad_app)
    post_form(owner_client, f"{PAGE}/{account.id}", {"enabled": "y", "utm_source": "ya", "utm_medium": "ppc",
                                                     "campaign_tag": "name"}, page=f"{PAGE}/{account.id}")
    rows = spend_rows(ad_app)
    assert {(row.utm_source, row.utm_medium) for row in rows} == {("ya", "ppc")}
    with ad_app.app_context():
        names = dict(db.session.execute(select(AdSpend.campaign_id, AdSpend.campaign_name)).all())
    assert all(row.utm_campaign == names[row.campaign_id] for row in rows)
    campaign = rows[0].campaign_id
    post_form(owner_client, f"{PAGE}/{account.id}/campaigns", {"campaign_id": campaign, "utm_source": "brand",
                                                               "utm_medium": "", "utm_campaign": "spring"},
              page=f"{PAGE}/{account.id}")
    changed = [row for row in spend_rows(ad_app) if row.campaign_id == campaign]
    assert {(row.utm_source, row.utm_medium, row.utm_campaign) for row in changed} == {("brand", "ppc", "spring")}
    post_form(owner_client, f"{PAGE}/{account.id}/import", {}, page=f"{PAGE}/{account.id}")
    run_queued(ad_app)  # a new import gives its rows the same tags
    assert {row.utm_source for row in spend_rows(ad_app) if row.campaign_id == campaign} == {"brand"}


def test_spend_that_matches_no_lead_is_listed(ad_app, owner_client, owner, yandex):
    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    rows = spend_rows(ad_app)
    matched = rows[-1].campaign_id
    with ad_app.app_context():
        workspace_id = db.session.get(User, owner).workspace_id
        db.session.add(Lead(workspace_id=workspace_id, name="Ann", phone="+79990000000", utm_source="Yandex",
                            utm_medium="CPC", utm_campaign=matched))
        db.session.commit()
    page = owner_client.get(f"{PAGE}/unmatched?period=90d").get_data(as_text=True)
    others = {row.campaign_id for row in rows} - {matched}
    assert all(f"<td>{campaign}" in page for campaign in others)
    assert f"<td>{matched}" not in page


def test_members_read_the_page_but_cannot_connect_or_change(ad_app, owner_client, owner, make_user, yandex):
    connect(owner_client, "sandbox-advertiser")
    account = only_account(ad_app)
    with ad_app.app_context():
        workspace_id = db.session.get(User, owner).workspace_id
    make_user("member@example.com", role="member", workspace_id=workspace_id)
    member = ad_app.test_client()
    log_in(member, "member@example.com")
    assert member.get(PAGE).status_code == 200
    assert member.get(f"{PAGE}/{account.id}").status_code == 200
    assert post_form(member, f"{PAGE}/connect/yandex_direct", {}, page=PAGE).status_code == 403
    assert post_form(member, f"{PAGE}/{account.id}/import", {}, page=PAGE).status_code == 403


def test_another_workspaces_account_is_not_found(ad_app, owner_client, make_user, yandex):
    connect(owner_client, "sandbox-advertiser")
    account = only_account(ad_app)
    make_user("other@example.com")
    other = ad_app.test_client()
    log_in(other, "other@example.com")
    assert other.get(f"{PAGE}/{account.id}").status_code == 404
    assert post_form(other, f"{PAGE}/{account.id}/import", {}, page=PAGE).status_code == 404


def test_a_used_foreign_or_denied_state_connects_nothing(ad_app, owner_client, yandex):
    denied = connect(owner_client, "sandbox-advertiser", decision="deny")
    assert denied.status_code == 302
    assert "not granted" in owner_client.get(PAGE).get_data(as_text=True)
    forged = owner_client.get(f"{PAGE}/yandex_direct/callback?code=1234567&state=forged")
    assert forged.status_code == 302 and "not valid" in owner_client.get(PAGE).get_data(as_text=True)
    assert owner_client.get(f"{PAGE}/unknown/callback?code=1").status_code == 404
    with ad_app.app_context():
        assert db.session.scalar(select(func.count(AdAccount.id))) == 0


def test_the_daily_import_comes_at_the_workspaces_hour_and_rereads_the_trailing_days(ad_app, owner_client, yandex):
    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    with ad_app.app_context():
        account = db.session.scalars(select(AdAccount)).one()
        workspace = db.session.get(Workspace, account.workspace_id)
        today = importer.local_today(workspace)
        assert jobs.import_due_accounts()["daily"] == 0  # imported today already
        account.last_daily_on = today - timedelta(days=1)
        workspace.ad_import_hour = 0
        db.session.commit()
        assert jobs.import_due_accounts()["daily"] == 1
        run = db.session.scalars(select(SpendImport).where(SpendImport.kind == "daily")).one()
        assert (run.first_day, run.last_day) == (today - timedelta(days=3), today)
        assert jobs.import_due_accounts()["daily"] == 0
    before = sum(row.amount for row in spend_rows(ad_app))
    assert run_queued(ad_app) == [DONE]
    assert sum(row.amount for row in spend_rows(ad_app)) == before


@pytest.mark.integration
def test_the_roi_report_shows_imported_spend_beside_revenue(ad_app, owner_client, owner, yandex):
    from portal.reports.periods import preset_period
    from portal.reports.rollups import compact_all
    from portal.reports.services import parse_report_query, roi_report

    connect(owner_client, "sandbox-advertiser")
    run_queued(ad_app)
    total = sum(row.amount for row in spend_rows(ad_app))
    with ad_app.app_context():
        workspace = db.session.get(Workspace, db.session.get(User, owner).workspace_id)
        compact_all()
        report = roi_report(workspace.id, parse_report_query({}, preset_period("90d", workspace.timezone)))
        assert report.totals.spend == total
        yandex_row = next(row for row in report.rows if row.key == "yandex")
        assert yandex_row.figures.spend == total


@pytest.mark.parametrize("platform_name, choice, source", [("vk_ads", {"user_id": "1001"}, "vk"),
                                                           ("google_ads", {"email": "owner@sandbox.test"}, "google")])
def test_vk_ads_and_google_ads_plug_into_the_same_connect_and_import(ad_app, owner_client, vk_server, google_server,
                                                                     portal_callbacks, platform_name, choice, source):
    """The registry's other entries: the same pages, state, tokens, runs and tags as Yandex Direct."""
    if platform_name == "vk_ads":
        ad_app.config.update(VK_ADS_CLIENT_ID="vk-test-client", VK_ADS_CLIENT_SECRET="vk-test-secret",
                             VK_ADS_API_URL=vk_server.url, VK_ADS_OAUTH_URL=f"{vk_server.url}/hq/settings/access")
    else:
        ad_app.config.update(GOOGLE_ADS_CLIENT_ID="google-test-client.apps.googleusercontent.com",
                             GOOGLE_ADS_CLIENT_SECRET="google-test-secret", GOOGLE_ADS_API_URL=google_server.url,
                             GOOGLE_ADS_OAUTH_URL=f"{google_server.url}/o/oauth2/v2/auth",
                             GOOGLE_ADS_TOKEN_URL=f"{google_server.url}/token")
    started = post_form(owner_client, f"{PAGE}/connect/{platform_name}", {}, page=PAGE)
    consent_url = started.headers["Location"]
    form = {key: values[0] for key, values in parse_qs(urlsplit(consent_url).query).items()}
    consent = requests.post(consent_url.split("?")[0], data={**form, "decision": "allow", **choice},
                            allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    assert owner_client.get(f"{back.path}?{back.query}").status_code == 302
    with ad_app.app_context():
        accounts = db.session.scalars(select(AdAccount).order_by(AdAccount.id)).all()
        assert accounts and {account.platform for account in accounts} == {platform_name}
        first = accounts[0]
    if not first.enabled:
        post_form(owner_client, f"{PAGE}/{first.id}", {"enabled": "y", "utm_source": source, "utm_medium": "cpc",
                                                       "campaign_tag": "id"}, page=f"{PAGE}/{first.id}")
    outcomes = run_queued(ad_app)
    assert outcomes and set(outcomes) == {DONE}, owner_client.get(f"{PAGE}/{first.id}").get_data(as_text=True)
    rows = spend_rows(ad_app)
    assert rows and {row.utm_source for row in rows} == {source}
    assert len(rows) == len({(row.date, row.campaign_id) for row in rows})


def test_the_vat_choice_is_offered_only_where_the_platform_reports_either_way(ad_app, owner_client, owner, yandex):
    connect(owner_client, "sandbox-advertiser")
    yandex_account = only_account(ad_app)
    assert 'name="include_vat"' in owner_client.get(f"{PAGE}/{yandex_account.id}").get_data(as_text=True)
    with ad_app.app_context():
        vk = AdAccount(workspace_id=yandex_account.workspace_id, platform="vk_ads", external_id="1001", name="VK",
                       currency="RUB", utm_source="vk", utm_medium="cpc", status="connected")
        db.session.add(vk)
        db.session.commit()
        vk_id = vk.id
    page = owner_client.get(f"{PAGE}/{vk_id}").get_data(as_text=True)
    assert 'name="include_vat"' not in page and "without VAT" in page
    saved = post_form(owner_client, f"{PAGE}/{vk_id}", {"utm_source": "vk", "utm_medium": "cpc", "campaign_tag": "id",
                                                        "include_vat": "y"}, page=f"{PAGE}/{vk_id}")
    assert saved.status_code == 302
    with ad_app.app_context():
        assert db.session.get(AdAccount, vk_id).include_vat is False
