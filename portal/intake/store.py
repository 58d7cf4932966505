"""The intake's one INSERT: a lead stored by one statement in autocommit (portal.hot_insert runs it on a connection
kept for the hot path, as a prepared statement on PostgreSQL)."""
from sqlalchemy import Boolean, String, Text, bindparam, case, cast, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from portal.hot_insert import HotInsert, run_insert
from portal.intake.submission import ATTRIBUTION_KEYS, FIRST_TOUCH_KEYS
from portal.models import Lead
from portal.models.lead import PENDING, SKIPPED


def insert_lead(params: dict) -> tuple[int, str] | None:
    """(id, sync_status) of the new lead, or None when its idempotency key was used before. Committed, its WAL
    flushed, when PostgreSQL answers; errors as `portal.hot_insert.run_insert` raises them."""
    row = run_insert(LEAD_INSERT, params)
    return None if row is None else (int(row[0]), str(row[1]))


_INSERT_COLUMNS = ("workspace_id", "name", "phone", "email", "message", *ATTRIBUTION_KEYS,
                   *(f"first_{key}" for key in FIRST_TOUCH_KEYS), "first_touch_at", "ip", "user_agent",
                   "idempotency_key", "idempotency_fingerprint", "is_spam", "created_at", "visitor_id", "visit_id")


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


LEAD_INSERT = HotInsert("intake", _insert_statement)
