"""A Google Ads sandbox: a small Flask app that behaves as Google's documentation says for what the spend import
uses — the OAuth consent page and token endpoint, ``customers:listAccessibleCustomers``, GAQL through
``googleAds:searchStream`` (a JSON array of batches of 10,000 rows) and ``googleAds:search`` (pages), manager
accounts reached with ``login-customer-id``, quotas — plus ``/_sandbox``.

``create_app(config)`` builds it; run it like the amoCRM sandbox (``portal.sandbox.server.serve_in_thread``); one
host answers for accounts.google.com, oauth2.googleapis.com and googleads.googleapis.com. Settings
(``state.DEFAULT_CONFIG``): the OAuth client, token and code lifetimes, the API versions that answer, the batch
size, the daily operations quota and a per-second limit, "today" and the figures' seed. The seed: user
owner@sandbox.test reaching advertiser 1111111111, manager 2222222222 (clients 3333333333, 4444444444 and, under
sub-manager 6666666666, 7777777777) and the cancelled 5555555555.

Modules: ``state`` (the world), ``gaql`` (the query language), ``api`` (OAuth and the API), ``control``
(``/_sandbox``).
"""
from flask import Flask

from . import api, control
from .state import GoogleSandboxState


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # a larger body answers 413
    app.extensions["google_ads_sandbox"] = GoogleSandboxState(config or {})
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    return app
