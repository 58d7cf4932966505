"""The intake's one INSERT: a lead stored by one statement in autocommit, on a connection kept for it.

The statement is built with SQLAlchemy Core (`_insert_statement`) and compiled once per dialect; it runs on the
driver's connection (on PostgreSQL as a prepared statement through libpq, `_run_libpq`). SQLAlchemy's execution
layer (statement cache, execution context, result wrapping) and the pool's checkout, checkin and isolation
switching cost as much CPU as the round trip to PostgreSQL, so each thread keeps one connection of its own in
autocommit (`_Connections`), beside the engine's pool: it is checked with SELECT 1 after IDLE_PING_SECONDS idle, as
the pool's connections are, and closed when its thread ends, when an error lost it or when the engine is disposed.
A threaded development server (a thread per request) thus connects per request; gunicorn's workers keep their
threads, so their connections last.
"""
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import pq
from sqlalchemy import Boolean, String, Text, bindparam, case, cast, event, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

import portal.extensions as extensions  # its idle-ping settings are read at call time (tests change them)
from portal.extensions import db
from portal.intake.submission import ATTRIBUTION_KEYS, FIRST_TOUCH_KEYS
from portal.models import Lead
from portal.models.lead import PENDING, SKIPPED


def insert_lead(params: dict) -> tuple | None:
    """(id, sync_status) of the new lead, or None when its idempotency key was used before. Committed, its WAL
    flushed, when PostgreSQL answers. Driver errors are raised as SQLAlchemy's (IntegrityError,
    OperationalError with `connection_invalidated` when the connection was lost, …)."""
    engine = db.engine
    dialect = engine.dialect
    prepared = _prepared.get((dialect.name, dialect.driver)) or _prepare(dialect)
    values = {**prepared.constants, **params}
    for name, process in prepared.processors.items():
        values[name] = process(values[name])
    arguments = tuple(values[name] for name in prepared.positions) if prepared.positions is not None else values
    connections = _Connections.of(engine)
    connection = None
    try:
        connection = connections.get()
        run = _run_libpq if prepared.name else _run_cursor
        row = run(prepared, connection, arguments)
    except dialect.loaded_dbapi.Error as error:
        lost = connection is None or dialect.is_disconnect(error, connection, None)
        if lost:
            connections.drop()
        raise DBAPIError.instance(prepared.sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                  dialect=dialect) from error
    finally:
        connections.release()
    return row


class _Connections:
    """The intake's autocommit connections of one engine: one per thread, closed when its thread ends (its slot is
    garbage then), when an error lost it, or when the engine is disposed. A process only ever closes connections
    it made: after a fork the parent's are left alone (closing one would end the parent's session).

    Pools that hand every checkout the same connection (StaticPool, SingletonThreadPool: in-memory SQLite) cannot
    give one away: there each INSERT borrows the pool's connection, switched to autocommit for it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = threading.local()
        self.slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self.lock = threading.Lock()  # for `slots`: threads connect while another may dispose
        self.own = isinstance(engine.pool, QueuePool)

    @classmethod
    def of(cls, engine: Engine) -> "_Connections":
        connections = engine.__dict__.get("_leadpath_intake")
        if connections is None:
            connections = engine.__dict__["_leadpath_intake"] = cls(engine)
            event.listen(engine, "engine_disposed", lambda _engine: connections.close_all())
        return connections

    def get(self):
        if not self.own:
            borrowed = self.local.borrowed = self.engine.raw_connection()
            self.engine.dialect.set_isolation_level(borrowed.dbapi_connection, "AUTOCOMMIT")
            return borrowed.dbapi_connection
        slot, now = getattr(self.local, "slot", None), time.monotonic()
        if slot is not None and (not slot.close.alive or slot.pid != os.getpid()
                                 or now - slot.used > extensions.IDLE_PING_SECONDS and not self._alive(slot)):
            self.drop()
            slot = None
        if slot is None:
            fairy = self.engine.raw_connection()
            fairy.detach()  # the pool makes another for itself; this one is the thread's until closed
            slot = self.local.slot = _Slot(fairy.dbapi_connection)
            with self.lock:
                self.slots.add(slot)
            self.engine.dialect.set_isolation_level(slot.connection, "AUTOCOMMIT")
        slot.used = now
        return slot.connection

    def release(self) -> None:
        """Give a borrowed connection back to its pool (own connections stay with their thread)."""
        borrowed = self.local.__dict__.pop("borrowed", None)
        if borrowed is not None:
            if borrowed.dbapi_connection is not None:  # not invalidated
                self.engine.dialect.reset_isolation_level(borrowed.dbapi_connection)
            borrowed.close()

    def drop(self) -> None:
        """This thread's connection is broken: close it (a borrowed one is invalidated)."""
        borrowed = self.local.__dict__.get("borrowed")
        if borrowed is not None:
            borrowed.invalidate()
        slot = self.local.__dict__.pop("slot", None)
        if slot is not None:
            slot.close()

    def close_all(self) -> None:
        with self.lock:
            slots = list(self.slots)
        for slot in slots:
            slot.close()

    def _alive(self, slot: "_Slot") -> bool:
        try:
            extensions.ping(slot.connection)
            return True
        except self.engine.dialect.loaded_dbapi.Error:
            return False


