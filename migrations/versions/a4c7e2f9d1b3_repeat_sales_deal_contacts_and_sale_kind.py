"""Repeat sales: deals remember their main amoCRM contact, report rollups split deal figures by sale kind

- deals.amocrm_contact_id (indexed with the workspace): the deal's main contact as amoCRM shows it; deals.sale_kind:
  "n" its contact's first deal, "r" a later one, and deals.origin_lead_id: a repeat deal not from our form is
  reported under the lead of its contact's first deal; both kept by the rollup triggers.
- report_rollups.sale_kind: "n" a contact's first deal, "r" a later one, "" lead and spend rows; part of the merged
  rows' key. The rollup functions and triggers are installed again and every workspace rebuilt.

Revision ID: a4c7e2f9d1b3
Revises: f3c8d1a2b6e4
Create Date: 2026-12-03 14:40:00

"""
import sqlalchemy as sa
from alembic import op

from portal.reports.rollup_sql import DROP_STATEMENTS, REBUILD_ALL, SQL_STATEMENTS, SUPERSEDED_STATEMENTS

revision = 'a4c7e2f9d1b3'
down_revision = 'f3c8d1a2b6e4'
branch_labels = None
depends_on = None

LEVELS = ['source', 'medium', 'campaign', 'content', 'term', 'landing_path', 'referrer_domain']


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        for statement in SUPERSEDED_STATEMENTS:
            op.execute(statement)
    with op.batch_alter_table('deals') as batch_op:
        batch_op.add_column(sa.Column('amocrm_contact_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('sale_kind', sa.String(length=1), server_default='n', nullable=False))
        batch_op.add_column(sa.Column('origin_lead_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_deals_origin_lead_id_leads', 'leads', ['origin_lead_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_deals_origin_lead_id', ['origin_lead_id'], unique=False)
        batch_op.create_index('ix_deals_workspace_contact', ['workspace_id', 'amocrm_contact_id'], unique=False)
    with op.batch_alter_table('report_rollups') as batch_op:
        batch_op.add_column(sa.Column('sale_kind', sa.String(length=1), server_default='', nullable=False))
        batch_op.drop_index('uq_report_rollups_merged_key', postgresql_where=sa.text('merged'),
                            sqlite_where=sa.text('merged'))
        batch_op.create_index('uq_report_rollups_merged_key', ['workspace_id', 'day', 'attribution', 'sale_kind',
                                                               *LEVELS],
                              unique=True, postgresql_where=sa.text('merged'), sqlite_where=sa.text('merged'))
    if postgresql:
        for statement in SQL_STATEMENTS:
            op.execute(statement)
        op.execute(REBUILD_ALL)


def downgrade():
    # The functions of the previous revision are not restored: `flask db upgrade` reinstalls the current ones.
    if op.get_bind().dialect.name == 'postgresql':
        for statement in DROP_STATEMENTS:
            op.execute(statement)
    with op.batch_alter_table('report_rollups') as batch_op:
        batch_op.drop_index('uq_report_rollups_merged_key', postgresql_where=sa.text('merged'),
                            sqlite_where=sa.text('merged'))
        batch_op.drop_column('sale_kind')
        batch_op.create_index('uq_report_rollups_merged_key', ['workspace_id', 'day', 'attribution', *LEVELS],
                              unique=True, postgresql_where=sa.text('merged'), sqlite_where=sa.text('merged'))
    with op.batch_alter_table('deals') as batch_op:
        batch_op.drop_index('ix_deals_workspace_contact')
        batch_op.drop_index('ix_deals_origin_lead_id')
        batch_op.drop_constraint('fk_deals_origin_lead_id_leads', type_='foreignkey')
        batch_op.drop_column('origin_lead_id')
        batch_op.drop_column('sale_kind')
        batch_op.drop_column('amocrm_contact_id')
