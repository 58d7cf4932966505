"""Custom-field mapping: the account's deal and contact fields read from amoCRM (paged), extra form fields sent to
the fields they are mapped to when their values fit the field's type, and everything else in a note on the deal —
the lead always goes. Against the sandbox over HTTP, on PostgreSQL and Redis."""
import re

import pytest
import requests
from fixtures.support import log_in, post_form
from fixtures.sync import add_leads
from sqlalchemy import select
from test_sync_push import run_push

from portal.amocrm.api.field_values import FieldValueError, values_for
from portal.amocrm.custom_fields import refresh_custom_fields, save_mapping
from portal.extensions import db
from portal.models import AmoCRMConnection, Lead

FIELD = {"id": 1, "name": "F", "enums": [{"id": 11, "value": "Монтаж"}, {"id": 12, "value": "Сроки"},
                                         {"id": 13, "value": "Цена"}]}


@pytest.mark.parametrize(("kind", "raw", "values"), [
    ("text", " Казань ", [{"value": "Казань"}]),
    ("numeric", "150 000", [{"value": 150000}]),
    ("numeric", "12,5", [{"value": 12.5}]),
    ("monetary", "99", [{"value": 99}]),
    ("checkbox", "Да", [{"value": True}]),
    ("checkbox", "off", [{"value": False}]),
    ("url", "https://example.com/x", [{"value": "https://example.com/x"}]),
    ("date", "2026-03-08", [{"value": 1772928000}]),
    ("date", "08.03.2026", [{"value": 1772928000}]),
    ("select", "монтаж", [{"enum_id": 11}]),
    ("radiobutton", "Цена", [{"enum_id": 13}]),
    ("multiselect", ["Сроки", "Цена"], [{"enum_id": 12}, {"enum_id": 13}]),
    ("multiselect", "Сроки, Цена", [{"enum_id": 12}, {"enum_id": 13}]),
    ("multitext", "+79990001122", [{"value": "+79990001122", "enum_code": "WORK"}]),
])
def test_a_value_takes_the_documented_shape_of_its_field_type(kind, raw, values):
    assert values_for(dict(FIELD, type=kind), raw) == values


@pytest.mark.parametrize(("kind", "raw"), [
    ("numeric", "a lot"), ("checkbox", "maybe"), ("url", "example.com"), ("date", "next week"),
    ("select", "Покраска"), ("multiselect", ["Сроки", "Скидки"]), ("text", "x" * 256), ("text", ["a", "b"]),
    ("smart_address", "Moscow"),
])
def test_a_value_that_does_not_fit_its_field_is_refused_with_the_reason(kind, raw):
    with pytest.raises(FieldValueError):
        values_for(dict(FIELD, type=kind), raw)


def api(sandbox, connected, method, path, **kwargs):
    """amoCRM's API as the connected workspace sees it (the connection's base is the sandbox's)."""
    response = requests.request(method, f"{sandbox.base_url}/api/v4/{path}", timeout=5,
                                headers={"Authorization": f"Bearer {connected.tokens['access_token']}"}, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def lead_field(app, connected, name):
    with app.app_context():
        connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == connected.id))
        entity = "contacts" if name == "Должность" else "leads"
        return next(f for f in connection.custom_fields[entity] if f["name"] == name)


@pytest.fixture
def fields_read(app, sandbox, connected):
    with app.app_context():
        api(sandbox, connected, "POST", "leads/custom_fields",
            json=[{"type": "text", "name": f"Extra {n}"} for n in range(40)])
        read = refresh_custom_fields(connected.id)
    return read


@pytest.mark.integration
def test_refresh_reads_every_page_of_deal_and_contact_fields(app, sandbox, connected, fields_read):
    account = next(a for a in sandbox.state()["accounts"] if a["id"] == connected.account["id"])
    assert len(account["lead_fields"]) > 50  # more than one page
    assert {f["id"] for f in fields_read["leads"]} == {f["id"] for f in account["lead_fields"]}
    assert {f["name"] for f in fields_read["contacts"]} >= {"Телефон", "Email", "Должность"}
    select_field = next(f for f in fields_read["leads"] if f["name"] == "Вид услуги")
    assert [e["value"] for e in select_field["enums"]] == ["Консультация", "Монтаж", "Обслуживание"]


