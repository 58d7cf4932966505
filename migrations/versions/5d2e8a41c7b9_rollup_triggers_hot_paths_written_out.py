"""Rollup triggers: the lead and visit INSERT paths written out as one planned statement

The report rollups' and the credit rollups' triggers on leads and the credit rollups' trigger on visits wrote a
new row's rollup rows through SQL functions called from PL/pgSQL, which PostgreSQL plans again on every call (the
cost of the lead intake's and the visit beacon's INSERT). Their INSERT branches are now one INSERT … SELECT each,
whose plan the session keeps. The rows written are the same, so nothing is rebuilt: the functions of
portal.reports.rollup_sql and portal.reports.credit_sql are installed again (CREATE OR REPLACE).

Revision ID: 5d2e8a41c7b9
Revises: 94087eea63a1
Create Date: 2026-12-03 17:45:00

"""
from alembic import op

from portal.reports import credit_sql, rollup_sql

revision = '5d2e8a41c7b9'
down_revision = '94087eea63a1'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for statement in (*rollup_sql.SQL_STATEMENTS, *credit_sql.SQL_STATEMENTS):
            op.execute(statement)


def downgrade():
    # Nothing to undo in the schema; the functions of the previous revision wrote the same rows.
    pass
