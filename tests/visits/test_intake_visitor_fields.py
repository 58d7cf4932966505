"""POST /api/leads carries the snippet's visitor_id and visit_id: validated, stored, optional for older snippets."""
import pytest
from fixtures.intake import leads_of, make_workspace, post_lead

VISITOR = "0123456789abcdef0123456789abcdef"
VISIT = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def workspace(app):
    return make_workspace(app, "Chain Co")


def test_a_lead_stores_its_visitor_and_visit(app, client, workspace):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, phone="+79991234567", visitor_id=VISITOR, visit_id=VISIT.upper())
    assert response.status_code == 201
    [lead] = leads_of(app, workspace_id)
    assert (lead.visitor_id, lead.visit_id) == (VISITOR, VISIT)


def test_a_lead_from_an_older_snippet_without_them_is_still_accepted(app, client, workspace):
    workspace_id, public_id = workspace
    assert post_lead(client, public_id, phone="+79991234567").status_code == 201
    assert post_lead(client, public_id, email="a@example.com", visitor_id="", visit_id=None).status_code == 201
    assert [(lead.visitor_id, lead.visit_id) for lead in leads_of(app, workspace_id)] == [(None, None)] * 2


def test_a_form_encoded_lead_carries_them_too(app, client, workspace):
    workspace_id, public_id = workspace
    response = client.post("/api/leads", data={"userAccountId": public_id, "phone": "+79991234567",
                                               "visitor_id": VISITOR, "visit_id": VISIT})
    assert response.status_code == 201
    assert (leads_of(app, workspace_id)[0].visitor_id, leads_of(app, workspace_id)[0].visit_id) == (VISITOR, VISIT)


@pytest.mark.parametrize(("field", "value"), [
    ("visitor_id", "not-an-id"), ("visitor_id", "g" * 32), ("visit_id", VISIT + "0"), ("visit_id", 42),
    ("visitor_id", ["0123456789abcdef0123456789abcdef"]), ("visit_id", "<script>alert(1)</script>"),
])
def test_a_malformed_id_is_a_400_with_a_message_and_nothing_is_stored(app, client, workspace, field, value):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, phone="+79991234567", **{field: value})
    assert response.status_code == 400
    assert response.get_json()["errors"][field] == "Must be 32 hexadecimal digits or a UUID."
    assert leads_of(app, workspace_id) == []


def test_the_same_idempotency_key_with_another_visit_is_another_body(app, client, workspace):
    _workspace_id, public_id = workspace
    headers = {"Idempotency-Key": "visit-key-1"}
    assert post_lead(client, public_id, headers, phone="+79991234567", visit_id=VISIT).status_code == 201
    assert post_lead(client, public_id, headers, phone="+79991234567", visit_id=VISIT).status_code == 200
    assert post_lead(client, public_id, headers, phone="+79991234567", visit_id=VISITOR).status_code == 422
