"""Webhooks: subscription CRUD, amoCRM's form-encoded v2 bodies, retries and disabling."""

import time

import pytest
from fixtures.live_services import wait_until

ALL = ["add_lead", "update_lead", "status_lead", "delete_lead", "responsible_lead"]


def subscribe(api, receiver, settings=None, path="/hook"):
    response = api.post(
        "webhooks", {"destination": receiver.url + path, "settings": settings or ALL, "sort": 10}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_webhook_crud(api, receiver):
    assert api.get("webhooks").status_code == 204
    hook = subscribe(api, receiver, ["add_lead"])
    assert hook["destination"] == receiver.url + "/hook" and hook["disabled"] is False
    assert hook["settings"] == ["add_lead"] and isinstance(hook["id"], int)
    again = subscribe(api, receiver, ["status_lead", "update_lead"])
    assert again["id"] == hook["id"]
    listed = api.get("webhooks").json()["_embedded"]["webhooks"]
    assert len(listed) == 1 and listed[0]["settings"] == ["status_lead", "update_lead"]
    response = api.delete("webhooks", {"destination": receiver.url + "/hook"})
    assert response.status_code == 204 and response.content == b""
    assert api.get("webhooks").status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {"destination": "not a url", "settings": ["add_lead"]},
        {"destination": "http://x.test/h", "settings": []},
        {"destination": "http://x.test/h", "settings": ["bogus"]},
        {"destination": "http://x.test/h", "settings": "add_lead"},
    ],
)
def test_webhook_validation(api, body):
    response = api.post("webhooks", body)
    assert response.status_code == 400
    assert "validation-errors" in response.json()


def test_add_body_is_php_style_form_with_strings(api, receiver, account, base_url):
    subscribe(api, receiver)
    result = api.post(
        "leads/complex",
        [
            {
                "name": "Заявка с сайта",
                "price": 1500,
                "custom_fields_values": [{"field_code": "UTM_SOURCE", "values": [{"value": "google"}]}],
                "_embedded": {"tags": [{"name": "lp-5"}], "contacts": [{"first_name": "A"}]},
            }
        ],
    ).json()[0]
    request = receiver.wait_for(1)[0]
    assert request["content_type"].startswith("application/x-www-form-urlencoded")
    assert "leads%5Badd%5D%5B0%5D%5Bid%5D=" in request["raw"]
    form = request["form"]
    prefix = "leads[add][0]"
    assert form[f"{prefix}[id]"] == str(result["id"])
    assert form[f"{prefix}[name]"] == "Заявка с сайта"
    assert form[f"{prefix}[price]"] == "1500"
    for key in (
        "status_id",
        "pipeline_id",
        "date_create",
        "last_modified",
        "created_at",
        "updated_at",
        "responsible_user_id",
        "created_user_id",
        "modified_user_id",
    ):
        assert form[f"{prefix}[{key}]"].isdigit(), key
    assert form[f"{prefix}[account_id]"] == str(account["id"])
    assert form[f"{prefix}[custom_fields][0][name]"] == "utm_source"
    # amoCRM's documented example body has no [code] key on tracking fields.
    assert not any(key.endswith("[code]") for key in form)
    assert form[f"{prefix}[custom_fields][0][id]"].isdigit()
    assert form[f"{prefix}[custom_fields][0][values][0][value]"] == "google"
    assert form[f"{prefix}[tags][0][name]"] == "lp-5"
    assert form["account[subdomain]"] == "sandbox"
    assert form["account[id]"] == str(account["id"])
    assert form["account[_links][self]"] == base_url
    assert not any(key.startswith("leads[status]") for key in form)


def test_patch_status_sends_status_and_update(api, receiver, main_pipeline):
    lead_id = api.create_lead(name="Deal")
    old_status = api.get(f"leads/{lead_id}").json()["status_id"]
    subscribe(api, receiver)
    api.patch(f"leads/{lead_id}", {"status_id": 142, "pipeline_id": main_pipeline["id"], "price": 900})
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[status][0][id]"] == str(lead_id)
    assert form["leads[status][0][status_id]"] == "142"
    assert form["leads[status][0][old_status_id]"] == str(old_status)
    assert form["leads[status][0][old_pipeline_id]"] == str(main_pipeline["id"])
    assert form["leads[status][0][price]"] == "900"
    assert form["leads[update][0][id]"] == str(lead_id)


