"""Connections: the webhook URL is stored encrypted (it carries the workspace's webhook secret)

The secret itself was encrypted in workspaces.webhook_secret, but amocrm_connections.webhook_destination kept the
whole URL in plain text, so a database dump alone was enough to send forged webhooks. The column stays TEXT and
now holds Fernet ciphertext, like the tokens; this rewrites the stored URLs with the configured ENCRYPTION_KEYS.

Revision ID: c4d2e8f1a7b3
Revises: 9b3f6c2e8a41
Create Date: 2026-11-28 02:50:00

"""
import sqlalchemy as sa
from alembic import op

from portal.crypto import decrypt, encrypt

revision = 'c4d2e8f1a7b3'
down_revision = '9b3f6c2e8a41'
branch_labels = None
depends_on = None

CONNECTIONS = sa.table('amocrm_connections', sa.column('id'), sa.column('webhook_destination'))


def _rewrite(convert):
    bind = op.get_bind()
    rows = bind.execute(sa.select(CONNECTIONS.c.id, CONNECTIONS.c.webhook_destination)
                        .where(CONNECTIONS.c.webhook_destination.is_not(None))).all()
    for row_id, value in rows:
        bind.execute(CONNECTIONS.update().where(CONNECTIONS.c.id == row_id)
                     .values(webhook_destination=convert(value)))


def upgrade():
    _rewrite(encrypt)


def downgrade():
    _rewrite(decrypt)
