"""Connecting a workspace to amoCRM, end to end against the sandbox over real HTTP: the portal is served by
`live_server`, the owner is a `requests` session doing what the browser does (read the button, open the consent
page, allow or deny, follow the redirect to the callback)."""
import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from fixtures.connect import query_of, sandbox_fixture, sandbox_server_fixture  # noqa: F401
from fixtures.support import PASSWORD, workspace_of

from portal.extensions import db
from portal.models import AmoCRMConnection, OAuthState
from portal.models.types import utcnow

pytestmark = pytest.mark.integration


# -- what a browser would do ---------------------------------------------------------------------------

def logged_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(f"{base}/login").text).group(1)
    response = session.post(f"{base}/login", data={"csrf_token": token, "email": email, "password": PASSWORD},
                            allow_redirects=False)
    assert response.status_code == 302
    return session


def button_of(page: str, tag_class: str = "amocrm_oauth") -> dict:
    tag = re.search(rf'<script class="{tag_class}"([^>]*)>', page)
    assert tag, f"the settings page has no {tag_class} button"
    return {name: html.unescape(value) for name, value in re.findall(r'data-([\w-]+)="([^"]*)"', tag.group(1))}


def consent_url(sandbox_url: str, button: dict) -> str:
    """The URL the button script opens (see the sandbox's button.js)."""
    params = {"mode": button.get("mode", "popup"), "state": button.get("state", "")}
    if button.get("client-id"):
        params["client_id"] = button["client-id"]
    else:
        params.update({key: button[key] for key in ("name", "description", "redirect_uri", "secrets_uri", "logo",
                                                       "scopes") if key in button})
    return requests.Request("GET", f"{sandbox_url}/oauth", params=params).prepare().url


def decide(url: str, decision: str = "allow", account_id: int | None = None) -> requests.Response:
    """Open amoCRM's consent page, pick the account (the first unless `account_id`) and press Allow / Deny;
    returns the sandbox's answer (not followed)."""
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {key: html.unescape(value) for key, value in fields.items()}
    if account_id is not None:
        assert f'<option value="{account_id}">' in page.text
        fields["account_id"] = str(account_id)
    return requests.post(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}/oauth",
                         data={**fields, "decision": decision}, allow_redirects=False, timeout=10)


def connect_with_button(base: str, session: requests.Session, sandbox_url: str) -> requests.Response:
    button = button_of(session.get(f"{base}/settings/amocrm").text)
    answer = decide(consent_url(sandbox_url, button))
    assert answer.status_code == 302, answer.text
    return session.get(answer.headers["Location"])


def connection_row(app, workspace_id: int) -> AmoCRMConnection | None:
    with app.app_context():
        row = db.session.query(AmoCRMConnection).filter_by(workspace_id=workspace_id).one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


# -- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture
def shared_integration(app, live_server, sandbox):
    """The portal configured with a shared integration registered in the sandbox for this live server."""
    keys = sandbox.create_integration("Leadpath (tests)", f"{live_server}/amocrm/callback")
    app.config.update(AMOCRM_CLIENT_ID=keys["client_id"], AMOCRM_CLIENT_SECRET=keys["client_secret"],
                      AMOCRM_OAUTH_URL=f"{sandbox.base_url}/oauth",
                      AMOCRM_BUTTON_SRC=f"{sandbox.base_url}/auth/button.min.js")
    return keys


@pytest.fixture
def no_shared_integration(app, live_server, sandbox):
    app.config.update(AMOCRM_CLIENT_ID=None, AMOCRM_CLIENT_SECRET=None, AMOCRM_OAUTH_URL=f"{sandbox.base_url}/oauth",
                      AMOCRM_BUTTON_SRC=f"{sandbox.base_url}/auth/button.min.js")


@pytest.fixture
def owner_session(live_server, owner):
    return logged_in(live_server, "owner@example.com")


