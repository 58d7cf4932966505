"""amoCRM webhook bodies: a strict PHP-style form parser and the deal events they describe.

amoCRM posts `application/x-www-form-urlencoded` bodies whose keys nest PHP-style
(`leads[status][0][custom_fields][0][values][0][value]=google`), every value a string, with the field names of
the old v2 API. `parse_form` turns such a body into nested dicts and lists under hard limits (bytes, fields,
depth, key length, list indexes), so a hostile body costs little and fails with a typed error — or, for a body from
the connected account, reads what it can and lists the rest as problems; `parse_notification` turns the nested data
into plain dataclasses (deal events, and contact/company events with their phones and e-mails). `deal_from_api` maps
an API v4 lead to the same `DealSnapshot`, so webhooks and reconciliation share one upsert.

No Flask, no database: pure functions with unit tests.
"""
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

MAX_BYTES = 512 * 1024  # a body with ~100 deals and their custom fields is well under 100 KiB
MAX_FIELDS = 10_000
MAX_DEPTH = 10  # leads[status][0][custom_fields][0][values][0][value] is 7 levels deep
MAX_KEY_LENGTH = 256
MAX_INDEX = 9_999  # list indexes; a key like a[99999999] must not build a huge list
# Groups amoCRM keys by entity id, not list index: a contact event carries `linked_leads_id[<lead id>][ID]`.
ID_KEYED_GROUPS = frozenset({"linked_leads_id"})

DEAL_ACTIONS = ("add", "update", "status", "delete", "responsible", "restore")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_INDEX = re.compile(r"0|[1-9]\d{0,8}")


class WebhookBodyError(ValueError):
    """The body cannot be accepted; `status` is the HTTP status to answer with."""

    status = 400


class WebhookBodyTooLarge(WebhookBodyError):
    status = 413


class MalformedWebhookBody(WebhookBodyError):
    status = 400


# --- the form parser ------------------------------------------------------------------------------------------


def parse_form(body: bytes, *, max_bytes: int = MAX_BYTES, max_fields: int = MAX_FIELDS,
               max_depth: int = MAX_DEPTH, problems: list[str] | None = None) -> dict:
    """Nested data from a PHP-style form body.

    `a[b][0]=x&a[b][1]=y&a[c]=z` → `{"a": {"b": ["x", "y"], "c": "z"}}`. Groups whose keys are exactly 0..n-1
    become lists; `a[]=x` appends. More than `max_bytes` or `max_fields` → WebhookBodyTooLarge, always.

    Strict by default: a key that is both a value and a group, a repeated key, an unbalanced bracket, nesting
    deeper than `max_depth`, bytes that are not UTF-8 → MalformedWebhookBody. Given a `problems` list, it reads
    what it can instead (for a body from the connected account, which must never be refused: amoCRM counts every
    refusal toward switching the webhook off): a field it cannot place is skipped, a repeated key or a value/group
    clash is settled as PHP settles it (the later one wins), bytes that are not UTF-8 become U+FFFD — and each such
    thing is described in `problems`.
    """
    if len(body) > max_bytes:
        raise WebhookBodyTooLarge(f"The body is larger than {max_bytes} bytes.")
    if body.count(b"&") >= max_fields:
        raise WebhookBodyTooLarge(f"The body has more than {max_fields} fields.")
    lenient = problems is not None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not lenient:
            raise MalformedWebhookBody("The body is not UTF-8.") from exc
        problems.append("The body is not UTF-8: unreadable bytes were replaced.")
        text = body.decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace" if lenient else "strict",
                          max_num_fields=max_fields)
    except UnicodeDecodeError as exc:
        raise MalformedWebhookBody("The body is not UTF-8.") from exc
    except ValueError as exc:  # parse_qsl: too many fields
        raise WebhookBodyTooLarge(f"The body has more than {max_fields} fields.") from exc
    root: dict = {}
    for key, value in pairs:
        # A NUL means nothing in amoCRM's data and PostgreSQL cannot store one (JSONB): dropped, not refused, so
        # the event is kept (a refused delivery is retried, then the webhook is switched off).
        key, value = key.replace("\x00", ""), value.replace("\x00", "")
        try:
            _store(root, _split_key(key, max_depth), value, key, lenient=lenient)
        except MalformedWebhookBody as error:
            if not lenient:
                raise
            problems.append(f"{error} The field was skipped.")
        except _Settled as settled:
            problems.append(str(settled))
    return _listify(root)


class _Settled(Exception):
    """A clash settled the way PHP settles it (the later field wins); raised only to describe it."""