def test_plain_patch_sends_update_only(api, receiver):
    lead_id = api.create_lead(name="Deal")
    subscribe(api, receiver)
    api.patch(f"leads/{lead_id}", {"name": "Renamed"})
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[update][0][name]"] == "Renamed"
    assert not any(key.startswith("leads[status]") for key in form)


def test_settings_select_the_actions(api, receiver, control):
    subscribe(api, receiver, ["status_lead"])
    lead_id = api.create_lead(name="Deal")  # add: not subscribed
    control.move_lead(lead_id, 143)
    requests_seen = receiver.wait_for(1)
    time.sleep(0.1)
    assert len(receiver.requests) == 1
    form = requests_seen[0]["form"]
    assert form["leads[status][0][status_id]"] == "143"
    assert not any(key.startswith("leads[update]") for key in form)


def test_control_move_fires_status_with_amount(api, receiver, control):
    lead_id = api.create_lead(name="Deal")
    subscribe(api, receiver, ["status_lead"])
    moved = control.move_lead(lead_id, 142, price=77000)
    assert moved["status_id"] == 142 and moved["price"] == 77000 and moved["closed_at"]
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[status][0][price]"] == "77000"


def test_delete_sends_id(api, receiver, control):
    lead_id = api.create_lead(name="Deal")
    subscribe(api, receiver, ["delete_lead"])
    control.delete_lead(lead_id)
    form = receiver.wait_for(1)[0]["form"]
    assert form["leads[delete][0][id]"] == str(lead_id)
    assert "leads[delete][0][name]" not in form


def test_failed_delivery_is_retried(api, receiver, control):
    receiver.statuses = [500]
    subscribe(api, receiver)
    api.create_lead(name="Deal")
    receiver.wait_for(2)
    deliveries = wait_until(lambda: len(control.deliveries()) == 2 and control.deliveries())
    assert [(d["attempt"], d["status"]) for d in deliveries] == [(1, 500), (2, 200)]
    assert deliveries[0]["body"] == deliveries[1]["body"]
    assert deliveries[0]["body"]["account[subdomain]"] == "sandbox"
    counters = control.counters()
    assert counters["webhook_deliveries"] == 2 and counters["webhook_failures"] == 1


def test_webhook_disabled_after_too_many_failures(api, receiver, control):
    receiver.default_status = 503
    subscribe(api, receiver)
    api.create_lead(name="Deal")
    receiver.wait_for(3)  # first attempt + two retries; DISABLE_AFTER is 3 in the suite
    hooks = wait_until(lambda: api.get("webhooks").json()["_embedded"]["webhooks"][0]["disabled"] and True)
    assert hooks
    assert [d["attempt"] for d in control.deliveries()] == [1, 2, 3]
    api.create_lead(name="Ignored")
    time.sleep(0.3)
    assert len(receiver.requests) == 3
    receiver.default_status = 200
    assert subscribe(api, receiver)["disabled"] is False
    api.create_lead(name="Delivered")
    receiver.wait_for(4)


def test_timeout_is_a_failure_and_never_blocks_the_api(api, receiver, control):
    receiver.delay = 0.8  # the suite's SANDBOX_WEBHOOK_TIMEOUT is 0.5 s
    receiver.statuses = [200]
    subscribe(api, receiver)
    started = time.monotonic()
    api.create_lead(name="Deal")
    assert time.monotonic() - started < 0.4
    deliveries = wait_until(lambda: control.deliveries())
    assert deliveries[0]["status"] == "timeout"


def test_unreachable_destination_is_an_error(api, control):
    api.post("webhooks", {"destination": "http://127.0.0.1:9/hook", "settings": ["add_lead"]})
    api.create_lead(name="Deal")
    assert wait_until(lambda: control.deliveries())[0]["status"] == "error"
