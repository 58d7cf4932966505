"""Leadpath: lead-to-revenue for businesses that sell through amoCRM."""
from flask import Flask

from config import INSTANCE_DIR, config_from_environment


def create_app(config_class=None, **overrides) -> Flask:
    """Build the app. No connections are made and nothing is migrated here."""
    config_class = config_class or config_from_environment()
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), template_folder="../templates",
                static_folder="../static")
    app.config.from_object(config_class)
    app.config.update(overrides)
    config_class.init_app(app)

    from portal.logging import configure_logging

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

    from portal.auth.services import load_user

    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"


def register_template_helpers(app: Flask) -> None:
    from portal.templating import register_template_helpers as register

    register(app)


def register_blueprints(app: Flask) -> None:
    from portal.auth import bp as auth_bp
    from portal.connection import bp as connection_bp
    from portal.dashboard import bp as dashboard_bp
    from portal.extensions import csrf
    from portal.health import bp as health_bp
    from portal.intake import bp as intake_bp
    from portal.leads import bp as leads_bp
    from portal.metrics import bp as metrics_bp
    from portal.reports import api_bp as reports_api_bp
    from portal.reports import bp as reports_bp
    from portal.settings import bp as settings_bp
    from portal.spend import bp as spend_bp
    from portal.sync import bp as sync_bp

    for blueprint in (
        health_bp,
        auth_bp,
        dashboard_bp,
        settings_bp,
        connection_bp,
        intake_bp,
        leads_bp,
        reports_bp,
        spend_bp,
        sync_bp,
        metrics_bp,
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
