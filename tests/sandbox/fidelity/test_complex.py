"""``POST /api/v4/leads/complex``, duplicate control, tracking fields and custom-field types."""

import pytest
from sandbox_support import Api, connect


def contact(phone="+79120000001", email="a@example.com", **extra):
    return {
        "first_name": "Анна",
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]},
            {"field_code": "EMAIL", "values": [{"value": email, "enum_code": "WORK"}]},
        ],
        **extra,
    }


def test_complex_creates_lead_contact_and_company_linked(api):
    """Kommo complex-leads: each lead with ≤1 contact and ≤1 company; a new contact and company are linked;
    the answer is a bare array with ``contact_id`` and ``company_id``."""
    body = [
        {"name": "Сделка", "_embedded": {"contacts": [contact()], "companies": [{"name": "ООО Ромашка"}]}}
    ]
    result = api.post("leads/complex", body).json()[0]
    assert isinstance(result["company_id"], int) and isinstance(result["contact_id"], int)
    company = api.get(f"companies/{result['company_id']}").json()
    assert company["name"] == "ООО Ромашка"
    person = api.get(f"contacts/{result['contact_id']}").json()
    assert person["_embedded"]["companies"] == [{"id": result["company_id"]}]
    lead = api.get(f"leads/{result['id']}").json()
    assert lead["_embedded"]["companies"] == [{"id": result["company_id"]}]


def test_complex_rejects_two_companies(api):
    """Kommo complex-leads: at most one company per lead."""
    body = [{"_embedded": {"companies": [{"name": "a"}, {"name": "b"}]}}]
    response = api.post("leads/complex", body)
    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "_embedded.companies"


def test_duplicate_merges_into_the_open_deal(api):
    """Kommo complex-leads: ``merged: true`` means the new lead was merged into an existing lead — the answer
    carries that lead's id (doc example: the same id 9774766 with request_id ["2"])."""
    first = api.post("leads/complex", [{"name": "A", "_embedded": {"contacts": [contact()]}}]).json()[0]
    again = api.post(
        "leads/complex",
        [
            {
                "name": "B",
                "request_id": "2",
                "_embedded": {"tags": [{"name": "repeat"}], "contacts": [contact()]},
            }
        ],
    ).json()[0]
    assert again == {**again, "id": first["id"], "contact_id": first["contact_id"], "merged": True}
    assert again["request_id"] == ["2"]
    tags = [tag["name"] for tag in api.get(f"leads/{first['id']}").json()["_embedded"]["tags"]]
    assert "repeat" in tags


def test_duplicate_of_a_closed_deal_gets_a_new_deal_on_the_old_contact(api, main_pipeline):
    """Duplicate control merges into open deals; a contact whose deal is closed gets a new deal (same contact)."""
    first = api.post("leads/complex", [{"_embedded": {"contacts": [contact()]}}]).json()[0]
    api.patch(f"leads/{first['id']}", {"status_id": 143, "pipeline_id": main_pipeline["id"]})
    again = api.post("leads/complex", [{"_embedded": {"contacts": [contact(email="other@x.y")]}}]).json()[0]
    assert (
        again["merged"] is True and again["contact_id"] == first["contact_id"] and again["id"] != first["id"]
    )


def test_duplicate_control_off_creates_everything(control, base_url):
    """Duplicate control applies only where it is enabled (Kommo complex-leads)."""
    account = control.create_account(duplicate_control=False)
    api = Api(base_url, connect(control, base_url, account_id=account["id"])["access_token"])
    one = api.post("leads/complex", [{"_embedded": {"contacts": [contact()]}}]).json()[0]
    two = api.post("leads/complex", [{"_embedded": {"contacts": [contact()]}}]).json()[0]
    assert two["merged"] is False and two["contact_id"] != one["contact_id"] and two["id"] != one["id"]


def test_duplicate_rules_per_account(api, control, account):
    """Duplicate-control rules choose what matches (phone, e-mail — kommo.com/support/crm/duplicate-control)."""
    control.set_account(account["id"], duplicate_rules=["email"])
    first = api.post("leads/complex", [{"_embedded": {"contacts": [contact()]}}]).json()[0]
    same_phone = api.post("leads/complex", [{"_embedded": {"contacts": [contact(email="z@z.z")]}}]).json()[0]
    assert same_phone["merged"] is False and same_phone["contact_id"] != first["contact_id"]


