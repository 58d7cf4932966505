"""Webhooks as amoCRM sends them: contacts/companies events, tasks, unsorted; bodies like the examples."""


def subscribe(api, receiver, settings):
    response = api.post("webhooks", {"destination": receiver.url + "/hook", "settings": settings})
    assert response.status_code == 200, response.text


def test_contact_events_arrive_under_contacts_with_type(api, receiver):
    """amoCRM webhooks-format: contacts and companies both arrive under ``contacts[…]`` with
    ``[type]=contact|company`` (2016 capture, docs/amocrm.md §4)."""
    subscribe(api, receiver, ["add_contact", "update_contact", "add_company"])
    contact_id = api.post("contacts", [{"name": "Пётр"}]).json()["_embedded"]["contacts"][0]["id"]
    api.post("companies", [{"name": "ООО Вектор"}])
    api.patch(f"contacts/{contact_id}", {"name": "Пётр И."})
    forms = [request["form"] for request in receiver.wait_for(3)]
    added = next(
        form
        for form in forms
        if "contacts[add][0][id]" in form and form["contacts[add][0][type]"] == "contact"
    )
    assert added["contacts[add][0][id]"] == str(contact_id) and added["contacts[add][0][name]"] == "Пётр"
    company = next(form for form in forms if form.get("contacts[add][0][type]") == "company")
    assert company["contacts[add][0][name]"] == "ООО Вектор"
    updated = next(form for form in forms if "contacts[update][0][id]" in form)
    assert (
        updated["contacts[update][0][name]"] == "Пётр И."
        and updated["contacts[update][0][type]"] == "contact"
    )
    assert all(value == str(value) for form in forms for value in form.values())


def test_lead_tracking_fields_carry_no_code_key(api, receiver):
    """amoCRM's documented lead webhook example has ``custom_fields[N][id|name|values]`` and no ``[code]``."""
    subscribe(api, receiver, ["add_lead"])
    api.create_lead(custom_fields_values=[{"field_code": "UTM_SOURCE", "values": [{"value": "google"}]}])
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[add][0][custom_fields][0][name]"] == "utm_source"
    assert form["leads[add][0][custom_fields][0][values][0][value]"] == "google"
    assert not any(key.endswith("[code]") for key in form)


def test_documented_event_codes_can_be_subscribed(api):
    """amoCRM webhooks-format event codes: tasks, companies, unsorted, notes are subscribable."""
    settings = ["add_task", "update_task", "add_company", "delete_company", "add_unsorted", "note_lead"]
    response = api.post("webhooks", {"destination": "http://example.com/h", "settings": settings})
    assert response.status_code == 200 and response.json()["settings"] == settings
    bad = api.post("webhooks", {"destination": "http://example.com/h", "settings": ["add_everything"]})
    assert bad.status_code == 400


def test_unsubscribed_events_are_not_sent(api, receiver):
    """Only the actions in ``settings`` are delivered."""
    subscribe(api, receiver, ["add_lead"])
    api.post("contacts", [{"name": "Нет"}])
    lead_id = api.create_lead(name="Да")
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[add][0][id]"] == str(lead_id)
    assert not any(key.startswith("contacts[") for key in form)


def test_task_and_note_events_reach_their_subscribers(api, receiver, account):
    """Subscribers to ``add_task`` get ``task[add][0][…]`` (third-party parsers, docs/amocrm.md §4 — UNVERIFIED
    officially); to ``note_lead`` ``leads[note][0][note][…]`` with numeric note_type 4 for a text note."""
    subscribe(api, receiver, ["add_task", "note_lead"])
    lead_id = api.create_lead()
    task = {
        "text": "Перезвонить",
        "complete_till": 2_000_000_000,
        "responsible_user_id": account["users"][0]["id"],
        "entity_id": lead_id,
        "entity_type": "leads",
    }
    task_id = api.post("tasks", [task]).json()["_embedded"]["tasks"][0]["id"]
    api.post(f"leads/{lead_id}/notes", [{"note_type": "common", "params": {"text": "Заметка"}}])
    forms = [request["form"] for request in receiver.wait_for(2)]
    task_form = next(form for form in forms if "task[add][0][id]" in form)
    assert task_form["task[add][0][id]"] == str(task_id) and task_form["task[add][0][element_type]"] == "2"
    assert task_form["task[add][0][element_id]"] == str(lead_id)
    note_form = next(form for form in forms if "leads[note][0][note][id]" in form)
    assert note_form["leads[note][0][note][note_type]"] == "4"
    assert note_form["leads[note][0][note][text]"] == "Заметка"
    assert note_form["leads[note][0][note][element_id]"] == str(lead_id)
