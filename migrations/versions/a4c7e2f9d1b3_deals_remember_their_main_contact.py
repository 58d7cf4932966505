"""Deals: their main contact in amoCRM, to tell a customer's first sale from a repeat

Revision ID: a4c7e2f9d1b3
Revises: f3c8d1a2b6e4
Create Date: 2026-12-03 14:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a4c7e2f9d1b3'
down_revision = 'f3c8d1a2b6e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deals') as batch_op:
        batch_op.add_column(sa.Column('amocrm_contact_id', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_deals_workspace_contact', ['workspace_id', 'amocrm_contact_id'], unique=False)


def downgrade():
    with op.batch_alter_table('deals') as batch_op:
        batch_op.drop_index('ix_deals_workspace_contact')
        batch_op.drop_column('amocrm_contact_id')
