"""Small things a new user tripped over: the waiting time of the oldest pending lead as a duration, a period the
page cannot use says so, the Leads list shows how many leads match, and part of a phone number finds its lead."""
from datetime import UTC, datetime, timedelta

from fixtures.reports import add_lead
from fixtures.support import workspace_of

from portal.extensions import db
from portal.i18n import duration
from portal.models import AmoCRMConnection

RU = {"Accept-Language": "ru"}


def test_durations_read_as_days_hours_and_minutes(app):
    with app.test_request_context():
        assert duration(104994 * 60) == "72 d 21 h"
        assert (duration(3 * 3600 + 5 * 60), duration(3600), duration(12 * 60), duration(30)) == (
            "3 h 5 min", "1 h", "12 min", "less than a minute")
    with app.test_request_context(headers=RU):
        assert duration(104994 * 60) == "72 д 21 ч"


def test_the_oldest_waiting_lead_shows_how_long_it_waits(app, owner, owner_client):
    workspace_id = workspace_of(app, owner)
    with app.app_context():
        db.session.add(AmoCRMConnection(workspace_id=workspace_id, base_domain="acme.amocrm.ru", status="connected"))
        db.session.commit()
    add_lead(app, workspace_id, datetime.now(UTC) - timedelta(minutes=104994, seconds=30), sync_status="pending")
    html = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert "the oldest for 72 d 21 h" in html and "104994" not in html


def test_a_period_the_page_cannot_use_is_named_not_silently_replaced(owner_client):
    for url in ("/", "/reports/roi", "/leads", "/reports/spend"):
        html = owner_client.get(url + "?period=banana").get_data(as_text=True)
        assert "Unknown period “banana”: the default period is shown instead." in html, url
    html = owner_client.get("/reports/roi?period=custom&from=2026-02-30&to=2026-03-01").get_data(as_text=True)
    assert "“2026-02-30” is not a date" in html
    assert "is not a date" not in owner_client.get("/reports/roi?period=7d").get_data(as_text=True)
    csv = owner_client.get("/reports/roi.csv?period=banana")
    assert csv.status_code == 200 and "Unknown period" not in owner_client.get("/leads").get_data(as_text=True)


def test_the_leads_list_shows_its_total(app, owner, owner_client, monkeypatch):
    workspace_id = workspace_of(app, owner)
    moment = datetime.now(UTC) - timedelta(days=1)
    for index in range(3):
        add_lead(app, workspace_id, moment, "google", "cpc", "brand", name=f"Lead {index}")
    add_lead(app, workspace_id, moment, "yandex", "cpc", "brand", name="Other")
    assert "Leads found: 4" in owner_client.get("/leads").get_data(as_text=True)
    assert "Leads found: 3" in owner_client.get("/leads?source=google").get_data(as_text=True)
    monkeypatch.setattr("portal.leads.routes.COUNT_LIMIT", 2)
    monkeypatch.setattr("portal.leads.services.COUNT_LIMIT", 2)
    assert "Leads found: more than 2" in owner_client.get("/leads").get_data(as_text=True)


def test_part_of_a_phone_number_finds_the_lead(app, owner, owner_client):
    workspace_id = workspace_of(app, owner)
    moment = datetime.now(UTC) - timedelta(days=1)
    add_lead(app, workspace_id, moment, name="Olga", phone="+79161234567")
    add_lead(app, workspace_id, moment, name="Petr", phone="+79031112233")
    for query in ("916123", "916 123", "9161234567", "89161234567", "+7 916 123-45-67"):
        html = owner_client.get("/leads", query_string={"q": query}).get_data(as_text=True)
        assert "Olga" in html and "Petr" not in html, query
