"""The Leads page (filters, search, keyset pages, masked contacts, deal links), a lead's page with its sync
timeline, and the streamed CSV — each limited to the user's workspace."""
import csv
import io
import re
from datetime import UTC, datetime, timedelta

from fixtures.reports import add_lead, add_sale
from fixtures.support import workspace_of

from portal.extensions import db
from portal.models import AmoCRMConnection, SyncLogEntry

BASE = datetime.now(UTC) - timedelta(days=5)


def names_on(html: str) -> list[str]:
    return re.findall(r'class="lead-name" href="/leads/\d+">([^<]+)</a>', html)


def test_table_masks_contacts_and_links_the_amocrm_deal(app, owner, owner_client):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, BASE, "google", "cpc", "brand", name="Anna", phone="+79991234567",
                    email="anna@example.com", sync_status="synced", amocrm_lead_id=777)
    add_sale(app, ws, lead, "won", 1500, BASE, BASE)
    with app.app_context():
        db.session.add(AmoCRMConnection(workspace_id=ws, base_domain="acme.amocrm.ru", status="connected"))
        db.session.commit()
    html = owner_client.get("/leads").get_data(as_text=True)
    assert "+79991234567" not in html and "anna@example.com" not in html
    assert "+79•••••••67" in html and "a•••@example.com" in html
    assert 'href="https://acme.amocrm.ru/leads/detail/777"' in html and "won" in html and "RUB\u00a01,500" in html


def test_filters_and_search(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_lead(app, ws, BASE, "Google", "cpc", "brand", name="Anna Petrova", phone="+79990000001",
             sync_status="failed")
    add_lead(app, ws, BASE + timedelta(hours=1), "yandex", "cpc", "rsya", name="Ivan", email="ivan@example.com")
    spam = add_lead(app, ws, BASE + timedelta(hours=2), "google", "cpc", "brand", name="Spammer", is_spam=True)
    add_lead(app, ws, BASE + timedelta(hours=3), "google", "cpc", "brand", name="Anna again", duplicate_of_id=spam)
    add_sale(app, ws, None, "won", 1, BASE, BASE)

    def names(query):
        return sorted(names_on(owner_client.get("/leads" + query).get_data(as_text=True)))

    assert names("") == ["Anna Petrova", "Anna again", "Ivan"]  # spam hidden by default
    assert names("?kind=spam") == ["Spammer"] and names("?kind=repeat") == ["Anna again"]
    assert names("?kind=unique") == ["Anna Petrova", "Ivan"]
    assert names("?source=google") == ["Anna Petrova", "Anna again"]  # case-insensitive
    assert names("?sync=failed") == ["Anna Petrova"]
    assert names("?q=anna") == ["Anna Petrova", "Anna again"]
    assert names("?q=8%20999%20000-00-01") == ["Anna Petrova"]  # a phone as people type it
    assert names("?q=IVAN@example.com") == ["Ivan"]
    assert names("?q=%25") == []  # LIKE wildcards are literal
    assert names("?deal=none") == ["Anna Petrova", "Anna again", "Ivan"]


def test_keyset_pages_cover_every_lead_once(app, owner, owner_client):
    ws = workspace_of(app, owner)
    for number in range(120):
        add_lead(app, ws, BASE + timedelta(minutes=number // 2), name=f"Lead {number:03d}")  # ties on created_at
    seen, url = [], "/leads"
    while url:
        html = owner_client.get(url).get_data(as_text=True)
        seen += names_on(html)
        match = re.search(r'id="next-page" href="([^"]+)"', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert len(seen) == 120 and len(set(seen)) == 120
    assert owner_client.get("/leads?after=not-a-cursor").status_code == 400


def test_lead_page_shows_every_field_sale_and_sync_timeline(app, owner, owner_client):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, BASE, "google", "cpc", "brand", first=("facebook", "social", "promo"), name="Olga",
                    phone="+79990001122", email="olga@example.com", sync_status="failed", last_error="HTTP 400")
    other_lead = add_lead(app, ws, BASE, name="Somebody else")
    add_sale(app, ws, lead, "lost", 900, BASE, BASE)
    with app.app_context():
        db.session.add_all([
            SyncLogEntry(workspace_id=ws, direction="outbound", operation="POST /api/v4/leads/complex",
                         lead_ids=[other_lead, lead], outcome="error", http_status=400, error="bad field",
                         created_at=BASE + timedelta(minutes=1)),
            SyncLogEntry(workspace_id=ws, direction="outbound", operation="unrelated call", lead_ids=[other_lead],
                         outcome="ok", created_at=BASE + timedelta(minutes=2)),
        ])
        db.session.commit()
    html = owner_client.get(f"/leads/{lead}").get_data(as_text=True)
    assert "+79990001122" in html and "olga@example.com" in html  # the lead page shows every field
    assert "facebook" in html and "promo" in html and "HTTP 400" in html and "lost" in html
    timeline = html[html.index('id="sync-timeline"'):]
    assert "POST /api/v4/leads/complex" in timeline and "bad field" in timeline
    assert "unrelated call" not in timeline


def test_csv_streams_filtered_leads_safely(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_lead(app, ws, BASE, "google", "cpc", "brand", name="=1+1", phone="+79990001122")
    add_lead(app, ws, BASE, "yandex", "cpc", "rsya", name="Ivan")
    response = owner_client.get("/leads.csv?source=google")
    assert response.is_streamed and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 and rows[1][2] == "'=1+1" and rows[1][3] == "'+79990001122"


def test_other_workspaces_leads_never_appear(app, make_user, owner, owner_client):
    other = workspace_of(app, make_user("other@example.com"))
    hidden = add_lead(app, other, BASE, "secretsource", "cpc", "x", name="Hidden Person")
    for url in ("/leads", "/leads.csv", "/leads?q=Hidden", "/leads?source=secretsource"):
        response = owner_client.get(url)
        assert "Hidden Person" not in response.get_data(as_text=True)
    assert owner_client.get(f"/leads/{hidden}").status_code == 404
