"""Report rollups in PostgreSQL, kept by triggers on leads, deals, ad spend and a workspace's time zone

- report_rollups: per (workspace, local day, attribution, source, medium, campaign, content, term, landing path,
  referrer domain) counts and sums; writes append signed delta rows, `flask reports compact` folds them.
- SQL functions that turn one lead, deal or spend row into its rollup rows (the triggers and the rebuild share
  them), and the triggers themselves, installed by the revision that last changed them.

Revision ID: f3c8d1a2b6e4
Revises: e7a1c3b5d902
Create Date: 2026-12-03 13:45:00

"""
import sqlalchemy as sa
from alembic import op

from portal.reports.rollup_sql import DROP_STATEMENTS

revision = 'f3c8d1a2b6e4'
down_revision = 'f3c8d1a7b604'
branch_labels = None
depends_on = None

LEVELS = ('source', 'medium', 'campaign', 'content', 'term', 'landing_path', 'referrer_domain')
FIGURES = ('leads', 'cohort_open', 'cohort_won', 'cohort_lost', 'cohort_revenue', 'closed_open', 'closed_won',
           'closed_lost', 'closed_revenue', 'spend')


def upgrade():
    op.create_table(
        'report_rollups',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('attribution', sa.String(length=1), nullable=False),
        sa.Column('merged', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        *[sa.Column(name, sa.String(length=200), server_default='', nullable=False) for name in LEVELS],
        *[sa.Column(name, sa.BigInteger(), server_default='0', nullable=False) for name in FIGURES],
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('report_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_report_rollups_workspace_day', ['workspace_id', 'day'], unique=False)
        batch_op.create_index('uq_report_rollups_merged_key', ['workspace_id', 'day', 'attribution', *LEVELS],
                              unique=True, postgresql_where=sa.text('merged'), sqlite_where=sa.text('merged'))
        batch_op.create_index('ix_report_rollups_deltas', ['workspace_id'], unique=False,
                              postgresql_where=sa.text('NOT merged'), sqlite_where=sa.text('NOT merged'))
    # The functions and triggers (portal.reports.rollup_sql) read columns later revisions add: the latest revision
    # that changed them installs them and rebuilds every workspace (a4c7e2f9d1b3).


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for statement in DROP_STATEMENTS:
            op.execute(statement)
    with op.batch_alter_table('report_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_report_rollups_deltas', postgresql_where=sa.text('NOT merged'),
                            sqlite_where=sa.text('NOT merged'))
        batch_op.drop_index('uq_report_rollups_merged_key', postgresql_where=sa.text('merged'),
                            sqlite_where=sa.text('merged'))
        batch_op.drop_index('ix_report_rollups_workspace_day')
    op.drop_table('report_rollups')
