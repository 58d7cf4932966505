"""The read-only API: workspace tokens made and revoked in Settings, Bearer auth, JSON, same filters as pages."""
import re
from datetime import date, timedelta

import pytest
from fixtures.reports import add_lead, add_sale, at
from fixtures.support import post_form, workspace_of

from portal.extensions import db
from portal.models import ApiToken


def create_token(client, name="Looker") -> str:
    response = post_form(client, "/settings/api-tokens", {"name": name})
    assert response.status_code == 200
    return re.search(r'value="(lp_[^"]+)"', response.get_data(as_text=True)).group(1)


def test_settings_page_creates_a_token_shown_once_and_stores_only_its_hash(app, owner, owner_client):
    token = create_token(owner_client)
    with app.app_context():
        stored = db.session.query(ApiToken).one()
        assert stored.token_hash != token and token not in (stored.prefix, stored.name)
        assert token.startswith(stored.prefix)
    page = owner_client.get("/settings/api-tokens").get_data(as_text=True)
    assert token not in page and stored.prefix in page and "API tokens" in page


def test_members_cannot_create_tokens(app, make_user, owner):
    from fixtures.support import log_in

    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    log_in(client, "member@example.com")
    assert post_form(client, "/settings/api-tokens", {"name": "x"}).status_code == 403


@pytest.mark.parametrize("header", [None, "Bearer lp_wrong-token", "Basic abc", "Bearer ", "Bearer " + "x" * 5000])
@pytest.mark.parametrize("url", ["/api/leads", "/api/reports/roi"])
def test_missing_or_wrong_token_is_401_json(client, header, url):
    response = client.get(url, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json()["success"] is False and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_401(app, owner, owner_client):
    token = create_token(owner_client)
    client = app.test_client()
    assert client.get("/api/leads", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with app.app_context():
        token_id = db.session.query(ApiToken.id).scalar()
    assert post_form(owner_client, f"/settings/api-tokens/{token_id}/revoke", {},
                     page="/settings/api-tokens").status_code == 302
    assert client.get("/api/leads", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_sees_only_the_tokens_workspace(app, make_user, owner, owner_client):
    mine, other = workspace_of(app, owner), workspace_of(app, make_user("other@example.com"))
    yesterday = date.today() - timedelta(days=1)
    lead = add_lead(app, mine, at(yesterday), "google", "cpc", "brand", name="Mine", phone="+79990001122")
    add_sale(app, mine, lead, "won", 1500, at(yesterday), at(yesterday))
    add_lead(app, other, at(yesterday), "secretsource", "cpc", "hidden", name="Theirs")
    headers = {"Authorization": f"Bearer {create_token(owner_client)}"}
    client = app.test_client()

    leads = client.get("/api/leads", headers=headers).get_json()
    assert [item["name"] for item in leads["leads"]] == ["Mine"]
    assert leads["leads"][0]["phone"] == "+79•••••••22" and leads["leads"][0]["deal"]["state"] == "won"

    roi = client.get("/api/reports/roi?period=7d", headers=headers).get_json()
    assert [row["label"] for row in roi["rows"]] == ["google"]
    assert roi["totals"]["revenue"] == 1500 and roi["totals"]["roi_percent"] is None
    assert "secretsource" not in str(roi) + str(leads)


def test_api_leads_filters_and_cursor(app, owner, owner_client):
    ws = workspace_of(app, owner)
    start = date.today() - timedelta(days=10)
    for offset in range(5):
        add_lead(app, ws, at(start + timedelta(days=offset)), "google" if offset % 2 else "yandex", "cpc", "x",
                 name=f"Lead {offset}")
    headers = {"Authorization": f"Bearer {create_token(owner_client)}"}
    client = app.test_client()
    first = client.get("/api/leads?limit=2", headers=headers).get_json()
    assert [item["name"] for item in first["leads"]] == ["Lead 4", "Lead 3"] and first["next_cursor"]
    second = client.get(f"/api/leads?limit=2&after={first['next_cursor']}", headers=headers).get_json()
    assert [item["name"] for item in second["leads"]] == ["Lead 2", "Lead 1"]
    google = client.get("/api/leads?source=GOOGLE", headers=headers).get_json()
    assert {item["name"] for item in google["leads"]} == {"Lead 1", "Lead 3"}
    assert client.get("/api/leads?after=garbage", headers=headers).status_code == 400
    assert client.get("/api/leads?limit=abc", headers=headers).status_code == 400


def test_api_is_read_only_and_csrf_exempt(app, owner, owner_client):
    headers = {"Authorization": f"Bearer {create_token(owner_client)}"}
    response = app.test_client().post("/api/reports/roi", headers=headers)
    assert response.status_code == 405 and response.get_json()["success"] is False
