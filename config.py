"""Configuration classes. The only module that reads the environment.

Pick one with LEADPATH_CONFIG=development|testing|production (default development).
"""
import base64
import hashlib
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _dev_secret_key() -> str:
    """A random key kept in instance/ so a restarted demo keeps its sessions and encrypted tokens."""
    path = INSTANCE_DIR / "dev-secret.key"
    if not path.exists():
        INSTANCE_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def derived_fernet_key(secret: str) -> str:
    """Development only: a Fernet key derived from SECRET_KEY."""
    return base64.urlsafe_b64encode(hashlib.sha256(("leadpath-fernet:" + secret).encode()).digest()).decode()


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # Former SECRET_KEYs, comma-separated: sessions signed with them stay valid while a new key rolls out.
    SECRET_KEY_FALLBACKS = _env_list("SECRET_KEY_FALLBACKS")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    # No ping per checkout (a round trip per request on the hot paths): portal.extensions pings only connections
    # idle for over 10 s; pool_recycle replaces connections before server-side idle timeouts would cut them.
    # hide_parameters: a failed statement's message (logged, kept by RQ with a failed job's traceback, stored as an
    # event's error) names the values bound to it, which are leads' names, phones and e-mails.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False, "pool_recycle": 1800, "hide_parameters": True}
    # PostgreSQL connections a process keeps open. A worker thread pushing leads holds two (its session and the
    # push's advisory lock): keep this at least 2 × `worker --threads`, or connections are opened and closed all
    # the time (a new PostgreSQL backend costs milliseconds of CPU).
    DATABASE_POOL_SIZE = int(os.environ.get("DATABASE_POOL_SIZE", 10))
    # No REDIS_URL: an in-process Redis (fakeredis) and worker thread, for the demo.
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # Fernet keys, comma-separated; the first encrypts, all decrypt (rotation).
    ENCRYPTION_KEYS = _env_list("ENCRYPTION_KEYS")

    SESSION_COOKIE_NAME = "session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    # A logged-in browser's server-side session (portal.auth.sessions) ends after this long without a request,
    # unless "remember me" was ticked: then it lasts REMEMBER_COOKIE_DURATION from the login.
    SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", 12 * 60))
    REMEMBER_COOKIE_NAME = "remember_token"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    REMEMBER_COOKIE_DURATION = int(os.environ.get("REMEMBER_COOKIE_DAYS", 30)) * 24 * 3600
    # The login's device cookie: a browser that logged in to an account before is throttled on its own when
    # that account is under attack (portal.auth.throttle).
    LOGIN_DEVICE_COOKIE_NAME = "login_device"
    LOGIN_DEVICE_COOKIE_DAYS = int(os.environ.get("LOGIN_DEVICE_COOKIE_DAYS", 365))
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    # Pages speak English, Russian or Ukrainian (portal.i18n picks one per request); English when nothing asks.
    # The catalogs live in portal/translations (relative to the portal package).
    BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LANGUAGE", "en")
    BABEL_TRANSLATION_DIRECTORIES = "translations"
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", 1024 * 1024))
    PREFERRED_URL_SCHEME = os.environ.get("PREFERRED_URL_SCHEME", "http")
    # Public base URL (scheme://host) used in webhook URLs and OAuth redirect URIs; default: the request's host.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/") or None

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # Redis down must not turn into 500s: count in process memory until it is back (checked with backoff).
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
    # Failed log-ins allowed before each further attempt waits (30 s, doubling up to the window; portal.auth.
    # throttle): per account and client (address, or a device that logged in before); per account from all
    # clients without a device cookie; per address for all accounts (loose: many people share one NAT).
    LOGIN_FAILURES_PER_CLIENT = os.environ.get("LOGIN_FAILURES_PER_CLIENT", "5 per 15 minutes")
    LOGIN_FAILURES_PER_ACCOUNT = os.environ.get("LOGIN_FAILURES_PER_ACCOUNT", "20 per 15 minutes")
    LOGIN_FAILURES_PER_ADDRESS = os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "100 per 15 minutes")
    SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "10 per hour")
    INVITE_TTL_HOURS = int(os.environ.get("INVITE_TTL_HOURS", 72))
    PASSWORD_RESET_TTL_MINUTES = int(os.environ.get("PASSWORD_RESET_TTL_MINUTES", 60))
    # Per client address: the "forgot password" form (it sends mail), and re-sending the verification mail.
    PASSWORD_RESET_RATE_LIMIT = os.environ.get("PASSWORD_RESET_RATE_LIMIT", "5 per 15 minutes")
    # Reset mails one account receives at most in 15 minutes, however many addresses ask (the form's answer
    # is the same either way, so a flood neither reveals the account nor fills its inbox).
    PASSWORD_RESET_MAILS_PER_ACCOUNT = int(os.environ.get("PASSWORD_RESET_MAILS_PER_ACCOUNT", 3))
    # Every "forgot password" answer takes at least this long, whether or not the address has an account: the
    # work differs by a few milliseconds (storing the link and its mail), which timing would otherwise show.
    PASSWORD_RESET_MIN_SECONDS = float(os.environ.get("PASSWORD_RESET_MIN_SECONDS", 0.25))
    EMAIL_VERIFICATION_TTL_HOURS = int(os.environ.get("EMAIL_VERIFICATION_TTL_HOURS", 7 * 24))

    # Outgoing e-mail (portal.mail): password resets, invites, e-mail verification, sent over SMTP from the
    # outbox table by a job; a failed delivery is tried again with backoff up to MAIL_MAX_BACKOFF_SECONDS.
    # Without MAIL_SMTP_HOST mails wait in the outbox (the demo runs a local SMTP server of its own).
    MAIL_SMTP_HOST = os.environ.get("MAIL_SMTP_HOST") or None
    MAIL_SMTP_PORT = int(os.environ.get("MAIL_SMTP_PORT", 587))
    MAIL_SMTP_USER = os.environ.get("MAIL_SMTP_USER") or None
    MAIL_SMTP_PASSWORD = os.environ.get("MAIL_SMTP_PASSWORD") or None
    # "starttls" (port 587), "ssl" (implicit TLS, port 465) or "none" (a relay on localhost only).
    MAIL_SMTP_SECURITY = os.environ.get("MAIL_SMTP_SECURITY", "starttls").strip().lower()
    MAIL_SMTP_TIMEOUT_SECONDS = float(os.environ.get("MAIL_SMTP_TIMEOUT_SECONDS", 15))
    MAIL_FROM = os.environ.get("MAIL_FROM", "Leadpath <no-reply@localhost>")
    MAIL_MAX_BACKOFF_SECONDS = int(os.environ.get("MAIL_MAX_BACKOFF_SECONDS", 3600))
    MAIL_RETENTION_DAYS = int(os.environ.get("MAIL_RETENTION_DAYS", 30))  # sent mails kept this long
    # /dev/outbox: every mail sent, with its links, for anyone to read. Development and the demo only.
    MAIL_OUTBOX_PAGE = False

    # Lead intake (POST /api/leads)
    LEAD_RATE_LIMIT_IP = os.environ.get("LEAD_RATE_LIMIT_IP", "30 per minute")
    LEAD_RATE_LIMIT_WORKSPACE = os.environ.get("LEAD_RATE_LIMIT_WORKSPACE", "1200 per minute")
    LEAD_MAX_BODY_BYTES = int(os.environ.get("LEAD_MAX_BODY_BYTES", 16 * 1024))
    # Visit beacons (POST /api/visits): one per visit, so a person sends a few an hour; an office behind one address
    # sends more. The workspace limit bounds what one site's traffic (or a flood naming it) costs.
    VISIT_RATE_LIMIT_IP = os.environ.get("VISIT_RATE_LIMIT_IP", "60 per minute")
    VISIT_RATE_LIMIT_WORKSPACE = os.environ.get("VISIT_RATE_LIMIT_WORKSPACE", "6000 per minute")
    VISIT_MAX_BODY_BYTES = int(os.environ.get("VISIT_MAX_BODY_BYTES", 8 * 1024))
    # How long a web process trusts its copy of a workspace's intake settings (allowed origins, duplicate window).
    LEAD_WORKSPACE_CACHE_SECONDS = float(os.environ.get("LEAD_WORKSPACE_CACHE_SECONDS", 10))
    # How long a web process trusts its copy of a workspace's webhook secret and amoCRM account (0: no cache).
    WEBHOOK_WORKSPACE_CACHE_SECONDS = float(os.environ.get("WEBHOOK_WORKSPACE_CACHE_SECONDS", 5))
    # A webhook is acknowledged once its event is committed with its WAL flushed to disk. "false" (an operator's
    # opt-out) commits it with synchronous_commit = off: faster under bursts, but a PostgreSQL crash can lose
    # the last ~0.6 s of acknowledged events (reconciliation re-reads their deals within the hour).
    WEBHOOK_SYNCHRONOUS_COMMIT = os.environ.get("WEBHOOK_SYNCHRONOUS_COMMIT", "true").strip().lower() not in (
        "0", "false", "no", "off")

    # amoCRM webhooks (POST /webhooks/amocrm/<workspace>/<secret>): body limits, and how many wrong URLs an address
    # may try (per workspace, and in all) before it is throttled.
    WEBHOOK_MAX_BYTES = int(os.environ.get("WEBHOOK_MAX_BYTES", 512 * 1024))
    WEBHOOK_MAX_FIELDS = int(os.environ.get("WEBHOOK_MAX_FIELDS", 10_000))
    WEBHOOK_GUESS_RATE_LIMIT = os.environ.get("WEBHOOK_GUESS_RATE_LIMIT", "20 per minute")
    WEBHOOK_GUESS_RATE_LIMIT_PER_IP = os.environ.get("WEBHOOK_GUESS_RATE_LIMIT_PER_IP", "120 per minute")

    # amoCRM
    AMOCRM_CLIENT_ID = os.environ.get("AMOCRM_CLIENT_ID") or None
    AMOCRM_CLIENT_SECRET = os.environ.get("AMOCRM_CLIENT_SECRET") or None
    # Two regions sell the same CRM: amoCRM (amocrm.ru, amocrm.com) and Kommo (kommo.com). A workspace picks one in
    # Settings → amoCRM before connecting (new workspaces start with AMOCRM_REGION); it decides the button, the
    # consent page and the account hosts accepted. portal.amocrm.regions reads these settings.
    AMOCRM_REGION = os.environ.get("AMOCRM_REGION", "amocrm")
    AMOCRM_BUTTON_SRC = os.environ.get("AMOCRM_BUTTON_SRC", "https://www.amocrm.ru/auth/button.min.js")
    AMOCRM_OAUTH_URL = os.environ.get("AMOCRM_OAUTH_URL", "https://www.amocrm.ru/oauth")
    AMOCRM_ALLOWED_DOMAINS = _env_list("AMOCRM_ALLOWED_DOMAINS", ".amocrm.ru,.amocrm.com")
    # Where a renamed account's new address is asked for (GET /oauth2/account/current/subdomain) when the access
    # token carries no `api_domain` claim (tokens issued before amoCRM added it).
    AMOCRM_API_DOMAIN = os.environ.get("AMOCRM_API_DOMAIN", "api-a.amocrm.ru")
    KOMMO_BUTTON_SRC = os.environ.get("KOMMO_BUTTON_SRC", "https://www.kommo.com/auth/button.js")
    KOMMO_OAUTH_URL = os.environ.get("KOMMO_OAUTH_URL", "https://www.kommo.com/oauth")
    KOMMO_ALLOWED_DOMAINS = _env_list("KOMMO_ALLOWED_DOMAINS", ".kommo.com")
    KOMMO_API_DOMAIN = os.environ.get("KOMMO_API_DOMAIN", "api-c.kommo.com")
    # Hosts (host:port) allowed as `referer` besides amoCRM's domains, spoken to over plain http: the sandbox.
    AMOCRM_DEV_HOSTS = _env_list("AMOCRM_DEV_HOSTS")
    AMOCRM_RATE_LIMIT_PER_SEC = int(os.environ.get("AMOCRM_RATE_LIMIT_PER_SEC", 7))
    AMOCRM_TIMEOUT_SECONDS = float(os.environ.get("AMOCRM_TIMEOUT_SECONDS", 15))
    # Longest wait between two attempts at a lead whose push failed (exponential backoff from 1 s up to this).
    SYNC_MAX_BACKOFF_SECONDS = float(os.environ.get("SYNC_MAX_BACKOFF_SECONDS", 300))
    # Attempts before a lead is `failed` (a Retry button sends it again): with the ceiling above, 20 attempts
    # ride out about an hour of amoCRM trouble.
    SYNC_MAX_ATTEMPTS = int(os.environ.get("SYNC_MAX_ATTEMPTS", 20))
    # After a push whose outcome is unknown (timeout, dropped connection, 5xx, 504), the least wait before its deals
    # are looked up and adopted or the leads resent: amoCRM may still be applying the request.
    SYNC_SETTLE_SECONDS = float(os.environ.get("SYNC_SETTLE_SECONDS", 30))
    SYNC_LOG_RETENTION_DAYS = int(os.environ.get("SYNC_LOG_RETENTION_DAYS", 30))

    # Ad platforms (docs/adplatforms.md). Yandex Direct: an app registered in Yandex ID (oauth.yandex.ru) with
    # access to the Direct API; its callback is <PUBLIC_BASE_URL>/settings/ad-accounts/yandex_direct/callback.
    YANDEX_DIRECT_CLIENT_ID = os.environ.get("YANDEX_DIRECT_CLIENT_ID") or None
    YANDEX_DIRECT_CLIENT_SECRET = os.environ.get("YANDEX_DIRECT_CLIENT_SECRET") or None
    YANDEX_DIRECT_OAUTH_URL = os.environ.get("YANDEX_DIRECT_OAUTH_URL", "https://oauth.yandex.ru")
    YANDEX_DIRECT_API_URL = os.environ.get("YANDEX_DIRECT_API_URL", "https://api.direct.yandex.com")
    AD_PLATFORM_TIMEOUT_SECONDS = float(os.environ.get("AD_PLATFORM_TIMEOUT_SECONDS", 60))
    # How long one import job waits for an offline report before it steps aside and is enqueued again.
    AD_REPORT_WAIT_SECONDS = float(os.environ.get("AD_REPORT_WAIT_SECONDS", 120))
    AD_IMPORT_BACKFILL_DAYS = int(os.environ.get("AD_IMPORT_BACKFILL_DAYS", 90))
    # Platforms correct recent statistics for a few days (Yandex: usually settled within 3): the daily import
    # re-reads this many days before today.
    AD_IMPORT_TRAILING_DAYS = int(os.environ.get("AD_IMPORT_TRAILING_DAYS", 3))
    AD_IMPORT_MAX_ATTEMPTS = int(os.environ.get("AD_IMPORT_MAX_ATTEMPTS", 8))
    # Exchange rates for spend in another currency than the workspace's: "USD:RUB=92.5,EUR:RUB=100.1" (one unit of
    # the first currency in the second). Take them from the central bank the business reports in (e.g. the Bank of
    # Russia's official rates) and update them as often as the reports need; a missing rate fails the import with
    # a message naming it, never a silent 1:1.
    AD_SPEND_RATES = os.environ.get("AD_SPEND_RATES", "")

    # VK Ads (ads.vk.com): the app registered for API access (authorization-code grant) and where VK answers.
    VK_ADS_CLIENT_ID = os.environ.get("VK_ADS_CLIENT_ID") or None
    VK_ADS_CLIENT_SECRET = os.environ.get("VK_ADS_CLIENT_SECRET") or None
    VK_ADS_API_URL = os.environ.get("VK_ADS_API_URL", "https://ads.vk.com")
    VK_ADS_OAUTH_URL = os.environ.get("VK_ADS_OAUTH_URL", "https://ads.vk.com/hq/settings/access")
    VK_ADS_TIMEOUT_SECONDS = float(os.environ.get("VK_ADS_TIMEOUT_SECONDS", 30))

    # Google Ads API (REST): the OAuth client of the Cloud project with Google Ads API access, and where Google
    # answers. Versions live about a year: move GOOGLE_ADS_API_VERSION before the one in use is sunset.
    GOOGLE_ADS_CLIENT_ID = os.environ.get("GOOGLE_ADS_CLIENT_ID") or None
    GOOGLE_ADS_CLIENT_SECRET = os.environ.get("GOOGLE_ADS_CLIENT_SECRET") or None
    GOOGLE_ADS_API_URL = os.environ.get("GOOGLE_ADS_API_URL", "https://googleads.googleapis.com")
    GOOGLE_ADS_OAUTH_URL = os.environ.get("GOOGLE_ADS_OAUTH_URL", "https://accounts.google.com/o/oauth2/v2/auth")
    GOOGLE_ADS_TOKEN_URL = os.environ.get("GOOGLE_ADS_TOKEN_URL", "https://oauth2.googleapis.com/token")
    GOOGLE_ADS_API_VERSION = os.environ.get("GOOGLE_ADS_API_VERSION", "v26")
    # Sent as the `developer-token` header when set. Google retired developer tokens on 2026-09-09 (access now
    # belongs to the Cloud project of the OAuth client) and ignores the header; kept for older set-ups.
    GOOGLE_ADS_DEVELOPER_TOKEN = os.environ.get("GOOGLE_ADS_DEVELOPER_TOKEN") or None
    GOOGLE_ADS_TIMEOUT_SECONDS = float(os.environ.get("GOOGLE_ADS_TIMEOUT_SECONDS", 60))

    # Jobs
    JOB_TIMEOUT_SECONDS = int(os.environ.get("JOB_TIMEOUT_SECONDS", 300))
    SCHEDULER_TICK_SECONDS = float(os.environ.get("SCHEDULER_TICK_SECONDS", 5))
    # A web process asks Redis to schedule a workspace's push (or webhook processing) at most once in this many
    # seconds; what comes in meanwhile is scheduled when the time is up (portal.jobs.coalesce). 0: every time.
    SCHEDULE_DEBOUNCE_SECONDS = float(os.environ.get("SCHEDULE_DEBOUNCE_SECONDS", 0.2))

    # Behind a reverse proxy (nginx): how many proxies set each X-Forwarded-* header. 0 = trust none (the default,
    # right when clients reach gunicorn directly). With nginx in front set PROXY_FIX_X_FOR=1 and PROXY_FIX_X_PROTO=1,
    # so request.remote_addr (rate limits, lead IPs) is the client and url_for builds https URLs.
    PROXY_FIX_X_FOR = int(os.environ.get("PROXY_FIX_X_FOR", 0))
    PROXY_FIX_X_PROTO = int(os.environ.get("PROXY_FIX_X_PROTO", 0))
    PROXY_FIX_X_HOST = int(os.environ.get("PROXY_FIX_X_HOST", 0))
    PROXY_FIX_X_PORT = int(os.environ.get("PROXY_FIX_X_PORT", 0))
    PROXY_FIX_X_PREFIX = int(os.environ.get("PROXY_FIX_X_PREFIX", 0))
    # GET /metrics: with a token, scrapers send `Authorization: Bearer <token>`; without one, only direct
    # loopback requests are answered (everything else gets 404).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None

    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    DEMO = False
    TESTING = False

    @classmethod
    def init_app(cls, app) -> None:
        """Fill values derived at start-up (not at import)."""


