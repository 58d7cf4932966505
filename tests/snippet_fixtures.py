"""Helpers for the snippet's browser tests: landing pages with the snippet on another origin than Leadpath, the
outbox as the page keeps it, and waits that keep Playwright's events (routes, requests) flowing."""
import time

from intake_fixtures import leads_of

LANDING_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Landing</title></head><body>{body}
<script src="{api}/static/js/leadpath.js" data-workspace="{workspace}" async></script></body></html>"""
OWN_FORM = """<form data-leadpath><label>Your name <input name="name"></label>
<label>Phone <input name="phone" type="tel"></label><button type="submit">Call me</button></form>"""
# The outbox wherever the snippet keeps it: localStorage, else its cookie.
OUTBOX_JS = """(() => {
  let raw = null;
  try { raw = localStorage.getItem("leadpath_outbox"); } catch (e) {}
  if (raw === null) {
    const match = document.cookie.match(/(?:^|; )leadpath_outbox=([^;]*)/);
    raw = match ? decodeURIComponent(match[1]) : "[]";
  }
  return JSON.parse(raw);
})()"""
STATUS_JS = "[...document.querySelectorAll('.leadpath-status')].map(s => s.textContent).join('')"


class Landing:
    """A customer's site (the `other_origin_site` fixture): `url(path, body)` adds a page with the snippet."""

    def __init__(self, site: tuple[str, dict], api: str, public_id: str):
        self.base, self.pages = site
        self.api, self.public_id = api, public_id

    def url(self, path: str, body: str = OWN_FORM) -> str:
        self.pages[path] = LANDING_PAGE.format(body=body, api=self.api, workspace=self.public_id).encode()
        return self.base + path


def outbox(page) -> list:
    return page.evaluate(OUTBOX_JS)


def wait_for_outbox(page, count: int, timeout: float = 20_000) -> list:
    page.wait_for_function(f"{OUTBOX_JS}.length === {count}", timeout=timeout, polling=100)
    return outbox(page)


def send(page, name: str, phone: str, **extra) -> str:
    """Fill the form and send it; the status it ends with (whatever follows "Sending…")."""
    page.evaluate("document.querySelectorAll('.leadpath-status').forEach(s => { s.textContent = ''; })")
    page.fill("[name=name]", name)
    page.fill("[name=phone]", phone)
    for field, value in extra.items():
        page.fill(f"[name={field}]", value)
    page.click("form [type=submit]")
    page.wait_for_function(f"!['', 'Sending…'].includes({STATUS_JS})", polling=50)
    return page.evaluate(STATUS_JS)


def leads_arrive(page, app, workspace_id: int, count: int, timeout: float = 20) -> list:
    """The workspace's leads once there are `count`; waits in the page so that route handlers keep running."""
    deadline = time.monotonic() + timeout
    while len(leads := leads_of(app, workspace_id)) < count:
        assert time.monotonic() < deadline, f"expected {count} lead(s), have {len(leads)}"
        page.wait_for_timeout(200)
    return leads


def posts_to(page, api: str) -> list:
    """The API's POST answers as the page gets them: [(monotonic time, status, Retry-After, request body)]."""
    answers = []

    def record(response):
        if response.url == api and response.request.method == "POST":
            answers.append((time.monotonic(), response.status, response.headers.get("retry-after"),
                            response.request.post_data or ""))

    page.on("response", record)
    return answers
