"""CORS of the lead API (POST /api/leads): `Access-Control-Allow-Origin` names only an origin the workspace allows,
or is `*` where the workspace allows any; a refused origin is never reflected — not on the preflight, not on the
403. (Nothing is sent with credentials: no answer allows them.)

The answers are made by the ingest layer (portal.ingest.layer) as the lead handler decides
(portal.intake.endpoint)."""
import pytest
from fixtures.intake import leads_of, make_workspace, post_lead, set_workspace

EVIL = "https://evil.example"


@pytest.fixture
def open_workspace(app):
    """A workspace whose snippet may post from any site (no allowed origins set)."""
    return make_workspace(app)


@pytest.fixture
def restricted_workspace(app):
    workspace_id, public_id = make_workspace(app, "Shop")
    set_workspace(app, workspace_id, allowed_origins="https://shop.example\nhttps://promo.example:8443")
    return workspace_id, public_id


def _allow_origin(response):
    return response.headers.get("Access-Control-Allow-Origin")


def test_the_preflight_never_reflects_an_origin_it_cannot_vouch_for(client):
    """A preflight carries no body: it cannot know the workspace, so it cannot vouch for the asking origin."""
    response = client.options("/api/leads", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert _allow_origin(response) != EVIL
    assert _allow_origin(response) == "*"  # the POST's answer decides who may read it
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_refused_origin_is_not_reflected_on_the_403(client, restricted_workspace):
    _workspace_id, public_id = restricted_workspace
    response = post_lead(client, public_id, headers={"Origin": EVIL}, phone="+79991234568")
    assert response.status_code == 403
    assert _allow_origin(response) not in (EVIL, "*")
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_workspace_that_allows_any_origin_answers_with_a_star(client, open_workspace):
    _workspace_id, public_id = open_workspace
    created = post_lead(client, public_id, headers={"Origin": "https://landing.example"}, phone="+79991234567")
    invalid = post_lead(client, public_id, headers={"Origin": "https://landing.example"}, phone="nope")
    assert (created.status_code, invalid.status_code) == (201, 400)
    for response in (created, invalid):
        assert _allow_origin(response) == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_allowed_origin_is_named_on_every_answer(client, restricted_workspace):
    _workspace_id, public_id = restricted_workspace
    created = post_lead(client, public_id, headers={"Origin": "https://promo.example:8443"}, phone="+79991234567")
    invalid = post_lead(client, public_id, headers={"Origin": "https://shop.example"}, phone="nope")
    assert (created.status_code, invalid.status_code) == (201, 400)
    assert _allow_origin(created) == "https://promo.example:8443"
    assert _allow_origin(invalid) == "https://shop.example"  # readable: the form shows what to fix
    for response in (created, invalid):
        assert "Origin" in response.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_the_portals_own_pages_are_allowed(client, restricted_workspace):
    """The Settings page's test form posts from the portal itself."""
    _workspace_id, public_id = restricted_workspace
    response = post_lead(client, public_id, headers={"Origin": "http://localhost"}, email="own@example.com")
    assert response.status_code == 201
    assert _allow_origin(response) == "http://localhost"


def _preflight(client, query="", headers=None):
    return client.options("/api/leads" + query, headers={"Origin": EVIL, "Access-Control-Request-Method": "POST",
                                                         **(headers or {})})


def test_a_preflight_that_names_a_restricted_workspace_answers_for_it(client, restricted_workspace):
    """In the query string (a browser's preflight has no body and no header values) or the X-Workspace header."""
    _workspace_id, public_id = restricted_workspace
    refused = _preflight(client, f"?userAccountId={public_id}")
    by_header = _preflight(client, headers={"X-Workspace": public_id})
    allowed = _preflight(client, f"?userAccountId={public_id}", headers={"Origin": "https://shop.example"})
    assert refused.status_code == by_header.status_code == allowed.status_code == 204
    assert _allow_origin(refused) is None and _allow_origin(by_header) is None
    assert _allow_origin(allowed) == "https://shop.example"
    for response in (refused, by_header, allowed):
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_that_names_an_open_or_unknown_workspace_answers_with_a_star(client, open_workspace):
    _workspace_id, public_id = open_workspace
    for query in (f"?userAccountId={public_id}", "?userAccountId=no-such-workspace"):
        response = _preflight(client, query)
        assert response.status_code == 204
        assert _allow_origin(response) == "*"


def test_a_lead_may_name_its_workspace_in_the_query_string(app, client, restricted_workspace):
    workspace_id, public_id = restricted_workspace
    response = client.post(f"/api/leads?userAccountId={public_id}", json={"email": "query@example.com"},
                           headers={"Origin": "https://shop.example"})
    assert response.status_code == 201, response.get_json()
    assert _allow_origin(response) == "https://shop.example"
    assert [lead.email for lead in leads_of(app, workspace_id)] == ["query@example.com"]


def test_preflights_that_name_a_workspace_count_against_the_address_limit(database_schema, restricted_workspace):
    """Each reads the workspace: over the address's lead limit the preflight reads nothing and answers `*`."""
    from fixtures.support import make_app

    _workspace_id, public_id = restricted_workspace
    client = make_app(LEAD_RATE_LIMIT_IP="2 per minute").test_client()
    answers = [_allow_origin(_preflight(client, f"?userAccountId={public_id}")) for _ in range(3)]
    assert answers == [None, None, "*"]
    assert post_lead(client, public_id, headers={"Origin": EVIL}, phone="+79991234567").status_code == 429


# GET /api/leads/origin: the snippet's question when a POST failed unreadably (a refusal, or a lost connection).

def _ask(client, public_id, origin):
    return client.get(f"/api/leads/origin?userAccountId={public_id}", headers={"Origin": origin} if origin else {})


def test_the_origin_question_says_refused_without_naming_the_origin(client, restricted_workspace):
    _workspace_id, public_id = restricted_workspace
    refused = _ask(client, public_id, EVIL)
    assert refused.status_code == 200
    assert refused.get_json() == {"allowed": False,
                                  "message": "This site is not allowed to send leads to this workspace."}
    assert _allow_origin(refused) == "*"  # readable by the refused page, and its origin is not reflected
    assert EVIL not in str(refused.headers) and "Access-Control-Allow-Credentials" not in refused.headers


@pytest.mark.parametrize("origin", ["https://shop.example", "https://promo.example:8443", "http://localhost", None])
def test_the_origin_question_says_allowed_for_listed_own_and_originless_callers(client, restricted_workspace, origin):
    _workspace_id, public_id = restricted_workspace
    answer = _ask(client, public_id, origin)
    assert (answer.status_code, answer.get_json(), _allow_origin(answer)) == (200, {"allowed": True}, "*")


def test_the_origin_question_for_an_open_or_unknown_workspace(client, open_workspace):
    _workspace_id, public_id = open_workspace
    assert _ask(client, public_id, EVIL).get_json() == {"allowed": True}
    unknown = _ask(client, "no-such-workspace", EVIL)
    assert unknown.status_code == 404 and "userAccountId" in unknown.get_json()["message"]
    assert client.post("/api/leads/origin").status_code == 405


def test_origin_questions_count_against_the_address_limit(database_schema, restricted_workspace):
    from fixtures.support import make_app

    _workspace_id, public_id = restricted_workspace
    client = make_app(LEAD_RATE_LIMIT_IP="2 per minute").test_client()
    answers = [_ask(client, public_id, EVIL) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1 and _allow_origin(answers[2]) == "*"
