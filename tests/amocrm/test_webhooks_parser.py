"""The amoCRM webhook body parser and the deal events it yields (pure functions, no app)."""
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.amocrm.api.webhook_bodies import (
    MalformedWebhookBody,
    WebhookBodyTooLarge,
    deal_from_api,
    parse_form,
    parse_notification,
)

# A status change as amoCRM sends it: several actions in one body, tags, custom fields, Cyrillic text.
STATUS_AND_UPDATE = [
    ("leads[status][0][id]", "25399013"),
    ("leads[status][0][name]", "Заявка с сайта: «Окна» & двери"),
    ("leads[status][0][status_id]", "142"),
    ("leads[status][0][old_status_id]", "7039101"),
    ("leads[status][0][pipeline_id]", "9217056"),
    ("leads[status][0][price]", "50000"),
    ("leads[status][0][last_modified]", "1704912474"),
    ("leads[status][0][created_at]", "1704900000"),
    ("leads[status][0][tags][0][id]", "11"),
    ("leads[status][0][tags][0][name]", "сайт"),
    ("leads[status][0][tags][1][id]", "12"),
    ("leads[status][0][tags][1][name]", "vip"),
    ("leads[status][0][custom_fields][0][id]", "24807"),
    ("leads[status][0][custom_fields][0][name]", "utm_source"),
    ("leads[status][0][custom_fields][0][values][0][value]", "google"),
    ("leads[status][0][custom_fields][1][id]", "24809"),
    ("leads[status][0][custom_fields][1][name]", "Кампания"),
    ("leads[status][0][custom_fields][1][code]", "UTM_CAMPAIGN"),
    ("leads[status][0][custom_fields][1][values][0][value]", "весна-2024"),
    ("leads[status][0][custom_fields][2][id]", "30001"),
    ("leads[status][0][custom_fields][2][name]", "Комментарий"),
    ("leads[status][0][custom_fields][2][values][0][value]", "перезвонить"),
    ("leads[update][0][id]", "25399013"),
    ("leads[update][0][status_id]", "142"),
    ("leads[update][0][pipeline_id]", "9217056"),
    ("leads[update][0][price]", "50000"),
    ("leads[update][0][last_modified]", "1704912474"),
    ("leads[update][1][id]", "25399020"),
    ("leads[update][1][price]", ""),
    ("leads[update][1][updated_at]", "1704912480"),
    ("leads[delete][0][id]", "25399030"),
    ("leads[delete][0][status_id]", "7039101"),
    ("leads[delete][0][pipeline_id]", "9217056"),
    ("contacts[update][0][id]", "501"),
    ("contacts[update][0][type]", "contact"),
    ("contacts[update][0][name]", "Иван Петров"),
    ("contacts[add][0][id]", "601"),
    ("contacts[add][0][type]", "company"),
    ("contacts[add][0][name]", "ООО «Ромашка»"),
    ("account[subdomain]", "example"),
    ("account[id]", "17769199"),
    ("account[_links][self]", "https://example.amocrm.ru"),
]


def body(pairs) -> bytes:
    return urlencode(pairs).encode()


def test_a_realistic_body_becomes_nested_lists_and_groups():
    data = parse_form(body(STATUS_AND_UPDATE))
    status = data["leads"]["status"][0]
    assert status["name"] == "Заявка с сайта: «Окна» & двери"
    assert [tag["name"] for tag in status["tags"]] == ["сайт", "vip"]
    assert status["custom_fields"][1]["values"] == [{"value": "весна-2024"}]
    assert len(data["leads"]["update"]) == 2
    assert data["account"] == {"subdomain": "example", "id": "17769199",
                               "_links": {"self": "https://example.amocrm.ru"}}


def test_nul_characters_are_dropped_so_the_event_can_be_stored():
    # PostgreSQL's JSONB cannot hold one; refusing the body would make amoCRM retry it, then switch the hook off.
    data = parse_form(b"leads[add][0][id]=5&leads[add][0][name]=a%00b&leads[add][0][tags][0][na%00me]=%00vip")
    assert data == {"leads": {"add": [{"id": "5", "name": "ab", "tags": [{"name": "vip"}]}]}}


