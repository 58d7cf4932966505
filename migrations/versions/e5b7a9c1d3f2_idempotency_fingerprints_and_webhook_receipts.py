"""Leads keep the fingerprint of the body their idempotency key came with; webhook bodies are claimed in a receipts table; secrets sealed per row

leads.idempotency_fingerprint: the same Idempotency-Key with a different body is refused (422) instead of being
answered with the first lead. Leads stored before have none and answer as they did.

webhook_receipts: one row per (workspace, body sha256), claimed by INSERT … ON CONFLICT, so concurrent identical
deliveries store one event. Filled with the bodies received in the last day, so retries of those stay deduplicated.

Secret columns: from this revision on, values are sealed with AES-GCM bound to their table, column and workspace
(portal.crypto); older Fernet values stay readable and `flask keys rotate` reseals them, so the upgrade rewrites
nothing. The downgrade turns sealed values back into Fernet values, which the earlier code reads.

Revision ID: e5b7a9c1d3f2
Revises: d7a1c3e5f9b2
Create Date: 2026-12-03 09:40:00

"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from portal.crypto import SEALED_PREFIX, column_context, encrypt, unseal
from portal.models.types import UTCDateTime

revision = 'e5b7a9c1d3f2'
down_revision = 'd7a1c3e5f9b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('leads') as batch_op:
        batch_op.add_column(sa.Column('idempotency_fingerprint', sa.String(length=64), nullable=True))
    receipts = op.create_table(
        'webhook_receipts',
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('body_sha256', sa.String(length=64), nullable=False),
        sa.Column('received_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_webhook_receipts_workspace_id_workspaces'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('workspace_id', 'body_sha256', name=op.f('pk_webhook_receipts')),
    )
    op.create_index(op.f('ix_webhook_receipts_received_at'), 'webhook_receipts', ['received_at'], unique=False)
    events = sa.table('webhook_events', sa.column('workspace_id', sa.Integer()), sa.column('body_sha256', sa.String()),
                      sa.column('received_at', UTCDateTime()))
    since = datetime.now(UTC) - timedelta(days=1)
    op.get_bind().execute(receipts.insert().from_select(
        ['workspace_id', 'body_sha256', 'received_at'],
        sa.select(events.c.workspace_id, events.c.body_sha256, sa.func.max(events.c.received_at))
        .where(events.c.received_at >= since).group_by(events.c.workspace_id, events.c.body_sha256)))


SECRET_COLUMNS = {'workspaces': ('public_id', ('webhook_secret',)),
                  'amocrm_connections': ('workspace_id', ('client_secret', 'access_token', 'refresh_token',
                                                          'webhook_destination')),
                  'oauth_states': ('workspace_id', ('client_secret',))}


def _unseal_secrets():
    bind = op.get_bind()
    for table_name, (owner, columns) in SECRET_COLUMNS.items():
        for name in columns:
            table = sa.table(table_name, sa.column('id'), sa.column(owner), sa.column(name))
            rows = bind.execute(sa.select(table.c.id, table.c[owner], table.c[name])
                                .where(table.c[name].like(f'{SEALED_PREFIX}%'))).all()
            for row_id, owner_value, token in rows:
                plaintext = unseal(token, column_context(table_name, name, owner_value))
                bind.execute(table.update().where(table.c.id == row_id).values({name: encrypt(plaintext)}))


def downgrade():
    _unseal_secrets()
    op.drop_index(op.f('ix_webhook_receipts_received_at'), table_name='webhook_receipts')
    op.drop_table('webhook_receipts')
    with op.batch_alter_table('leads') as batch_op:
        batch_op.drop_column('idempotency_fingerprint')
