"""Leadpath lead → amoCRM `POST /api/v4/leads/complex` item, or `POST /api/v4/leads/unsorted/forms` item when the
workspace delivers to Unsorted. Pure functions, no I/O.

Every deal (and every Unsorted item's lead) carries two tags besides `leadpath`: `lp-<lead id>` names the lead,
and `lpb-<batch>` names the request that first carried it, so after an ambiguous failure (the request may have
been applied, the response was lost) the deals that request created are recognised in the deals list
(`portal.amocrm.adoption`).
"""
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from portal.amocrm.api.field_values import FieldValueError, values_for

TRACKING_FIELDS = (
    ("utm_source", "UTM_SOURCE"),
    ("utm_medium", "UTM_MEDIUM"),
    ("utm_campaign", "UTM_CAMPAIGN"),
    ("utm_term", "UTM_TERM"),
    ("utm_content", "UTM_CONTENT"),
    ("referrer", "REFERRER"),
    ("gclid", "GCLID"),
    ("yclid", "YCLID"),
    ("fbclid", "FBCLID"),
)
TRACKING_CODES = frozenset(code for _attribute, code in TRACKING_FIELDS)
SOURCE_TAG = "leadpath"
# A lead made by "Send a test lead" goes under this name, with this tag, so nobody takes it for a customer.
TEST_DEAL_NAME = "Leadpath test lead"
TEST_TAG = "leadpath-test"
NAME_LIMIT = 255
TRACKING_VALUE_LIMIT = 255


NOTE_LIMIT = 20_000


@dataclass(frozen=True)
class ExtraValues:
    """A lead's extra form fields as amoCRM takes them: values for the mapped deal and contact fields, and the text
    of a note on the deal for the rest (unmapped, or not fitting their field)."""

    lead_fields: tuple = ()
    contact_fields: tuple = ()
    note: str | None = None


def extra_values(extra: Mapping | None, mapping: Mapping, *, contact_is_new: bool = True) -> ExtraValues:
    """Split the form's extra fields by `mapping` ({name: {"entity": "leads"|"contacts", "field": summary}}): a value
    that fits its field's type goes to it; the others (unmapped, failing their type, or for a contact that exists
    already and is not overwritten) go to the note, with the reason."""
    lead_fields, contact_fields, lines = [], [], []
    for name, value in (extra or {}).items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        target = mapping.get(name)
        if target is None:
            lines.append(f"{name}: {shown}")
            continue
        field = target["field"]
        if target["entity"] == "contacts" and not contact_is_new:
            lines.append(f"{name}: {shown} (the contact exists in amoCRM: field “{field['name']}” left as it is)")
            continue
        try:
            values = values_for(field, value)
        except FieldValueError as error:
            lines.append(f"{name}: {shown} (not sent to field “{field['name']}”: {error})")
            continue
        (lead_fields if target["entity"] == "leads" else contact_fields).append(
            {"field_id": field["id"], "values": values})
    note = ("Leadpath form fields:\n" + "\n".join(lines))[:NOTE_LIMIT] if lines else None
    return ExtraValues(tuple(lead_fields), tuple(contact_fields), note)


def note_marker(lead_id: int) -> str:
    """The last line of the lead's note: how a read of the deal's notes finds a note whose answer was lost (a
    common note's only documented parameter is its text)."""
    return f"Leadpath lead #{int(lead_id)}"


def note_item(lead_id: int, deal_id: int, text: str) -> dict:
    """A common note on the deal (`POST /api/v4/leads/notes`), its text ending with the lead's marker."""
    marker = note_marker(lead_id)
    body = text[:NOTE_LIMIT - len(marker) - 1] + "\n" + marker
    return {"entity_id": deal_id, "note_type": "common", "params": {"text": body}, "request_id": request_id(lead_id)}


def is_lead_note(note: dict, lead_id: int) -> bool:
    """An API note is this lead's: a common note whose text ends with the lead's marker line."""
    params = note.get("params") if isinstance(note, dict) else None
    text = params.get("text") if isinstance(params, dict) else None
    return (note.get("note_type") == "common" and isinstance(text, str)
            and text.rstrip().rsplit("\n", 1)[-1].strip() == note_marker(lead_id))


