"""The ingest layer (portal.ingest): the hot public endpoints beneath Flask, routed by one table, each answer with
one request id, one log line, the security headers and the portal's JSON error shape; 503 while the database is
down, for every endpoint, decided by the same function as the portal's error handlers."""
import logging
import socket

import pytest
from cryptography.fernet import Fernet
from fixtures.intake import make_workspace as make_lead_workspace
from fixtures.intake import post_lead
from fixtures.support import make_app
from fixtures.webhooks import deal_pairs, post_webhook, webhook_body
from fixtures.webhooks import make_workspace as make_webhook_workspace
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from portal.amocrm.subscription import rotate_webhook_secret
from portal.errors import RETRY_AFTER_SECONDS, database_unavailable
from portal.ingest.layer import PORTAL, Cors, Endpoint, IngestLayer, Refusal, json_reply
from portal.ingest.workspaces import CACHE_KEY, cached_workspace, forget_workspace

NOWHERE_UUID = "00000000-0000-4000-8000-000000000000"


def _portal_headers(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert 0 < len(response.headers["X-Request-ID"]) <= 64


def _request_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "portal.request"]


# --- a layer of its own: the framework, independent of the two endpoints --------------------------------------


def _echo(app, request, name: str):
    if name == "refused":
        raise Refusal(409, "Taken.", retry_after=7, field="name")
    if name == "unreadable":  # the handler says no page may read this answer
        raise Refusal(403, "Not from there.", allow_origin=None)
    if name == "vouched":
        return json_reply(201, {"name": name}, allow_origin=request.headers.get("Origin"))
    if name == "too-big":
        raise RequestEntityTooLarge()
    if name == "bug":
        raise RuntimeError("a bug")
    if name == "gone":
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    return json_reply(201, {"name": name, "method": request.method})


@pytest.fixture
def layered(database_schema):
    """An app with one more endpoint (a CORS one with a path value, its GET left to the portal): as a new hot
    endpoint is added."""
    app = make_app()
    app.wsgi_app = IngestLayer(app, app.wsgi_app, [
        Endpoint("/api/echo/<name>", {"POST": _echo, "GET": PORTAL}, cors=Cors(allow_headers="Content-Type"),
                 wrong_method="Echo with POST.")])
    return app


