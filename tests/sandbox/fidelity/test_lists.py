"""Lead and contact lists: filters (applied or ignored per account), order, limits, embedded data."""

import pytest


def ids(response):
    if response.status_code == 204:
        return []
    body = response.json()["_embedded"]
    return [item["id"] for item in body[next(iter(body))]]


@pytest.fixture
def won_and_open(api, main_pipeline):
    won = api.create_lead(name="won", price=500)
    api.patch(f"leads/{won}", {"status_id": 142, "pipeline_id": main_pipeline["id"]})
    open_ = api.create_lead(name="open", price=100)
    return won, open_


def test_account_without_filtering_ignores_every_filter(api, control, account, won_and_open, main_pipeline):
    """amoCRM filters-api: API filtering is enabled per account; where it is not, a filter is silently ignored
    and the whole list comes back (PHP SDK #71, #348, #339)."""
    control.set_account(account["id"], list_filters="ignored")
    everything = sorted(won_and_open)
    for params in (
        {"filter[statuses][0][pipeline_id]": main_pipeline["id"], "filter[statuses][0][status_id]": 142},
        {"filter[id]": won_and_open[0]},
        {"filter[price][from]": 300},
        {"filter[name]": "won"},
    ):
        assert sorted(ids(api.get("leads", params=params))) == everything, params
    assert (
        api.get("account", params={"with": "is_api_filter_enabled"}).json()["is_api_filter_enabled"] is False
    )


def test_account_with_filtering_applies_documented_lead_filters(
    api, filtering, won_and_open, main_pipeline, account
):
    """amoCRM filters-api / PHP LeadsFilter: statuses (pipeline_id + status_id per item), id, name, price
    (value or from/to), responsible_user_id, created_at/updated_at/closed_at ranges."""
    won, open_ = won_and_open
    statuses = {
        "filter[statuses][0][pipeline_id]": main_pipeline["id"],
        "filter[statuses][0][status_id]": 142,
    }
    assert ids(api.get("leads", params=statuses)) == [won]
    assert ids(api.get("leads", params={"filter[id][]": [open_]})) == [open_]
    assert ids(api.get("leads", params={"filter[name][0]": "won", "filter[name][1]": "nothing"})) == [won]
    assert ids(api.get("leads", params={"filter[price][from]": 300})) == [won]
    assert ids(api.get("leads", params={"filter[price]": 100})) == [open_]
    assert ids(api.get("leads", params={"filter[closed_at][from]": 1})) == [won]
    admin = account["users"][0]["id"]
    assert sorted(ids(api.get("leads", params={"filter[responsible_user_id]": admin}))) == sorted(
        won_and_open
    )
    assert ids(api.get("leads", params={"filter[responsible_user_id]": account["users"][1]["id"]})) == []
    assert (
        api.get("account", params={"with": "is_api_filter_enabled"}).json()["is_api_filter_enabled"] is True
    )


def test_statuses_filter_needs_both_keys(api, filtering, main_pipeline):
    """Each ``filter[statuses][N]`` item takes a pipeline_id and a status_id (amoCRM filters-api)."""
    response = api.get("leads", params={"filter[statuses][0][status_id]": 142})
    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "filter.statuses.0.pipeline_id"


def test_custom_field_filter(api, filtering, account):
    """amoCRM filters-api: ``filter[custom_fields_values][FIELD_ID][]=value``."""
    field = next(f for f in account["lead_fields"] if f["code"] == "UTM_SOURCE")
    google = api.create_lead(
        custom_fields_values=[{"field_id": field["id"], "values": [{"value": "google"}]}]
    )
    api.create_lead(custom_fields_values=[{"field_id": field["id"], "values": [{"value": "yandex"}]}])
    params = {f"filter[custom_fields_values][{field['id']}][]": "google"}
    assert ids(api.get("leads", params=params)) == [google]


def test_order_created_at_desc_and_limit(api):
    """amoCRM leads-api: ``order[created_at|updated_at|id]=asc|desc``; ``limit`` up to 250 (more is 422)."""
    created = [api.create_lead(name=f"n{n}") for n in range(3)]
    assert ids(api.get("leads", params={"order[created_at]": "desc"})) == created[::-1]
    assert ids(api.get("leads", params={"order[created_at]": "desc", "limit": 2})) == created[::-1][:2]
    assert api.get("leads", params={"limit": 251}).status_code == 422


def test_contacts_order_only_by_updated_at_or_id(api):
    """amoCRM contacts-api: contacts sort only by ``updated_at`` or ``id``; ``created_at`` is not a sort key."""
    made = [
        api.post("contacts", [{"name": f"c{n}"}]).json()["_embedded"]["contacts"][0]["id"] for n in range(3)
    ]
    assert ids(api.get("contacts", params={"order[id]": "desc"})) == made[::-1]
    assert ids(api.get("contacts", params={"order[created_at]": "desc"})) == made


def test_listed_leads_carry_tags_fields_and_contacts_with_with(api):
    """amoCRM leads-api: each lead has ``_embedded.tags`` and ``custom_fields_values``; contacts only with
    ``with=contacts``."""
    result = api.post(
        "leads/complex",
        [
            {
                "name": "x",
                "_embedded": {"tags": [{"name": "t1"}], "contacts": [{"first_name": "A"}]},
                "custom_fields_values": [{"field_code": "UTM_SOURCE", "values": [{"value": "vk"}]}],
            }
        ],
    ).json()[0]
    plain = api.get("leads").json()["_embedded"]["leads"][0]
    assert plain["_embedded"]["tags"][0]["name"] == "t1" and "contacts" not in plain["_embedded"]
    assert plain["custom_fields_values"][0]["values"][0]["value"] == "vk"
    rich = api.get("leads", params={"with": "contacts"}).json()["_embedded"]["leads"][0]
    assert rich["_embedded"]["contacts"][0]["id"] == result["contact_id"]