def test_the_notification_carries_every_deal_action_and_the_account():
    notification = parse_notification(parse_form(body(STATUS_AND_UPDATE)))
    assert notification.account_id == 17769199 and notification.subdomain == "example"
    assert [(deal.action, deal.deal_id) for deal in notification.deals] == [
        ("status", 25399013), ("update", 25399013), ("update", 25399020), ("delete", 25399030)]
    won = notification.deals[0]
    assert (won.status_id, won.pipeline_id, won.price, won.updated_at) == (142, 9217056, Decimal("50000"),
                                                                           1704912474)
    assert won.utm == {"utm_source": "google", "utm_campaign": "весна-2024"}  # by name, and by code
    assert won.tags == ("сайт", "vip")
    assert notification.deals[2].price == Decimal(0) and notification.deals[2].updated_at == 1704912480
    assert notification.deals[3].is_deleted
    assert notification.actions == ["companys[add]", "contacts[update]", "leads[delete]", "leads[status]",
                                    "leads[update]"]


def test_contacts_and_companies_both_arrive_under_contacts():
    notification = parse_notification(parse_form(body(STATUS_AND_UPDATE)))
    assert [(o.entity, o.action, o.entity_id) for o in notification.others] == [("contact", "update", 501),
                                                                                 ("company", "add", 601)]


def test_unknown_entities_and_actions_are_ignored():
    pairs = [("task[add][0][id]", "5"), ("leads[note][0][id]", "6"), ("unsorted[add][0][uid]", "x"),
             ("account[id]", "1")]
    notification = parse_notification(parse_form(body(pairs)))
    assert notification.deals == [] and notification.account_id == 1


def test_unsorted_events_name_their_item_and_every_lead_they_mention():
    pairs = [("unsorted[add][0][uid]", "abc"), ("unsorted[add][0][data][leads][0][id]", "11"),
             ("unsorted[delete][0][uid]", "def"), ("unsorted[delete][0][action]", "accept"),
             ("unsorted[delete][0][accept_result][leads][0]", "12"), ("unsorted[delete][1][uid]", "ghi"),
             ("unsorted[delete][1][action]", "decline"), ("unsorted[delete][1][decline_result][leads][0]", "13"),
             ("unsorted[delete][2][action]", "nonsense"), ("unsorted[delete][2][lead_id]", "not a number"),
             ("account[id]", "1")]
    notification = parse_notification(parse_form(body(pairs)))
    assert [(e.action, e.uid, e.lead_ids, e.outcome) for e in notification.unsorted] == [
        ("add", "abc", (11,), None), ("delete", "def", (12,), "accept"), ("delete", "ghi", (13,), "decline"),
        ("delete", None, (), None)]
    assert "unsorted[delete]" in notification.actions and notification.deals == []


def test_a_body_without_account_has_no_account_id():
    assert parse_notification(parse_form(body([("leads[add][0][id]", "5")]))).account_id is None


def test_append_keys_build_lists():
    assert parse_form(b"a[]=1&a[]=2&b[x][]=3") == {"a": ["1", "2"], "b": {"x": ["3"]}}


def test_sparse_indexes_stay_a_group():
    assert parse_form(b"a[0]=x&a[2]=y") == {"a": {"0": "x", "2": "y"}}


@pytest.mark.parametrize("raw", [
    b"a[b=1",                 # unbalanced
    b"a]b[=1",
    b"a[b]c=1",               # text after a bracket
    b"[a]=1",                 # no name
    b"=1",
    b"a=1&a=2",               # repeated
    b"a=1&a[b]=2",            # value, then group
    b"a[b]=2&a=1",            # group, then value
    b"a[0]=1&a[]=2&a[1]=3",   # append clashes with an explicit index
    b"a[99999999]=1",         # an index that would build a huge list
    b"a[%ff]=1",              # not UTF-8
    b"\xff=1",
])
def test_malformed_keys_are_refused(raw):
    with pytest.raises(MalformedWebhookBody):
        parse_form(raw)


def test_a_contact_events_leads_keyed_by_id_are_read_strictly():
    # amoCRM keys a contact's deals by deal id (`linked_leads_id[<id>][ID]`), past any list index.
    data = parse_form(b"contacts[add][0][id]=40000001&contacts[add][0][linked_leads_id][20000001][ID]=20000001"
                      b"&account[id]=31000001")
    assert data["contacts"]["add"][0]["linked_leads_id"] == {"20000001": {"ID": "20000001"}}
    assert parse_notification(data).others[0].entity_id == 40000001


def test_deep_nesting_is_refused():
    with pytest.raises(MalformedWebhookBody, match="deeper"):
        parse_form(b"a" + b"[x]" * 10 + b"=1")
    assert parse_form(b"a" + b"[x]" * 9 + b"=1")  # 10 levels is the limit


