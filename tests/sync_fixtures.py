"""Fixtures for the sync engine tests: a live sandbox and a workspace connected to one of its accounts."""
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sandbox_fixtures import sandbox_fixtures

from portal.sandbox.control import SandboxControl

CLIENT_ID = "sync-client"
CLIENT_SECRET = "sync-secret"
REDIRECT_URI = "http://127.0.0.1/amocrm/callback"


sandbox_server_fixture, sandbox_fixture = sandbox_fixtures(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, "Leadpath tests")


def sandbox_tokens(control: SandboxControl, account_id: int | None = None, client_id: str = CLIENT_ID,
                   client_secret: str = CLIENT_SECRET, redirect_uri: str = REDIRECT_URI) -> dict:
    redirect = control.authorize(client_id, state="test", account_id=account_id)["redirect_url"]
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    response = requests.post(f"{control.base_url}/oauth2/access_token", json={
        "client_id": client_id, "client_secret": client_secret, "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect_uri}, timeout=5)
    response.raise_for_status()
    return response.json()


@dataclass
class ConnectedWorkspace:
    id: int
    account: dict
    pipeline_id: int
    status_id: int
    tokens: dict


def connect_workspace(app, control: SandboxControl, name: str = "Connected", account_id: int | None = None,
                      client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET, redirect_uri: str = REDIRECT_URI):
    from portal.extensions import db
    from portal.models import AmoCRMConnection, Workspace
    from portal.models.amocrm import CONNECTED
    from portal.models.types import utcnow

    state = control.state()
    account = next(a for a in state["accounts"] if account_id in (None, a["id"]))
    pipeline = next(p for p in account["pipelines"] if p["is_main"])
    status_id = next(s["id"] for s in pipeline["statuses"] if s.get("type") != 1 and s["id"] not in (142, 143))
    tokens = sandbox_tokens(control, account["id"], client_id, client_secret, redirect_uri)
    with app.app_context():
        workspace = Workspace(name=name)
        db.session.add(workspace)
        db.session.flush()
        db.session.add(AmoCRMConnection(
            workspace_id=workspace.id, base_domain=urlsplit(control.base_url).netloc,
            amocrm_account_id=account["id"], client_id=client_id, client_secret=client_secret,
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            expires_at=utcnow() + timedelta(seconds=tokens["expires_in"]), status=CONNECTED,
            pipeline_id=pipeline["id"], status_id=status_id, connected_at=utcnow()))
        db.session.commit()
        return ConnectedWorkspace(workspace.id, account, pipeline["id"], status_id, tokens)


@pytest.fixture
def connected(app, sandbox):
    return connect_workspace(app, sandbox)


class StaticTokens:
    def __init__(self, token: str):
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh_after_unauthorized(self, rejected_token: str) -> str:
        return self.token


def add_leads(app, workspace_id: int, count: int, **fields) -> list[int]:
    from portal.extensions import db
    from portal.models import Lead

    with app.app_context():
        leads = [Lead(workspace_id=workspace_id, name=f"Visitor {n}", phone=f"+7999{n:07d}",
                      email=f"visitor{n}@example.com", utm_source="google", utm_medium="cpc",
                      utm_campaign="spring", **fields) for n in range(count)]
        db.session.add_all(leads)
        db.session.commit()
        return [lead.id for lead in leads]