def test_a_path_pattern_routes_to_its_handler_with_the_paths_values(layered):
    response = layered.test_client().post("/api/echo/caf%C3%A9", headers={"Origin": "https://shop.example"})
    assert response.status_code == 201
    assert response.get_json() == {"name": "café", "method": "POST"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # the handler decided nothing: any page
    assert response.headers["Vary"] == "Origin"
    assert response.headers["Content-Length"] == str(len(response.data))
    _portal_headers(response)


def test_the_handler_decides_which_origin_may_read_its_answer(layered):
    """Never a reflection by the layer: the origin the handler names, or no Access-Control-Allow-Origin at all."""
    client = layered.test_client()
    vouched = client.post("/api/echo/vouched", headers={"Origin": "https://shop.example"})
    unreadable = client.post("/api/echo/unreadable", headers={"Origin": "https://evil.example"})
    assert (vouched.status_code, unreadable.status_code) == (201, 403)
    assert vouched.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Origin" not in unreadable.headers
    for response in (vouched, unreadable):
        assert response.headers["Vary"] == "Origin"
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("path", ["/api/echo", "/api/echo/", "/api/echo/a/b", "/api/echo/a/"])
def test_paths_the_pattern_does_not_match_go_to_flask(layered, path):
    response = layered.test_client().post(path)
    assert response.status_code == 404  # Flask's not-found, in the portal's JSON shape for /api/
    assert response.get_json()["error"] == "not_found"
    assert "Access-Control-Allow-Origin" not in response.headers  # not the layer's answer


def test_a_method_left_to_the_portal_reaches_flask(layered):
    """GET is PORTAL: Flask answers it (here it has no such view: its 404, not the layer's 405)."""
    response = layered.test_client().get("/api/echo/x")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_other_methods_are_405_with_allow_and_the_preflight_is_answered(layered):
    client = layered.test_client()
    put = client.put("/api/echo/x")
    assert put.status_code == 405
    assert put.get_json() == {"success": False, "error": "method_not_allowed", "message": "Echo with POST."}
    assert {method.strip() for method in put.headers["Allow"].split(",")} == {"GET", "OPTIONS", "POST"}
    _portal_headers(put)
    preflight = client.options("/api/echo/x", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204 and preflight.data == b"" and "Content-Length" not in preflight.headers
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"  # no `vouch`: the POST's answer decides
    _portal_headers(preflight)


def test_refusals_and_http_errors_are_the_portals_json_error_shape(layered):
    client = layered.test_client()
    refused = client.post("/api/echo/refused")
    assert refused.status_code == 409 and refused.headers["Retry-After"] == "7"
    assert refused.get_json() == {"success": False, "error": "conflict", "message": "Taken.", "field": "name"}
    too_big = client.post("/api/echo/too-big")
    assert too_big.status_code == 413 and too_big.get_json()["error"] == "request_entity_too_large"
    nul = client.post("/api/echo/x?a=%00")
    assert nul.status_code == 400
    assert nul.get_json()["message"] == "The address contains characters that are not allowed in it."
    for response in (refused, too_big, nul):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        _portal_headers(response)


def test_a_bug_is_a_logged_json_500_and_a_lost_database_a_503(layered, caplog):
    client = layered.test_client()
    with caplog.at_level(logging.WARNING, logger="portal.errors"):
        bug = client.post("/api/echo/bug", headers={"X-Request-ID": "req-bug"})
        gone = client.post("/api/echo/gone")
    assert bug.status_code == 500 and bug.get_json()["error"] == "internal_server_error"
    assert bug.headers["X-Request-ID"] == "req-bug"
    assert gone.status_code == 503 and gone.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert gone.get_json()["error"] == "service_unavailable"
    [logged_bug] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert logged_bug.exc_info and "POST /api/echo/bug" in logged_bug.getMessage()
    [logged_gone] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert logged_gone.getMessage() == "database unavailable on POST /api/echo/gone: ConnectionRefusedError"


def test_every_request_logs_one_line_the_layers_and_the_portals(layered, caplog):
    client = layered.test_client()
    with caplog.at_level(logging.INFO, logger="portal.request"):
        for call in (lambda: client.post("/api/echo/x"), lambda: client.put("/api/echo/x"),
                     lambda: client.options("/api/echo/x"), lambda: client.post("/api/echo/bug"),
                     lambda: client.get("/api/echo/x"), lambda: client.get("/healthz")):
            caplog.clear()
            response = call()
            [line] = _request_lines(caplog)
            assert f" {response.status_code} " in line
    assert line.startswith("GET /healthz 200 ")


# --- the two endpoints --------------------------------------------------------------------------------------


def test_the_lead_intake_and_the_webhook_are_answered_by_the_layer(app, client, caplog):
    """One log line each, the portal's headers, the caller's request id; Flask's view functions never run."""
    _workspace_id, public_id = make_lead_workspace(app)
    webhook = make_webhook_workspace(app)
    with caplog.at_level(logging.INFO, logger="portal.request"):
        lead = post_lead(client, public_id, headers={"X-Request-ID": "lead-1"}, email="a@example.com")
        hook = post_webhook(client, webhook["url"], webhook_body(deal_pairs("add", 1)),
                            headers={"X-Request-ID": "hook-1"})
    assert lead.status_code == 201 and hook.status_code == 200
    assert lead.headers["X-Request-ID"] == "lead-1" and hook.headers["X-Request-ID"] == "hook-1"
    for response in (lead, hook):
        _portal_headers(response)
    assert "Access-Control-Allow-Origin" not in hook.headers  # amoCRM is no browser
    lines = _request_lines(caplog)
    assert len(lines) == 2
    assert lines[0].startswith("POST /api/leads 201 ")
    assert lines[1].startswith(f"POST /webhooks/amocrm/{webhook['public_id']}/{webhook['secret'][:4]}… 200 ")
    assert webhook["secret"] not in caplog.text


def test_the_webhook_answers_405_for_other_methods_and_unmatched_paths_are_flasks(app, client):
    webhook = make_webhook_workspace(app)
    for method in ("GET", "PUT", "OPTIONS"):
        response = client.open(webhook["url"], method=method)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "POST" and response.get_json()["success"] is False
        _portal_headers(response)
    deeper = post_webhook(client, webhook["url"] + "/more", webhook_body(deal_pairs("add", 1)))
    assert deeper.status_code == 404 and deeper.get_json()["error"] == "not_found"


@pytest.fixture
def app_without_database(database_schema):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return make_app(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone",
                    SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}})