def map_fields(app, connected, names: dict[str, str]) -> None:
    with app.app_context():
        chosen = {}
        for form_name, field_name in names.items():
            field = lead_field(app, connected, field_name)
            entity = "contacts" if field_name == "Должность" else "leads"
            chosen[form_name] = f"{entity}:{field['id']}"
        save_mapping(connected.id, chosen)


def pushed(app, connected):
    return run_push(app, connected)


@pytest.mark.integration
def test_mapped_values_go_to_their_fields_and_the_rest_into_one_note(app, sandbox, connected, fields_read):
    map_fields(app, connected, {"budget": "Бюджет клиента", "service": "Вид услуги", "position": "Должность",
                                "visit_date": "Дата замера"})
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={
        "budget": "150 000", "service": "монтаж", "position": "CTO", "visit_date": "not a date",
        "comment": "Call after 6 pm"})
    assert pushed(app, connected).pushed == 1
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        deal_id, note_id, contact_id = lead.amocrm_lead_id, lead.extra_note_id, lead.amocrm_contact_id
    deal = api(sandbox, connected, "GET", f"leads/{deal_id}")
    by_name = {f["field_name"]: f["values"] for f in deal["custom_fields_values"]}
    assert by_name["Бюджет клиента"][0]["value"] in ("150000", 150000)
    assert by_name["Вид услуги"][0]["value"] == "Монтаж"
    assert "Дата замера" not in by_name
    contact = api(sandbox, connected, "GET", f"contacts/{contact_id}")
    assert {f["field_name"]: f["values"][0]["value"] for f in contact["custom_fields_values"]}["Должность"] == "CTO"
    notes = api(sandbox, connected, "GET", f"leads/{deal_id}/notes")["_embedded"]["notes"]
    assert [note["id"] for note in notes] == [note_id]
    text = notes[0]["params"]["text"]
    assert "comment: Call after 6 pm" in text
    assert re.search(r"visit_date: not a date \(not sent to field “Дата замера”: not a date\)", text)
    assert "budget" not in text and "service" not in text


@pytest.mark.integration
def test_a_mapped_field_deleted_in_amocrm_is_unmapped_and_the_lead_still_goes(app, sandbox, connected, fields_read):
    map_fields(app, connected, {"city": "Город"})
    with app.app_context():
        api(sandbox, connected, "DELETE", f"leads/custom_fields/{lead_field(app, connected, 'Город')['id']}")
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"city": "Казань"})
    pushed(app, connected)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.sync_status == "synced" and lead.extra_note_id
        connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == connected.id))
        assert not connection.field_mapping and "note" in connection.last_error
        deal_id = lead.amocrm_lead_id
    [note] = api(sandbox, connected, "GET", f"leads/{deal_id}/notes")["_embedded"]["notes"]
    assert "city: Казань" in note["params"]["text"]


@pytest.mark.integration
def test_the_owner_maps_fields_in_settings_and_a_member_cannot(app, sandbox, connected, fields_read, make_user):
    add_leads(app, connected.id, 1, extra_fields={"budget": "1", "comment": "x"})
    make_user("boss@example.com", workspace_id=connected.id)
    make_user("member@example.com", role="member", workspace_id=connected.id)
    owner, member = app.test_client(), app.test_client()
    log_in(owner, "boss@example.com")
    log_in(member, "member@example.com")
    page = owner.get("/settings/amocrm").get_data(as_text=True)
    section = page[page.index('id="amocrm-fields"'):]
    assert 'value="budget"' in section and 'value="comment"' in section and "Бюджет клиента (numeric)" in section
    rows = dict(re.findall(r'name="name-(\d+)" value="([^"]+)"', section))
    number = {name: n for n, name in rows.items()}
    budget = lead_field(app, connected, "Бюджет клиента")["id"]
    form = {f"name-{number['budget']}": "budget", f"field-{number['budget']}": f"leads:{budget}",
            f"name-{number['comment']}": "comment", f"field-{number['comment']}": ""}
    assert post_form(member, "/settings/amocrm/fields/mapping", form, page="/settings/amocrm").status_code == 403
    assert post_form(owner, "/settings/amocrm/fields/mapping", form, page="/settings/amocrm").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(AmoCRMConnection.field_mapping).where(
            AmoCRMConnection.workspace_id == connected.id)) == {"budget": {"entity": "leads", "field_id": budget}}
    bogus = dict(form, **{f"field-{number['comment']}": "leads:999999999"})
    post_form(owner, "/settings/amocrm/fields/mapping", bogus, page="/settings/amocrm")
    with app.app_context():
        assert db.session.scalar(select(AmoCRMConnection.field_mapping).where(
            AmoCRMConnection.workspace_id == connected.id)) == {"budget": {"entity": "leads", "field_id": budget}}
    assert post_form(owner, "/settings/amocrm/fields/refresh", {}, page="/settings/amocrm").status_code == 302


