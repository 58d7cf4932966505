"""The rest of the API a real integration touches: tags on PATCH, PATCH contacts, notes, tasks, events, users,
links, Unsorted."""

import time

from sandbox_support import Api, connect


def test_patch_adds_and_deletes_tags(api):
    """Kommo leads-api: ``tags_to_add`` / ``tags_to_delete`` change a lead's tags without replacing them."""
    lead_id = api.create_lead(_embedded={"tags": [{"name": "keep"}, {"name": "drop"}]})
    response = api.patch(
        f"leads/{lead_id}", {"tags_to_add": [{"name": "new"}], "tags_to_delete": [{"name": "drop"}]}
    )
    assert response.status_code == 200
    names = sorted(tag["name"] for tag in api.get(f"leads/{lead_id}").json()["_embedded"]["tags"])
    assert names == ["keep", "new"]


def test_patch_contacts_single_and_batch(api):
    """amoCRM contacts-api: PATCH /contacts takes an array; PATCH /contacts/{id} an object — an array there is
    405 (PHP SDK #329)."""
    contact_id = api.post("contacts", [{"first_name": "Иван"}]).json()["_embedded"]["contacts"][0]["id"]
    assert api.patch(f"contacts/{contact_id}", {"last_name": "Петров"}).status_code == 200
    assert api.get(f"contacts/{contact_id}").json()["name"] == "Иван Петров"
    assert api.patch("contacts", [{"id": contact_id, "name": "И. Петров"}]).status_code == 200
    assert api.get(f"contacts/{contact_id}").json()["name"] == "И. Петров"
    assert api.patch(f"contacts/{contact_id}", [{"name": "x"}]).status_code == 405


def test_notes_on_a_lead(api):
    """PHP NoteModel / EntityNotes: ``POST /api/v4/leads/notes`` with entity_id, or ``/leads/{id}/notes``;
    answer ``_embedded.notes[{id, entity_id, request_id}]``; a common note needs params.text."""
    lead_id = api.create_lead()
    response = api.post(
        "leads/notes", [{"entity_id": lead_id, "note_type": "common", "params": {"text": "Звонок"}}]
    )
    assert response.status_code == 200
    note = response.json()["_embedded"]["notes"][0]
    assert note["entity_id"] == lead_id and note["request_id"] == "0"
    assert (
        api.post(f"leads/{lead_id}/notes", [{"note_type": "common", "params": {"text": "2"}}]).status_code
        == 200
    )
    listed = api.get(f"leads/{lead_id}/notes").json()["_embedded"]["notes"]
    assert [n["params"]["text"] for n in listed] == ["Звонок", "2"]
    assert (
        api.post("leads/notes", [{"entity_id": lead_id, "note_type": "common", "params": {}}]).status_code
        == 400
    )


def test_tasks_need_deadline_and_responsible_and_filter(api, account):
    """amoCRM tasks-api: responsible and deadline are required; list filters by entity and completion."""
    lead_id = api.create_lead()
    admin = account["users"][0]["id"]
    assert (
        api.post("tasks", [{"text": "Позвонить", "entity_id": lead_id, "entity_type": "leads"}]).status_code
        == 400
    )
    body = [
        {
            "text": "Позвонить",
            "complete_till": int(time.time()) + 3600,
            "responsible_user_id": admin,
            "entity_id": lead_id,
            "entity_type": "leads",
            "task_type_id": 1,
        }
    ]
    task_id = api.post("tasks", body).json()["_embedded"]["tasks"][0]["id"]
    found = api.get("tasks", params={"filter[entity_type]": "leads", "filter[entity_id][]": lead_id}).json()
    assert [t["id"] for t in found["_embedded"]["tasks"]] == [task_id]
    assert api.get("tasks", params={"filter[entity_id][]": lead_id}).status_code == 400
    api.patch(f"tasks/{task_id}", {"is_completed": True, "result": {"text": "Готово"}})
    assert api.get("tasks", params={"filter[is_completed]": 0}).status_code == 204


def test_events_record_status_changes_and_filter(api, main_pipeline):
    """amoCRM events API: lead_status_changed with leads_statuses values; filter by entity, entity_id, type and
    ``value_after[leads_statuses]``; ids are strings; limit ≤ 100."""
    lead_id = api.create_lead()
    api.patch(f"leads/{lead_id}", {"status_id": 142, "pipeline_id": main_pipeline["id"]})
    params = {
        "filter[entity]": "lead",
        "filter[entity_id][]": lead_id,
        "filter[type][]": "lead_status_changed",
    }
    events = api.get("events", params=params).json()["_embedded"]["events"]
    assert len(events) == 1 and isinstance(events[0]["id"], str)
    assert events[0]["value_after"][0]["lead_status"] == {"id": 142, "pipeline_id": main_pipeline["id"]}
    won = {
        "filter[value_after][leads_statuses][0][pipeline_id]": main_pipeline["id"],
        "filter[value_after][leads_statuses][0][status_id]": 142,
    }
    assert [e["entity_id"] for e in api.get("events", params=won).json()["_embedded"]["events"]] == [lead_id]
    assert api.get("events", params={"limit": 101}).status_code == 400
    assert api.get("events", params={"filter[entity_id][]": lead_id}).status_code == 400


def test_users(api, account):
    """``GET /api/v4/users`` lists the account's users with their rights."""
    users = api.get("users").json()["_embedded"]["users"]
    assert [u["id"] for u in users] == [u["id"] for u in account["users"]]
    assert users[0]["rights"]["is_admin"] is True