class _Slot:
    """A thread's connection; closed (by this process only) when the slot is garbage or `close()` is called."""

    def __init__(self, connection) -> None:
        self.connection, self.pid, self.used = connection, os.getpid(), time.monotonic()
        self.close = weakref.finalize(self, _close, connection, self.pid)


def _close(connection, pid: int) -> None:
    if os.getpid() != pid:
        return
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
        pass


_INSERT_COLUMNS = ("workspace_id", "name", "phone", "email", "message", *ATTRIBUTION_KEYS,
                   *(f"first_{key}" for key in FIRST_TOUCH_KEYS), "first_touch_at", "ip", "user_agent",
                   "idempotency_key", "idempotency_fingerprint", "is_spam", "created_at")


@dataclass(frozen=True)
class _Prepared:
    """The INSERT compiled once for a dialect, and what its execution needs besides the lead's values."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in placeholder order (SQLite's ?, libpq's $n), else None
    constants: dict[str, object]  # the statement's own values (LIMIT 1, the statuses, column defaults)
    processors: dict[str, Callable]  # the column types' conversions of the values (UTCDateTime)
    name: bytes = b""  # of the libpq prepared statement, after its text (b"": run by a DB-API cursor)
    param_types: tuple[int, ...] = ()  # PostgreSQL type OIDs of the positions (0: as the statement says)


_prepared: dict[tuple[str, str], _Prepared] = {}


def _prepare(dialect) -> _Prepared:
    libpq = dialect.driver == "psycopg"
    if libpq:  # numbered placeholders ($1, …) for libpq: a dialect of the same class, for compiling only
        dialect = type(dialect)(paramstyle="numeric_dollar")
    compiled = _insert_statement(dialect.name).compile(dialect=dialect)
    processors = {name: processor for name, bind in compiled.binds.items()
                  if (processor := bind.type.bind_processor(dialect)) is not None}
    positions = tuple(compiled.positiontup) if compiled.positional else None
    constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    if compiled.insert_prefetch:  # a column default SQLAlchemy would compute: this INSERT must write it itself
        raise RuntimeError(f"the intake's INSERT leaves out {[column.name for column in compiled.insert_prefetch]}")
    name, types = b"", ()
    if libpq:
        name = b"leadpath_intake_" + hashlib.sha1(compiled.string.encode()).hexdigest()[:16].encode()
        types = tuple(16 if isinstance(compiled.binds[position].type, Boolean) else 0 for position in positions)
    prepared = _prepared[dialect.name, dialect.driver] = _Prepared(compiled.string, positions, constants,
                                                                   processors, name, types)
    return prepared


def _run_cursor(prepared: _Prepared, connection, arguments, cursor=None) -> tuple | None:
    cursor = cursor or connection.cursor()
    try:
        cursor.execute(prepared.sql, arguments)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else tuple(row)


# Prepared again on a connection when missing there (26000), or after a migration changed a column it returns
# (0A000: "cached plan must not change result type").
_PREPARE_AGAIN = ("26000", "0A000")


def _run_libpq(prepared: _Prepared, connection, arguments: tuple) -> tuple | None:
    """The INSERT as a prepared statement through psycopg's libpq wrapper (`pq`), its values sent as text.

    psycopg's cursor (adapting each value, rewriting the statement, managing its own prepared statements) spent
    twice the CPU of the round trip's own work (measured: 65 against 32 µs per INSERT of 7 values). The statement
    is named after its text, so another version's statement of the same connection is never run. Errors are
    raised as psycopg's own (IntegrityError, OperationalError with the connection marked bad, …). A connection
    with psycopg's `prepare_threshold=None` (pgbouncer in transaction mode) runs it unprepared, by a cursor."""
    if connection.prepare_threshold is None:  # a RawCursor takes the $1 placeholders, and never prepares here
        return _run_cursor(prepared, connection, arguments, psycopg.RawCursor(connection))
    pgconn = connection.pgconn
    encoding = connection.info.encoding
    values = _text_values(arguments, encoding)
    result = pgconn.exec_prepared(prepared.name, values)
    state = _sqlstate(result)
    if state in _PREPARE_AGAIN:
        if state == "0A000":
            _check(pgconn.exec_(b"DEALLOCATE " + prepared.name), encoding)
        _check(pgconn.prepare(prepared.name, prepared.sql.encode(encoding), prepared.param_types), encoding)
        result = pgconn.exec_prepared(prepared.name, values)
    _check(result, encoding)
    if result.ntuples == 0:
        return None
    return int(result.get_value(0, 0)), result.get_value(0, 1).decode(encoding)


