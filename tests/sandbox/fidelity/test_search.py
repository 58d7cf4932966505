"""``query=`` on lead and contact lists."""

from fidelity_support import wait_until


def ids(response):
    return (
        [item["id"] for item in response.json()["_embedded"][next(iter(response.json()["_embedded"]))]]
        if response.status_code == 200
        else []
    )


def test_query_matches_a_leads_name_and_field_values(api, instant_search):
    """amoCRM leads-api: ``query`` "searches the filled fields of the entity" — the name and field values."""
    by_name = api.create_lead(name="Заказ кухни Северный")
    by_field = api.create_lead(
        name="Другое",
        custom_fields_values=[{"field_code": "UTM_CAMPAIGN", "values": [{"value": "северный-осень"}]}],
    )
    assert ids(api.get("leads", params={"query": "Северный"})) == [by_name, by_field]


def test_query_does_not_match_tags(api, instant_search):
    """amoCRM documents ``query`` over filled fields; nothing documents tags as searched (docs/amocrm.md §1)."""
    api.create_lead(name="Без метки в имени", _embedded={"tags": [{"name": "lpb-7f3a"}]})
    response = api.get("leads", params={"query": "lpb-7f3a"})
    assert response.status_code == 204 and response.content == b""


def test_contact_query_matches_phone_and_email(api, instant_search):
    """amoCRM contacts-api: ``query`` searches the contact's filled fields — phones and e-mails are fields."""
    response = api.post(
        "contacts",
        [
            {
                "first_name": "Ольга",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "+79161234567", "enum_code": "MOB"}]},
                    {"field_code": "EMAIL", "values": [{"value": "olga@example.com", "enum_code": "WORK"}]},
                ],
            }
        ],
    )
    contact_id = response.json()["_embedded"]["contacts"][0]["id"]
    for query in ("Ольга", "79161234567", "olga@example.com"):
        assert ids(api.get("contacts", params={"query": query})) == [contact_id], query


def test_new_lead_is_not_searchable_until_indexed(api, control, account):
    """Search is an index: a deal created a moment ago need not be found (docs/amocrm.md §1: not documented as
    instant). The sandbox's delay is per account; the list itself (no query) sees the deal at once."""
    control.set_account(account["id"], search_index_delay=1.0)
    lead_id = api.create_lead(name="Индекс-проверка")
    assert api.get("leads", params={"query": "Индекс-проверка"}).status_code == 204
    assert lead_id in ids(api.get("leads"))
    assert wait_until(lambda: ids(api.get("leads", params={"query": "Индекс-проверка"})), timeout=4) == [
        lead_id
    ]


def test_changed_lead_is_found_by_its_old_name_until_reindexed(api, control, account, main_pipeline):
    """A change reaches the index after the delay too: until then search sees the previous version."""
    control.set_account(account["id"], search_index_delay=0)
    lead_id = api.create_lead(name="Старое-имя")
    control.set_account(account["id"], search_index_delay=1.0)
    assert api.patch(f"leads/{lead_id}", {"name": "Новое-имя"}).status_code == 200
    assert ids(api.get("leads", params={"query": "Старое-имя"})) == [lead_id]
    assert api.get("leads", params={"query": "Новое-имя"}).status_code == 204
    assert wait_until(lambda: ids(api.get("leads", params={"query": "Новое-имя"})), timeout=4) == [lead_id]


def test_default_index_delay_is_a_few_seconds(control):
    """The default delay is conservative (a few seconds) and settable to 0 per account."""
    account = control.create_account()
    assert 1 <= account["settings"]["search_index_delay"] <= 10
    assert control.set_account(account["id"], search_index_delay=0)["settings"]["search_index_delay"] == 0
