"""Settings → Lead form: the code to paste, allowed origins and the duplicate window (owner changes, members read)."""
from html import unescape

from fixtures.intake import post_lead
from fixtures.support import log_in, post_form, workspace_of

from portal.extensions import db
from portal.models import Workspace

PAGE = "/settings/lead-form"


def public_id_of(app, workspace_id: int) -> str:
    with app.app_context():
        return db.session.get(Workspace, workspace_id).public_id


def test_page_shows_the_snippet_with_the_workspace_id_and_a_test_form(app, owner, owner_client):
    public_id = public_id_of(app, workspace_of(app, owner))
    html = owner_client.get(PAGE).get_data(as_text=True)
    code = f'<script src="http://localhost/static/js/leadpath.js" data-workspace="{public_id}" async>'
    assert code in unescape(html.split('id="snippet-code"')[1].split("</textarea>")[0])
    assert "data-copy-target" in html and "Copy code" in html
    assert f'data-workspace="{public_id}"' in html and "data-leadpath-form" in html  # the live test form
    assert 'href="/settings/lead-form" aria-current="page">Lead form</a>' in html  # its Settings tab
    assert "<script>" not in html and 'style="' not in html  # the CSP allows neither


def test_settings_tab_links_here_from_the_workspace_page(owner_client):
    assert 'href="/settings/lead-form"' in owner_client.get("/settings/").get_data(as_text=True)


def test_owner_saves_allowed_origins_and_window_and_the_api_follows_at_once(app, owner, owner_client):
    workspace_id = workspace_of(app, owner)
    public_id = public_id_of(app, workspace_id)
    api = app.test_client()
    evil, shop = {"Origin": "https://evil.example"}, {"Origin": "https://shop.example"}
    assert post_lead(api, public_id, headers=evil, phone="+79991234567").status_code == 201
    response = post_form(owner_client, PAGE, {"allowed_origins": "https://Shop.example/\r\n\r\nhttps://promo.example",
                                              "duplicate_window_hours": "48"})
    assert response.status_code == 302
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        assert workspace.allowed_origins == "https://shop.example\nhttps://promo.example"
        assert workspace.duplicate_window_hours == 48
    # The cached copy of the workspace was dropped: the rule applies to the next lead.
    assert post_lead(api, public_id, headers=evil, phone="+79991234568").status_code == 403
    assert post_lead(api, public_id, headers=shop, phone="+79991234568").status_code == 201
    html = owner_client.get(PAGE).get_data(as_text=True)
    assert "https://shop.example\nhttps://promo.example</textarea>" in html


def test_bad_origins_and_windows_are_refused(app, owner, owner_client):
    for data in ({"allowed_origins": "https://shop.example/landing", "duplicate_window_hours": "24"},
                 {"allowed_origins": "shop.example", "duplicate_window_hours": "24"},
                 {"allowed_origins": "", "duplicate_window_hours": "-1"},
                 {"allowed_origins": "", "duplicate_window_hours": "100000"}):
        response = post_form(owner_client, PAGE, data)
        assert response.status_code == 400, data
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_of(app, owner))
        assert (workspace.allowed_origins, workspace.duplicate_window_hours) == ("", 24)


def test_members_read_but_cannot_change(app, owner, make_user):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    member = app.test_client()
    log_in(member, "member@example.com")
    html = member.get(PAGE).get_data(as_text=True)
    assert "data-workspace=" in html and "<fieldset disabled>" in html
    token_page = member.get("/settings/").get_data(as_text=True)
    from fixtures.support import csrf_from

    response = member.post(PAGE, data={"csrf_token": csrf_from(token_page), "allowed_origins": "https://x.example",
                                       "duplicate_window_hours": "1"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(Workspace, workspace_of(app, owner)).allowed_origins == ""


def test_page_needs_a_login(client):
    assert client.get(PAGE).status_code == 302
    assert client.post(PAGE, data={}).status_code in (302, 400)
