"""One INSERT of a hot public endpoint (the lead intake, the visit beacon) in autocommit, on a connection kept for it.

A statement (`HotInsert`: a name and how to build it with SQLAlchemy Core for a dialect) is compiled once per
dialect; it runs on the driver's connection (on PostgreSQL as a prepared statement through libpq, `_run_libpq`).
SQLAlchemy's execution layer (statement cache, execution context, result wrapping) and the pool's checkout, checkin
and isolation switching cost as much CPU as the round trip to PostgreSQL, so each thread keeps one connection of its
own in autocommit (`_Connections`), beside the engine's pool: it is checked with SELECT 1 after IDLE_PING_SECONDS
idle, as the pool's connections are, and closed when its thread ends, when an error lost it or when the engine is
disposed. A threaded development server (a thread per request) thus connects per request; gunicorn's workers keep
their threads, so their connections last. Every hot statement of a thread shares its connection.
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
from sqlalchemy import Boolean, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.expression import Executable

import portal.extensions as extensions  # its idle-ping settings are read at call time (tests change them)
from portal.extensions import db


@dataclass(frozen=True)
class HotInsert:
    """A statement of the hot path: `build(dialect name)` gives its SQLAlchemy Core INSERT (RETURNING what the
    caller reads); `name` keeps its compiled forms and its libpq prepared statement apart from the others'."""

    name: str
    build: Callable[[str], Executable]


def run_insert(statement: HotInsert, params: dict) -> tuple | None:
    """The first row the statement returned (on PostgreSQL's prepared path its values as text, else as the driver
    typed them), or None when it returned none (ON CONFLICT DO NOTHING). Committed, its WAL flushed, when
    PostgreSQL answers. Driver errors are raised as SQLAlchemy's (IntegrityError, OperationalError with
    `connection_invalidated` when the connection was lost, …)."""
    engine = db.engine
    dialect = engine.dialect
    prepared = _prepared.get((statement.name, dialect.name, dialect.driver)) or _prepare(statement, dialect)
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
    """The hot statements' autocommit connections of one engine: one per thread, closed when its thread ends (its
    slot is garbage then), when an error lost it, or when the engine is disposed. A process only ever closes connections
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
        connections = engine.__dict__.get("_leadpath_hot_insert")
        if connections is None:
            connections = engine.__dict__["_leadpath_hot_insert"] = cls(engine)
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


@dataclass(frozen=True)
class _Prepared:
    """The INSERT compiled once for a dialect, and what its execution needs besides the caller's values."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in placeholder order (SQLite's ?, libpq's $n), else None
    constants: dict[str, object]  # the statement's own values (LIMIT 1, the statuses, column defaults)
    processors: dict[str, Callable]  # the column types' conversions of the values (UTCDateTime)
    name: bytes = b""  # of the libpq prepared statement, after its text (b"": run by a DB-API cursor)
    param_types: tuple[int, ...] = ()  # PostgreSQL type OIDs of the positions (0: as the statement says)



_prepared: dict[tuple[str, str, str], _Prepared] = {}


def _prepare(statement: HotInsert, dialect) -> _Prepared:
    key = (statement.name, dialect.name, dialect.driver)
    libpq = dialect.driver == "psycopg"
    if libpq:  # numbered placeholders ($1, …) for libpq: a dialect of the same class, for compiling only
        dialect = type(dialect)(paramstyle="numeric_dollar")
    compiled = statement.build(dialect.name).compile(dialect=dialect)
    processors = {name: processor for name, bind in compiled.binds.items()
                  if (processor := bind.type.bind_processor(dialect)) is not None}
    positions = tuple(compiled.positiontup) if compiled.positional else None
    constants = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
    if compiled.insert_prefetch:  # a column default SQLAlchemy would compute: this INSERT must write it itself
        raise RuntimeError(f"the {statement.name} INSERT leaves out "
                           f"{[column.name for column in compiled.insert_prefetch]}")
    name, types = b"", ()
    if libpq:
        name = (f"leadpath_{statement.name}_".encode()
                + hashlib.sha1(compiled.string.encode()).hexdigest()[:16].encode())
        types = tuple(16 if isinstance(compiled.binds[position].type, Boolean) else 0 for position in positions)
    prepared = _prepared[key] = _Prepared(compiled.string, positions, constants, processors, name, types)
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
    return tuple(None if (value := result.get_value(0, column)) is None else value.decode(encoding)
                 for column in range(result.nfields))


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
            raise TypeError(f"a hot INSERT cannot send a {kind.__name__}")
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

