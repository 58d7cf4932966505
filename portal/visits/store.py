"""The beacon's one INSERT: a visit stored by one statement in autocommit (portal.hot_insert), once per visit id."""
from sqlalchemy import bindparam, select, true
from sqlalchemy.dialects import postgresql, sqlite

from portal.hot_insert import HotInsert, run_insert
from portal.models.visit import Visit
from portal.visits.beacon import TAG_KEYS, URL_KEYS

_INSERT_COLUMNS = ("workspace_id", "visitor_id", "visit_id", "started_at", *TAG_KEYS, *URL_KEYS, "device",
                   "ip_hash", "created_at")


def insert_visit(params: dict) -> bool:
    """True when the visit was stored, False when its visit id was stored before (nothing is written). Committed,
    its WAL flushed, when PostgreSQL answers; `params` holds `p_<column>` for every column above."""
    return run_insert(VISIT_INSERT, params) is not None


def _insert_statement(dialect_name: str):
    """INSERT … SELECT … ON CONFLICT (workspace_id, visit_id) DO NOTHING RETURNING id: a resent beacon (sendBeacon
    and its fetch fallback, a reload that reads the same visit) writes nothing and raises nothing."""
    table = Visit.__table__
    values = {name: bindparam(f"p_{name}", type_=table.c[name].type) for name in _INSERT_COLUMNS}
    row = select(*values.values()).where(true())  # WHERE true: SQLite would read "… ON CONFLICT" as a join's ON
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return (insert(table).from_select(list(values), row)
            .on_conflict_do_nothing(index_elements=["workspace_id", "visit_id"])
            .returning(table.c.id))


VISIT_INSERT = HotInsert("visits", _insert_statement)
