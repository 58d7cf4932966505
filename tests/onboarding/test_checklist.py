"""The setup checklist ticks each step from what happened (amoCRM connected, the snippet seen on a site, a lead in
amoCRM, ad spend), owners can hide and bring it back, and pages without data say what to do next."""
from datetime import date

import pytest
from fixtures.reports import add_spend, at
from fixtures.support import csrf_from, log_in, post_form, workspace_of

from portal.extensions import db
from portal.models import AmoCRMConnection, Lead, Workspace

STEPS = ("amocrm", "snippet", "test-lead", "spend")


def done_steps(html: str) -> set[str]:
    import re

    return {step for step in STEPS if re.search(rf'<li class="done" data-step="{step}">', html)}


def public_id(app, workspace_id):
    with app.app_context():
        return db.session.get(Workspace, workspace_id).public_id


def add_lead(app, workspace_id, **values):
    with app.app_context():
        db.session.add(Lead(workspace_id=workspace_id, name="L", phone="+79990001122", created_at=at(date.today()),
                            **values))
        db.session.commit()


def test_a_new_workspace_sees_four_open_steps_with_links(owner_client):
    html = owner_client.get("/").get_data(as_text=True)
    assert 'id="setup-checklist"' in html and "0 of 4 done" in html
    assert done_steps(html) == set()
    for link in ("/settings/amocrm", "/settings/lead-form", "/reports/spend"):
        assert f'href="{link}' in html


def test_each_step_ticks_itself_from_what_happened(app, owner, owner_client):
    workspace_id = workspace_of(app, owner)
    with app.app_context():
        db.session.add(AmoCRMConnection(workspace_id=workspace_id, status="connected"))
        db.session.commit()
    assert done_steps(owner_client.get("/").get_data(as_text=True)) == {"amocrm"}

    assert app.test_client().post(f"/api/snippet/seen/{public_id(app, workspace_id)}").status_code == 204
    assert done_steps(owner_client.get("/").get_data(as_text=True)) == {"amocrm", "snippet"}

    add_lead(app, workspace_id)  # not yet in amoCRM
    assert "test-lead" not in done_steps(owner_client.get("/").get_data(as_text=True))
    add_lead(app, workspace_id, amocrm_lead_id=501, sync_status="synced")
    assert done_steps(owner_client.get("/").get_data(as_text=True)) == {"amocrm", "snippet", "test-lead"}

    add_spend(app, workspace_id, date.today(), "google", "cpc", "spring", 100)
    html = owner_client.get("/").get_data(as_text=True)
    assert 'id="setup-checklist"' not in html  # all done: the list is gone


def test_a_lead_from_a_site_counts_as_the_snippet_installed(app, owner, owner_client):
    add_lead(app, workspace_of(app, owner), landing_page="https://shop.example/landing")
    assert done_steps(owner_client.get("/").get_data(as_text=True)) == {"snippet"}


def test_the_snippet_beacon_answers_unknown_and_malformed_workspaces_without_harm(app, owner):
    client = app.test_client()
    assert client.post("/api/snippet/seen/00000000-0000-0000-0000-000000000000").status_code == 204
    response = client.post("/api/snippet/seen/" + "x" * 300)
    assert response.status_code == 404 and response.get_json()["success"] is False
    with app.app_context():
        assert db.session.get(Workspace, workspace_of(app, owner)).snippet_seen_at is None


def test_another_workspaces_beacon_does_not_tick_this_one(app, owner, owner_client, make_user):
    other = make_user("other@example.com")
    app.test_client().post(f"/api/snippet/seen/{public_id(app, workspace_of(app, other))}")
    assert done_steps(owner_client.get("/").get_data(as_text=True)) == set()


def test_the_owner_hides_the_checklist_and_brings_it_back(owner_client):
    response = post_form(owner_client, "/onboarding/dismiss", {}, page="/")
    assert response.status_code == 302
    assert 'id="setup-checklist"' not in owner_client.get("/").get_data(as_text=True)
    settings = owner_client.get("/settings/").get_data(as_text=True)
    assert 'id="setup-checklist-restore"' in settings
    post_form(owner_client, "/onboarding/restore", {}, page="/settings/")
    assert 'id="setup-checklist"' in owner_client.get("/").get_data(as_text=True)


def test_hiding_needs_the_forms_token(owner_client):
    owner_client.get("/")
    assert owner_client.post("/onboarding/dismiss").status_code == 400
    assert 'id="setup-checklist"' in owner_client.get("/").get_data(as_text=True)


@pytest.fixture
def member_client(app, owner, make_user):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    assert log_in(client, "member@example.com").status_code == 302
    return client


def test_a_member_sees_no_checklist_and_cannot_hide_it(member_client):
    html = member_client.get("/").get_data(as_text=True)
    assert 'id="setup-checklist"' not in html
    assert 'id="dashboard-empty"' in html and "Ask the workspace owner" in html
    token = csrf_from(html)
    assert member_client.post("/onboarding/dismiss", data={"csrf_token": token}).status_code == 403


@pytest.mark.parametrize(("url", "empty_id", "link"), [
    ("/leads", "leads-empty", "/settings/lead-form"),
    ("/reports/roi", "reports-empty", "/reports/spend"),
    ("/reports/spend", "spend-empty", None),
])
def test_pages_without_data_say_what_to_do_next(app, owner, owner_client, url, empty_id, link):
    html = owner_client.get(url).get_data(as_text=True)
    assert f'id="{empty_id}"' in html
    if link:
        assert f'href="{link}' in html
    workspace_id = workspace_of(app, owner)
    add_lead(app, workspace_id)
    add_spend(app, workspace_id, date.today(), "google", "cpc", "spring", 100)
    assert f'id="{empty_id}"' not in owner_client.get(url).get_data(as_text=True)


def test_empty_states_speak_russian(owner_client):
    assert "Лидов пока нет" in owner_client.get("/leads?lang=ru").get_data(as_text=True)
