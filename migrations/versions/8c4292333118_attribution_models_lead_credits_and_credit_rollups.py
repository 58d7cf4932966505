"""Attribution models: a lead's credit over its chain of visits, and report rollups by model

- lead_credits: one row per attributed lead × chain position (the touch's normalised tags, when, whether direct,
  and each model's weight in millionths); written by the attribution job, never on the intake's INSERT.
- credit_rollups: per (workspace, grain, local day, model, sale kind, tags) visits, lead credit, deal credit and
  revenue × credit (grain "w" every level, "n" source / medium / campaign only, for the usual reports), kept by triggers on leads, deals, visits and a workspace's time zone
  (portal.reports.credit_sql), installed here, and rebuilt for every workspace: each lead counts under its own
  touches until it is attributed.

Revision ID: 8c4292333118
Revises: 3af51d619463
Create Date: 2026-12-03 16:26:16

"""
import sqlalchemy as sa
from alembic import op

from portal.reports.credit_sql import DROP_STATEMENTS, REBUILD_ALL, SQL_STATEMENTS

revision = '8c4292333118'
down_revision = '3af51d619463'
branch_labels = None
depends_on = None

LEVELS = ('source', 'medium', 'campaign', 'content', 'term', 'landing_path', 'referrer_domain')
FIGURES = ('visits', 'leads', 'cohort_open', 'cohort_won', 'cohort_lost', 'cohort_revenue', 'closed_open',
           'closed_won', 'closed_lost', 'closed_revenue')
WEIGHTS = ('weight_first', 'weight_last', 'weight_last_non_direct', 'weight_linear', 'weight_u_shaped',
           'weight_time_decay')


def upgrade():
    op.create_table(
        'credit_rollups',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('grain', sa.String(length=1), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('model', sa.String(length=1), nullable=False),
        sa.Column('merged', sa.Boolean(), server_default=sa.text('false'), nullable=False),
        sa.Column('sale_kind', sa.String(length=1), server_default='', nullable=False),
        *[sa.Column(name, sa.String(length=200), server_default='', nullable=False) for name in LEVELS],
        *[sa.Column(name, sa.BigInteger(), server_default='0', nullable=False) for name in FIGURES],
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                                name=op.f('fk_credit_rollups_workspace_id_workspaces'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_rollups')),
    )
    with op.batch_alter_table('credit_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_credit_rollups_deltas', ['workspace_id'], unique=False,
                              postgresql_where=sa.text('NOT merged'), sqlite_where=sa.text('NOT merged'))
        batch_op.create_index('ix_credit_rollups_workspace_grain_day', ['workspace_id', 'grain', 'day'], unique=False)
        batch_op.create_index('ix_credit_rollups_narrow', ['workspace_id', 'model', 'day'], unique=False,
                              postgresql_include=['sale_kind', 'source', 'medium', 'campaign', *FIGURES],
                              postgresql_where=sa.text("grain = 'n'"), sqlite_where=sa.text("grain = 'n'"))
        batch_op.create_index('uq_credit_rollups_merged_key',
                              ['workspace_id', 'grain', 'day', 'model', 'sale_kind', *LEVELS],
                              unique=True, postgresql_where=sa.text('merged'), sqlite_where=sa.text('merged'))
    op.create_table(
        'lead_credits',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('lead_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.SmallInteger(), nullable=False),
        sa.Column('visit_id', sa.String(length=36), nullable=True),
        sa.Column('touched_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('direct', sa.Boolean(), nullable=False),
        *[sa.Column(name, sa.String(length=200), nullable=False) for name in LEVELS],
        *[sa.Column(name, sa.Integer(), nullable=False) for name in WEIGHTS],
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_credits_lead_id_leads'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                                name=op.f('fk_lead_credits_workspace_id_workspaces'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_credits')),
        sa.UniqueConstraint('lead_id', 'position', name='uq_lead_credits_lead_position'),
    )
    with op.batch_alter_table('lead_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_credits_workspace_id'), ['workspace_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        for statement in SQL_STATEMENTS:
            op.execute(statement)
        op.execute(REBUILD_ALL)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for statement in DROP_STATEMENTS:
            op.execute(statement)
    with op.batch_alter_table('lead_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_credits_workspace_id'))
    op.drop_table('lead_credits')
    with op.batch_alter_table('credit_rollups', schema=None) as batch_op:
        batch_op.drop_index('uq_credit_rollups_merged_key', postgresql_where=sa.text('merged'),
                            sqlite_where=sa.text('merged'))
        batch_op.drop_index('ix_credit_rollups_narrow', postgresql_where=sa.text("grain = 'n'"),
                            sqlite_where=sa.text("grain = 'n'"))
        batch_op.drop_index('ix_credit_rollups_workspace_grain_day')
        batch_op.drop_index('ix_credit_rollups_deltas', postgresql_where=sa.text('NOT merged'),
                            sqlite_where=sa.text('NOT merged'))
    op.drop_table('credit_rollups')
