"""The button script, run in Node against a minimal fake DOM (a real browser test belongs to the portal)."""

import json
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

HARNESS = r"""
const fs = require("fs");
const [scriptPath, datasetJson, scriptSrc, tagClass] = process.argv.slice(2);
const inserted = [], calls = [], listeners = {};
let opened = null;
const script = {
  src: scriptSrc, dataset: JSON.parse(datasetJson), attrs: {}, nextSibling: null,
  getAttribute(name) { return this.attrs[name] || null; },
  setAttribute(name, value) { this.attrs[name] = value; },
  parentNode: { insertBefore(node) { inserted.push(node); } },
};
global.window = {
  location: { origin: "http://portal.test" }, screenX: 0, screenY: 0, outerWidth: 1200, outerHeight: 900,
  open(url) { opened = url; return {}; },
  addEventListener(type, handler) { listeners[type] = handler; },
  onAmoError(payload) { calls.push(payload); },
};
global.document = {
  baseURI: "http://portal.test/settings", currentScript: script,
  querySelectorAll(selector) { return selector === "script." + tagClass ? [script] : []; },
  createElement(tag) {
    return { tag, style: {}, handlers: {},
             addEventListener(type, handler) { this.handlers[type] = handler; } };
  },
};
eval(fs.readFileSync(scriptPath, "utf8"));
eval(fs.readFileSync(scriptPath, "utf8"));  // a second copy of the script must not add a second button
const button = inserted[0];
if (!button) { console.log(JSON.stringify({ count: 0 })); process.exit(0); }
button.handlers.click({ preventDefault() {} });
listeners.message({ origin: "http://evil.test", data: { error: "access_denied" } });
const denial = { client_id: "abc", error: "access_denied", error_description: "no" };
listeners.message({ origin: "SANDBOX", data: denial });
listeners.message({ origin: "SANDBOX", data: { code: "def502x", state: "st" } });
console.log(JSON.stringify({ count: inserted.length, className: button.className, text: button.textContent,
                             opened, calls }));
"""


def run_button(tmp_path, base_url, dataset, path="/auth/button.min.js", tag_class="amocrm_oauth"):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = tmp_path / "button.js"
    script.write_text(requests.get(f"{base_url}{path}", timeout=5).text, encoding="utf-8")
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS.replace("SANDBOX", base_url), encoding="utf-8")
    result = subprocess.run(
        [node, str(harness), str(script), json.dumps(dataset), f"{base_url}{path}", tag_class],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_button_opens_consent_and_reports_denial(tmp_path, base_url):
    dataset = {
        "clientId": "abc",
        "title": "Подключить amoCRM",
        "className": "my-button",
        "state": "st",
        "mode": "post_message",
        "errorCallback": "onAmoError",
        "color": "green",
    }
    outcome = run_button(tmp_path, base_url, dataset)
    assert outcome["count"] == 1
    assert outcome["className"] == "amocrm_oauth_button my-button"
    assert outcome["text"] == "Подключить amoCRM"
    assert outcome["opened"].startswith(f"{base_url}/oauth?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(outcome["opened"]).query).items()}
    assert params == {"client_id": "abc", "state": "st", "mode": "post_message"}
    assert outcome["calls"] == [{"client_id": "abc", "error": "access_denied", "error_description": "no"}]


def test_secrets_variant_button(tmp_path, base_url):
    dataset = {
        "name": "Leadpath",
        "description": "ROI",
        "redirect_uri": "http://portal.test/cb",
        "secrets_uri": "http://portal.test/secrets",
        "logo": "http://portal.test/logo.png",
        "scopes": "crm,notifications",
        "state": "st",
        "mode": "popup",
    }
    outcome = run_button(tmp_path, base_url, dataset)
    assert outcome["text"] == "Подключить"
    params = {k: v[0] for k, v in parse_qs(urlsplit(outcome["opened"]).query).items()}
    assert "client_id" not in params
    for key in ("name", "description", "redirect_uri", "secrets_uri", "logo", "scopes", "state"):
        assert params[key] == dataset[key]
    assert params["mode"] == "popup"
    # The consent page accepts what the button sends.
    assert requests.get(outcome["opened"], timeout=5).status_code == 200


def test_kommo_button_reads_kommo_tags_only(tmp_path, base_url):
    """Kommo's button (www.kommo.com/auth/button.js) renders ``<script class="kommo_oauth">`` tags (Kommo
    oauth/button); amoCRM's (``button.min.js``) leaves them alone, and Kommo's leaves ``amocrm_oauth`` tags alone."""
    dataset = {"clientId": "abc", "title": "Connect Kommo", "state": "st", "mode": "popup", "theme": "light",
               "errorCallback": "onAmoError"}
    kommo = run_button(tmp_path, base_url, dataset, path="/auth/button.js", tag_class="kommo_oauth")
    assert kommo["count"] == 1 and kommo["text"] == "Connect Kommo"
    assert kommo["opened"].startswith(f"{base_url}/oauth?")
    assert run_button(tmp_path, base_url, dataset, path="/auth/button.min.js", tag_class="kommo_oauth") == {
        "count": 0}
    assert run_button(tmp_path, base_url, dataset, path="/auth/button.js", tag_class="amocrm_oauth") == {
        "count": 0}