def test_account_without_a_tracking_field_rejects_its_code(control, base_url):
    """Tracking fields are the account's fields: a code the account lacks is ``NotSupportedChoice`` at
    ``custom_fields_values.N.field_code``; accounts may have the OPENSTAT_* ones."""
    account = control.create_account(tracking_fields=["UTM_SOURCE", "OPENSTAT_SOURCE"])
    api = Api(base_url, connect(control, base_url, account_id=account["id"])["access_token"])
    ok = api.post(
        "leads", [{"custom_fields_values": [{"field_code": "OPENSTAT_SOURCE", "values": [{"value": "x"}]}]}]
    )
    assert ok.status_code == 200
    bad = api.post("leads", [{"custom_fields_values": [{"field_code": "GCLID", "values": [{"value": "x"}]}]}])
    assert bad.status_code == 400
    error = bad.json()["validation-errors"][0]["errors"][0]
    assert error["code"] == "NotSupportedChoice" and error["path"] == "custom_fields_values.0.field_code"


def field(account, name):
    return next(f for f in account["lead_fields"] if f["name"] == name)


def test_custom_field_types_take_their_documented_values(api, account):
    """amoCRM custom-fields values: numeric, checkbox true, select by value/enum_id, multiselect several
    enum_ids, date as Unix time or RFC 3339, url."""
    select, multi = field(account, "Вид услуги"), field(account, "Интересы")
    values = [
        {"field_id": field(account, "Бюджет клиента")["id"], "values": [{"value": 1500}]},
        {"field_id": field(account, "Повторный клиент")["id"], "values": [{"value": True}]},
        {"field_id": select["id"], "values": [{"enum_id": select["enums"][1]["id"]}]},
        {"field_id": multi["id"], "values": [{"enum_id": e["id"]} for e in multi["enums"][:2]]},
        {"field_id": field(account, "Дата замера")["id"], "values": [{"value": "2026-01-15T10:00:00+03:00"}]},
        {"field_id": field(account, "Страница заявки")["id"], "values": [{"value": "https://example.com/a"}]},
    ]
    lead_id = api.create_lead(custom_fields_values=values)
    stored = {
        f["field_name"]: f["values"] for f in api.get(f"leads/{lead_id}").json()["custom_fields_values"]
    }
    assert stored["Вид услуги"][0]["value"] == select["enums"][1]["value"]
    assert [v["enum_id"] for v in stored["Интересы"]] == [e["id"] for e in multi["enums"][:2]]
    assert stored["Дата замера"][0]["value"] == 1768460400
    assert stored["Повторный клиент"][0]["value"] is True


@pytest.mark.parametrize(
    "name, value, path_end",
    [
        ("Вид услуги", {"value": "Нет такого"}, "values.0.value"),  # PHP SDK #115: NotSupportedChoice
        ("Бюджет клиента", {"value": "много"}, "values.0.value"),
        ("Повторный клиент", {"value": "yes"}, "values.0.value"),
        ("Страница заявки", {"value": "not a url"}, "values.0.value"),
    ],
)
def test_bad_custom_field_values_get_amocrm_shaped_paths(api, account, name, value, path_end):
    """amoCRM 400 validation-errors name the failing value by a dotted path relative to the item, e.g.
    ``custom_fields_values.6.values.0.value`` (PHP SDK #115, #480)."""
    response = api.post(
        "leads", [{"custom_fields_values": [{"field_id": field(account, name)["id"], "values": [value]}]}]
    )
    assert response.status_code == 400
    entry = response.json()["validation-errors"][0]
    assert entry["request_id"] == "0" and entry["errors"][0]["path"] == f"custom_fields_values.0.{path_end}"


def test_at_most_40_custom_field_values_per_entity(api, account):
    """Kommo complex-leads: ≤40 custom-field values per entity."""
    utm = {"field_code": "UTM_SOURCE", "values": [{"value": "x"}]}
    response = api.post("leads/complex", [{"custom_fields_values": [utm] * 41}])
    assert response.status_code == 400
