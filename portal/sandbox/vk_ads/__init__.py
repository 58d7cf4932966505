"""A VK Ads sandbox: a small Flask app that behaves as VK Ads' documentation says for what the spend import uses —
the authorization-code consent page, the token endpoint (four grants, the five-token cap, refresh that kills the
old access token), user, agency clients, ad plans and daily statistics with their limits — plus ``/_sandbox``.

``create_app(config)`` builds it; run it like the amoCRM sandbox (``portal.sandbox.server.serve_in_thread``).
Settings (``state.DEFAULT_CONFIG``): the app's client id, secret and redirect URIs, token and code lifetimes, the
token cap, the per-second / hourly / daily limits, the statistics limits, "today" and the figures' seed. State is
in memory; ``POST /_sandbox/reset`` restores the seed: advertiser 1001 (the app owner, three plans), agency 2001
with clients 2101 and 2102.

Modules: ``state`` (the world), ``oauth`` (consent and tokens), ``api`` (resources and statistics), ``control``
(``/_sandbox``).
"""
from flask import Flask

from . import api, control, oauth
from .state import VKSandboxState


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # a larger body answers 413
    app.extensions["vk_ads_sandbox"] = VKSandboxState(config or {})
    app.register_blueprint(oauth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    return app