def _split_key(key: str, max_depth: int) -> list[str | None]:
    if not key:
        raise MalformedWebhookBody("A field has an empty name.")
    if len(key) > MAX_KEY_LENGTH:
        raise MalformedWebhookBody(f"A field name is longer than {MAX_KEY_LENGTH} characters.")
    match = _KEY.fullmatch(key)
    if match is None:
        raise MalformedWebhookBody(f"Malformed field name: {key[:60]!r}.")
    segments: list[str | None] = [match.group(1)]
    segments += [segment if segment != "" else None for segment in _SEGMENT.findall(match.group(2))]
    if len(segments) > max_depth:
        raise MalformedWebhookBody(f"A field is nested deeper than {max_depth} levels.")
    return segments  # None stands for `[]` (append)


def _store(root: dict, path: list[str | None], value: str, key: str, *, lenient: bool = False) -> None:
    node = root
    clash = None
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        if segment is None:
            segment = str(len(node))  # `a[]` appends (PHP takes the largest index + 1; a clash is refused below)
        elif (_INDEX.fullmatch(segment) and int(segment) > MAX_INDEX
              and (depth == 0 or path[depth - 1] not in ID_KEYED_GROUPS)):
            raise MalformedWebhookBody(f"A list index is larger than {MAX_INDEX}: {key[:60]!r}.")
        existing = node.get(segment)
        if last:
            if existing is not None:
                if not lenient:
                    raise MalformedWebhookBody(f"Field {key[:60]!r} is given twice or is also a group.")
                clash = f"Field {key[:60]!r} is given twice or is also a group: the later value was kept."
            node[segment] = value
            break
        if existing is None:
            existing = node[segment] = {}
        elif not isinstance(existing, dict):
            if not lenient:
                raise MalformedWebhookBody(f"Field {key[:60]!r} is both a value and a group.")
            clash = f"Field {key[:60]!r} is both a value and a group: the group was kept."
            existing = node[segment] = {}
        node = existing
    if clash is not None:
        raise _Settled(clash)


def _listify(node):
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(_INDEX.fullmatch(key) for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(index)] for index in indexes]
    return converted


# --- what the body means --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealSnapshot:
    """One deal as a webhook event or an API read describes it. None means "not said", never "empty"."""

    deal_id: int
    action: str = "update"  # add | update | status | delete | responsible | restore | api
    name: str | None = None
    pipeline_id: int | None = None
    status_id: int | None = None
    price: Decimal | None = None
    updated_at: int | None = None  # amoCRM's last_modified / updated_at, unix seconds
    created_at: int | None = None
    closed_at: int | None = None
    is_deleted: bool = False
    utm: dict = field(default_factory=dict)  # utm_source … utm_content found in the custom fields
    tags: tuple[str, ...] = ()
    contact_id: int | None = None  # the main contact (API reads with `with=contacts`); None: not said


@dataclass(frozen=True)
class EntityEvent:
    """A contact or company event (both arrive under `contacts[...]`), with the phones and e-mails it carries (as
    typed in amoCRM, not normalised)."""

    entity: str  # contact | company
    action: str  # add | update | delete | restore | responsible | note
    entity_id: int | None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnsortedEvent:
    """An Unsorted item added, changed or gone (`unsorted[add|update|delete][N]`; on delete `[action]` is accept or
    decline). Only which item and which leads it names: where the lead stands is read from amoCRM."""

    action: str  # add | update | delete
    uid: str | None
    lead_ids: tuple[int, ...] = ()
    outcome: str | None = None  # accept | decline, as the body says (not trusted: the lead is read)


@dataclass(frozen=True)
class Notification:
    account_id: int | None
    subdomain: str | None
    deals: list[DealSnapshot]
    others: list[EntityEvent]
    unsorted: list[UnsortedEvent] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return sorted({f"leads[{deal.action}]" for deal in self.deals}
                      | {f"{other.entity}s[{other.action}]" for other in self.others}
                      | {f"unsorted[{event.action}]" for event in self.unsorted})


