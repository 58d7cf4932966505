"""Ad accounts keep tokens of their own; ad platform errors are stored as a kind and its parameters

- ad_accounts.access_token / refresh_token (sealed like the connection's, EncryptedText) and token_expires_at: the
  tokens an account is read with when its connection's cannot read it (a VK Ads agency's or manager's client,
  whose token takes one of VK's five slots per app and user, so it is obtained once and kept).
- ad_accounts.error_kind / error_params and spend_imports.error_kind / error_params: what went wrong, rendered in
  the viewer's language when a page is drawn; last_error / error keep the platform's own words beside them.

Revision ID: 94087eea63a1
Revises: 8c4292333118
Create Date: 2026-12-03 17:39:19

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '94087eea63a1'
down_revision = '8c4292333118'
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_kind', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('error_params', JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column('access_token', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('refresh_token', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('spend_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_kind', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('error_params', JSON_DOCUMENT, nullable=True))


def downgrade():
    with op.batch_alter_table('spend_imports', schema=None) as batch_op:
        batch_op.drop_column('error_params')
        batch_op.drop_column('error_kind')

    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.drop_column('token_expires_at')
        batch_op.drop_column('refresh_token')
        batch_op.drop_column('access_token')
        batch_op.drop_column('error_params')
        batch_op.drop_column('error_kind')
