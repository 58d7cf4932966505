"""Hostile input shown back and searched for: lead fields carrying HTML/script are stored as sent (through the
public lead API) and shown escaped on every page; filter and query parameters carrying SQL metacharacters never
cause a 5xx and never reveal another workspace's rows."""
import re
from pathlib import Path

import pytest
from fixtures.abuse import own_objects, owner_pages
from fixtures.support import log_in, workspace_of

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
SQL_VALUES = ["' OR 1=1 --", "'; DROP TABLE leads; --", "%", "_", "\\", "%' OR '1'='1", "\x00", "a\x00b",
              "1 UNION SELECT password_hash FROM users", "' || (SELECT email FROM users LIMIT 1) || '", "é\u202e",
              "9" * 40, "-1", "2024-13-45", "[]", "{}"]
# Parameter names any list/report route might read; the source scan below adds every `request.args` name.
COMMON_PARAMS = ["q", "search", "status", "state", "sync_status", "source", "medium", "campaign", "utm_source",
                 "utm_medium", "utm_campaign", "from", "to", "date_from", "date_to", "start", "end", "period",
                 "group", "group_by", "sort", "order", "page", "per_page", "limit", "cursor", "format", "next"]


def _params_read_by_the_code() -> set[str]:
    portal = Path(__file__).resolve().parents[2] / "portal"
    names = set()
    for path in portal.rglob("*.py"):
        if "sandbox" in path.parts:
            continue
        names |= set(re.findall(r"args\.get(?:list)?\(\s*[\"'](\w+)[\"']", path.read_text()))
    return names