def parse_notification(data: dict, problems: list[str] | None = None) -> Notification:
    """The account and events of a parsed body. Unknown entities and fields are ignored. Strict by default: a deal
    event without a usable id, or an id that is not a positive integer, is MalformedWebhookBody. Given a `problems`
    list, such an event is skipped and described there, and the rest is read."""
    if not isinstance(data, dict):
        raise MalformedWebhookBody("The body is not a set of fields.")
    account = data.get("account")
    account = account if isinstance(account, dict) else {}
    account_id = _int(account.get("id"), "account[id]") if account.get("id") not in (None, "") else None
    subdomain = account.get("subdomain") if isinstance(account.get("subdomain"), str) else None

    def readable(read, *args):
        try:
            return read(*args)
        except MalformedWebhookBody as error:
            if problems is None:
                raise
            problems.append(f"{error} It was skipped.")
            return None

    deals: list[DealSnapshot] = []
    leads = data.get("leads")
    if leads is not None and not isinstance(leads, dict):
        readable(_refuse, "leads must be a group of actions.")
        leads = None
    for action, items in (leads or {}).items():
        if action not in DEAL_ACTIONS:
            continue
        for index, item in readable(_entries, items, f"leads[{action}]") or []:
            deal = readable(_deal_from_webhook, action, item, f"leads[{action}][{index}]")
            if deal is not None:
                deals.append(deal)

    others: list[EntityEvent] = []
    contacts = data.get("contacts") if isinstance(data.get("contacts"), dict) else {}
    for action, items in contacts.items():
        for _index, item in readable(_entries, items, f"contacts[{action}]") or []:
            others.append(_entity_from_webhook(action, item))

    unsorted: list[UnsortedEvent] = []
    items = data.get("unsorted") if isinstance(data.get("unsorted"), dict) else {}
    for action, entries in items.items():
        if action not in UNSORTED_ACTIONS:
            continue
        for _index, item in readable(_entries, entries, f"unsorted[{action}]") or []:
            unsorted.append(_unsorted_from_webhook(action, item))
    return Notification(account_id, subdomain, deals, others, unsorted)


UNSORTED_ACTIONS = ("add", "update", "delete")


def _unsorted_from_webhook(action: str, item: dict) -> UnsortedEvent:
    """Every lead id the item's event names: `lead_id`, `data[leads][N][id]`, `accept_result[leads][N]`,
    `decline_result[leads][N]` (third-party captures; amoCRM publishes no example body)."""
    ids: list = [item.get("lead_id")]
    data = item.get("data") if isinstance(item.get("data"), dict) else {}
    for lead in _values(data.get("leads")):
        ids.append(lead.get("id") if isinstance(lead, dict) else lead)
    for key in ("accept_result", "decline_result"):
        result = item.get(key) if isinstance(item.get(key), dict) else {}
        ids.extend(_values(result.get("leads")))
    lead_ids = tuple(dict.fromkeys(int(value) for value in ids if _is_int(value)))
    uid = item.get("uid") if isinstance(item.get("uid"), str) and 0 < len(item["uid"]) <= 64 else None
    outcome = item.get("action") if item.get("action") in ("accept", "decline") else None
    return UnsortedEvent(action, uid, lead_ids, outcome)


def _values(group) -> list:
    return list(group.values()) if isinstance(group, dict) else group if isinstance(group, list) else []


def _refuse(message: str) -> None:
    raise MalformedWebhookBody(message)


def _entity_from_webhook(action: str, item: dict) -> EntityEvent:
    """A contact or company event, with the phones and e-mails of its custom fields (matched by code)."""
    kind = item.get("type") if item.get("type") in ("contact", "company") else "contact"
    entity_id = item.get("id")
    phones, emails = [], []
    fields = item.get("custom_fields")
    for custom_field in (fields.values() if isinstance(fields, dict) else fields if isinstance(fields, list) else []):
        if not isinstance(custom_field, dict):
            continue
        code = str(custom_field.get("code") or "").upper()
        values = custom_field.get("values")
        values = values.values() if isinstance(values, dict) else values if isinstance(values, list) else []
        texts = [str(value.get("value") if isinstance(value, dict) else value).strip() for value in values]
        (phones if code == "PHONE" else emails if code == "EMAIL" else []).extend(text for text in texts if text)
    return EntityEvent(kind, action, int(entity_id) if _is_int(entity_id) else None, tuple(phones), tuple(emails))


def _entries(items, where: str) -> list[tuple[str, dict]]:
    if isinstance(items, list):
        indexed = [(str(index), item) for index, item in enumerate(items)]
    elif isinstance(items, dict):
        indexed = list(items.items())
    else:
        raise MalformedWebhookBody(f"{where} must be a list of entities.")
    for index, item in indexed:
        if not isinstance(item, dict):
            raise MalformedWebhookBody(f"{where}[{index}] must be a group of fields.")
    return indexed


