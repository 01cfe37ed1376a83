"""blob garbage and leases

Replaced and deleted blobs are no longer deleted right after the commit that
unlinks them: that commit records them in blob_garbage, and a sweeper holding the
"blob-sweeper" lease deletes them once readers are done. Both tables start empty;
existing rows need nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:34:57.272554
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('blob_garbage',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('location', sa.String(length=256), nullable=False),
    sa.Column('not_before', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blob_garbage'))
    )
    with op.batch_alter_table('blob_garbage', schema=None) as batch_op:
        batch_op.create_index('ix_blob_garbage_not_before', ['not_before'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('progress', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )


def downgrade():
    op.drop_table('leases')
    with op.batch_alter_table('blob_garbage', schema=None) as batch_op:
        batch_op.drop_index('ix_blob_garbage_not_before')

    op.drop_table('blob_garbage')