@dataclass(frozen=True)
class LeadForPush:
    id: int
    name: str
    phone: str | None
    email: str | None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    referrer: str | None = None
    gclid: str | None = None
    yclid: str | None = None
    fbclid: str | None = None
    test: bool = False
    # For an Unsorted item's form metadata: where and when the form was sent, from which address.
    landing_page: str | None = None
    ip: str | None = None
    sent_at: int | None = None  # unix seconds
    extra: ExtraValues | None = None


def lead_tag(lead_id: int) -> str:
    return f"lp-{lead_id}"


def batch_tag(batch: str) -> str:
    return f"lpb-{batch}"


def request_id(lead_id: int) -> str:
    """Not a bare number, so it cannot be mistaken for the item's index in amoCRM's answers."""
    return f"lp{lead_id}"


def lead_id_from_request_id(value: str, batch_ids: list[int]) -> int | None:
    """The lead an answer's request_id names: ours (`lp<id>`), or an index into the batch."""
    value = str(value)
    if value.startswith("lp") and value[2:].isdigit():
        lead_id = int(value[2:])
        return lead_id if lead_id in batch_ids else None
    if value.isdigit() and int(value) < len(batch_ids):
        return batch_ids[int(value)]
    return None


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def deal_name(template: str, lead: LeadForPush) -> str:
    """The deal's name from the workspace template; placeholders {campaign} {source} {medium} {name} {id}."""
    values = _Blank(campaign=lead.utm_campaign or "website", source=lead.utm_source or "direct",
                    medium=lead.utm_medium or "", name=lead.name or "", id=lead.id)
    try:
        name = template.format_map(values)
    except (ValueError, IndexError, AttributeError):  # a malformed template must not stop the sync
        name = f"Lead: {values['campaign']}"
    return (name.strip() or f"Lead #{lead.id}")[:NAME_LIMIT]


def sent_deal_name(template: str, lead: LeadForPush) -> str:
    """The name a lead's deal is created with: the test lead's own, else the workspace template's."""
    return TEST_DEAL_NAME if lead.test else deal_name(template, lead)


def tracking_fields(lead: LeadForPush) -> list[dict]:
    return [{"field_code": code, "values": [{"value": value[:TRACKING_VALUE_LIMIT]}]}
            for attribute, code in TRACKING_FIELDS if (value := getattr(lead, attribute))]


def contact(lead: LeadForPush, existing_contact_id: int | None = None) -> dict:
    if existing_contact_id:
        return {"id": existing_contact_id}
    fields = []
    if lead.phone:
        fields.append({"field_code": "PHONE", "values": [{"value": lead.phone, "enum_code": "WORK"}]})
    if lead.email:
        fields.append({"field_code": "EMAIL", "values": [{"value": lead.email, "enum_code": "WORK"}]})
    if lead.extra:
        fields += list(lead.extra.contact_fields)
    return {"first_name": (lead.name or lead.phone or lead.email or "")[:NAME_LIMIT], "custom_fields_values": fields}


def complex_item(lead: LeadForPush, *, batch: str, pipeline_id: int | None, status_id: int | None,
                 name_template: str, existing_contact_id: int | None = None,
                 sendable: Callable[[str], bool] | None = None) -> dict:
    """The item for one lead. `sendable(code)` says whether the account has the deal field of that code: a value
    for a field it lacks is left out (amoCRM would refuse the whole request)."""
    item = {
        "request_id": request_id(lead.id),
        "name": sent_deal_name(name_template, lead),
        "price": 0,
        "_embedded": {
            "tags": [{"name": SOURCE_TAG}, {"name": lead_tag(lead.id)}, {"name": batch_tag(batch)},
                     *([{"name": TEST_TAG}] if lead.test else [])],
            "contacts": [contact(lead, existing_contact_id)],
        },
    }
    if pipeline_id:
        item["pipeline_id"] = pipeline_id
        if status_id:
            item["status_id"] = status_id
    fields = [field for field in tracking_fields(lead) if sendable is None or sendable(field["field_code"])]
    if lead.extra:
        fields += list(lead.extra.lead_fields)
    if fields:
        item["custom_fields_values"] = fields
    return item


