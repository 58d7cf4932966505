"""API v4: account, pipelines, custom fields, leads, complex create, contacts; HAL, 204s, problem JSON."""

import pytest
from sandbox_support import Api, connect

UTM = [
    {"field_code": "UTM_SOURCE", "values": [{"value": "google"}]},
    {"field_code": "UTM_CAMPAIGN", "values": [{"value": "spring"}]},
]


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"https://httpstatus.es/{status}" and body["status"] == status
    return body


def assert_empty_204(response):
    assert response.status_code == 204
    assert response.content == b""


def complex_item(phone="+79129876543", email="anna@example.com", **extra):
    contact = {
        "first_name": "Анна",
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]},
            {"field_code": "EMAIL", "values": [{"value": email, "enum_code": "WORK"}]},
        ],
    }
    item = {
        "name": "Заявка с сайта",
        "price": 1000,
        "custom_fields_values": UTM,
        "_embedded": {"tags": [{"name": "lp-1"}], "contacts": [contact]},
    }
    item.update(extra)
    return item


# -- account, pipelines, fields ----------------------------------------------------------------------------


def test_account(api, account):
    response = api.get("account", params={"with": "datetime_settings"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/hal+json")
    body = response.json()
    assert body["id"] == account["id"] and body["subdomain"] == "sandbox" and body["currency"] == "RUB"
    assert body["_embedded"]["datetime_settings"]["timezone"] == "Europe/Moscow"
    assert "_embedded" not in api.get("account").json()


def test_pipelines_have_incoming_won_and_lost(api):
    pipelines = api.get("leads/pipelines").json()["_embedded"]["pipelines"]
    assert len(pipelines) == 2 and sum(p["is_main"] for p in pipelines) == 1
    for pipeline in pipelines:
        statuses = pipeline["_embedded"]["statuses"]
        assert statuses[0]["type"] == 1
        assert {142, 143} <= {s["id"] for s in statuses}
        assert all(isinstance(s["id"], int) for s in statuses)


def test_custom_fields(api):
    lead_fields = api.get("leads/custom_fields").json()["_embedded"]["custom_fields"]
    codes = {f["code"]: f for f in lead_fields}
    for code in (
        "UTM_SOURCE",
        "UTM_MEDIUM",
        "UTM_CAMPAIGN",
        "UTM_TERM",
        "UTM_CONTENT",
        "REFERRER",
        "GCLID",
        "YCLID",
        "FBCLID",
    ):
        assert codes[code]["type"] == "tracking_data"
    assert codes["UTM_SOURCE"]["name"] == "utm_source"
    contact_fields = api.get("contacts/custom_fields").json()["_embedded"]["custom_fields"]
    phone = next(f for f in contact_fields if f["code"] == "PHONE")
    assert "WORK" in [e["value"] for e in phone["enums"]]


def test_unknown_api_route_is_problem_json(api):
    assert_problem(api.get("nothing-here"), 404)


# -- leads ---------------------------------------------------------------------------------------------------


def test_create_and_get_lead(api, main_pipeline, account):
    response = api.post(
        "leads",
        [
            {
                "name": "A",
                "price": 500,
                "custom_fields_values": UTM,
                "_embedded": {"tags": [{"name": "lp-7"}]},
                "request_id": "r-1",
            },
            {"name": "B"},
        ],
    )
    assert response.status_code == 200
    created = response.json()["_embedded"]["leads"]
    assert [item["request_id"] for item in created] == ["r-1", "1"]
    lead = api.get(f"leads/{created[0]['id']}").json()
    assert lead["name"] == "A" and lead["price"] == 500 and lead["account_id"] == account["id"]
    assert lead["pipeline_id"] == main_pipeline["id"]
    assert lead["status_id"] == main_pipeline["statuses"][1]["id"]  # first working status
    assert lead["closed_at"] is None
    assert lead["_embedded"]["tags"][0]["name"] == "lp-7"
    source = next(f for f in lead["custom_fields_values"] if f["field_code"] == "UTM_SOURCE")
    assert source["values"] == [{"value": "google"}]
    assert isinstance(lead["created_at"], int) and isinstance(lead["updated_at"], int)
    assert api.get(f"leads/{created[1]['id']}").json()["custom_fields_values"] is None


def test_missing_lead_is_empty_204(api):
    assert_empty_204(api.get("leads/999999"))


def test_empty_list_is_204(api):
    assert_empty_204(api.get("leads"))
    assert_empty_204(api.get("contacts"))


def test_pagination_follows_next_until_204(api):
    ids = [api.create_lead(name=f"L{n}") for n in range(4)]
    first = api.get("leads", params={"limit": 2})
    body = first.json()
    assert body["_page"] == 1 and [lead["id"] for lead in body["_embedded"]["leads"]] == ids[:2]
    second = api.get(body["_links"]["next"]["href"]).json()
    assert [lead["id"] for lead in second["_embedded"]["leads"]] == ids[2:]
    # A full last page still links to a next page, which answers 204 — as amoCRM does.
    assert_empty_204(api.get(second["_links"]["next"]["href"]))
    partial = api.get("leads", params={"limit": 3, "page": 2}).json()
    assert len(partial["_embedded"]["leads"]) == 1 and "next" not in partial["_links"]
    assert_empty_204(api.get("leads", params={"page": 9}))


def test_limit_over_250_is_422(api):
    api.create_lead(name="x")
    assert assert_problem(api.get("leads", params={"limit": 251}), 422)["detail"] == "Limit of 250 per page"
    assert api.get("leads", params={"limit": 250}).status_code == 200


def test_filters_and_order(api, control, account):
    control.set_account(account["id"], list_filters="applied")
    ids = [api.create_lead(name=f"L{n}") for n in range(3)]
    response = api.get("leads", params={"filter[id][]": [ids[0], ids[2]]})
    assert [lead["id"] for lead in response.json()["_embedded"]["leads"]] == [ids[0], ids[2]]
    updated = api.get(f"leads/{ids[1]}").json()["updated_at"]
    response = api.get(
        "leads", params={"filter[updated_at][from]": updated, "filter[updated_at][to]": updated}
    )
    assert ids[1] in [lead["id"] for lead in response.json()["_embedded"]["leads"]]
    assert_empty_204(api.get("leads", params={"filter[updated_at][from]": updated + 1000}))
    response = api.get("leads", params={"order[id]": "desc"})
    assert [lead["id"] for lead in response.json()["_embedded"]["leads"]] == ids[::-1]


def test_query_does_not_match_tags(api, control, account):
    control.set_account(account["id"], search_index_delay=0)
    named = api.create_lead(name="Заявка lp-123")
    api.create_lead(name="Другая", _embedded={"tags": [{"name": "lp-123"}]})
    found = api.get("leads", params={"query": "lp-123"}).json()["_embedded"]["leads"]
    assert [lead["id"] for lead in found] == [named]
    assert_empty_204(api.get("leads", params={"query": "lp-999"}))


def test_with_contacts(api):
    result = api.post("leads/complex", [complex_item()]).json()[0]
    plain = api.get(f"leads/{result['id']}").json()
    assert "contacts" not in plain["_embedded"]
    embedded = api.get(f"leads/{result['id']}", params={"with": "contacts"}).json()["_embedded"]
    assert embedded["contacts"][0]["id"] == result["contact_id"]
    listed = api.get("leads", params={"with": "contacts"}).json()["_embedded"]["leads"][0]
    assert listed["_embedded"]["contacts"][0]["id"] == result["contact_id"]


def test_patch_status_to_won_sets_closed_at(api, main_pipeline):
    lead_id = api.create_lead(name="Deal")
    response = api.patch(
        f"leads/{lead_id}", {"status_id": 142, "pipeline_id": main_pipeline["id"], "price": 50000}
    )
    assert response.status_code == 200 and response.json()["id"] == lead_id
    lead = api.get(f"leads/{lead_id}").json()
    assert lead["status_id"] == 142 and lead["price"] == 50000 and isinstance(lead["closed_at"], int)
    api.patch(f"leads/{lead_id}", {"status_id": main_pipeline["statuses"][2]["id"]})
    assert api.get(f"leads/{lead_id}").json()["closed_at"] is None


def test_patch_batch(api, main_pipeline):
    ids = [api.create_lead(name="a"), api.create_lead(name="b")]
    response = api.patch(
        "leads",
        [
            {"id": ids[0], "status_id": 143, "pipeline_id": main_pipeline["id"]},
            {"id": ids[1], "name": "renamed", "request_id": "x"},
        ],
    )
    assert response.status_code == 200
    assert [item["request_id"] for item in response.json()["_embedded"]["leads"]] == ["0", "x"]
    assert api.get(f"leads/{ids[0]}").json()["closed_at"]
    assert api.get(f"leads/{ids[1]}").json()["name"] == "renamed"


def test_patch_validation_rolls_back_the_batch(api):
    lead_id = api.create_lead(name="keep")
    response = api.patch("leads", [{"id": lead_id, "name": "changed"}, {"id": 1, "name": "nope"}])
    body = assert_problem(response, 400)
    assert body["validation-errors"][0]["request_id"] == "1"
    assert api.get(f"leads/{lead_id}").json()["name"] == "keep"


@pytest.mark.parametrize(
    "item, path, code",
    [
        ({"price": "100"}, "price", "InvalidType"),
        ({"status_id": 1}, "status_id", "NotSupportedChoice"),
        ({"pipeline_id": 1}, "pipeline_id", "NotSupportedChoice"),
        (
            {"custom_fields_values": [{"field_code": "NOPE", "values": [{"value": "x"}]}]},
            "custom_fields_values.0.field_code",
            "NotSupportedChoice",
        ),
        (
            {"custom_fields_values": [{"field_id": 1, "values": [{"value": "x"}]}]},
            "custom_fields_values.0.field_id",
            "NotSupportedChoice",
        ),
    ],
)
def test_create_validation_errors(api, item, path, code):
    body = assert_problem(api.post("leads", [dict(item, request_id="abc")]), 400)
    assert body["title"] == "Bad Request" and body["detail"] == "Request validation failed"
    entry = body["validation-errors"][0]
    assert entry["request_id"] == "abc"
    assert entry["errors"][0]["path"] == path and entry["errors"][0]["code"] == code
    assert entry["errors"][0]["detail"]


def test_incoming_status_cannot_be_set_by_api(api, main_pipeline):
    incoming = main_pipeline["statuses"][0]["id"]
    assert_problem(api.post("leads", [{"status_id": incoming}]), 400)


# -- complex -------------------------------------------------------------------------------------------------


def test_complex_creates_lead_and_contact(api, control):
    response = api.post("leads/complex", [complex_item(request_id="7f3a")])
    assert response.status_code == 200
    result = response.json()
    assert isinstance(result, list)
    assert result[0]["request_id"] == ["7f3a"] and result[0]["merged"] is False
    assert result[0]["company_id"] is None and isinstance(result[0]["contact_id"], int)
    contact = api.get(f"contacts/{result[0]['contact_id']}").json()
    assert contact["first_name"] == "Анна"
    phone = next(f for f in contact["custom_fields_values"] if f["field_code"] == "PHONE")
    assert phone["values"][0]["value"] == "+79129876543" and phone["values"][0]["enum_code"] == "WORK"
    lead = next(lead for lead in control.state()["leads"] if lead["id"] == result[0]["id"])
    assert lead["_embedded"]["contacts"][0]["id"] == result[0]["contact_id"]


def test_complex_merges_with_duplicate_control(api):
    first = api.post("leads/complex", [complex_item()]).json()[0]
    by_phone = api.post("leads/complex", [complex_item(phone="8 (912) 987-65-43", email="x@y.z")]).json()[0]
    by_email = api.post(
        "leads/complex", [complex_item(phone="+70000000000", email="ANNA@example.com")]
    ).json()[0]
    assert by_phone["merged"] is True and by_phone["contact_id"] == first["contact_id"]
    assert by_email["merged"] is True and by_email["contact_id"] == first["contact_id"]
    # The contact's deal is still open in that pipeline, so the new leads were merged into it.
    assert first["id"] == by_phone["id"] == by_email["id"]


def test_complex_does_not_dedupe_within_one_call(api):
    results = api.post("leads/complex", [complex_item(), complex_item()]).json()
    assert [r["merged"] for r in results] == [False, False]
    assert results[0]["contact_id"] != results[1]["contact_id"]


def test_duplicate_control_is_per_account_and_switchable(control, base_url):
    account = control.create_account(name="No dedupe")
    api = Api(base_url, connect(control, base_url, account_id=account["id"])["access_token"])
    api.post("leads/complex", [complex_item()])
    assert api.post("leads/complex", [complex_item()]).json()[0]["merged"] is False
    control.set_duplicate_control(account["id"], True)
    assert api.post("leads/complex", [complex_item()]).json()[0]["merged"] is True


def test_complex_links_existing_contact_by_id(api):
    first = api.post("leads/complex", [complex_item()]).json()[0]
    again = api.post(
        "leads/complex", [{"name": "again", "_embedded": {"contacts": [{"id": first["contact_id"]}]}}]
    )
    assert again.json()[0]["contact_id"] == first["contact_id"]


@pytest.mark.parametrize("count", [0, 51])
def test_complex_batch_size(api, count):
    assert_problem(api.post("leads/complex", [complex_item() for _ in range(count)]), 400)


def test_complex_accepts_50(api):
    assert len(api.post("leads/complex", [complex_item() for _ in range(50)]).json()) == 50


def test_complex_validation_path_is_relative_to_the_item(api):
    bad = complex_item(request_id="r2")
    bad["custom_fields_values"] = UTM + [{"field_code": "NOPE", "values": [{"value": "x"}]}]
    body = assert_problem(api.post("leads/complex", [complex_item(), bad]), 400)
    entry = body["validation-errors"][0]
    assert entry["request_id"] == "r2"
    assert entry["errors"][0] == {
        "code": "NotSupportedChoice",
        "path": "custom_fields_values.2.field_code",
        "detail": entry["errors"][0]["detail"],
    }
    assert_empty_204(api.get("leads"))  # nothing was written


# -- contacts ------------------------------------------------------------------------------------------------


def test_contacts_create_get_and_search(api, control, account):
    control.set_account(account["id"], search_index_delay=0)
    response = api.post(
        "contacts",
        [
            {
                "name": "Иван",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "+7 912 000-11-22", "enum_code": "MOB"}]}
                ],
            }
        ],
    )
    assert response.status_code == 200
    contact_id = response.json()["_embedded"]["contacts"][0]["id"]
    assert api.get(f"contacts/{contact_id}").json()["name"] == "Иван"
    for query in ("Иван", "89120001122", "+79120001122"):
        found = api.get("contacts", params={"query": query}).json()["_embedded"]["contacts"]
        assert [c["id"] for c in found] == [contact_id], query
    assert_empty_204(api.get("contacts", params={"query": "nobody"}))
    assert_empty_204(api.get("contacts/424242"))


def test_accounts_are_isolated(api, control, base_url):
    lead_id = api.create_lead(name="mine")
    other = control.create_account(name="Other")
    other_api = Api(base_url, connect(control, base_url, account_id=other["id"])["access_token"])
    assert other_api.get("account").json()["id"] == other["id"]
    assert_empty_204(other_api.get(f"leads/{lead_id}"))
    assert_empty_204(other_api.get("leads"))
