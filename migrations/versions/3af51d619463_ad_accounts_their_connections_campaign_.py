"""Ad accounts, their connections, campaign tags and spend imports; imported ad spend rows

Spend that arrives from ad platforms (Yandex Direct, VK Ads, Google Ads):
- ad_platform_connections: one OAuth grant per row, its tokens sealed (EncryptedText), its status (a revoked grant
  asks the owner to reconnect); ad_oauth_states: single-use OAuth states bound to workspace, user and platform.
- ad_accounts: the advertiser accounts a grant reaches, with their currency, whether their spend is imported, the
  tags it gets (source, medium, campaign id or name), VAT, status and last import; ad_campaign_tags: one
  campaign's own tags.
- spend_imports: every import of an account's range of days, with its status, rows, attempts and error.
- ad_spend gains the account, campaign id and name, the original amount and currency and the VAT flag of imported
  rows. Its uniqueness splits in two partial unique indexes: typed and CSV rows stay unique per (workspace, day,
  tags); imported rows are unique per (account, day, campaign), so both kinds coexist on the same tags.
- workspaces.ad_import_hour: the local hour of the daily import.

Revision ID: 3af51d619463
Revises: c16a63225c88
Create Date: 2026-12-03 16:30:10

"""
import sqlalchemy as sa
from alembic import op

revision = '3af51d619463'
down_revision = 'c16a63225c88'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('ad_oauth_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ad_oauth_states_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_ad_oauth_states_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ad_oauth_states')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_ad_oauth_states_state_hash'))
    )
    with op.batch_alter_table('ad_oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ad_oauth_states_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('ad_platform_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=True),
    sa.Column('refresh_token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('connected_by_id', sa.Integer(), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_refresh_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['connected_by_id'], ['users.id'], name=op.f('fk_ad_platform_connections_connected_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_ad_platform_connections_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ad_platform_connections'))
    )
    with op.batch_alter_table('ad_platform_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ad_platform_connections_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('ad_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('platform', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('manager_id', sa.String(length=100), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('utm_source', sa.String(length=200), nullable=False),
    sa.Column('utm_medium', sa.String(length=200), nullable=False),
    sa.Column('campaign_tag', sa.String(length=8), nullable=False),
    sa.Column('include_vat', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_import_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_daily_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['ad_platform_connections.id'], name=op.f('fk_ad_accounts_connection_id_ad_platform_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_ad_accounts_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ad_accounts')),
    sa.UniqueConstraint('workspace_id', 'platform', 'external_id', name=op.f('uq_ad_accounts_workspace_id_platform_external_id'))
    )
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ad_accounts_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ad_accounts_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('ad_campaign_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ad_account_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('utm_source', sa.String(length=200), nullable=False),
    sa.Column('utm_medium', sa.String(length=200), nullable=False),
    sa.Column('utm_campaign', sa.String(length=200), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ad_account_id'], ['ad_accounts.id'], name=op.f('fk_ad_campaign_tags_ad_account_id_ad_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_ad_campaign_tags_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ad_campaign_tags')),
    sa.UniqueConstraint('ad_account_id', 'campaign_id', name=op.f('uq_ad_campaign_tags_ad_account_id_campaign_id'))
    )
    with op.batch_alter_table('ad_campaign_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ad_campaign_tags_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('spend_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ad_account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ad_account_id'], ['ad_accounts.id'], name=op.f('fk_spend_imports_ad_account_id_ad_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_spend_imports_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spend_imports'))
    )
    with op.batch_alter_table('spend_imports', schema=None) as batch_op:
        batch_op.create_index('ix_spend_imports_account_created', ['ad_account_id', 'created_at'], unique=False)
        batch_op.create_index('ix_spend_imports_status_retry', ['status', 'retry_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_spend_imports_workspace_id'), ['workspace_id'], unique=False)

    with op.batch_alter_table('ad_spend', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ad_account_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('campaign_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('campaign_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('original_amount', sa.Numeric(precision=16, scale=2), nullable=True))
        batch_op.add_column(sa.Column('original_currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('vat_included', sa.Boolean(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_ad_spend_workspace_id_date_utm_source_utm_medium_utm_campaign'), type_='unique')
        batch_op.create_index('uq_ad_spend_imported', ['ad_account_id', 'date', 'campaign_id'], unique=True, postgresql_where=sa.text('ad_account_id IS NOT NULL'), sqlite_where=sa.text('ad_account_id IS NOT NULL'))
        batch_op.create_index('uq_ad_spend_manual', ['workspace_id', 'date', 'utm_source', 'utm_medium', 'utm_campaign'], unique=True, postgresql_where=sa.text('ad_account_id IS NULL'), sqlite_where=sa.text('ad_account_id IS NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_ad_spend_ad_account_id_ad_accounts'), 'ad_accounts', ['ad_account_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ad_import_hour', sa.Integer(), server_default='6', nullable=False))



def downgrade():
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('ad_import_hour')

    with op.batch_alter_table('ad_spend', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ad_spend_ad_account_id_ad_accounts'), type_='foreignkey')
        batch_op.drop_index('uq_ad_spend_manual', postgresql_where=sa.text('ad_account_id IS NULL'), sqlite_where=sa.text('ad_account_id IS NULL'))
        batch_op.drop_index('uq_ad_spend_imported', postgresql_where=sa.text('ad_account_id IS NOT NULL'), sqlite_where=sa.text('ad_account_id IS NOT NULL'))
        batch_op.create_unique_constraint(batch_op.f('uq_ad_spend_workspace_id_date_utm_source_utm_medium_utm_campaign'), ['workspace_id', 'date', 'utm_source', 'utm_medium', 'utm_campaign'])
        batch_op.drop_column('vat_included')
        batch_op.drop_column('original_currency')
        batch_op.drop_column('original_amount')
        batch_op.drop_column('campaign_name')
        batch_op.drop_column('campaign_id')
        batch_op.drop_column('ad_account_id')

    with op.batch_alter_table('spend_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spend_imports_workspace_id'))
        batch_op.drop_index('ix_spend_imports_status_retry')
        batch_op.drop_index('ix_spend_imports_account_created')

    op.drop_table('spend_imports')
    with op.batch_alter_table('ad_campaign_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ad_campaign_tags_workspace_id'))

    op.drop_table('ad_campaign_tags')
    with op.batch_alter_table('ad_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ad_accounts_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_ad_accounts_connection_id'))

    op.drop_table('ad_accounts')
    with op.batch_alter_table('ad_platform_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ad_platform_connections_workspace_id'))

    op.drop_table('ad_platform_connections')
    with op.batch_alter_table('ad_oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ad_oauth_states_workspace_id'))

    op.drop_table('ad_oauth_states')
