"""Leadpath: lead-to-revenue for businesses that sell through amoCRM.

The app factory imports Flask and the features when it runs, not when the package is imported: plain libraries
inside the package (`portal.amocrm.api`) import without Flask, and each feature is imported once, by the factory.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from config import INSTANCE_DIR, config_from_environment

if TYPE_CHECKING:
    from flask import Flask


def create_app(config_class=None, **overrides) -> Flask:
    """Build the app. No connections are made and nothing is migrated here."""
    from flask import Flask

    config_class = config_class or config_from_environment()
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), template_folder="../templates",
                static_folder="../static")
    app.config.from_object(config_class)
    app.config.update(overrides)
    config_class.init_app(app)

    from portal.log_context import configure_logging

    configure_logging(app)
    install_ingest_layer(app)
    install_proxy_fix(app)
    size_database_pool(app)
    register_extensions(app)
    register_template_helpers(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def size_database_pool(app: Flask) -> None:
    """DATABASE_POOL_SIZE for PostgreSQL (SQLite's pools take no size)."""
    if str(app.config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("postgresql"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"],
                                                   "pool_size": app.config["DATABASE_POOL_SIZE"]}


def install_ingest_layer(app: Flask) -> None:
    """The hot public endpoints beneath Flask (portal.ingest); inside ProxyFix, so they see the client's address."""
    from portal.ingest.routes import mount_ingest_layer

    mount_ingest_layer(app)


PROXY_FIX_SETTINGS = {"x_for": "PROXY_FIX_X_FOR", "x_proto": "PROXY_FIX_X_PROTO", "x_host": "PROXY_FIX_X_HOST",
                      "x_port": "PROXY_FIX_X_PORT", "x_prefix": "PROXY_FIX_X_PREFIX"}


def install_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* from the configured number of proxies, and only when configured (else they are spoofable)."""
    counts = {arg: int(app.config.get(name) or 0) for arg, name in PROXY_FIX_SETTINGS.items()}
    if any(counts.values()):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)


def register_extensions(app: Flask) -> None:
    from portal import crypto
    from portal.extensions import csrf, db, limiter, login_manager, migrate, redis_connection
    from portal.security import SessionInterface, register_security

    crypto.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    redis_connection.init_app(app)
    register_security(app)
    app.session_interface = SessionInterface()

    from flask_babel import lazy_gettext

    from portal.auth.sessions import load_user

    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to continue.")
    login_manager.localize_callback = str  # the lazy message in the request's language, as a plain str to flash
    login_manager.login_message_category = "info"


def register_template_helpers(app: Flask) -> None:
    from portal import i18n
    from portal.templating import register_template_helpers as register

    i18n.init_app(app)
    register(app)


def register_blueprints(app: Flask) -> None:
    from portal.amocrm.routes import bp as connection_bp
    from portal.amocrm.sync_routes import bp as sync_bp
    from portal.auth.routes import bp as auth_bp
    from portal.dashboard.routes import bp as dashboard_bp
    from portal.extensions import csrf
    from portal.health import bp as health_bp
    from portal.leads.routes import bp as leads_bp
    from portal.mail.routes import bp as mail_bp
    from portal.metrics.routes import bp as metrics_bp
    from portal.onboarding.routes import bp as onboarding_bp
    from portal.reports.api import api_bp as reports_api_bp
    from portal.reports.routes import bp as reports_bp
    from portal.settings.routes import bp as settings_bp
    from portal.spend.routes import bp as spend_bp

    for blueprint in (
        health_bp,
        auth_bp,
        dashboard_bp,
        settings_bp,
        connection_bp,
        leads_bp,
        reports_bp,
        spend_bp,
        sync_bp,
        metrics_bp,
        mail_bp,
        onboarding_bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(reports_api_bp)  # read-only, Bearer token: no session to forge
    app.register_blueprint(reports_api_bp)


def register_error_handlers(app: Flask) -> None:
    from portal.errors import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from portal.commands import register

    register(app)
