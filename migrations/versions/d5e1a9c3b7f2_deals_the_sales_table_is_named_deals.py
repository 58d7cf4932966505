"""Deals: the sales table is named deals (it holds every amoCRM deal: open, won or lost)

Renames the table and everything named after it: primary key, unique constraint, foreign keys, indexes and, on
PostgreSQL, the id sequence. Rows are untouched. On SQLite, where constraints cannot be renamed, the table is
rebuilt in batch mode with the new names.

Revision ID: d5e1a9c3b7f2
Revises: c4d2e8f1a7b3
Create Date: 2026-12-03 09:00:00

"""
from alembic import op

revision = 'd5e1a9c3b7f2'
down_revision = 'c4d2e8f1a7b3'
branch_labels = None
depends_on = None

INDEXES = {  # name suffix → columns
    'lead_id': ['lead_id'],
    'workspace_id': ['workspace_id'],
    'workspace_closed': ['workspace_id', 'closed_at'],
    'workspace_created': ['workspace_id', 'created_at'],
    'workspace_utm': ['workspace_id', 'utm_source', 'utm_medium', 'utm_campaign'],
}
CONSTRAINTS = ('pk_{}', 'uq_{}_workspace_id_amocrm_lead_id', 'fk_{}_lead_id_leads', 'fk_{}_workspace_id_workspaces')


def _rename(old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.rename_table(old, new)
        op.execute(f'ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq')
        for suffix in INDEXES:
            op.execute(f'ALTER INDEX ix_{old}_{suffix} RENAME TO ix_{new}_{suffix}')
        for pattern in CONSTRAINTS:
            op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT {pattern.format(old)} TO {pattern.format(new)}')
        return
    for suffix in INDEXES:
        op.drop_index(f'ix_{old}_{suffix}', table_name=old)
    op.rename_table(old, new)
    with op.batch_alter_table(new, recreate='always') as batch_op:
        batch_op.drop_constraint(f'uq_{old}_workspace_id_amocrm_lead_id', type_='unique')
        batch_op.create_unique_constraint(f'uq_{new}_workspace_id_amocrm_lead_id', ['workspace_id', 'amocrm_lead_id'])
        batch_op.drop_constraint(f'fk_{old}_lead_id_leads', type_='foreignkey')
        batch_op.create_foreign_key(f'fk_{new}_lead_id_leads', 'leads', ['lead_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(f'fk_{old}_workspace_id_workspaces', type_='foreignkey')
        batch_op.create_foreign_key(f'fk_{new}_workspace_id_workspaces', 'workspaces', ['workspace_id'], ['id'],
                                    ondelete='CASCADE')
    for suffix, columns in INDEXES.items():
        op.create_index(f'ix_{new}_{suffix}', new, columns)


def upgrade():
    _rename('sales', 'deals')


def downgrade():
    _rename('deals', 'sales')