def test_too_many_bytes_is_too_large():
    with pytest.raises(WebhookBodyTooLarge):
        parse_form(b"a=" + b"x" * 600_000)
    with pytest.raises(WebhookBodyTooLarge):
        parse_form(b"a=xxxx", max_bytes=4)


def test_too_many_fields_is_too_large():
    with pytest.raises(WebhookBodyTooLarge):
        parse_form(b"&".join(b"f%d=1" % i for i in range(10_001)))
    assert len(parse_form(b"&".join(b"f%d=1" % i for i in range(10_000)))) == 10_000


def test_many_appends_are_fast():
    import time

    started = time.perf_counter()
    assert len(parse_form(b"&".join([b"a[]=1"] * 9_999))["a"]) == 9_999
    assert time.perf_counter() - started < 1.0


def test_very_long_keys_are_refused():
    with pytest.raises(MalformedWebhookBody, match="longer"):
        parse_form(b"a" * 300 + b"=1")


@pytest.mark.parametrize("pairs", [
    [("leads[add][0][name]", "no id")],
    [("leads[add][0][id]", "abc")],
    [("leads[add][0][id]", "-5")],
    [("leads[add][0][id]", "0")],
    [("leads[add]", "x")],
    [("leads", "x")],
    [("leads[add][0]", "x")],
    [("account[id]", "x"), ("leads[add][0][id]", "5")],
])
def test_deal_events_without_a_usable_id_are_malformed(pairs):
    with pytest.raises(MalformedWebhookBody):
        parse_notification(parse_form(body(pairs)))


def test_hostile_values_are_ignored_not_trusted():
    notification = parse_notification(parse_form(body([
        ("leads[update][0][id]", "7"), ("leads[update][0][price]", "NaN"), ("leads[update][0][status_id]", "x"),
        ("leads[update][0][last_modified]", "1e10"), ("leads[update][0][custom_fields]", "nope")])))
    deal = notification.deals[0]
    assert (deal.price, deal.status_id, deal.updated_at, deal.utm) == (None, None, None, {})


def test_an_api_lead_maps_to_the_same_snapshot():
    deal = deal_from_api({
        "id": 31, "name": "Сделка", "price": 12000, "status_id": 143, "pipeline_id": 9, "updated_at": 1704912474,
        "closed_at": 1704912400, "created_at": 1704900000,
        "custom_fields_values": [{"field_id": 1, "field_name": "utm_source", "field_code": "UTM_SOURCE",
                                  "values": [{"value": "yandex"}]},
                                 {"field_id": 2, "field_name": "Город", "field_code": None,
                                  "values": [{"value": "Казань"}]}],
        "_embedded": {"tags": [{"id": 1, "name": "vip"}]}})
    assert (deal.deal_id, deal.status_id, deal.price, deal.closed_at) == (31, 143, Decimal(12000), 1704912400)
    assert deal.utm == {"utm_source": "yandex"} and deal.tags == ("vip",)
    assert deal.contact_id is None  # read without `with=contacts`: not said


def test_an_api_lead_names_its_main_contact():
    def contact_of(contacts):
        return deal_from_api({"id": 31, "_embedded": {"contacts": contacts}}).contact_id

    assert contact_of([{"id": 5, "is_main": False}, {"id": 8, "is_main": True}]) == 8
    assert contact_of([{"id": 5, "is_main": False}, {"id": 6}]) == 5  # none is main: the first
    assert contact_of([]) is None
    assert contact_of([{"id": "x"}, {"id": True, "is_main": True}, "7", None]) is None
    assert deal_from_api({"id": 31, "_embedded": "hostile"}).contact_id is None


keys = st.text(alphabet="abcxyzабв_-.", min_size=1, max_size=6)
values = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)  # NULs are dropped
documents = st.recursive(values, lambda children: st.dictionaries(keys, children, min_size=1, max_size=4),
                         max_leaves=20)


def flatten(prefix: str, node) -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(prefix, node)]
    return [pair for key, child in node.items() for pair in flatten(f"{prefix}[{key}]", child)]


@given(st.dictionaries(keys, documents, min_size=1, max_size=4))
def test_any_nested_document_survives_encoding(document):
    pairs = [pair for key, child in document.items() for pair in flatten(key, child)]
    depth = max(pair[0].count("[") for pair in pairs) + 1
    if depth > 10:
        with pytest.raises(MalformedWebhookBody):
            parse_form(body(pairs))
    else:
        assert parse_form(body(pairs)) == document
