"""Polish of the pages around the dashboard: the menu marks the right section, a new API token has a copy button,
a refusal in amoCRM is explained on Settings → amoCRM, the dashboard takes a custom range (and says why a bad one
is not used) and names its date basis next to the report's, and test leads stay out of its sync counts."""
import re
from datetime import UTC, datetime

from fixtures.reports import add_lead, add_sale
from fixtures.support import post_form, workspace_of

from portal.extensions import db
from portal.models import Lead
from portal.models.lead import PENDING


def current_menu_items(html: str) -> list[str]:
    menu = html.split('id="site-menu"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'aria-current="page">([^<]+)<', menu)


def test_the_menu_marks_the_section_of_the_page(owner_client):
    assert current_menu_items(owner_client.get("/settings/api-tokens").get_data(as_text=True)) == ["Settings"]
    assert current_menu_items(owner_client.get("/reports/spend").get_data(as_text=True)) == ["Reports"]
    assert current_menu_items(owner_client.get("/reports/roi").get_data(as_text=True)) == ["Reports"]
    assert current_menu_items(owner_client.get("/leads").get_data(as_text=True)) == ["Leads"]


def test_a_new_token_has_a_copy_button_for_its_field(owner_client):
    html = post_form(owner_client, "/settings/api-tokens", {"name": "Looker"},
                     follow_redirects=True).get_data(as_text=True)
    field = re.search(r'<input type="text" id="([^"]+)" readonly value="lp_[^"]+"', html) or \
        re.search(r'<input type="text" id="([^"]+)" readonly value="[^"]{20,}"', html)
    assert field, html
    assert f'<button class="button small" type="button" id="copy-token" data-copy-target="{field.group(1)}">' in html
    assert 'data-copied="Copied."' in html and "data-selected=" in html and "js/copy-button.js" in html


def test_a_refusal_in_amocrm_is_explained_on_settings(owner_client):
    callback = owner_client.get("/amocrm/callback?error=access_denied&state=x")
    assert callback.status_code == 400 and 'data-outcome="denied"' in callback.get_data(as_text=True)
    html = owner_client.get("/settings/amocrm?amocrm=denied").get_data(as_text=True)
    paragraph = re.search(r'<p class="error" id="amocrm-denied"([^>]*)>([^<]*)</p>', html)
    assert paragraph and " hidden" not in paragraph.group(1)
    assert "Access was not granted in amoCRM" in paragraph.group(2)
    assert "data-closed-message=" in paragraph.group(1)
    plain = owner_client.get("/settings/amocrm").get_data(as_text=True)
    assert re.search(r'id="amocrm-denied" role="alert" hidden', plain)


def test_the_dashboard_takes_a_custom_range_and_says_its_basis(owner_client):
    html = owner_client.get("/?period=custom&from=2026-03-01&to=2026-03-10").get_data(as_text=True)
    assert 'id="dashboard-range"' in html and 'name="from" value="2026-03-01"' in html
    assert 'name="to" value="2026-03-10"' in html
    assert "Won deals and revenue by the day the deal closed." in html
    note = re.search(r'<p class="muted" id="basis-note">(.*?)</p>', html, re.S).group(1)
    link = re.search(r'href="([^"]+)"', note).group(1).replace("&amp;", "&")
    assert link.startswith("/reports/roi?") and "basis=closed" in link
    assert "from=2026-03-01" in link and "to=2026-03-10" in link


def test_a_custom_range_the_dashboard_cannot_use_is_named(owner_client):
    cases = {"/?period=custom&from=2026-03-01": "needs both dates",
             "/?period=custom&from=2026-03-10&to=2026-03-01": "its dates were swapped",
             "/?period=custom&from=1900-01-01&to=2026-03-01": "is not a date between 1970 and 2199",
             "/?period=custom&from=2020-01-01&to=2026-03-01": "at most 1098 days",
             "/?period=banana": "Unknown period “banana”"}
    for url, message in cases.items():
        assert message in owner_client.get(url).get_data(as_text=True), url
    assert "flash-error" not in owner_client.get("/?period=custom&from=2026-03-01&to=2026-03-10").get_data(as_text=True)


def test_test_leads_are_not_counted_as_waiting(app, owner, owner_client):
    ws = workspace_of(app, owner)
    add_lead(app, ws, datetime.now(UTC), "google")
    with app.app_context():
        db.session.add(Lead(workspace_id=ws, name="Leadpath test lead", is_test=True, sync_status=PENDING))
        db.session.commit()
        assert db.session.query(Lead).filter_by(workspace_id=ws, sync_status=PENDING).count() == 2
    html = owner_client.get("/").get_data(as_text=True)
    assert "waiting to sync: 1<" in html


def test_dashboard_figures_are_written_the_readers_way(app, owner, owner_client):
    ws = workspace_of(app, owner)
    lead = add_lead(app, ws, datetime.now(UTC), "google")
    add_sale(app, ws, lead, "won", "1234567.89", datetime.now(UTC), datetime.now(UTC))
    def tiles(lang: str) -> list[str]:
        html = owner_client.get(f"/?period=7d&lang={lang}").get_data(as_text=True)
        return [value.strip() for value in re.findall(r'class="tile-value">([^<]*)<', html)]

    assert any("1,234,568" in value for value in tiles("en"))
    assert "1\u00a0234\u00a0568\u00a0₽" in tiles("ru")
