"""The code Settings → Lead form gives to paste is one piece, and the README shows the same shape."""
import re
from html import unescape
from pathlib import Path

from fixtures.support import workspace_of

from portal.extensions import db
from portal.models import Workspace

README = Path(__file__).resolve().parents[2] / "README.md"


def pasted_code(html: str) -> str:
    return unescape(re.search(r'<textarea id="snippet-code"[^>]*>(.*?)</textarea>', html, re.S).group(1))


def test_settings_gives_the_form_and_the_script_in_one_piece(app, owner, owner_client):
    with app.app_context():
        public_id = db.session.get(Workspace, workspace_of(app, owner)).public_id
    code = pasted_code(owner_client.get("/settings/lead-form").get_data(as_text=True))
    assert code == ('<div data-leadpath-form data-style></div>\n'
                    f'<script src="http://localhost/static/js/leadpath.js" data-workspace="{public_id}" async>'
                    '</script>')


def test_the_readme_shows_the_code_settings_gives(app, owner, owner_client):
    with app.app_context():
        public_id = db.session.get(Workspace, workspace_of(app, owner)).public_id
    code = pasted_code(owner_client.get("/settings/lead-form").get_data(as_text=True))
    generic = code.replace("http://localhost", "https://leadpath.example.com").replace(public_id,
                                                                                       "WORKSPACE_PUBLIC_ID")
    assert f"```html\n{generic}\n```" in README.read_text()


def test_the_default_look_is_served_beside_the_snippet(client):
    response = client.get("/static/css/leadpath-form.css")
    assert response.status_code == 200 and ".leadpath-styled" in response.get_data(as_text=True)
