"""Users: the language each user chose for the portal (NULL: follow the browser)

Revision ID: d7a1c3e5f9b2
Revises: e7a1c3b9d2f4
Create Date: 2026-12-03 09:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd7a1c3e5f9b2'
down_revision = 'e7a1c3b9d2f4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('locale')