def test_links_between_lead_and_contact(api):
    """amoCRM entity-links API: ``POST /leads/{id}/link`` to contacts; ``GET /leads/{id}/links``; unlink."""
    lead_id = api.create_lead()
    contact_id = api.post("contacts", [{"name": "К"}]).json()["_embedded"]["contacts"][0]["id"]
    body = [{"to_entity_id": contact_id, "to_entity_type": "contacts", "metadata": {"is_main": True}}]
    assert api.post(f"leads/{lead_id}/link", body).status_code == 200
    links = api.get(f"leads/{lead_id}/links").json()["_embedded"]["links"]
    assert [(x["to_entity_type"], x["to_entity_id"]) for x in links] == [("contacts", contact_id)]
    back = api.get(f"contacts/{contact_id}/links").json()["_embedded"]["links"]
    assert ("leads", lead_id) in [(x["to_entity_type"], x["to_entity_id"]) for x in back]
    assert api.post(f"leads/{lead_id}/unlink", body).status_code == 204
    assert api.get(f"leads/{lead_id}/links").status_code == 204


def form(source_uid="form-1", **extra):
    return {
        "source_name": "Сайт",
        "source_uid": source_uid,
        "metadata": {
            "form_id": "f1",
            "form_name": "Заявка",
            "form_page": "https://example.com",
            "ip": "1.2.3.4",
            "form_sent_at": int(time.time()),
        },
        "_embedded": {"leads": [{"name": "Из формы"}], "contacts": [{"first_name": "Неразобранный"}]},
        **extra,
    }


def test_unsorted_forms_create_list_accept(api, main_pipeline, control, account, receiver):
    """amoCRM unsorted-api: forms create a lead in the incoming status with hidden contacts; accept moves the
    lead on and shows the contacts; ``add_unsorted`` / ``delete_unsorted`` webhooks (docs/amocrm.md §3)."""
    control.set_account(account["id"], search_index_delay=0)
    api.post(
        "webhooks", {"destination": receiver.url + "/h", "settings": ["add_unsorted", "delete_unsorted"]}
    )
    response = api.post("leads/unsorted/forms", [form()])
    assert response.status_code == 200, response.text
    created = response.json()["_embedded"]["unsorted"][0]
    lead_id = created["_embedded"]["leads"][0]["id"]
    incoming = main_pipeline["statuses"][0]["id"]
    assert api.get(f"leads/{lead_id}").json()["status_id"] == incoming
    assert api.get("contacts", params={"query": "Неразобранный"}).status_code == 204
    assert [i["uid"] for i in api.get("leads/unsorted").json()["_embedded"]["unsorted"]] == [created["uid"]]
    accepted = api.post(f"leads/unsorted/{created['uid']}/accept", {})
    assert accepted.status_code == 200 and accepted.json()["_embedded"]["leads"][0]["id"] == lead_id
    assert api.get(f"leads/{lead_id}").json()["status_id"] == main_pipeline["statuses"][1]["id"]
    assert api.get("contacts", params={"query": "Неразобранный"}).status_code == 200
    assert api.get("leads/unsorted").status_code == 204
    forms = [r["form"] for r in receiver.wait_for(2)]
    assert any(f.get("unsorted[add][0][uid]") == created["uid"] for f in forms)
    gone = next(f for f in forms if "unsorted[delete][0][uid]" in f)
    assert gone["unsorted[delete][0][action]"] == "accept"
    assert gone["unsorted[delete][0][accept_result][leads][0]"] == str(lead_id)


def test_unsorted_decline_deletes_the_lead_and_rules(api):
    """Decline removes the lead; metadata is top-level and required (a misplaced one is FieldMissing); the same
    data twice is refused."""
    uid = api.post("leads/unsorted/forms", [form("f-2")]).json()["_embedded"]["unsorted"][0]
    assert api.post("leads/unsorted/forms", [form("f-2")]).status_code == 400
    declined = api.delete(f"leads/unsorted/{uid['uid']}/decline", {})
    assert declined.status_code == 200
    assert api.get(f"leads/{uid['_embedded']['leads'][0]['id']}").status_code == 204
    misplaced = form("f-3")
    misplaced["_embedded"]["metadata"] = misplaced.pop("metadata")
    response = api.post("leads/unsorted/forms", [misplaced])
    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["code"] == "FieldMissing"


def test_other_account_cannot_touch_unsorted(api, control, base_url):
    """Accounts are isolated."""
    other = control.create_account()
    other_api = Api(base_url, connect(control, base_url, account_id=other["id"])["access_token"])
    uid = api.post("leads/unsorted/forms", [form("iso")]).json()["_embedded"]["unsorted"][0]["uid"]
    assert other_api.post(f"leads/unsorted/{uid}/accept", {}).status_code == 404


def test_tags_list_and_create(api):
    """Kommo tags API: ``POST /api/v4/leads/tags`` creates tags (an existing name answers the existing tag);
    ``GET`` lists them with ``filter[name]`` and ``query``."""
    created = api.post("leads/tags", [{"name": "vip", "request_id": "a"}, {"name": "опт"}]).json()[
        "_embedded"
    ]["tags"]
    assert [t["request_id"] for t in created] == ["a", "1"]
    again = api.post("leads/tags", [{"name": "VIP"}]).json()["_embedded"]["tags"][0]
    assert again["id"] == created[0]["id"]
    lead_id = api.create_lead(_embedded={"tags": [{"id": created[1]["id"]}]})
    assert api.get(f"leads/{lead_id}").json()["_embedded"]["tags"][0]["name"] == "опт"
    assert [
        t["name"] for t in api.get("leads/tags", params={"filter[name]": "vip"}).json()["_embedded"]["tags"]
    ] == ["vip"]
    assert api.get("leads/tags", params={"query": "nothing"}).status_code == 204