@pytest.mark.integration
def test_an_unsorted_item_carries_the_mapped_fields_and_its_lead_the_note(app, sandbox, connected, fields_read):
    from portal.amocrm.unsorted import choose_delivery_mode

    map_fields(app, connected, {"budget": "Бюджет клиента", "position": "Должность"})
    with app.app_context():
        choose_delivery_mode(connected.id, "unsorted")
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"budget": "5000", "position": "CEO", "size": "L"})
    assert pushed(app, connected).pushed == 1
    [item] = sandbox.unsorted()
    [deal] = item["_embedded"]["leads"]
    assert {f["field_name"]: f["values"][0]["value"] for f in deal["custom_fields_values"]}["Бюджет клиента"] in (
        "5000", 5000)
    [contact] = item["_embedded"]["contacts"]
    assert {f["field_name"]: f["values"][0]["value"] for f in contact["custom_fields_values"]}["Должность"] == "CEO"
    [note] = api(sandbox, connected, "GET", f"leads/{deal['id']}/notes")["_embedded"]["notes"]
    assert note["params"]["text"] == f"Leadpath form fields:\nsize: L\nLeadpath lead #{lead_id}"
    with app.app_context():
        assert db.session.get(Lead, lead_id).unsorted_state == "waiting"


@pytest.mark.integration
def test_the_lead_page_lists_the_other_form_fields(app, connected, make_user):
    make_user("boss@example.com", workspace_id=connected.id)
    [lead_id] = add_leads(app, connected.id, 1, extra_fields={"company": "<b>Romashka</b>", "services": ["seo", "ads"]})
    client = app.test_client()
    log_in(client, "boss@example.com")
    page = client.get(f"/leads/{lead_id}").get_data(as_text=True)
    section = page[page.index('id="lead-extra-fields"'):]
    assert "<dt>company</dt>" in section and "&lt;b&gt;Romashka&lt;/b&gt;" in section
    assert "seo, ads" in section


def connect_again(app, connected):
    """The work after connecting (pipelines, fields, webhook, queued jobs), with the stored connection."""
    from portal.amocrm.connection import after_connect, client_for
    from portal.models import Workspace

    with app.app_context():
        connection = db.session.scalar(select(AmoCRMConnection).where(AmoCRMConnection.workspace_id == connected.id))
        after_connect(db.session.get(Workspace, connected.id), connection, client_for(connected.id))
        db.session.commit()
        return connection.custom_fields, connection.lead_field_codes, connection.last_error


@pytest.mark.integration
def test_connect_reads_the_deal_and_contact_fields_for_the_mapping(app, sandbox, connected):
    fields, _codes, _error = connect_again(app, connected)
    assert fields and fields["read_at"]
    assert "Должность" in {field["name"] for field in fields["contacts"]}
    assert {"UTM_SOURCE"} <= {field["code"] for field in fields["leads"]}


@pytest.mark.integration
def test_a_failed_field_read_at_connect_leaves_the_connect_usable(app, sandbox, connected):
    sandbox.faults(http_500_rate=1.0, paths=["/api/v4/contacts/custom_fields"])
    fields, codes, error = connect_again(app, connected)
    assert fields is None  # nothing read: Refresh (or the next connect) reads them
    assert codes and "field" not in (error or "")  # the deal fields were read; nothing said about the rest
