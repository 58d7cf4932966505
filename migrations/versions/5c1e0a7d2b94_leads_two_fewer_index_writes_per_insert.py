"""Leads: two fewer index writes per insert (no index on workspace_id alone; only repeats in the duplicate_of index)

Every other index of leads starts with workspace_id, so ix_leads_workspace_id only cost each INSERT a write.
ix_leads_duplicate_of_id serves ON DELETE SET NULL, which looks up repeats only: it becomes partial.

Revision ID: 5c1e0a7d2b94
Revises: 1238dbec3f14
Create Date: 2026-11-23 20:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5c1e0a7d2b94'
down_revision = '1238dbec3f14'
branch_labels = None
depends_on = None

REPEATS_ONLY = sa.text("duplicate_of_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_workspace_id')
        batch_op.drop_index('ix_leads_duplicate_of_id')
        batch_op.create_index('ix_leads_duplicate_of_id', ['duplicate_of_id'], unique=False,
                              postgresql_where=REPEATS_ONLY, sqlite_where=REPEATS_ONLY)


def downgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_duplicate_of_id')
        batch_op.create_index('ix_leads_duplicate_of_id', ['duplicate_of_id'], unique=False)
        batch_op.create_index('ix_leads_workspace_id', ['workspace_id'], unique=False)
