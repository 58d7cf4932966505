"""Leads: the sync index orders a workspace's pending leads by id (as the push claims them)

With (workspace_id, sync_status, next_attempt_at), the claim (`… ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED`)
was planned as a walk of the primary key past every other lead of the table; with id as the third column it reads
the first fifty pending entries of the workspace.

Revision ID: 9b3f6c2e8a41
Revises: 5c1e0a7d2b94
Create Date: 2026-11-23 21:30:00

"""
from alembic import op


revision = '9b3f6c2e8a41'
down_revision = '5c1e0a7d2b94'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_workspace_sync')
        batch_op.create_index('ix_leads_workspace_sync', ['workspace_id', 'sync_status', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_workspace_sync')
        batch_op.create_index('ix_leads_workspace_sync', ['workspace_id', 'sync_status', 'next_attempt_at'],
                              unique=False)
