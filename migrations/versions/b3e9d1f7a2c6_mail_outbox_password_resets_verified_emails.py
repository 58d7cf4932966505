"""Mail: the outbox of e-mails to deliver, password-reset links, users' verified e-mail addresses; the setup checklist's workspace state

Revision ID: b3e9d1f7a2c6
Revises: e7a1c3b5d902
Create Date: 2026-12-03 13:40:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'b3e9d1f7a2c6'
down_revision = 'b3d5f7a9c1e4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox_mails',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('recipient', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'],
                                name=op.f('fk_outbox_mails_workspace_id_workspaces'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_mails')),
    )
    with op.batch_alter_table('outbox_mails') as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_mails_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_mails_sent_at'), ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_mails_workspace_id'), ['workspace_id'], unique=False)
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash')),
    )
    with op.batch_alter_table('password_resets') as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('workspaces') as batch_op:
        batch_op.add_column(sa.Column('snippet_seen_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('onboarding_dismissed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('workspaces') as batch_op:
        batch_op.drop_column('onboarding_dismissed_at')
        batch_op.drop_column('snippet_seen_at')
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('email_verified_at')
    with op.batch_alter_table('password_resets') as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_user_id'))
    op.drop_table('password_resets')
    with op.batch_alter_table('outbox_mails') as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_mails_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_mails_sent_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_mails_next_attempt_at'))
    op.drop_table('outbox_mails')
