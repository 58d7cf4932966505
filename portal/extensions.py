"""Unbound extension instances; create_app binds them. Import `db` from here, never from `portal`."""
import time

import fakeredis
import redis
from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Stable constraint names so Alembic can alter them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RedisConnection:
    """The app's Redis: REDIS_URL when set, else an in-process fakeredis server of the app's own (the demo; tests
    without Redis). Each app gets its own, so an in-process worker of one app never takes another app's jobs."""

    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        if url:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
        else:
            client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        app.extensions["leadpath_redis"] = client

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["leadpath_redis"]


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
redis_connection = RedisConnection()


# Disconnect handling without a round trip per request. `pool_pre_ping` pings PostgreSQL on EVERY checkout; on the
# intake and webhook hot paths that was a round trip (and a backend wake-up) as costly as their one INSERT. Here
# only a connection idle for more than IDLE_PING_SECONDS is pinged when checked out: a connection in steady use
# was working milliseconds ago. A connection broken while busy (PostgreSQL restarted under load) fails its
# statement once; SQLAlchemy then invalidates the whole pool, and the hot endpoints answer 503, which the snippet
# and amoCRM retry. Raising DisconnectionError makes the pool discard the connection and check out a fresh one.
IDLE_PING_SECONDS = 10.0


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    checked_in = connection_record.info.get("leadpath_checked_in")
    if checked_in is None or time.monotonic() - checked_in <= IDLE_PING_SECONDS:
        return  # fresh from connect, or used a moment ago
    try:
        ping(dbapi_connection)
        # End the transaction the ping began: a connection handed out "in transaction" cannot be switched to
        # AUTOCOMMIT (the intake's and the webhooks' INSERT, the push lock), which failed the first request after
        # an idle spell with a 500.
        dbapi_connection.rollback()
    except Exception as error:  # any DB-API error means this connection is of no use
        raise DisconnectionError(f"idle connection failed its ping: {error.__class__.__name__}") from error


def ping(dbapi_connection) -> None:
    """SELECT 1 on a driver connection: raises the driver's error when the connection is of no use."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()


@event.listens_for(Pool, "checkin")
def _note_checkin(dbapi_connection, connection_record) -> None:
    if connection_record is not None:
        connection_record.info["leadpath_checked_in"] = time.monotonic()