def _deal_from_webhook(action: str, item: dict, where: str) -> DealSnapshot:
    deal_id = _int(item.get("id"), f"{where}[id]")
    updated = _optional_int(item.get("updated_at")) or _optional_int(item.get("last_modified"))
    closed = _optional_int(item.get("closed_at")) or _optional_int(item.get("date_close"))
    tags = item.get("tags")
    tag_names = tuple(tag["name"] for tag in (tags if isinstance(tags, list) else (tags or {}).values())
                      if isinstance(tag, dict) and isinstance(tag.get("name"), str)) if tags else ()
    return DealSnapshot(
        deal_id=deal_id,
        action=action,
        name=item["name"] if isinstance(item.get("name"), str) else None,
        pipeline_id=_optional_int(item.get("pipeline_id")),
        status_id=_optional_int(item.get("status_id")),
        price=_price(item.get("price")) if "price" in item else None,
        updated_at=updated,
        created_at=_optional_int(item.get("created_at")) or _optional_int(item.get("date_create")),
        closed_at=closed or None,
        is_deleted=action == "delete",
        utm=_utm_from_fields(item.get("custom_fields"), code_key="code", name_key="name"),
        tags=tag_names,
    )


def deal_from_api(lead: dict) -> DealSnapshot:
    """A DealSnapshot from an API v4 lead (`GET /api/v4/leads`)."""
    if not isinstance(lead, dict) or not _is_int(lead.get("id")):
        raise ValueError("an API lead needs an integer id")
    embedded = lead.get("_embedded") if isinstance(lead.get("_embedded"), dict) else {}
    tags = embedded.get("tags") if isinstance(embedded.get("tags"), list) else []
    return DealSnapshot(
        deal_id=int(lead["id"]),
        action="api",
        name=lead.get("name") if isinstance(lead.get("name"), str) else None,
        pipeline_id=_optional_int(lead.get("pipeline_id")),
        status_id=_optional_int(lead.get("status_id")),
        price=_price(lead.get("price")),
        updated_at=_optional_int(lead.get("updated_at")),
        created_at=_optional_int(lead.get("created_at")),
        closed_at=_optional_int(lead.get("closed_at")) or None,
        is_deleted=bool(lead.get("is_deleted")),
        utm=_utm_from_fields(lead.get("custom_fields_values"), code_key="field_code", name_key="field_name"),
        tags=tuple(tag["name"] for tag in tags if isinstance(tag, dict) and isinstance(tag.get("name"), str)),
        contact_id=_main_contact(embedded.get("contacts")),
    )


def _main_contact(contacts) -> int | None:
    """The id of the main contact among a lead's `_embedded.contacts` (is_main), else of its first contact."""
    if not isinstance(contacts, list):
        return None
    ids = [(contact.get("is_main") is not True, position, contact["id"]) for position, contact in enumerate(contacts)
           if isinstance(contact, dict) and _is_int(contact.get("id"))]
    return int(min(ids)[2]) if ids else None


def _utm_from_fields(fields, *, code_key: str, name_key: str) -> dict:
    """utm_* values from custom fields, matched by field code (UTM_SOURCE) or, failing that, by name."""
    if isinstance(fields, dict):
        fields = list(fields.values())
    if not isinstance(fields, list):
        return {}
    found: dict[str, str] = {}
    for custom_field in fields:
        if not isinstance(custom_field, dict):
            continue
        key = None
        for candidate in (custom_field.get(code_key), custom_field.get(name_key)):
            if isinstance(candidate, str) and candidate.strip().lower() in UTM_KEYS:
                key = candidate.strip().lower()
                break
        if key is None:
            continue
        value = _first_value(custom_field.get("values"))
        if value:
            found[key] = value[:200]
    return found


def _first_value(values) -> str | None:
    if isinstance(values, dict):
        values = list(values.values())
    if not isinstance(values, list) or not values:
        return None
    first = values[0]
    if isinstance(first, dict):
        first = first.get("value")
    if first is None:
        return None
    text = str(first).strip()
    return text or None


def _is_int(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return isinstance(value, str) and value.isascii() and value.isdigit() and 0 < len(value) <= 18 and int(value) > 0


def _int(value, where: str) -> int:
    if not _is_int(value):
        raise MalformedWebhookBody(f"{where} must be a positive integer.")
    return int(value)


def _optional_int(value) -> int | None:
    return int(value) if _is_int(value) else None


def _price(value) -> Decimal | None:
    """amoCRM prices are integers sent as strings; an empty one means no budget (0)."""
    if value is None:
        return None
    if value == "":
        return Decimal(0)
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    if not price.is_finite() or price < 0 or price >= Decimal("1e12"):
        return None
    return price.quantize(Decimal("0.01"))
