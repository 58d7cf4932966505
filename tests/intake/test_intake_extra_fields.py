"""Extra form fields: every named input beyond name, phone, e-mail and message is stored on the lead, within
bounds; hostile input gets a 400 that names the field, and nothing is stored."""
import pytest
from fixtures.intake import leads_of, make_workspace, post_lead


@pytest.fixture
def workspace(app):
    return make_workspace(app)


def test_extra_fields_are_stored_on_the_lead(app, client, workspace):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, phone="+79991234567",
                         fields={"company": " ООО «Ромашка» ", "budget": 150000, "agree": True,
                                 "services": ["seo", "ads"], "blank": "  "})
    assert response.status_code == 201, response.get_json()
    [lead] = leads_of(app, workspace_id)
    assert lead.extra_fields == {"company": "ООО «Ромашка»", "budget": "150000", "agree": "true",
                                 "services": ["seo", "ads"]}


def test_a_form_body_nests_fields_and_keeps_every_value_of_a_repeated_one(app, client, workspace):
    workspace_id, public_id = workspace
    response = client.post("/api/leads", data={"userAccountId": public_id, "phone": "+79991234567",
                                               "fields[city]": "Казань", "fields[services]": ["seo", "ads"]})
    assert response.status_code == 201, response.get_json()
    [lead] = leads_of(app, workspace_id)
    assert lead.extra_fields == {"city": "Казань", "services": ["seo", "ads"]}


def test_the_same_key_with_other_extra_fields_is_refused(app, client, workspace):
    _workspace_id, public_id = workspace
    headers = {"Idempotency-Key": "k-extra"}
    assert post_lead(client, public_id, headers, phone="+79991234567", fields={"a": "1"}).status_code == 201
    assert post_lead(client, public_id, headers, phone="+79991234567", fields={"a": "1"}).status_code in (200, 201)
    assert post_lead(client, public_id, headers, phone="+79991234567", fields={"a": "2"}).status_code == 422


@pytest.mark.parametrize(("fields", "error_field"), [
    ("a string", "fields"),
    ([1, 2], "fields"),
    ({f"f{n}": "x" for n in range(31)}, "fields"),
    ({"x" * 65: "v"}, "fields"),
    ({"note": "x" * 1001}, "fields.note"),
    ({"note": {"nested": "object"}}, "fields.note"),
    ({"note": ["ok", {"no": 1}]}, "fields.note"),
    ({"many": ["v"] * 21}, "fields.many"),
    ({"nothing": None}, "fields.nothing"),
])
def test_hostile_extra_fields_get_a_400_naming_them_and_nothing_is_stored(app, client, workspace, fields,
                                                                          error_field):
    workspace_id, public_id = workspace
    response = post_lead(client, public_id, phone="+79991234567", fields=fields)
    assert response.status_code == 400
    data = response.get_json()
    assert data["success"] is False and error_field in data["errors"]
    assert leads_of(app, workspace_id) == []
