"""Every state-changing route refuses a request without a CSRF token (400), logged in or not, except the
machine endpoints listed here on purpose: a new exemption (or a new machine endpoint) fails this test until it is
added to the list with a reason. The lead API (POST /api/leads) and the amoCRM webhook receiver are not Flask routes
at all: the ingest layer (portal.ingest) serves them beneath Flask, public and without a token by design (landing
pages call the lead API cross-origin; amoCRM's servers authenticate by the workspace's public id + secret in the
URL)."""
import json

import pytest
from fixtures.support import log_in

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# endpoint → why it takes no CSRF token (it authenticates some other way, or changes nothing)
CSRF_EXEMPT = {
    "connection.secrets_hook": "amoCRM's servers post an integration's keys; bound to a server-made OAuth state",
    "onboarding.snippet_seen": "the snippet's beacon from customers' sites (no session); sets one timestamp, once",
}

# Blueprints exempt as a whole → why. They must have no state-changing route.
CSRF_EXEMPT_BLUEPRINTS = {
    "health": "liveness and readiness probes (GET)",
    "metrics": "the Prometheus scrape (GET; bearer token or loopback)",
    "reports_api": "the read-only JSON API (GET; bearer API token, no session)",
}


def test_exempt_blueprints_are_the_listed_ones_and_read_only(app):
    from portal.extensions import csrf

    names = {blueprint.name for blueprint in csrf._exempt_blueprints}
    assert names == set(CSRF_EXEMPT_BLUEPRINTS)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in names:
            assert not rule.methods & STATE_CHANGING, f"{rule.rule} changes state in a CSRF-exempt blueprint"


def _placeholder_url(app, rule) -> str:
    values = {name: 1 if converter.__class__.__name__ == "IntegerConverter" else "x"
              for name, converter in rule._converters.items()}
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def _state_changing_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & STATE_CHANGING):
            yield rule, method


def test_the_exemption_list_is_exactly_what_the_app_exempts(app):
    from portal.extensions import csrf

    exempt = set()
    for rule, _ in _state_changing_rules(app):
        view = app.view_functions[rule.endpoint]
        if f"{view.__module__}.{view.__name__}" in csrf._exempt_views or rule.endpoint.split(".")[0] in {
                bp.name for bp in csrf._exempt_blueprints}:
            exempt.add(rule.endpoint)
    assert exempt == set(CSRF_EXEMPT)


@pytest.mark.parametrize("logged_in", [True, False], ids=["owner", "anonymous"])
def test_every_state_changing_route_without_a_token_is_400(app, owner, logged_in):
    client = app.test_client()
    if logged_in:
        assert log_in(client, "owner@example.com").status_code == 302
    checked = []
    for rule, method in _state_changing_rules(app):
        if rule.endpoint in CSRF_EXEMPT:
            continue
        url = _placeholder_url(app, rule)
        response = client.open(url, method=method, data={"next": "/", "name": "x"})
        assert response.status_code == 400, f"{method} {url} without a CSRF token answered {response.status_code}"
        assert "security token" in response.get_data(as_text=True)
        checked.append(rule.endpoint)
    assert {"auth.login", "auth.logout", "settings.update", "sync.retry", "connection.disconnect"} <= set(checked)
    if logged_in:
        # The session survived every refused request: nothing was changed, not even a logout.
        assert client.get("/settings/").status_code == 200


def test_a_token_from_another_session_is_refused(app, owner, make_user):
    from fixtures.support import csrf_from

    other = app.test_client()
    make_user("other@example.com")
    assert log_in(other, "other@example.com").status_code == 302
    foreign_token = csrf_from(other.get("/settings/").get_data(as_text=True))
    client = app.test_client()
    assert log_in(client, "owner@example.com").status_code == 302
    response = client.post("/logout", data={"csrf_token": foreign_token})
    assert response.status_code == 400
    assert client.get("/settings/").status_code == 200


def test_the_lead_api_is_no_flask_route_and_takes_leads_without_a_token(app):
    """A Flask route for POST /api/leads would never be reached (portal.ingest answers first)."""
    from fixtures.intake import make_workspace, post_lead

    adapter = app.url_map.bind("localhost")
    assert not adapter.test("/api/leads", method="POST")
    _workspace_id, public_id = make_workspace(app)
    response = post_lead(app.test_client(), public_id, email="ann@example.com")
    assert response.status_code == 201, response.get_json()


def test_the_visit_beacon_is_no_flask_route_and_takes_visits_without_a_token(app):
    """Landing pages send it with sendBeacon, cross-origin and without a session."""
    from fixtures.intake import make_workspace

    app.config["WTF_CSRF_ENABLED"] = True
    assert not app.url_map.bind("localhost").test("/api/visits", method="POST")
    _workspace_id, public_id = make_workspace(app)
    response = app.test_client().post("/api/visits", data=json.dumps(
        {"userAccountId": public_id, "visitor_id": "0" * 32, "visit_id": "1" * 32}),
        headers={"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"})
    assert response.status_code == 202, response.get_json()


def test_the_webhook_receiver_is_no_flask_route_and_takes_deliveries_without_a_token(app):
    """amoCRM's servers have no session: the ingest layer answers them beneath Flask, CSRF included."""
    from fixtures.webhooks import deal_pairs, make_workspace, post_webhook, webhook_body

    app.config["WTF_CSRF_ENABLED"] = True
    adapter = app.url_map.bind("localhost")
    assert not adapter.test("/webhooks/amocrm/x/y", method="POST")
    workspace = make_workspace(app)
    response = post_webhook(app.test_client(), workspace["url"], webhook_body(deal_pairs("add", 1)))
    assert response.status_code == 200, response.get_json()
