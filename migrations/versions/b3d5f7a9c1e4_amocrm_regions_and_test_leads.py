"""amoCRM regions and test leads

- amocrm_connections.region: amocrm or kommo, chosen in Settings → amoCRM before connecting (None: the default).
- leads.is_test: a lead made by "Send a test lead", pushed like any other and left out of reports.

Revision ID: b3d5f7a9c1e4
Revises: e7a1c3b5d902
Create Date: 2026-12-03 13:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b3d5f7a9c1e4'
down_revision = 'e7a1c3b5d902'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('region', sa.String(length=8), nullable=True))
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_test', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('is_test')
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.drop_column('region')