def _text_values(arguments: tuple, encoding: str) -> list[bytes | None]:
    """The values in PostgreSQL's text format. libpq sends C strings: a NUL would cut a value short unseen."""
    values: list[bytes | None] = []
    append = values.append
    for value in arguments:
        kind = type(value)
        if kind is str:
            append(value.encode(encoding))
        elif value is None:
            append(None)
        elif kind is int:
            append(b"%d" % value)
        elif kind is bool:
            append(b"t" if value else b"f")
        elif kind is datetime:
            append(value.isoformat().encode())
        else:
            raise TypeError(f"the intake's INSERT cannot send a {kind.__name__}")
    if b"\0" in b"".join([value for value in values if value is not None]):
        raise ValueError("a NUL character in a value for PostgreSQL")
    return values


def _sqlstate(result) -> str | None:
    code = result.error_field(pq.DiagnosticField.SQLSTATE)
    return code.decode() if code else None


def _check(result, encoding: str) -> None:
    """Raise psycopg's error for a failed result: by its SQLSTATE (its class when psycopg does not know the code),
    OperationalError when it has none (a lost connection)."""
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return
    if not _sqlstate(result):
        raise psycopg.OperationalError(result.get_error_message(encoding))
    raise psycopg.errors.error_from_result(result, encoding)


def _insert_statement(dialect_name: str):
    """The one INSERT of the hot path, for PostgreSQL (SQLite for the demo).

    `duplicate_of_id` is the earliest original lead (not spam, not itself a repeat) from the same phone or e-mail
    since `window_start`, found once in a derived table (written into both `duplicate_of_id` and the status, the
    subqueries ran twice); `match_phone`/`match_email` are NULL when repeats are not checked, so it finds nothing.
    A lead is pushed (`pending`) unless it is spam or a repeat (`skipped`).
    """
    table = Lead.__table__
    by_phone = _earliest_original("phone", "match_phone", table)
    by_email = _earliest_original("email", "match_email", table)
    # The smaller of the two ids, either of which may be NULL: PostgreSQL's least() skips NULLs, SQLite's min() of
    # a NULL is NULL.
    if dialect_name == "postgresql":
        repeat_of = func.least(by_phone, by_email)
    else:
        repeat_of = func.min(func.coalesce(by_phone, by_email), func.coalesce(by_email, by_phone))
    # OFFSET 0 keeps PostgreSQL from pulling the derived table up into the SELECT (which copies its expression
    # into both places again).
    repeat = select(repeat_of.label("id")).offset(0).subquery("repeat")
    values = {name: bindparam(f"p_{name}", type_=table.c[name].type) for name in _INSERT_COLUMNS}
    # The extra form fields arrive as JSON text (`services.accept_lead`): the libpq path sends every value as text,
    # and SQLite keeps JSON as text anyway.
    extra = bindparam("p_extra_fields", type_=Text)
    values["extra_fields"] = cast(extra, JSONB) if dialect_name == "postgresql" else extra
    values["duplicate_of_id"] = repeat.c.id
    values["sync_attempts"] = literal(0)  # the column defaults SQLAlchemy fills in before executing, written in
    values["sync_status"] = case((bindparam("p_is_spam", type_=Boolean), SKIPPED),
                                 (repeat.c.id.is_(None), PENDING), else_=SKIPPED)
    # WHERE true: SQLite would read "… FROM repeat ON CONFLICT" as a join's ON.
    row = select(*values.values()).select_from(repeat).where(true())
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (insert(table).from_select(list(values), row)
            .on_conflict_do_nothing(index_elements=["workspace_id", "idempotency_key"])
            .returning(table.c.id, table.c.sync_status))


def _earliest_original(column: str, match: str, table):
    """The first original lead (not spam, not itself a repeat) with that phone/e-mail since `window_start`: a probe
    of ix_leads_workspace_phone / _email (two such probes are cheaper to plan well than one `phone = … OR email = …`
    ordered by id, which a plan may answer by walking the primary key over all the workspace's leads)."""
    return (select(table.c.id)
            .where(table.c.workspace_id == bindparam("p_workspace_id"),
                   table.c[column] == bindparam(match, type_=String),
                   table.c.is_spam.is_(False), table.c.duplicate_of_id.is_(None),
                   table.c.created_at >= bindparam("window_start", type_=table.c.created_at.type))
            .order_by(table.c.id).limit(1).scalar_subquery())


