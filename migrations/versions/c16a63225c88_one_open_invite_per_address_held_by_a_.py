"""One open invite per address, held by a partial unique index

- invites: a unique index on (workspace_id, email) over the open invites (neither used nor revoked), so two owners
  inviting the same address at the same moment cannot both leave a valid link. Open duplicates made before it
  are revoked first, keeping the newest of each address (the link its last mail carried).

Revision ID: c16a63225c88
Revises: c51ee081044e
Create Date: 2026-12-03 16:43:25.191407

"""
import sqlalchemy as sa
from alembic import op

revision = 'c16a63225c88'
down_revision = 'c51ee081044e'
branch_labels = None
depends_on = None

OPEN = sa.text('used_at IS NULL AND revoked_at IS NULL')


def upgrade():
    op.execute("""
        UPDATE invites SET revoked_at = CURRENT_TIMESTAMP
        WHERE used_at IS NULL AND revoked_at IS NULL
          AND id NOT IN (SELECT MAX(id) FROM invites WHERE used_at IS NULL AND revoked_at IS NULL
                         GROUP BY workspace_id, email)
    """)
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.create_index('uq_invites_open_per_address', ['workspace_id', 'email'], unique=True,
                              postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.drop_index('uq_invites_open_per_address', postgresql_where=OPEN, sqlite_where=OPEN)