def _post_hostile_lead(client, public_id: str, name: str, **extra) -> int:
    response = client.post("/api/leads", json={
        "userAccountId": public_id, "name": name, "phone": "+7 999 000-11-22", "email": "x@example.com",
        "message": f"{SCRIPT}\n{IMG}", "utm_source": SCRIPT, "utm_medium": IMG, "utm_campaign": f"=cmd|{SCRIPT}",
        "utm_term": IMG, "utm_content": SCRIPT, "referrer": f"https://ref.example/{IMG}",
        "landing_page": f"https://landing.example/?q={SCRIPT}", **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["leadId"]


@pytest.fixture
def hostile_workspace(app, owner):
    """The owner's workspace named, peopled and filled with markup: a lead through the API, a sale, ad spend."""
    from datetime import date

    from portal.extensions import db
    from portal.models import AdSpend, Deal, Lead, User, Workspace

    workspace_id = workspace_of(app, owner)
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        workspace.name = f"Shop {SCRIPT}"
        db.session.get(User, owner).name = f"Owner {IMG}"
        public_id = workspace.public_id
        db.session.commit()
    lead_id = _post_hostile_lead(app.test_client(), public_id, f"Ivan {SCRIPT}")
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.name == f"Ivan {SCRIPT}" and lead.utm_medium == IMG  # stored as sent, escaped when shown
        lead.sync_status, lead.last_error = "failed", f"amoCRM said {SCRIPT}"
        db.session.add(Deal(workspace_id=workspace_id, amocrm_lead_id=777, lead_id=lead_id, state="won",
                            amount=1000, utm_source=SCRIPT, utm_medium=IMG, utm_campaign=SCRIPT))
        db.session.add(AdSpend(workspace_id=workspace_id, date=date.today(), utm_source=SCRIPT, utm_medium=IMG,
                               utm_campaign=f"@{SCRIPT}", amount=100))
        db.session.commit()
    return own_objects(app, owner, lead_id=lead_id)


def test_markup_in_leads_is_shown_escaped_on_every_page(app, owner, owner_client, hostile_workspace):
    shown = []
    for endpoint, url in owner_pages(app, hostile_workspace):
        response = owner_client.get(url)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        body = response.get_data(as_text=True)
        if response.mimetype in ("text/csv", "application/json"):
            continue  # data, not markup: the CSV test checks exports; nosniff keeps browsers from sniffing them
        assert SCRIPT not in body, f"{url} shows <script> unescaped"
        assert "<img src=x" not in body, f"{url} shows <img> unescaped"
        if ESCAPED_SCRIPT in body:
            shown.append(endpoint)
    # The markup really reached pages (escaped): the workspace name is on every page, the lead on the leads pages.
    assert "dashboard.index" in shown
    lead_endpoints = [endpoint for endpoint, _ in owner_pages(app, hostile_workspace) if endpoint.startswith("leads.")]
    assert not lead_endpoints or set(lead_endpoints) & set(shown), (lead_endpoints, shown)


def test_exports_are_attachments_never_rendered_as_html(app, owner_client, hostile_workspace):
    for _endpoint, url in owner_pages(app, hostile_workspace):
        response = owner_client.get(url)
        if response.mimetype == "text/csv":
            assert response.headers.get("X-Content-Type-Options") == "nosniff", url
            assert response.headers.get("Content-Disposition", "").startswith("attachment"), url


@pytest.fixture
def two_workspaces(app, make_user):
    """A (logged in) and B, each with a lead whose fields say whose it is."""
    from portal.extensions import db
    from portal.models import Lead

    owner_a, owner_b = make_user("sql-a@example.com"), make_user("sql-b@example.com")
    with app.app_context():
        for owner_id, tag in ((owner_a, "alpha"), (owner_b, "bravo")):
            db.session.add(Lead(workspace_id=workspace_of(app, owner_id), name=f"{tag}-lead-name",
                                email=f"{tag}@example.com", utm_source=f"{tag}-source", utm_campaign="shared"))
        db.session.commit()
    client = app.test_client()
    assert log_in(client, "sql-a@example.com").status_code == 302
    return client, own_objects(app, owner_a)


def test_sql_metacharacters_in_query_parameters_never_fail_or_leak(app, two_workspaces):
    client, ids = two_workspaces
    read_by_code = sorted(_params_read_by_the_code())
    params = sorted(set(COMMON_PARAMS) | set(read_by_code))
    # Every GET route, machine ones included (the OAuth callback reads state, code, referer, error).
    # The mailed links (password reset, e-mail confirmation) with a token that finds nothing.
    pages = [url for _, url in owner_pages(app, {**ids, "token": "not-a-token", "platform_name": "yandex_direct"},
                                           exclude={"static", "auth.accept"})]
    requests = 0
    for url in pages:
        for value in SQL_VALUES:
            response = client.get(url, query_string={name: value for name in params})
            requests += 1
            assert response.status_code < 500, f"{url} with {value!r}: {response.status_code}"
            body = response.get_data(as_text=True)
            assert "bravo" not in body, f"{url} with {value!r} shows workspace B's data"
        for name in read_by_code:  # one at a time too: an earlier parameter's refusal must not hide a later bug
            response = client.get(url, query_string={name: "' OR 1=1 --%_\\\x00"})
            requests += 1
            assert response.status_code < 500, f"{url}?{name}=…: {response.status_code}"
            assert "bravo" not in response.get_data(as_text=True)
    assert requests > 100


def _api_token(app, workspace_id: int) -> str:
    from portal.reports.api_tokens import create_token

    with app.app_context():
        return create_token(workspace_id, "abuse test")[1]


def test_the_read_only_api_survives_hostile_parameters_and_tokens(app, two_workspaces):
    from portal.extensions import db
    from portal.models import User

    client, _ids = two_workspaces
    with app.app_context():
        workspace_a = db.session.scalar(db.select(User.workspace_id).where(User.email == "sql-a@example.com"))
    auth = {"Authorization": f"Bearer {_api_token(app, workspace_a)}"}
    api_routes = sorted(rule.rule for rule in app.url_map.iter_rules()
                        if rule.endpoint.startswith("reports_api.") and "GET" in rule.methods)
    assert "/api/leads" in api_routes and "/api/reports/roi" in api_routes
    params = sorted(set(COMMON_PARAMS) | _params_read_by_the_code())
    fresh = app.test_client()  # no session: the token alone says whose data it is
    for url in api_routes:
        assert fresh.get(url, headers=auth).status_code == 200, url
        for value in SQL_VALUES:
            response = fresh.get(url, headers=auth, query_string={name: value for name in params})
            assert response.status_code < 500, f"{url} with {value!r}: {response.status_code}"
            assert "bravo" not in response.get_data(as_text=True)
        for header in ("Bearer ' OR 1=1 --", "Bearer \x00", "Bearer " + "x" * 8000, "Basic Zm9vOmJhcg==", "Bearer",
                       "bearer  ", "Bearer %"):
            response = fresh.get(url, headers={"Authorization": header})
            assert response.status_code == 401, f"{url} with {header[:30]!r}: {response.status_code}"


def test_sql_metacharacters_in_path_tokens_are_404(app, make_user):
    """The string path arguments a stranger controls: invite tokens, webhook workspace ids and secrets."""
    client = app.test_client()
    workspace_of(app, make_user("paths@example.com"))
    for value in SQL_VALUES:
        quoted = value.replace("\x00", "%00").replace("/", "%2F")
        assert client.get(f"/invite/{quoted}").status_code == 404, value
        response = client.post(f"/webhooks/amocrm/{quoted}/{quoted}", data="leads[status][0][id]=1",
                                content_type="application/x-www-form-urlencoded")
        assert response.status_code in (404, 429), (value, response.status_code)