def test_both_endpoints_answer_503_with_retry_after_while_the_database_is_down(app_without_database, caplog):
    client = app_without_database.test_client()
    with caplog.at_level(logging.WARNING, logger="portal.errors"):
        lead = client.post("/api/leads", json={"userAccountId": NOWHERE_UUID, "phone": "+79991234567"},
                           headers={"Origin": "https://shop.example"})
        hook = post_webhook(client, f"/webhooks/amocrm/{NOWHERE_UUID}/secret", "a=1")
    for response in (lead, hook):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert response.get_json() == {"success": False, "error": "service_unavailable",
                                       "message": response.get_json()["message"]}
        _portal_headers(response)
    assert lead.get_json()["message"] == hook.get_json()["message"]
    assert lead.headers["Access-Control-Allow-Origin"] == "*"  # the snippet can read it (no workspace known)
    warnings = [record.getMessage() for record in caplog.records if record.name == "portal.errors"]
    assert [line.split(":")[0] for line in warnings] == [
        "database unavailable on POST /api/leads", f"database unavailable on POST /webhooks/amocrm/{NOWHERE_UUID}/•••"]
    # The portal's own pages make the same decision, with the same Retry-After.
    api = client.get("/api/leads", headers={"Authorization": "Bearer lp_nothing"})
    assert api.status_code == 503 and api.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


def test_the_database_down_decision():
    refused = OperationalError("SELECT 1", {}, ConnectionRefusedError())
    constraint = IntegrityError("INSERT", {}, ValueError("duplicate key"))
    lost = DBAPIError("SELECT 1", {}, ValueError("server closed the connection"), connection_invalidated=True)
    assert database_unavailable(refused) and database_unavailable(lost)
    assert not database_unavailable(constraint)
    assert not database_unavailable(ConnectionRefusedError())  # not the database's: a bug here


# --- the per-process workspace cache ------------------------------------------------------------------------


def test_one_cached_entry_serves_both_endpoints_and_a_change_here_applies_at_once(app, client):
    webhook = make_webhook_workspace(app)
    assert post_lead(client, webhook["public_id"], email="a@example.com").status_code == 201
    [entry] = app.extensions[CACHE_KEY].values()
    assert entry.id == webhook["id"] and "webhook_secret" not in vars(entry)  # not decrypted for a lead
    assert post_webhook(client, webhook["url"], webhook_body(deal_pairs("add", 1))).status_code == 200
    assert list(app.extensions[CACHE_KEY].values()) == [entry]  # the webhook used the intake's entry
    assert vars(entry)["webhook_secret"] == webhook["secret"]  # decrypted once, for the webhook
    with app.app_context():
        rotate_webhook_secret(webhook["id"])  # forgets the entry: the old secret stops working at once
    assert post_webhook(client, webhook["url"], webhook_body(deal_pairs("add", 2))).status_code == 404


def test_the_intake_never_decrypts_the_webhook_secret(app, database_schema):
    """The shared entry keeps the secret encrypted until a webhook needs it: a process whose keys cannot read it
    (a rotation gone wrong) still takes leads."""
    webhook = make_webhook_workspace(app)
    other_keys = make_app(ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    assert post_lead(other_keys.test_client(), webhook["public_id"], email="a@example.com").status_code == 201
    [entry] = other_keys.extensions[CACHE_KEY].values()
    assert entry.sealed_webhook_secret != webhook["secret"] and "webhook_secret" not in vars(entry)


def test_each_caller_says_how_old_an_entry_it_accepts(app):
    webhook = make_webhook_workspace(app)
    with app.app_context():
        first = cached_workspace(webhook["public_id"], max_age=60)
        assert cached_workspace(webhook["public_id"], max_age=60) is first
        assert cached_workspace(webhook["public_id"], max_age=0) is not first  # read again
        forget_workspace(webhook["public_id"])
        assert webhook["public_id"] not in app.extensions[CACHE_KEY]
        assert cached_workspace(NOWHERE_UUID, max_age=60) is None
        assert NOWHERE_UUID not in app.extensions[CACHE_KEY]  # unknown ids are not cached
