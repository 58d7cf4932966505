"""Leadpath's Yandex Direct sandbox: a small Flask app that behaves like Yandex ID OAuth and the parts of the
Yandex Direct API v5 the spend import uses, held to Yandex's documentation (docs/adplatforms.md lists the facts and
their sources, and what the sandbox chose where the documentation is silent).

``create_app(config)`` builds it; serve it with ``portal.sandbox.server.serve_in_thread``. Routes:
``/authorize`` and ``/token`` (``oauth``), ``/json/v5/reports|clients|agencyclients|campaigns`` (``api``),
``/_sandbox/…`` (``control``). Settings are the ``YD_*`` keys of ``state.DEFAULT_CONFIG``; the start state is one
advertiser (``sandbox-advertiser``, RUB, 3 campaigns) and one agency (``sandbox-agency``) with two clients
(``agency-client-rub``, 4 campaigns; ``agency-client-usd``, USD, 2 campaigns).
"""
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from . import api, control, oauth
from .state import DEFAULT_CONFIG, YandexSandboxState


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # a larger body answers 413
    app.config.update(DEFAULT_CONFIG)
    app.config.update(config or {})
    app.json.ensure_ascii = False
    app.extensions["yandex_direct_sandbox"] = YandexSandboxState({key: app.config[key] for key in DEFAULT_CONFIG})
    app.register_blueprint(oauth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)

    @app.errorhandler(HTTPException)
    def http_error(error):
        if request.path.startswith("/json/"):
            return api.error_response(api.ApiError(error.code or 400, 8000, "Invalid request", error.name))
        return jsonify({"error": error.name, "message": error.description}), error.code

    return app
