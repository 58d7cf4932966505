"""Roles: every state-changing route declares a permission of the one matrix (portal.auth.permissions), read here
from the app's URL map, so a new route without one fails until it declares it; and a member — who reads, does
not change — is refused every change that belongs to the workspace."""
from datetime import date
from decimal import Decimal

import pytest
from fixtures.abuse import own_objects
from fixtures.support import csrf_from, log_in, workspace_of

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Endpoints that change state without a logged-in role → why.
PUBLIC = {
    "auth.login": "anyone may try to log in (throttled: portal.auth.throttle)",
    "auth.signup": "creates a new workspace and its owner",
    "auth.accept": "an invite link: the token in the URL is the authority",
    "auth.forgot_password": "asks for a reset mail; the same answer for any address, rate-limited",
    "auth.reset_password_page": "a password-reset link: the mailed single-use token is the authority",
    "onboarding.snippet_seen": "the snippet's beacon from a customer's site: sets one timestamp, once",
    "connection.secrets_hook": "amoCRM's servers; bound to a server-made OAuth state",
}
# GET routes that change state (the OAuth redirect and callback), checked like the state-changing methods.
STATE_CHANGING_GETS = {"connection.auth", "connection.callback", "settings.ad_accounts.callback"}


def _changing_rules(app):
    for rule in app.url_map.iter_rules():
        methods = rule.methods & STATE_CHANGING
        if rule.endpoint in STATE_CHANGING_GETS:
            methods |= {"GET"}
        for method in sorted(methods):
            yield rule, method


def test_every_state_changing_route_declares_a_permission(app):
    from portal.auth.permissions import PERMISSIONS

    undeclared = []
    for rule, method in _changing_rules(app):
        permission = getattr(app.view_functions[rule.endpoint], "permission", None)
        if rule.endpoint in PUBLIC:
            assert permission is None, f"{rule.endpoint} is listed as public but requires {permission}"
        elif permission not in PERMISSIONS:
            undeclared.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not undeclared, f"state-changing routes without a permission: {undeclared}"
    assert set(PUBLIC) <= set(app.view_functions), "PUBLIC names an endpoint that no longer exists"


def test_the_matrix_members_read_and_manage_only_their_own_account():
    from portal.auth.permissions import ACCOUNT, PERMISSIONS, ROLE_PERMISSIONS, role_has

    assert ROLE_PERMISSIONS["owner"] == frozenset(PERMISSIONS)
    assert ROLE_PERMISSIONS["member"] == frozenset({ACCOUNT})
    assert not role_has("nobody", ACCOUNT)


@pytest.fixture
def member_client(app, owner, make_user):
    make_user("member@example.com", role="member", workspace_id=workspace_of(app, owner))
    client = app.test_client()
    assert log_in(client, "member@example.com").status_code == 302
    return client


def _url(app, rule, ids):
    values = {name: ids.get(name, "x") for name in rule.arguments}
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def test_a_member_is_refused_every_change_of_the_workspace(app, owner, member_client):
    from portal.auth.permissions import role_has
    from portal.extensions import db
    from portal.models import AdSpend, Invite, Lead, User

    ids = own_objects(app, owner)
    token = csrf_from(member_client.get("/settings/").get_data(as_text=True))
    refused = []
    for rule, method in _changing_rules(app):
        permission = getattr(app.view_functions[rule.endpoint], "permission", None)
        if permission is None or role_has("member", permission):
            continue
        url = _url(app, rule, ids)
        response = member_client.open(url, method=method, data={"csrf_token": token, "name": "Hijacked",
                                                                 "email": "x@example.com", "amount": "1"})
        assert response.status_code == 403, f"{method} {url} answered {response.status_code} to a member"
        refused.append(rule.endpoint)
    assert {"leads.spam", "spend.add", "spend.delete", "spend.import_preview", "spend.import_confirm",
            "sync.retry", "sync.retry_all", "settings.update", "settings.invite"} <= set(refused)
    with app.app_context():
        assert db.session.get(Lead, ids["lead_id"]).is_spam is False
        assert db.session.get(AdSpend, ids["spend_id"]) is not None
        assert db.session.get(Invite, ids["invite_id"]).revoked_at is None
        assert db.session.get(User, ids["user_id"]) is not None
        assert db.session.get(User, owner).workspace.name != "Hijacked"
    assert member_client.get("/settings/").status_code == 200  # still logged in: refused, not thrown out


