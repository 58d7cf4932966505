"""Leadpath's amoCRM sandbox: a small Flask app that behaves like amoCRM's OAuth, API v4 and webhooks.

``create_app(config)`` builds it (``flask --app portal.sandbox run --port 5001``). State lives in memory per
app (or, with ``SANDBOX_STATE_FILE``, also in a JSON file) and is thread-safe; ``POST /_sandbox/reset`` restores
the start state:

- one account (``subdomain`` "sandbox", RUB, Europe/Moscow, **duplicate control on**) with a main pipeline
  (incoming status ``type: 1``, three working statuses, 142 won, 143 lost) and a second pipeline, the
  predefined ``tracking_data`` lead fields (UTM_*, REFERRER, GCLID, YCLID, FBCLID, …), one lead field of each
  common type (text, numeric, select, multiselect, date, checkbox, url), contact PHONE / EMAIL / POSITION and
  company PHONE / EMAIL / WEB fields and two users; more accounts through ``POST /_sandbox/accounts``
  (duplicate control off unless asked);
- the integrations of ``SANDBOX_INTEGRATIONS`` (or, when that key is absent, ``leadpath-sandbox-client`` /
  ``leadpath-sandbox-secret`` with redirect ``http://127.0.0.1:5000/amocrm/callback``).

Config keys (``state.DEFAULT_CONFIG`` has the defaults): ``SANDBOX_ACCESS_TOKEN_TTL`` (86400 s),
``SANDBOX_REFRESH_TOKEN_TTL`` (90 days), ``SANDBOX_CODE_TTL`` (1200 s), ``SANDBOX_RATE_LIMIT_PER_SEC`` (7),
``SANDBOX_ACCOUNT_RATE_LIMIT_PER_SEC`` (50), ``SANDBOX_WEBHOOK_RETRY_DELAYS`` ([1, 3] s; amoCRM ~5 and 15
min), ``SANDBOX_WEBHOOK_DISABLE_AFTER`` (100), ``SANDBOX_WEBHOOK_TIMEOUT`` (2.0 s), ``SANDBOX_SECRETS_TIMEOUT``
(5.0 s), ``SANDBOX_INTEGRATIONS``, ``SANDBOX_PUBLIC_HOST`` (the host used as ``referer``, JWT ``base_domain`` and
``api_domain``, and in links; default: the host the request reached), ``SANDBOX_SEARCH_INDEX_DELAY`` (3 s),
``SANDBOX_LIST_FILTERS`` ("ignored"), ``SANDBOX_BLOCK_AFTER_429S`` (50) / ``SANDBOX_BLOCK_WINDOW`` (60 s) /
``SANDBOX_BLOCK_SECONDS`` (60 s), ``SANDBOX_STATE_FILE`` (None: in memory; a path: kept across restarts, see
``persistence``). All but the integrations and the state file can be changed at runtime with
``POST /_sandbox/config`` (see ``control_api``); per-account settings with ``POST /_sandbox/accounts/<id>``.

Modules: ``state`` (store and seed data), ``oauth`` (consent, tokens, button), ``signing`` (the JWT key),
``guard`` (what every ``/api/v4`` call goes through), ``hal`` / ``listing`` / ``validation`` / ``search``
(shared API plumbing), ``filters`` (filter[] / order[]), ``records`` (leads as stored), ``parties``
(contacts and companies as stored), ``changes`` (event log + webhook hand-off), ``account`` / ``leads`` /
``complex`` / ``contacts`` / ``notes`` / ``tags`` / ``tasks`` / ``events`` / ``links`` / ``unsorted`` /
``subscriptions`` (the endpoints), ``pages`` (the deal page), ``hosts`` (accounts on their own hosts),
``persistence`` (state across restarts), ``faults`` (limits, the block and injected faults), ``webhooks``
(sender thread), ``control_api`` (``/_sandbox``), ``server`` (run an app in a thread), ``control`` (a requests
client for the control API).
"""

from types import SimpleNamespace

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from . import (
    account,
    complex,
    contacts,
    control_api,
    events,
    leads,
    links,
    notes,
    oauth,
    pages,
    persistence,
    subscriptions,
    tags,
    tasks,
    unsorted,
)
from .faults import problem
from .hosts import AccountHosts
from .signing import TokenSigner
from .state import DEFAULT_CONFIG, SandboxState
from .webhooks import WebhookSender

# unsorted before leads: ``/leads/unsorted/<uid>`` must not be taken for another leads route.
API_BLUEPRINTS = (
    account,
    unsorted,
    leads,
    complex,
    contacts,
    notes,
    tags,
    tasks,
    events,
    links,
    subscriptions,
)


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__, static_folder="static", static_url_path="/_sandbox/static", template_folder="templates"
    )
    app.config.update(DEFAULT_CONFIG)
    app.config.update(config or {})
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    register_sandbox(app)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def register_sandbox(app: Flask) -> None:
    state = SandboxState({key: app.config[key] for key in DEFAULT_CONFIG})
    signer = TokenSigner()
    path = app.config["SANDBOX_STATE_FILE"]
    if path and persistence.load(state, signer, path):
        # The configured integrations are registered even when the saved state predates them.
        for item in app.config["SANDBOX_INTEGRATIONS"] or []:
            if item["client_id"] not in state.integrations:
                state.create_integration(**item)
    sender = WebhookSender(state)
    sender.start()
    app.extensions["amocrm_sandbox"] = SimpleNamespace(
        state=state, signer=signer, sender=sender, hosts=AccountHosts(app)
    )
    @app.before_request
    def remember_shared_host():
        app.extensions["amocrm_sandbox"].hosts.note_request_host(request.host)

    if path:

        @app.after_request
        def keep_state(response):
            if request.method in ("POST", "PATCH", "DELETE", "PUT"):
                persistence.save(state, signer, path)
            return response


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(oauth.bp)
    for module in API_BLUEPRINTS:
        app.register_blueprint(module.bp)
    app.register_blueprint(control_api.bp)
    app.register_blueprint(pages.bp)


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error):
        # amoCRM answers unknown API routes and bad methods with problem JSON.
        if request.path.startswith("/api/"):
            return problem(error.code, error.name, error.description)
        return error