def assert_connected(app, owner, sandbox, live_server):
    workspace_id = workspace_of(app, owner)
    row = connection_row(app, workspace_id)
    assert row.status == "connected" and row.base_domain == urlsplit(sandbox.base_url).netloc
    assert row.access_token and row.refresh_token and row.expires_at > utcnow() + timedelta(hours=23)
    state = sandbox.state()
    account = state["accounts"][0]
    assert row.amocrm_account_id == account["id"]
    main = next(p for p in account["pipelines"] if p["is_main"])
    assert row.pipeline_id == main["id"]
    assert row.status_id == next(s["id"] for s in main["statuses"] if s["type"] == 0 and s["id"] not in (142, 143))
    with app.app_context():
        from portal.models import Workspace

        workspace = db.session.get(Workspace, workspace_id)
        destination = f"{live_server}/webhooks/amocrm/{workspace.public_id}/{workspace.webhook_secret}"
    hooks = [h for h in state["webhooks"] if h["destination"] == destination]
    assert hooks and sorted(hooks[0]["settings"]) == sorted(["add_lead", "update_lead", "status_lead", "delete_lead",
                                                             "add_contact", "update_contact", "delete_contact",
                                                             "add_unsorted", "delete_unsorted"])
    # Stored encrypted: the raw columns hold neither the token nor the webhook URL with its secret.
    with app.app_context():
        raw_token, raw_url = db.session.execute(db.text(
            "SELECT access_token, webhook_destination FROM amocrm_connections WHERE workspace_id = :w"),
            {"w": workspace_id}).one()
        assert raw_token != row.access_token and row.access_token not in raw_token
        assert row.webhook_destination == destination and workspace.webhook_secret not in raw_url
    return row


# -- the flows ------------------------------------------------------------------------------------------

def test_shared_integration_button_connects_and_subscribes_the_webhook(app, live_server, sandbox, owner,
                                                                       shared_integration, owner_session,
                                                                       redis_client):
    page = owner_session.get(f"{live_server}/settings/amocrm").text
    button = button_of(page)
    assert button["client-id"] == shared_integration["client_id"] and len(button["state"]) >= 40
    assert f'src="{sandbox.base_url}/auth/button.min.js"' in page
    result = connect_with_button(live_server, owner_session, sandbox.base_url)
    assert result.status_code == 200 and "amoCRM connected" in result.text
    assert_connected(app, owner, sandbox, live_server)
    assert sandbox.counters()["tokens_issued"] == 1
    status = owner_session.get(f"{live_server}/amocrm/status").json()
    assert status["connected"] is True and status["subdomain"] is None and status["tokenExpiresAt"]
    settings = owner_session.get(f"{live_server}/settings/amocrm").text
    assert "Connected" in settings and "Pipeline for new leads" in settings
    # The reconciliation backfill is queued once the connection is committed.
    workspace_id = workspace_of(app, owner)
    assert redis_client.exists(f"rq:job:reconcile-{workspace_id}")


def test_button_variant_that_makes_amocrm_create_an_integration(app, live_server, sandbox, owner,
                                                                no_shared_integration, owner_session):
    button = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)
    assert "client-id" not in button
    assert button["secrets_uri"] == f"{live_server}/amocrm/secrets"
    assert button["redirect_uri"] == f"{live_server}/amocrm/callback" and button["scopes"] == "crm,notifications"
    result = connect_with_button(live_server, owner_session, sandbox.base_url)
    assert result.status_code == 200, result.text
    row = assert_connected(app, owner, sandbox, live_server)
    created = [i for i in sandbox.state()["integrations"] if i.get("redirect_uri") == button["redirect_uri"]]
    assert row.client_id == created[0]["client_id"] and row.client_secret  # the workspace's own keys, kept


def test_direct_link_connects(app, live_server, sandbox, owner, shared_integration, owner_session):
    start = owner_session.get(f"{live_server}/amocrm/auth", allow_redirects=False)
    assert start.status_code == 302 and start.headers["Location"].startswith(f"{sandbox.base_url}/oauth?")
    answer = decide(start.headers["Location"])
    result = owner_session.get(answer.headers["Location"])
    assert result.status_code == 200 and "amoCRM connected" in result.text
    assert_connected(app, owner, sandbox, live_server)