def test_a_member_cannot_mark_spam_retry_or_change_spend(app, owner, member_client):
    """The changes a member could make before: each would reach amoCRM or the reports."""
    from portal.extensions import db
    from portal.models import AdSpend, Lead

    workspace_id = workspace_of(app, owner)
    with app.app_context():
        lead = Lead(workspace_id=workspace_id, name="Ann", phone="+79990001122", sync_status="failed")
        spend = AdSpend(workspace_id=workspace_id, date=date(2026, 1, 1), utm_source="yandex", amount=Decimal("10"))
        db.session.add_all([lead, spend])
        db.session.commit()
        lead_id, spend_id = lead.id, spend.id
    token = csrf_from(member_client.get(f"/leads/{lead_id}").get_data(as_text=True))
    for url, data in [(f"/leads/{lead_id}/spam", {}), (f"/sync/leads/{lead_id}/retry", {}),
                      ("/sync/leads/retry-failed", {}),
                      ("/reports/spend", {"date": "2026-01-02", "utm_source": "vk", "amount": "99"}),
                      (f"/reports/spend/{spend_id}/edit",
                       {"date": "2026-01-01", "utm_source": "yandex", "amount": "1"}),
                      (f"/reports/spend/{spend_id}/delete", {})]:
        response = member_client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, f"{url}: {response.status_code}"
        assert "not change it" in response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.is_spam, lead.sync_status) == (False, "failed")
        assert db.session.scalar(db.select(db.func.count(AdSpend.id))) == 1
        assert db.session.get(AdSpend, spend_id).amount == Decimal("10")


def test_the_owner_may_do_what_the_member_may_not(app, owner, owner_client):
    from portal.extensions import db
    from portal.models import Lead

    with app.app_context():
        lead = Lead(workspace_id=workspace_of(app, owner), name="Ann", phone="+79990001122")
        db.session.add(lead)
        db.session.commit()
        lead_id = lead.id
    token = csrf_from(owner_client.get(f"/leads/{lead_id}").get_data(as_text=True))
    assert owner_client.post(f"/leads/{lead_id}/spam", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(Lead, lead_id).is_spam is True


def _lead_and_spend(app, owner) -> tuple[int, int]:
    from portal.extensions import db
    from portal.models import AdSpend, Lead

    with app.app_context():
        lead = Lead(workspace_id=workspace_of(app, owner), name="Ann", phone="+79990001122", sync_status="failed")
        spend = AdSpend(workspace_id=workspace_of(app, owner), date=date.today(), utm_source="yandex",
                        amount=Decimal("10"))
        db.session.add_all([lead, spend])
        db.session.commit()
        return lead.id, spend.id


def _change_controls(client, lead_id: int, spend_id: int) -> dict[str, bool]:
    """Which buttons (form actions and links) that change leads or spend each page shows."""
    failed_leads = client.get("/leads?sync=failed").get_data(as_text=True)
    lead_page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    spend_page = client.get("/reports/spend").get_data(as_text=True)
    return {
        "retry all": 'action="/sync/leads/retry-failed' in failed_leads,
        "spam": f'action="/leads/{lead_id}/spam"' in lead_page,
        "retry": f'action="/sync/leads/{lead_id}/retry' in lead_page,
        "add spend": '<form method="post" action="/reports/spend"' in spend_page,
        "import spend": 'action="/reports/spend/import"' in spend_page,
        "edit spend": f'href="/reports/spend/{spend_id}/edit"' in spend_page,
        "delete spend": f'action="/reports/spend/{spend_id}/delete"' in spend_page,
    }


def test_a_member_sees_no_buttons_the_role_may_not_use(app, owner, member_client):
    lead_id, spend_id = _lead_and_spend(app, owner)
    shown = _change_controls(member_client, lead_id, spend_id)
    assert not any(shown.values()), f"a member is shown: {[name for name, on in shown.items() if on]}"
    assert "Ann" in member_client.get(f"/leads/{lead_id}").get_data(as_text=True)  # still reads the lead


def test_the_owner_sees_the_buttons_to_change_leads_and_spend(app, owner, owner_client):
    lead_id, spend_id = _lead_and_spend(app, owner)
    shown = _change_controls(owner_client, lead_id, spend_id)
    assert all(shown.values()), f"the owner is not shown: {[name for name, on in shown.items() if not on]}"


def test_can_refuses_an_unknown_permission(app):
    from portal.auth.decorators import can

    with app.test_request_context(), pytest.raises(ValueError, match="unknown permission"):
        can("leads.chnage")
