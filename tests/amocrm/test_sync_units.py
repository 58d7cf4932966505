"""Pure parts of the sync engine: payload mapping, the shared rate limiter, sync log masking."""
import threading
import time

import pytest

from portal.amocrm.api import payloads
from portal.amocrm.limiter import RequestLimiter
from portal.amocrm.push import backoff_seconds
from portal.masking import mask_document

LEAD = payloads.LeadForPush(id=7, name="Анна", phone="+79991234567", email="anna@example.com",
                            utm_source="yandex", utm_medium="cpc", utm_campaign="autumn")


@pytest.mark.parametrize("template, expected", [
    ("Lead: {campaign}", "Lead: autumn"),
    ("{source}/{medium}: {name} #{id}", "yandex/cpc: Анна #7"),
    ("Lead: {unknown}", "Lead:"),
    ("broken {", "Lead: autumn"),
    ("{0}", "Lead: autumn"),
])
def test_deal_name_from_the_workspace_template(template, expected):
    assert payloads.deal_name(template, LEAD) == expected


def test_backoff_doubles_with_jitter_and_never_passes_the_ceiling():
    for attempt, base in [(1, 1), (2, 2), (5, 16)]:
        waits = [backoff_seconds(attempt, 300) for _ in range(200)]
        assert base * 0.5 <= min(waits) < max(waits) <= base * 1.5
    assert max(backoff_seconds(20, 15) for _ in range(200)) == 15


def test_deal_name_without_a_campaign_says_website():
    lead = payloads.LeadForPush(id=1, name="", phone="+7999", email=None)
    assert payloads.deal_name("Lead: {campaign}", lead) == "Lead: website"


def test_complex_item_carries_tags_fields_and_a_new_contact():
    item = payloads.complex_item(LEAD, batch="b1", pipeline_id=10, status_id=20, name_template="Lead: {campaign}")
    assert item["request_id"] == "lp7" and item["price"] == 0
    assert (item["pipeline_id"], item["status_id"]) == (10, 20)
    assert [tag["name"] for tag in item["_embedded"]["tags"]] == ["leadpath", "lp-7", "lpb-b1"]
    assert item["custom_fields_values"] == [
        {"field_code": "UTM_SOURCE", "values": [{"value": "yandex"}]},
        {"field_code": "UTM_MEDIUM", "values": [{"value": "cpc"}]},
        {"field_code": "UTM_CAMPAIGN", "values": [{"value": "autumn"}]}]
    [contact] = item["_embedded"]["contacts"]
    assert contact["first_name"] == "Анна"
    assert contact["custom_fields_values"] == [
        {"field_code": "PHONE", "values": [{"value": "+79991234567", "enum_code": "WORK"}]},
        {"field_code": "EMAIL", "values": [{"value": "anna@example.com", "enum_code": "WORK"}]}]


def test_complex_item_links_a_known_contact_by_id():
    item = payloads.complex_item(LEAD, batch="b", pipeline_id=None, status_id=None, name_template="x",
                                 existing_contact_id=555)
    assert item["_embedded"]["contacts"] == [{"id": 555}]
    assert "pipeline_id" not in item  # the account's main pipeline and first status then


@pytest.mark.parametrize("value, expected", [("lp12", 12), ("1", 12), ("0", 5), ("lp99", None), ("7", None),
                                             ("", None)])
def test_request_ids_map_back_to_leads(value, expected):
    assert payloads.lead_id_from_request_id(value, [5, 12]) == expected


def test_the_lead_tag_is_matched_exactly():
    deal = {"_embedded": {"tags": [{"name": "leadpath"}, {"name": "lp-123"}, {"name": "lpb-abc"}]}}
    assert payloads.lead_id_from_tags(deal) == 123
    assert payloads.lead_id_from_tags({"_embedded": {"tags": [{"name": "lp-12x"}]}}) is None


def test_contact_keys_are_e164_phone_and_lowercase_email():
    assert payloads.contact_keys("+79991234567", "Anna@Example.COM") == ["+79991234567", "anna@example.com"]
    assert payloads.contact_keys(None, None) == []


def test_sync_log_masks_phones_emails_names_and_tokens():
    document = [{"name": "Lead: x", "_embedded": {"contacts": [{"first_name": "Анна", "custom_fields_values": [
        {"field_code": "PHONE", "values": [{"value": "+79991234567", "enum_code": "WORK"}]},
        {"field_code": "EMAIL", "values": [{"value": "anna@example.com"}]}]}]},
        "custom_fields_values": [{"field_code": "UTM_SOURCE", "values": [{"value": "google"}]}],
        "access_token": "eyJhbGciOiJSUzI1NiJ9.secret"}]
    text = str(mask_document(document))
    for secret in ("+79991234567", "anna@example.com", "Анна", "eyJhbGciOiJSUzI1NiJ9.secret"):
        assert secret not in text
    assert "google" in text and "+79•••••••67" in text


def test_the_log_masks_webhook_custom_fields_and_keeps_tracking_fields_and_tags():
    webhook = {"contacts": {"add": [{"name": "Пётр Петров", "custom_fields": [
        {"id": "1", "name": "Телефон", "code": "PHONE", "values": [{"value": "8 (916) 765-43-21", "enum": "3"}]},
        {"id": "2", "name": "Email", "code": "EMAIL", "values": [{"value": "petrov@example.org"}]},
        {"id": "3", "name": "Адрес", "values": [{"value": "Тверская 1"}]}]}]},
        "leads": {"add": [{"id": "5", "tags": [{"id": "9", "name": "lp-5"}], "custom_fields": [
            {"id": "4", "name": "utm_source", "code": "UTM_SOURCE", "values": [{"value": "google"}]},
            {"id": "5", "code": "REFERRER", "values": [{"value": "https://shop.example/thanks?email=a%40b.ru#x"}]}]}]}}
    text = str(mask_document(webhook))
    for personal in ("765-43-21", "petrov@example.org", "Петров", "Тверская", "a%40b.ru"):
        assert personal not in text
    assert "google" in text and "'lp-5'" in text and "https://shop.example/thanks'" in text
    assert "Телефон" in text and "'PHONE'" in text  # what the field is stays readable


def test_no_window_ever_holds_more_than_the_rate_whoever_calls(redis_client):
    from portal.amocrm.limiter import WINDOW_MS

    limiters = [RequestLimiter(redis_client, "window", 7) for _ in range(3)]
    stamps = []
    lock = threading.Lock()

    def call(limiter, times):
        for _ in range(times):
            limiter.wait()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=call, args=(limiter, 7)) for limiter in limiters]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 21
    window = WINDOW_MS / 1000
    assert max(sum(1 for s in stamps if start <= s < start + window * 0.98) for start in stamps) <= 7
    assert sum(1 for s in stamps if s - started < 0.2) == 7  # a burst within the window is allowed
    assert stamps[-1] - started >= 2 * window * 0.95  # 21 calls at 7 per window take two more windows


def test_a_pause_holds_every_caller_back(redis_client):
    limiter = RequestLimiter(redis_client, "pause", 1000)
    limiter.pause(0.3)
    started = time.monotonic()
    limiter.wait()
    assert time.monotonic() - started >= 0.25
