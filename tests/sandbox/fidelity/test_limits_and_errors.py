"""Limits and errors: the temporary block, 403 for missing rights, 404 for unknown pipelines."""

import time

from sandbox_support import CLIENT_ID, exchange_code, query_of, refresh


def test_sustained_excess_blocks_every_call_including_the_token_endpoint(api, control, base_url, tokens):
    """Repeated violations of the limit block the caller: an nginx HTML 403 on every call (PHP SDK #434),
    ``/oauth2/access_token`` included (#563) — not a token revocation. The block ends after a while."""
    control.config(block_after_429s=5, block_window=30, block_seconds=1.5)
    control.faults(rate_limit_per_sec=1)
    statuses = [api.get("account").status_code for _ in range(12)]
    assert 429 in statuses and statuses[-1] == 403
    control.faults()  # the rate limit is lifted; the block stays
    for response in (api.get("leads"), refresh(base_url, tokens["refresh_token"])):
        assert response.status_code == 403
        assert response.headers["Content-Type"].startswith("text/html") and "403 Forbidden" in response.text
    assert control.counters()["blocks"] == 1
    time.sleep(1.6)
    assert api.get("account").status_code == 200
    assert refresh(base_url, tokens["refresh_token"]).status_code == 200  # the token was not burnt


def test_webhooks_need_an_admin(api, control, account):
    """Managing webhooks is for administrators (amoCRM webhooks API); a non-admin gets 403 problem JSON."""
    control.set_account(account["id"], is_admin=False)
    response = api.get("webhooks")
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 403
    assert api.get("leads").status_code == 204  # other calls still work


def test_adding_custom_fields_needs_an_admin(api, control, account):
    """``POST /api/v4/leads/custom_fields`` is admin-only (Kommo adding-custom-field); 201 on create."""
    body = [{"type": "text", "name": "Маркер", "code": "LP_MARK"}]
    control.set_account(account["id"], is_admin=False)
    assert api.post("leads/custom_fields", body).status_code == 403
    control.set_account(account["id"], is_admin=True)
    response = api.post("leads/custom_fields", body)
    assert response.status_code == 201
    created = response.json()["_embedded"]["custom_fields"][0]
    assert created["code"] == "LP_MARK" and created["type"] == "text"
    lead_id = api.create_lead(custom_fields_values=[{"field_code": "LP_MARK", "values": [{"value": "m-1"}]}])
    assert api.get(f"leads/{lead_id}").json()["custom_fields_values"][0]["values"][0]["value"] == "m-1"


def test_denied_call_kinds_answer_403(api, control, account):
    """A user without rights to an action gets 403 (rights are per user and entity in amoCRM)."""
    control.set_account(account["id"], denied=["leads:write"])
    assert api.post("leads", [{"name": "x"}]).status_code == 403
    assert api.get("leads").status_code == 204
    control.set_account(account["id"], denied=["contacts"])
    assert api.get("contacts").status_code == 403


def test_unknown_pipeline_is_404(api):
    """PHP SDK #92: ``GET /api/v4/leads/pipelines/0/statuses`` →
    ``{"title":"Not Found","type":"https://httpstatus.es/404","status":404,"detail":"Pipeline not found"}``."""
    for path in ("leads/pipelines/1", "leads/pipelines/0/statuses"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {
            "title": "Not Found",
            "type": "https://httpstatus.es/404",
            "status": 404,
            "detail": "Pipeline not found",
        }


def test_pipeline_statuses(api, main_pipeline):
    """``GET /api/v4/leads/pipelines/{id}/statuses``: the pipeline's statuses, 142 and 143 included."""
    body = api.get(f"leads/pipelines/{main_pipeline['id']}/statuses").json()
    assert {142, 143} <= {s["id"] for s in body["_embedded"]["statuses"]}


def test_code_exchange_is_refused_while_blocked(control, base_url):
    """The block covers the token endpoint for every grant (PHP SDK #563)."""
    control.faults(block=True)
    code = query_of(control.authorize(CLIENT_ID, state="s")["redirect_url"])["code"]
    assert exchange_code(base_url, code).status_code == 403
