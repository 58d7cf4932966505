"""A VK Ads agency through the portal, against the VK sandbox over HTTP: each client account gets tokens of its own
once (VK refuses the agency's token for a client's statistics and keeps five tokens per app and user), both clients
import with them, the five-token limit tells the owner what to do in their language, a refresh by another job does
not leave an import reading with a dead token, and a client's revoked token stops only that client."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import VK_CLIENT_ID, VK_CLIENT_SECRET
from fixtures.support import log_in, post_form
from sqlalchemy import event, func, select
from test_spend_import import PAGE, run_queued

from portal.adplatforms import connections, importer
from portal.adplatforms.base import TokenRevoked
from portal.extensions import db
from portal.models import AdAccount, AdCampaignTags, AdPlatformConnection, AdSpend, SpendImport
from portal.models.ad_account import CONNECTED, DONE, FAILED, REVOKED
from portal.models.types import utcnow

AGENCY, CLIENT_ONE, CLIENT_TWO = 2001, 2101, 2102


@pytest.fixture
def vk_app(app, vk_server, vk_control, portal_callbacks):
    app.config.update(VK_ADS_CLIENT_ID=VK_CLIENT_ID, VK_ADS_CLIENT_SECRET=VK_CLIENT_SECRET,
                      VK_ADS_API_URL=vk_server.url, VK_ADS_OAUTH_URL=f"{vk_server.url}/hq/settings/access",
                      AD_SPEND_RATES="USD:RUB=90")
    return app


@pytest.fixture
def owner_client(vk_app, owner):
    client = vk_app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    return client


def connect_agency(client) -> dict[str, int]:
    """Connect the sandbox's agency through the consent page: {external id: ad account id} of its clients."""
    started = post_form(client, f"{PAGE}/connect/vk_ads", {}, page=PAGE)
    consent_url = started.headers["Location"]
    form = {key: values[0] for key, values in parse_qs(urlsplit(consent_url).query).items()}
    consent = requests.post(consent_url.split("?")[0], data={**form, "decision": "allow", "user_id": str(AGENCY)},
                            allow_redirects=False, timeout=10)
    back = urlsplit(consent.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    with client.application.app_context():
        return {account.external_id: account.id for account in db.session.scalars(select(AdAccount))}


def enable(client, account_id: int, **headers):
    return post_form(client, f"{PAGE}/{account_id}", {"enabled": "y", "utm_source": "vk", "utm_medium": "cpc",
                                                      "campaign_tag": "id"}, page=f"{PAGE}/{account_id}",
                     headers=headers)


def tokens_held(vk_control) -> dict[str, int]:
    return vk_control.get("/state")["tokens_per_user"]


def account(app, account_id: int) -> AdAccount:
    with app.app_context():
        row = db.session.get(AdAccount, account_id)
        db.session.expunge(row)
        return row


def imported_campaigns(app, account_id: int) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(AdSpend.campaign_id).where(AdSpend.ad_account_id == account_id)))


def plan_ids(vk_control, user_id: int) -> set[str]:
    return {str(plan["id"]) for plan in vk_control.get("/state")["plans_by_user"].get(str(user_id), [])}


def test_both_clients_of_an_agency_import_with_their_own_tokens_obtained_once(vk_app, owner_client, vk_control):
    accounts = connect_agency(owner_client)
    assert set(accounts) == {str(CLIENT_ONE), str(CLIENT_TWO)}
    assert str(CLIENT_ONE) not in tokens_held(vk_control)  # nothing minted before the owner chooses
    for account_id in accounts.values():
        assert enable(owner_client, account_id).status_code == 302
    held = tokens_held(vk_control)
    assert held[str(CLIENT_ONE)] == 1 and held[str(CLIENT_TWO)] == 1
    with vk_app.app_context():
        agency_token = db.session.scalars(select(AdPlatformConnection)).one().access_token
        own = {row.external_id: row.access_token for row in db.session.scalars(select(AdAccount))}
    assert own[str(CLIENT_ONE)] and own[str(CLIENT_TWO)] and agency_token not in own.values()

    assert set(run_queued(vk_app)) == {DONE}
    for user_id in (CLIENT_ONE, CLIENT_TWO):
        campaigns = imported_campaigns(vk_app, accounts[str(user_id)])
        assert campaigns and campaigns <= plan_ids(vk_control, user_id)

    for account_id in accounts.values():  # "Import now" twice more: no new token slot is taken
        assert post_form(owner_client, f"{PAGE}/{account_id}/import", {}, page=f"{PAGE}/{account_id}").status_code \
            == 302
    assert set(run_queued(vk_app)) == {DONE}
    assert tokens_held(vk_control) == held


