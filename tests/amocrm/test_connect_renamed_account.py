"""An account renamed in amoCRM (a new subdomain, so a new host) keeps working without reconnecting: the old host
refuses, Leadpath asks amoCRM's `GET {api_domain}/oauth2/account/current/subdomain` where the account lives now,
stores the new host and carries on. Against the sandbox over real HTTP, through the push job on Redis."""
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fixtures.sync import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, add_leads

from portal.amocrm.api import oauth
from portal.amocrm.connection import account_link, connection_of
from portal.amocrm.scheduling import schedule_push
from portal.extensions import db
from portal.jobs.queues import AMOCRM
from portal.jobs.worker import build_worker
from portal.leads.services import deal_base_url
from portal.models import AmoCRMConnection, Lead, Workspace
from portal.models.lead import SYNCED
from portal.models.types import utcnow

pytestmark = pytest.mark.integration


def connect_own_host_account(app, sandbox, subdomain: str) -> tuple[int, dict]:
    """A workspace connected to a new sandbox account that lives on a host of its own (as every amoCRM account
    has its own subdomain): tokens from its OAuth at that host, the main pipeline's first working status."""
    account = sandbox.create_account(name="Renamed shop", subdomain=subdomain, own_host=True)
    consent = sandbox.authorize(CLIENT_ID, state="rename", account_id=account["id"])
    query = {key: values[0] for key, values in parse_qs(urlsplit(consent["redirect_url"]).query).items()}
    assert query["referer"] == account["host"]
    tokens = oauth.exchange_code(f"http://{account['host']}", CLIENT_ID, CLIENT_SECRET, query["code"], REDIRECT_URI,
                                 timeout=5)
    pipeline = next(p for p in account["pipelines"] if p["is_main"])
    status_id = next(s["id"] for s in pipeline["statuses"] if s.get("type") != 1 and s["id"] not in (142, 143))
    with app.app_context():
        workspace = Workspace(name="Renamed shop")
        db.session.add(workspace)
        db.session.flush()
        db.session.add(AmoCRMConnection(
            workspace_id=workspace.id, base_domain=account["host"], amocrm_account_id=account["id"],
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token, expires_at=tokens.expires_at, status="connected",
            pipeline_id=pipeline["id"], status_id=status_id, connected_at=utcnow()))
        db.session.commit()
        return workspace.id, account


def push_through_the_job(app, workspace_id: int) -> None:
    with app.app_context():
        schedule_push(workspace_id, force=True)
    build_worker(app, [AMOCRM]).work(burst=True)


@pytest.mark.parametrize("token_expired", [False, True], ids=["api-call-refused", "refresh-due"])
def test_a_rename_is_recovered_during_a_push(app, sandbox, token_expired):
    """Either the API call at the old host is refused (401) or the due refresh is (404): the lookup names the new
    host, the same refresh token is used there, and the leads arrive in the same account."""
    workspace_id, account = connect_own_host_account(app, sandbox, "before")
    old_host = account["host"]
    with app.app_context():
        first_refresh_token = connection_of(workspace_id).refresh_token
        if token_expired:
            connection_of(workspace_id).expires_at = utcnow() - timedelta(minutes=1)
            db.session.commit()
    new_host = sandbox.set_account(account["id"], subdomain="after")["host"]
    assert new_host != old_host
    lead_ids = add_leads(app, workspace_id, 2)

    push_through_the_job(app, workspace_id)

    with app.app_context():
        connection = connection_of(workspace_id)
        assert connection.status == "connected" and connection.last_error is None
        assert connection.base_domain == new_host
        assert connection.refresh_token != first_refresh_token  # refreshed once, at the new host
        assert account_link(connection, "/leads/detail/1") == f"http://{new_host}/leads/detail/1"
        assert deal_base_url(workspace_id) == f"http://{new_host}/leads/detail/"  # the leads pages' deal links
        leads = db.session.scalars(db.select(Lead).where(Lead.id.in_(lead_ids))).all()
        assert {lead.sync_status for lead in leads} == {SYNCED}
        deal_ids = {lead.amocrm_lead_id for lead in leads}
    state = sandbox.state()
    assert {d["id"] for d in state["leads"] if d["account_id"] == account["id"]} == deal_ids
    assert state["counters"]["tokens_refreshed"] == 1 and state["counters"]["refresh_revoked"] == 0


def test_a_revoked_refresh_token_is_not_taken_for_a_rename(app, sandbox):
    """The lookup answers 401 for a refresh token that is no longer valid: the connection asks for reconnecting
    and keeps its host."""
    workspace_id, account = connect_own_host_account(app, sandbox, "kept")
    with app.app_context():
        connection = connection_of(workspace_id)
        stale = connection.refresh_token
        # Someone else used the refresh token (amoCRM burns it): ours is dead.
        oauth.refresh(f"http://{account['host']}", CLIENT_ID, CLIENT_SECRET, stale, REDIRECT_URI, timeout=5)
        connection.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    add_leads(app, workspace_id, 1)

    push_through_the_job(app, workspace_id)

    with app.app_context():
        connection = connection_of(workspace_id)
        assert connection.status == "needs_reauth" and "Token has been revoked" in connection.last_error
        assert connection.base_domain == account["host"]
