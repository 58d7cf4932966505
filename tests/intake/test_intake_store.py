"""portal.intake.store: the intake's INSERT on connections of its own, their lifetime, and pools that cannot lend."""
import gc
import os
import threading

import pytest
from fixtures.intake import make_workspace
from fixtures.live_services import wait_until
from fixtures.support import IS_POSTGRES, make_app
from sqlalchemy import text

from portal.extensions import db
from portal.models import Lead

postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL only: counts server sessions")


@pytest.fixture
def app(database_schema):
    app = make_app()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def public_id(app):
    return make_workspace(app, "Store")[1]


def _post(app, public_id, email):
    return app.test_client().post("/api/leads", json={"userAccountId": public_id, "email": email}).status_code


def _own(app) -> set[int]:
    """Server process ids of this app's intake connections."""
    from portal.hot_insert import _Connections

    with app.app_context():
        return {slot.connection.info.backend_pid for slot in _Connections.of(db.engine).slots if slot.close.alive}


def _running(app, pids=None) -> set[int]:
    """Of `pids` (default: every session whose last statement was the intake's INSERT), those still connected."""
    with app.app_context(), db.engine.connect() as connection:
        found = set(connection.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'INSERT INTO leads%'")))
    return found if pids is None else found & set(pids)


def _terminate(app, pid: int) -> None:
    with app.app_context(), db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})  # as a server restart would
        other.commit()
    wait_until(lambda: not _running(app, [pid]), timeout=5, message="the session was not terminated")


@postgres_only
def test_the_connection_is_kept_replaced_when_the_server_killed_it_and_closed_on_dispose(app, public_id,
                                                                                        monkeypatch):
    import portal.extensions as extensions

    assert _post(app, public_id, "a@example.com") == 201 and _post(app, public_id, "b@example.com") == 201
    first = _own(app)
    assert len(first) == 1 and _running(app, first) == first  # both leads on the same connection
    _terminate(app, *first)
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", -1.0)  # the next lead finds it idle: pinged, replaced
    assert _post(app, public_id, "c@example.com") == 201
    second = _own(app)
    assert len(second) == 1 and second != first and _running(app, second) == second
    with app.app_context():
        db.engine.dispose()
    assert not _own(app)
    wait_until(lambda: not _running(app, second), timeout=5, message="dispose left the intake's connection open")


@postgres_only
def test_a_lead_on_a_connection_killed_mid_use_is_a_503_and_the_next_is_stored(app, public_id):
    assert _post(app, public_id, "a@example.com") == 201
    _terminate(app, *_own(app))
    assert _post(app, public_id, "b@example.com") == 503  # used a moment ago: not pinged; the snippet retries
    assert _post(app, public_id, "b@example.com") == 201


@postgres_only
def test_a_threads_connection_is_closed_when_the_thread_ends(app, public_id):
    """A development server runs a thread per request: each would otherwise leave a session open."""
    earlier = _running(app)  # other tests' apps may still hold theirs
    statuses = []
    for n in range(5):
        thread = threading.Thread(target=lambda n=n: statuses.append(_post(app, public_id, f"t{n}@example.com")))
        thread.start()
        thread.join()
    gc.collect()
    assert statuses == [201] * 5 and not _own(app)
    wait_until(lambda: _running(app) <= earlier, timeout=5, message="the threads' connections were left open")
    with app.app_context():
        assert db.session.query(Lead).filter(Lead.email.like("t_@example.com")).count() == 5


@postgres_only
def test_a_forked_childs_dispose_leaves_the_parents_connection_alone(app, public_id):
    """SQLAlchemy's advice after a fork is engine.dispose(close=False) in the child; that must not end the
    parent's session (a close() from the child would)."""
    assert _post(app, public_id, "before@example.com") == 201
    before = _own(app)
    assert len(before) == 1
    pid = os.fork()
    if pid == 0:
        try:
            with app.app_context():
                db.engine.dispose(close=False)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert _post(app, public_id, "after@example.com") == 201
    assert _own(app) == before and _running(app, before) == before


def test_in_memory_sqlite_whose_pool_has_one_connection_keeps_its_data():
    """StaticPool hands every checkout the same connection: giving it to the intake would lose the database."""
    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite://")
    with app.app_context():
        db.create_all()
    public_id = make_workspace(app, "Memory")[1]
    assert [_post(app, public_id, f"m{n}@example.com") for n in range(3)] == [201, 201, 201]
    with app.app_context():
        assert db.session.query(Lead).count() == 3
        assert db.session.scalar(text("SELECT 1")) == 1  # the pool's connection is back out of autocommit use


@postgres_only
def test_a_connection_that_lost_the_prepared_insert_prepares_it_again(app, public_id):
    from portal.hot_insert import _Connections

    assert _post(app, public_id, "one@example.com") == 201
    with app.app_context():
        # As DISCARD ALL, or a pooler handing the session to another client, would leave it.
        _Connections.of(db.engine).local.slot.connection.execute("DEALLOCATE ALL")
    assert _post(app, public_id, "two@example.com") == 201
    with app.app_context():
        emails = db.session.scalars(db.select(Lead.email).where(Lead.email.in_(["one@example.com", "two@example.com"])))
        assert sorted(emails) == ["one@example.com", "two@example.com"]


def test_values_go_to_postgresql_as_text_and_a_nul_is_refused():
    from datetime import UTC, datetime

    from portal.hot_insert import _text_values

    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert _text_values((None, True, False, 42, "Заявка", moment), "utf-8") == [
        None, b"t", b"f", b"42", "Заявка".encode(), b"2026-01-02T03:04:05.000006+00:00"]
    with pytest.raises(ValueError, match="NUL"):  # libpq would cut the value short without a word
        _text_values(("fine", "a\x00b"), "utf-8")
    with pytest.raises(TypeError):
        _text_values((1.5,), "utf-8")


@postgres_only
def test_a_migration_that_changes_a_returned_column_does_not_break_the_prepared_insert(app, public_id):
    assert _post(app, public_id, "before@example.com") == 201
    with app.app_context(), db.engine.connect() as other:
        other.execute(text("ALTER TABLE leads ALTER COLUMN sync_status TYPE varchar(40)"))
        other.commit()
    try:
        assert _post(app, public_id, "after@example.com") == 201  # not "cached plan must not change result type"
    finally:
        with app.app_context(), db.engine.connect() as other:
            other.execute(text("ALTER TABLE leads ALTER COLUMN sync_status TYPE varchar(16)"))
            other.commit()


@postgres_only
def test_a_connection_with_prepared_statements_turned_off_runs_the_insert_unprepared(app, public_id):
    from portal.hot_insert import _Connections

    assert _post(app, public_id, "prepared@example.com") == 201
    with app.app_context():
        connection = _Connections.of(db.engine).local.slot.connection
    connection.execute("DEALLOCATE ALL")
    connection.prepare_threshold = None  # what a deployment behind pgbouncer's transaction mode sets
    assert _post(app, public_id, "unprepared@example.com") == 201
    assert connection.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).where(Lead.email == "unprepared@example.com")) == 1
