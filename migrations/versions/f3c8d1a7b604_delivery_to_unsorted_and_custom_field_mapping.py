"""Delivery to amoCRM's Unsorted, extra form fields and their mapping to the account's custom fields

- amocrm_connections.delivery_mode: "deal" (a deal in the chosen pipeline and stage) or "unsorted" (an incoming
  lead in Unsorted, accepted or declined by a manager).
- amocrm_connections.custom_fields / field_mapping: the account's deal and contact custom fields as last read,
  and which extra form field goes to which of them.
- leads.unsorted_uid / unsorted_state: the Unsorted item a lead became and where it stands (waiting, accepted,
  declined), with an index for the workspace's waiting ones.
- leads.extra_fields: the named form fields beyond name, phone, e-mail and message; leads.extra_note_id: the
  amoCRM note that carries those not sent to a field.

Revision ID: f3c8d1a7b604
Revises: e7a1c3b5d902
Create Date: 2026-12-03 13:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'f3c8d1a7b604'
down_revision = 'b3e9d1f7a2c6'
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_mode', sa.String(length=16), server_default='deal', nullable=False))
        batch_op.add_column(sa.Column('custom_fields', JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column('field_mapping', JSON_DOCUMENT, nullable=True))
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unsorted_uid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('unsorted_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('extra_fields', JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column('extra_note_id', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_leads_workspace_unsorted', ['workspace_id', 'unsorted_state'], unique=False,
                              postgresql_where=sa.text('unsorted_state IS NOT NULL'),
                              sqlite_where=sa.text('unsorted_state IS NOT NULL'))


def downgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_workspace_unsorted', postgresql_where=sa.text('unsorted_state IS NOT NULL'),
                            sqlite_where=sa.text('unsorted_state IS NOT NULL'))
        batch_op.drop_column('extra_note_id')
        batch_op.drop_column('extra_fields')
        batch_op.drop_column('unsorted_state')
        batch_op.drop_column('unsorted_uid')
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.drop_column('field_mapping')
        batch_op.drop_column('custom_fields')
        batch_op.drop_column('delivery_mode')
