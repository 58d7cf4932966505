"""Returning customers: contacts amoCRM already has (a manager typed them, in any format) are indexed at connect,
kept fresh by contact webhooks, and a lead from such a person is linked to that contact with no lookup call."""
import pytest
from fixtures.sync import StaticTokens
from test_sync_push import deals, leads_of, run_push, sandbox_base

from portal.amocrm.api.client import AmoCRMClient
from portal.amocrm.api.webhook_bodies import EntityEvent, parse_form, parse_notification
from portal.amocrm.contacts_index import apply_contact_events, normalised_phone
from portal.amocrm.jobs import build_contacts_index
from portal.extensions import db
from portal.models import AmoCRMContact, Lead

pytestmark = pytest.mark.integration


def managers_contacts(app, connected, contacts: list[dict]) -> list[int]:
    with app.app_context():
        api = AmoCRMClient(sandbox_base(app, connected), StaticTokens(connected.tokens["access_token"]))
        ids = []
        for start in range(0, len(contacts), 250):
            answer = api.request("POST", "/api/v4/contacts", json=contacts[start:start + 250])
            ids += [item["id"] for item in answer["_embedded"]["contacts"]]
        return ids


def person(name: str, phone: str | None = None, email: str | None = None) -> dict:
    fields = [{"field_code": code, "values": [{"value": value, "enum_code": "WORK"}]}
              for code, value in (("PHONE", phone), ("EMAIL", email)) if value]
    return {"name": name, "custom_fields_values": fields}


@pytest.mark.parametrize("typed, e164", [("8 912 345-67-89", "+79123456789"), ("+7 (912) 345-67-89", "+79123456789"),
                                         ("8(495)123-45-67", "+74951234567"), ("not a phone", None)])
def test_phones_are_read_as_a_manager_types_them(typed, e164):
    assert normalised_phone(typed, "RU") == e164


def test_a_lead_from_a_contact_amocrm_already_has_is_linked_to_it_without_a_lookup(app, sandbox, connected):
    sandbox.set_duplicate_control(connected.account["id"], False)  # only the index can prevent a second contact
    ivan, olga, boss = managers_contacts(app, connected, [
        person("Иван", phone="8 912 345-67-89"), person("Ольга", phone="+7 (912) 555-66-77"),
        person("Директор", email="Boss@Example.COM")])
    with app.app_context():
        assert build_contacts_index(connected.id) == {"contacts": 3}
        db.session.add_all([Lead(workspace_id=connected.id, name="Ivan", phone="+79123456789"),
                            Lead(workspace_id=connected.id, name="Olga", phone="+79125556677"),
                            Lead(workspace_id=connected.id, name="Boss", email="boss@example.com"),
                            Lead(workspace_id=connected.id, name="New", phone="+79990001122")])
        db.session.commit()
    outcome = run_push(app, connected)
    assert (outcome.pushed, outcome.calls) == (4, 1)  # one request, no search per lead
    assert [lead.amocrm_contact_id for lead in leads_of(app, connected.id)][:3] == [ivan, olga, boss]
    assert len(sandbox.state()["contacts"]) == 4 and len(deals(sandbox)) == 4


def test_the_index_is_built_page_by_page(app, sandbox, connected):
    managers_contacts(app, connected, [person(f"P{n}", phone=f"+7916{n:07d}") for n in range(600)])
    with app.app_context():
        assert build_contacts_index(connected.id) == {"contacts": 600}
        assert db.session.scalar(db.select(db.func.count(AmoCRMContact.id))) == 600


def test_contact_webhooks_keep_the_index_fresh(app, connected):
    body = ("contacts[update][0][id]=77&contacts[update][0][type]=contact&contacts[update][0][custom_fields][0][id]=1"
            "&contacts[update][0][custom_fields][0][code]=PHONE"
            "&contacts[update][0][custom_fields][0][values][0][value]=8%20(916)%20111-22-33"
            "&contacts[update][0][custom_fields][0][values][0][enum]=WORK"
            "&contacts[add][0][id]=78&contacts[add][0][type]=company&account[id]=1")
    notification = parse_notification(parse_form(body.encode()))
    with app.app_context():
        assert apply_contact_events(connected.id, notification.others, "RU") == 1  # companies are not people
        db.session.commit()
        assert dict(db.session.execute(db.select(AmoCRMContact.key, AmoCRMContact.amocrm_contact_id)).all()) == {
            "+79161112233": 77}
        apply_contact_events(connected.id, [EntityEvent("contact", "delete", 77)], "RU")
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(AmoCRMContact.id))) == 0