UNSORTED_SOURCE_NAME = "Leadpath"
UNSORTED_FORM_ID = "leadpath"
METADATA_TEXT_LIMIT = 255


def unsorted_source_uid(lead_id: int, batch: str) -> str:
    """The item's `source_uid`: the lead and the request that first carried it (kept on every resend), so a resend
    of an item amoCRM already holds is the same data, which amoCRM refuses instead of duplicating."""
    return f"lp{lead_id}-{batch}"


def unsorted_item(lead: LeadForPush, *, batch: str, pipeline_id: int | None, name_template: str,
                  sendable: Callable[[str], bool] | None = None) -> dict:
    """The `POST /api/v4/leads/unsorted/forms` item for one lead: its deal (name, tags, tracking fields, as a
    complex item's) and a new contact inside `_embedded`, and the form's `metadata` at the top level (amoCRM
    unsorted-api; PHP SDK FormsMetadata). The item lands in the pipeline's incoming stage; a manager accepts it
    into the pipeline or declines it. Existing contacts are not linked: an Unsorted item's contacts stay hidden
    until it is accepted, and amoCRM offers the manager its duplicates then."""
    deal = complex_item(lead, batch=batch, pipeline_id=None, status_id=None, name_template=name_template,
                        sendable=sendable)
    deal.pop("request_id")
    contact_data = deal["_embedded"].pop("contacts")
    page = (lead.landing_page or lead.referrer or "")[:METADATA_TEXT_LIMIT]
    metadata = {
        "form_id": UNSORTED_FORM_ID,
        "form_name": "Leadpath",
        "form_page": page,
        "form_sent_at": lead.sent_at,
    }
    if lead.ip:
        metadata["ip"] = lead.ip
    if lead.referrer:
        metadata["referer"] = lead.referrer[:METADATA_TEXT_LIMIT]
    item = {
        "request_id": request_id(lead.id),
        "source_name": UNSORTED_SOURCE_NAME,
        "source_uid": unsorted_source_uid(lead.id, batch),
        "metadata": metadata,
        "_embedded": {"leads": [deal], "contacts": contact_data},
    }
    if pipeline_id:
        item["pipeline_id"] = pipeline_id
    return item


def deal_part(item: dict) -> dict:
    """The deal inside a push item: the item itself (complex), or the lead inside an Unsorted item."""
    leads = (item.get("_embedded") or {}).get("leads")
    return leads[0] if "source_uid" in item and isinstance(leads, list) and leads else item


def unsorted_results(items: list) -> list[dict]:
    """An Unsorted create answer's `_embedded.unsorted` items in the complex answer's shape
    (`{id, contact_id, request_id, merged}`), plus the item's `uid`. Items without a lead id are left out."""
    results = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
        leads = [entry for entry in embedded.get("leads") or [] if isinstance(entry, dict)]
        contacts = [entry for entry in embedded.get("contacts") or [] if isinstance(entry, dict)]
        lead_id = leads[0].get("id") if leads else None
        if not isinstance(lead_id, int) or isinstance(lead_id, bool) or not isinstance(item.get("uid"), str):
            continue
        contact_id = contacts[0].get("id") if contacts else None
        results.append({"id": lead_id, "contact_id": contact_id if isinstance(contact_id, int) else None,
                        "request_id": [str(item.get("request_id", ""))], "merged": False, "uid": item["uid"][:64]})
    return results


def contact_keys(phone: str | None, email: str | None) -> list[str]:
    """Keys of the workspace's contact map: the E.164 phone and the lower-case e-mail."""
    return [key for key in (phone, email.lower() if email else None) if key]


def lead_id_from_tags(deal: dict) -> int | None:
    for tag in (deal.get("_embedded") or {}).get("tags") or []:
        name = str(tag.get("name", ""))
        if name.startswith("lp-") and name[3:].isdigit():
            return int(name[3:])
    return None