def test_post_state_makes_a_usable_state(app, live_server, sandbox, owner, shared_integration,
                                         owner_session):
    page = owner_session.get(f"{live_server}/settings/amocrm").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert owner_session.post(f"{live_server}/amocrm/state").status_code == 400  # CSRF
    made = owner_session.post(f"{live_server}/amocrm/state", headers={"X-CSRFToken": token}).json()
    redirect = sandbox.authorize(shared_integration["client_id"], state=made["state"])["redirect_url"]
    assert owner_session.get(redirect).status_code == 200
    assert connection_row(app, workspace_of(app, owner)).status == "connected"


# -- state rules ---------------------------------------------------------------------------------------

def test_a_state_works_once(app, live_server, sandbox, owner, shared_integration, owner_session):
    state = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)["state"]
    first = sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"]
    assert owner_session.get(first).status_code == 200
    second = sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"]
    replay = owner_session.get(second)
    assert replay.status_code == 400 and "used already" in replay.text
    assert sandbox.counters()["tokens_issued"] == 1


def test_an_expired_state_is_refused(app, live_server, sandbox, owner, shared_integration,
                                     owner_session):
    state = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)["state"]
    with app.app_context():
        db.session.execute(db.update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    answer = owner_session.get(sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"])
    assert answer.status_code == 400 and "expired" in answer.text
    assert sandbox.counters()["tokens_issued"] == 0


@pytest.mark.parametrize("same_workspace", [True, False])
def test_a_state_of_another_user_is_refused(app, live_server, sandbox, owner, make_user,
                                            shared_integration, owner_session, same_workspace):
    state = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)["state"]
    make_user("other@example.com", workspace_id=workspace_of(app, owner) if same_workspace else None)
    other = logged_in(live_server, "other@example.com")
    answer = other.get(sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"])
    assert answer.status_code == 400
    assert ("another user" if same_workspace else "not valid") in answer.text
    assert sandbox.counters()["tokens_issued"] == 0
    assert connection_row(app, workspace_of(app, owner)) is None


def test_an_unknown_state_is_refused(live_server, sandbox, owner, shared_integration, owner_session):
    answer = owner_session.get(sandbox.authorize(shared_integration["client_id"], state="made-up")["redirect_url"])
    assert answer.status_code == 400 and "not valid" in answer.text


def test_a_referer_that_is_not_amocrm_sends_nothing_anywhere(app, live_server, sandbox, owner,
                                                              shared_integration, owner_session, monkeypatch):
    state = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)["state"]
    code = query_of(sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"])["code"]
    outbound = []
    real_send = requests.Session.send

    def recording_send(self, prepared, **kwargs):
        outbound.append(prepared.url)
        return real_send(self, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)  # the portal's calls happen in this process
    answer = owner_session.get(f"{live_server}/amocrm/callback",
                               params={"code": code, "state": state, "referer": "evil.example"})
    portal_calls = [url for url in outbound if not url.startswith(live_server)]
    assert answer.status_code == 400 and "did not come from an amoCRM account address" in answer.text
    assert portal_calls == [] and sandbox.counters()["tokens_issued"] == 0
    assert connection_row(app, workspace_of(app, owner)) is None


def test_deny_ends_on_a_friendly_page(app, live_server, sandbox, owner, shared_integration,
                                      owner_session):
    button = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)
    refusal = decide(consent_url(sandbox.base_url, button), "deny")
    assert refusal.status_code == 200 and "access_denied" in refusal.text  # posted to the opener, no redirect
    answer = owner_session.get(f"{live_server}/amocrm/callback",
                               params={"error": "access_denied", "state": button["state"]})
    assert answer.status_code == 400 and "Access was not granted" in answer.text
    assert connection_row(app, workspace_of(app, owner)) is None


def test_a_reused_code_ends_on_a_friendly_page(app, live_server, sandbox, owner, shared_integration,
                                               owner_session):
    state = button_of(owner_session.get(f"{live_server}/settings/amocrm").text)["state"]
    redirect = sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"]
    query = query_of(redirect)
    sandbox_exchange = requests.post(f"{sandbox.base_url}/oauth2/access_token", json={
        "client_id": shared_integration["client_id"], "client_secret": shared_integration["client_secret"],
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": f"{live_server}/amocrm/callback"})
    assert sandbox_exchange.status_code == 200
    answer = owner_session.get(redirect)
    assert answer.status_code == 400 and "expired or was used already" in answer.text


def test_a_wrong_client_secret_ends_on_a_friendly_page(app, live_server, sandbox, owner,
                                                       shared_integration, owner_session):
    app.config["AMOCRM_CLIENT_SECRET"] = "not-the-secret"
    answer = connect_with_button(live_server, owner_session, sandbox.base_url)
    assert answer.status_code == 400 and "integration keys" in answer.text


def test_a_redirect_uri_mismatch_ends_on_a_friendly_page(app, live_server, sandbox, owner,
                                                         shared_integration, owner_session):
    app.config["PUBLIC_BASE_URL"] = "https://leadpath.example"
    answer = connect_with_button(live_server, owner_session, sandbox.base_url)
    assert answer.status_code == 400 and "redirect address" in answer.text


def test_members_read_but_cannot_connect(app, live_server, sandbox, owner, make_user,
                                         shared_integration):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    member = logged_in(live_server, "member@example.com")
    page = member.get(f"{live_server}/settings/amocrm")
    assert page.status_code == 200 and "amocrm_oauth" not in page.text and "Not connected" in page.text
    assert member.get(f"{live_server}/amocrm/auth", allow_redirects=False).status_code == 403
    assert member.get(f"{live_server}/amocrm/status").json()["connected"] is False


def test_secrets_endpoint_answers_json_errors(live_server, owner):
    assert requests.post(f"{live_server}/amocrm/secrets", data="not json").status_code == 400
    assert requests.post(f"{live_server}/amocrm/secrets", json={"client_id": "a"}).status_code == 400
    unknown = requests.post(f"{live_server}/amocrm/secrets", json={"client_id": "a", "client_secret": "b",
                                                                   "state": "nope"})
    assert unknown.status_code == 404 and unknown.json()["success"] is False
    assert requests.get(f"{live_server}/amocrm/status").status_code == 401


def test_the_first_secrets_post_for_a_state_wins_and_later_ones_are_refused(app, live_server, owner):
    from portal.amocrm.authorization import create_state

    with app.app_context():
        state, _ = create_state(workspace_of(app, owner), owner)
    first = requests.post(f"{live_server}/amocrm/secrets", json={"client_id": "first-client", "client_secret": "s1",
                                                                 "state": state})
    second = requests.post(f"{live_server}/amocrm/secrets", json={"client_id": "rival-client", "client_secret": "s2",
                                                                  "state": state})
    assert first.status_code == 200
    assert second.status_code == 409 and second.json()["success"] is False
    with app.app_context():
        row = db.session.scalar(db.select(OAuthState))
        assert (row.client_id, row.client_secret) == ("first-client", "s1")


# -- regions: amoCRM or Kommo ---------------------------------------------------------------------------

@pytest.fixture
def kommo_region(app, sandbox):
    """Kommo's button script and consent page, played by the sandbox (its /auth/button.js is Kommo's)."""
    app.config.update(KOMMO_OAUTH_URL=f"{sandbox.base_url}/oauth",
                      KOMMO_BUTTON_SRC=f"{sandbox.base_url}/auth/button.js")


def choose_region(base: str, session: requests.Session, region: str) -> requests.Response:
    page = session.get(f"{base}/settings/amocrm").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    return session.post(f"{base}/settings/amocrm/region", data={"csrf_token": token, "region": region},
                        allow_redirects=False)


def test_kommo_region_connects_with_kommos_button_on_the_accounts_own_host(app, live_server, sandbox, owner,
                                                                         shared_integration, kommo_region,
                                                                         owner_session):
    """The owner picks Kommo: the page carries Kommo's button (class kommo_oauth, Kommo's script, data-theme, no
    data-color); consent picks a Kommo account living on its own host; the connection keeps that host and region,
    and the API is spoken to there."""
    account = sandbox.create_account(name="Kommo shop", subdomain="kommoshop", platform="kommo", own_host=True)
    assert choose_region(live_server, owner_session, "kommo").status_code == 302
    page = owner_session.get(f"{live_server}/settings/amocrm").text
    assert 'class="amocrm_oauth"' not in page
    button = button_of(page, "kommo_oauth")
    assert f'src="{sandbox.base_url}/auth/button.js"' in page
    assert button["title"] == "Connect Kommo" and button["theme"] == "light" and "color" not in button
    answer = decide(consent_url(sandbox.base_url, button), account_id=account["id"])
    assert answer.status_code == 302 and query_of(answer.headers["Location"])["referer"] == account["host"]
    result = owner_session.get(answer.headers["Location"])
    assert result.status_code == 200, result.text
    row = connection_row(app, workspace_of(app, owner))
    assert row.status == "connected" and row.region == "kommo"
    assert row.base_domain == account["host"] and row.amocrm_account_id == account["id"]
    assert sandbox.state()["counters"]["requests_by_account"].get(str(account["id"]), 0) >= 2
    status = owner_session.get(f"{live_server}/amocrm/status").json()
    assert status["region"] == "kommo" and status["baseDomain"] == account["host"]
    # Connected: the region stays until the owner disconnects.
    assert choose_region(live_server, owner_session, "amocrm").status_code == 302
    assert connection_row(app, workspace_of(app, owner)).region == "kommo"


@pytest.mark.parametrize(("region", "referer", "message"), [
    ("kommo", "shop.amocrm.ru", "did not come from a Kommo account address"),
    ("amocrm", "shop.kommo.com", "did not come from an amoCRM account address"),
])
def test_a_referer_of_the_other_region_sends_nothing(app, live_server, sandbox, owner, shared_integration,
                                                     kommo_region, owner_session, monkeypatch, region, referer,
                                                     message):
    """A Kommo workspace never sends its keys to an amoCRM host, nor an amoCRM workspace to a Kommo host."""
    assert choose_region(live_server, owner_session, region).status_code == 302
    page = owner_session.get(f"{live_server}/settings/amocrm").text
    state = button_of(page, "kommo_oauth" if region == "kommo" else "amocrm_oauth")["state"]
    code = query_of(sandbox.authorize(shared_integration["client_id"], state=state)["redirect_url"])["code"]
    outbound = []
    real_send = requests.Session.send

    def recording_send(self, prepared, **kwargs):
        outbound.append(prepared.url)
        return real_send(self, prepared, **kwargs)

    monkeypatch.setattr(requests.Session, "send", recording_send)
    answer = owner_session.get(f"{live_server}/amocrm/callback",
                               params={"code": code, "state": state, "referer": referer})
    assert answer.status_code == 400 and message in html.unescape(answer.text)
    assert [url for url in outbound if not url.startswith(live_server)] == []
    assert sandbox.counters()["tokens_issued"] == 0
    assert connection_row(app, workspace_of(app, owner)).status == "disconnected"


def test_members_cannot_choose_the_region(app, live_server, sandbox, owner, make_user, shared_integration):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    member = logged_in(live_server, "member@example.com")
    page = member.get(f"{live_server}/settings/amocrm").text
    assert 'action="/settings/amocrm/region"' not in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', member.get(f"{live_server}/login").text)
    answer = member.post(f"{live_server}/settings/amocrm/region",
                         data={"csrf_token": token.group(1) if token else "", "region": "kommo"})
    assert answer.status_code in (400, 403)
    assert connection_row(app, workspace_of(app, owner)) is None
