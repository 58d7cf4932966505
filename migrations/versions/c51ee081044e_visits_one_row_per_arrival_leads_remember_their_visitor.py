"""Visits: one row per arrival, leads remember their visitor

- visits: one arrival of a visitor with a source (portal.models.visit), unique per workspace by the snippet's
  visit id, indexed for a visitor's chain and for days.
- leads.visitor_id, leads.visit_id: the visitor and visit a form was sent by.
- workspaces.visit_retention_days: visits older than this are pruned.

Revision ID: c51ee081044e
Revises: a4c7e2f9d1b3
Create Date: 2026-12-03 16:19:42.520170

"""
import sqlalchemy as sa
from alembic import op

revision = 'c51ee081044e'
down_revision = 'a4c7e2f9d1b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('visits',
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('visitor_id', sa.String(length=36), nullable=False),
    sa.Column('visit_id', sa.String(length=36), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('utm_source', sa.String(length=200), nullable=True),
    sa.Column('utm_medium', sa.String(length=200), nullable=True),
    sa.Column('utm_campaign', sa.String(length=200), nullable=True),
    sa.Column('utm_term', sa.String(length=200), nullable=True),
    sa.Column('utm_content', sa.String(length=200), nullable=True),
    sa.Column('gclid', sa.String(length=200), nullable=True),
    sa.Column('yclid', sa.String(length=200), nullable=True),
    sa.Column('fbclid', sa.String(length=200), nullable=True),
    sa.Column('referrer', sa.String(length=2000), nullable=True),
    sa.Column('landing_page', sa.String(length=2000), nullable=True),
    sa.Column('device', sa.String(length=8), nullable=True),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_visits_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    sa.UniqueConstraint('workspace_id', 'visit_id', name='uq_visits_workspace_visit')
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_workspace_started', ['workspace_id', 'started_at'], unique=False)
        batch_op.create_index('ix_visits_workspace_visitor_started', ['workspace_id', 'visitor_id', 'started_at'], unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visitor_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('visit_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_leads_workspace_visitor', ['workspace_id', 'visitor_id'], unique=False, postgresql_where=sa.text('visitor_id IS NOT NULL'), sqlite_where=sa.text('visitor_id IS NOT NULL'))

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visit_retention_days', sa.Integer(), server_default='395', nullable=False))



def downgrade():
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('visit_retention_days')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_workspace_visitor', postgresql_where=sa.text('visitor_id IS NOT NULL'), sqlite_where=sa.text('visitor_id IS NOT NULL'))
        batch_op.drop_column('visit_id')
        batch_op.drop_column('visitor_id')

    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_workspace_visitor_started')
        batch_op.drop_index('ix_visits_workspace_started')

    op.drop_table('visits')