def test_the_five_token_limit_tells_the_owner_what_to_do_in_their_language(vk_app, owner_client, vk_control,
                                                                           vk_client, vk_connect):
    accounts = connect_agency(owner_client)
    agency_tokens = vk_connect(AGENCY)
    client_one = next(info for info in vk_client.accounts(agency_tokens) if info.external_id == str(CLIENT_ONE))
    for _ in range(5):  # another app install of the agency spent the client's five slots
        vk_client.agency_client_tokens(agency_tokens, client_one)

    refused = enable(owner_client, accounts[str(CLIENT_ONE)], **{"Accept-Language": "ru"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "не более пяти" in page and "delete tokens" in page.lower()  # our advice in Russian, VK's own words
    row = account(vk_app, accounts[str(CLIENT_ONE)])
    assert not row.enabled and row.access_token is None and row.error_kind == "token_limit"
    assert "five tokens" in owner_client.get(PAGE, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "п’ять" in owner_client.get(PAGE, headers={"Accept-Language": "uk"}).get_data(as_text=True)

    vk_control.post("/tokens/revoke", {"user_id": CLIENT_ONE})
    vk_client.delete_user_tokens(str(CLIENT_ONE))  # what the advice says; then turning it on works
    assert enable(owner_client, accounts[str(CLIENT_ONE)]).status_code == 302
    row = account(vk_app, accounts[str(CLIENT_ONE)])
    assert row.enabled and row.access_token and row.error_kind is None
    assert set(run_queued(vk_app)) == {DONE}


def test_a_refresh_by_another_job_does_not_leave_the_import_with_a_dead_token(vk_app, owner_client, vk_control,
                                                                            vk_client, monkeypatch):
    accounts = connect_agency(owner_client)
    account_id = accounts[str(CLIENT_ONE)]
    assert enable(owner_client, account_id).status_code == 302
    real_tokens_for_account = importer.tokens_for_account
    stale = {}

    def another_job_refreshes_meanwhile(wanted_id):
        tokens = real_tokens_for_account(wanted_id)
        row = db.session.get(AdAccount, wanted_id)
        row.token_expires_at = utcnow()  # due: the other job's call refreshes, and VK kills `tokens` at once
        db.session.commit()
        assert real_tokens_for_account(wanted_id).access_token != tokens.access_token
        stale["tokens"] = tokens
        return tokens

    monkeypatch.setattr(importer, "tokens_for_account", another_job_refreshes_meanwhile)
    outcomes = run_queued(vk_app)
    with vk_app.app_context():
        errors = set(db.session.scalars(select(SpendImport.error)))
    assert set(outcomes) == {DONE}, errors
    with pytest.raises(TokenRevoked):  # the import really was handed a dead token, and read with the live one
        vk_client.campaigns(stale["tokens"])
    assert imported_campaigns(vk_app, account_id) <= plan_ids(vk_control, CLIENT_ONE)
    assert imported_campaigns(vk_app, account_id)
    assert tokens_held(vk_control)[str(CLIENT_ONE)] == 1  # refreshed, not minted
    row = account(vk_app, account_id)
    assert row.status == CONNECTED and row.token_expires_at > utcnow()


def test_two_refreshes_at_once_spend_the_refresh_token_once(vk_app, owner_client, vk_control):
    accounts = connect_agency(owner_client)
    account_id = accounts[str(CLIENT_TWO)]
    assert enable(owner_client, account_id).status_code == 302
    with vk_app.app_context():
        row = db.session.get(AdAccount, account_id)
        row.token_expires_at = utcnow()
        db.session.commit()
        first = connections.tokens_for_account(account_id)
        second = connections.tokens_for_account(account_id)  # the next job sees the stored, fresh set
    assert first == second
    assert tokens_held(vk_control)[str(CLIENT_TWO)] == 1


def test_a_revoked_client_token_stops_only_that_client(vk_app, owner_client, vk_control):
    accounts = connect_agency(owner_client)
    for account_id in accounts.values():
        assert enable(owner_client, account_id).status_code == 302
    assert set(run_queued(vk_app)) == {DONE}
    vk_control.post("/tokens/revoke", {"user_id": CLIENT_ONE})
    for account_id in accounts.values():
        post_form(owner_client, f"{PAGE}/{account_id}/import", {}, page=f"{PAGE}/{account_id}")
    with vk_app.app_context():
        outcomes = {db.session.get(SpendImport, run_id).ad_account_id: outcome for run_id, outcome in zip(
            db.session.scalars(select(SpendImport.id).where(SpendImport.status == "queued").order_by(SpendImport.id))
            .all(), run_queued(vk_app), strict=True)}
    assert outcomes == {accounts[str(CLIENT_ONE)]: FAILED, accounts[str(CLIENT_TWO)]: DONE}
    revoked, working = account(vk_app, accounts[str(CLIENT_ONE)]), account(vk_app, accounts[str(CLIENT_TWO)])
    assert revoked.status == REVOKED and revoked.error_kind == "revoked"
    assert working.status == CONNECTED and working.error_kind is None
    with vk_app.app_context():
        assert db.session.scalars(select(AdPlatformConnection)).one().status == CONNECTED
    assert "Reconnect ad accounts" in owner_client.get("/").get_data(as_text=True)
    russian = owner_client.get(f"{PAGE}/{accounts[str(CLIENT_ONE)]}?lang=ru").get_data(as_text=True)
    assert "больше не принимает" in russian

    connect_agency(owner_client)  # reconnecting drops the dead tokens; the next import obtains new ones
    assert account(vk_app, accounts[str(CLIENT_ONE)]).access_token is None
    client_page = f"{PAGE}/{accounts[str(CLIENT_ONE)]}"
    post_form(owner_client, f"{client_page}/import", {}, page=client_page)
    assert run_queued(vk_app) == [DONE]
    assert account(vk_app, accounts[str(CLIENT_ONE)]).access_token


def test_missing_rate_is_shown_in_the_viewers_language(vk_app, owner_client, vk_control):
    vk_app.config.update(AD_SPEND_RATES="")
    accounts = connect_agency(owner_client)
    with vk_app.app_context():
        for row in db.session.scalars(select(AdAccount)):
            row.currency = "KZT"
        db.session.commit()
    assert enable(owner_client, accounts[str(CLIENT_TWO)]).status_code == 302
    assert set(run_queued(vk_app)) == {FAILED}
    with vk_app.app_context():
        failed = db.session.scalars(select(SpendImport)).first()
        assert failed.error_kind == "missing_rate" and failed.error_params == {"source": "KZT", "target": "RUB"}
    page = owner_client.get(f"{PAGE}/{accounts[str(CLIENT_TWO)]}?lang=uk").get_data(as_text=True)
    assert "Немає курсу з KZT до RUB" in page
    assert "No exchange rate" not in page


def test_retagging_is_one_update_per_overridden_campaign_and_one_for_the_rest(vk_app, owner_client, vk_control):
    accounts = connect_agency(owner_client)
    account_id = accounts[str(CLIENT_ONE)]
    assert enable(owner_client, account_id).status_code == 302
    assert set(run_queued(vk_app)) == {DONE}
    names = {str(plan["id"]): plan["name"] for plan in vk_control.get("/state")["plans_by_user"][str(CLIENT_ONE)]}
    overridden, other = sorted(imported_campaigns(vk_app, account_id))[:2]
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper() + (" ad_spend" if "ad_spend" in statement else ""))

    with vk_app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            row = db.session.get(AdAccount, account_id)
            row.campaign_tag = "name"
            db.session.add(AdCampaignTags(workspace_id=row.workspace_id, ad_account_id=account_id,
                                          campaign_id=overridden, utm_source="vk-special", utm_medium="cpm",
                                          utm_campaign="spring-sale"))
            db.session.flush()
            changed = importer.retag_account(row)
            db.session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        tags = {row.campaign_id: (row.utm_source, row.utm_medium, row.utm_campaign) for row in db.session.execute(
            select(AdSpend.campaign_id, AdSpend.utm_source, AdSpend.utm_medium, AdSpend.utm_campaign)
            .where(AdSpend.ad_account_id == account_id))}
        rows = db.session.scalar(select(func.count(AdSpend.id)).where(AdSpend.ad_account_id == account_id))
    assert statements.count("UPDATE ad_spend") == 2 and "SELECT ad_spend" not in statements
    assert changed == rows
    assert tags[overridden] == ("vk-special", "cpm", "spring-sale")
    assert tags[other] == ("vk", "cpc", names[other])