class DevelopmentConfig(Config):
    MAIL_OUTBOX_PAGE = True
    SQLALCHEMY_DATABASE_URI = Config.SQLALCHEMY_DATABASE_URI or f"sqlite:///{INSTANCE_DIR / 'leadpath.db'}"
    AMOCRM_DEV_HOSTS = Config.AMOCRM_DEV_HOSTS or ["127.0.0.1:5001", "localhost:5001"]

    @classmethod
    def init_app(cls, app) -> None:
        app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or _dev_secret_key()
        app.config["ENCRYPTION_KEYS"] = app.config["ENCRYPTION_KEYS"] or [
            derived_fernet_key(app.config["SECRET_KEY"])
        ]


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
    ENCRYPTION_KEYS = [derived_fernet_key(SECRET_KEY)]
    RATELIMIT_STORAGE_URI = "memory://"
    AMOCRM_DEV_HOSTS = ["127.0.0.1", "localhost"]  # any port: test servers take free ports
    SYNC_SETTLE_SECONDS = float(os.environ.get("SYNC_SETTLE_SECONDS", 1))  # the sandbox applies at once or never
    SCHEDULE_DEBOUNCE_SECONDS = 0.0  # tests see each lead's scheduling at once (test_schedule_debounce.py: the rest)
    PASSWORD_RESET_MIN_SECONDS = 0.0  # tests of the floor set it (tests/auth/test_password_reset_timing.py)


class ProductionConfig(Config):
    # `__Host-` cookies are refused by browsers unless Secure, Path=/ and without Domain: no subdomain (or plain
    # http page) can set or overwrite them.
    SESSION_COOKIE_NAME = "__Host-session"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_PATH = "/"
    SESSION_COOKIE_DOMAIN = None
    REMEMBER_COOKIE_NAME = "__Host-remember_token"
    REMEMBER_COOKIE_SECURE = True
    LOGIN_DEVICE_COOKIE_NAME = "__Host-login_device"
    PREFERRED_URL_SCHEME = "https"
    REQUIRED = ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "REDIS_URL", "ENCRYPTION_KEYS")

    @classmethod
    def init_app(cls, app) -> None:
        missing = [name for name in cls.REQUIRED if not app.config.get(name)]
        if missing:
            names = ", ".join("DATABASE_URL" if n == "SQLALCHEMY_DATABASE_URI" else n for n in missing)
            raise RuntimeError(f"Production configuration is missing: {names}")


CONFIGS = {"development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig}


def config_from_environment():
    name = os.environ.get("LEADPATH_CONFIG", "development").lower()
    if name not in CONFIGS:
        raise RuntimeError(f"LEADPATH_CONFIG must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name]
