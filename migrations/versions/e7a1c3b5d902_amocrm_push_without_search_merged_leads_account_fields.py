"""amoCRM push: when a lead's batch first left, merged leads, the account's deal fields, unreadable webhooks

- leads.push_batch_at: when the first request carrying the lead's batch tag left; the deals list is read back to
  here (newest first) to find the deals a request with an unknown outcome made, instead of searching.
- leads.deal_merged: amoCRM's duplicate control merged the lead into a deal that existed before it.
- amocrm_connections.lead_field_codes / dropped_fields: the account's deal field codes, and the values dropped
  because the account lacks their field.
- amocrm_contacts gains an index by (workspace, contact): the contacts index replaces and forgets a contact's keys.
- webhook_events.unreadable: what of a webhook body from the connected account could not be read (kept, not
  refused).

Revision ID: e7a1c3b5d902
Revises: e5b7a9c1d3f2
Create Date: 2026-12-03 09:50:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'e7a1c3b5d902'
down_revision = 'e5b7a9c1d3f2'
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('push_batch_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deal_merged', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_field_codes', JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column('dropped_fields', JSON_DOCUMENT, nullable=True))
    with op.batch_alter_table('amocrm_contacts', schema=None) as batch_op:
        batch_op.create_index('ix_amocrm_contacts_workspace_contact', ['workspace_id', 'amocrm_contact_id'],
                              unique=False)
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unreadable', JSON_DOCUMENT, nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('unreadable')
    with op.batch_alter_table('amocrm_contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_amocrm_contacts_workspace_contact')
    with op.batch_alter_table('amocrm_connections', schema=None) as batch_op:
        batch_op.drop_column('dropped_fields')
        batch_op.drop_column('lead_field_codes')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('deal_merged')
        batch_op.drop_column('push_batch_at')
