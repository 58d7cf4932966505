"""Leadpath lead → amoCRM `POST /api/v4/leads/complex` item. Pure functions, no I/O.

Every deal carries two tags besides `leadpath`: `lp-<lead id>` names the lead, and `lpb-<batch>` names the request
that first carried it, so after an ambiguous failure (the request may have been applied, the response was lost)
the deals that request created are recognised in the deals list (`portal.amocrm.adoption`).
"""
from collections.abc import Callable
from dataclasses import dataclass

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
    if fields:
        item["custom_fields_values"] = fields
    return item


def contact_keys(phone: str | None, email: str | None) -> list[str]:
    """Keys of the workspace's contact map: the E.164 phone and the lower-case e-mail."""
    return [key for key in (phone, email.lower() if email else None) if key]


def lead_id_from_tags(deal: dict) -> int | None:
    for tag in (deal.get("_embedded") or {}).get("tags") or []:
        name = str(tag.get("name", ""))
        if name.startswith("lp-") and name[3:].isdigit():
            return int(name[3:])
    return None
