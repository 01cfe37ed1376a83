"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 19:18:59.727422
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('buckets',
    sa.Column('name', sa.String(length=63).with_variant(sa.VARCHAR(length=63, collation='C'), 'postgresql'), nullable=False),
    sa.Column('owner_id', sa.String(length=128), nullable=False),
    sa.Column('owner_display_name', sa.String(length=256), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('acl', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_buckets'))
    )
    op.create_table('credentials',
    sa.Column('access_key', sa.String(length=128), nullable=False),
    sa.Column('secret_key', sa.String(length=256), nullable=False),
    sa.Column('owner_id', sa.String(length=128), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('access_key', name=op.f('pk_credentials'))
    )
    op.create_table('inline_data',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inline_data'))
    )
    op.create_table('multipart_uploads',
    sa.Column('upload_id', sa.String(length=64), nullable=False),
    sa.Column('bucket', sa.String(length=63).with_variant(sa.VARCHAR(length=63, collation='C'), 'postgresql'), nullable=False),
    sa.Column('key', sa.String(length=1024).with_variant(sa.VARCHAR(length=1024, collation='C'), 'postgresql'), nullable=False),
    sa.Column('initiated_at', sa.BigInteger(), nullable=False),
    sa.Column('owner_id', sa.String(length=128), nullable=False),
    sa.Column('owner_display_name', sa.String(length=256), nullable=False),
    sa.Column('storage_class', sa.String(length=32), nullable=False),
    sa.Column('content_type', sa.String(length=1024), nullable=True),
    sa.Column('content_headers', sa.Text(), nullable=True),
    sa.Column('user_metadata', sa.Text(), nullable=True),
    sa.Column('acl', sa.Text(), nullable=True),
    sa.Column('checksum_algorithm', sa.String(length=16), nullable=True),
    sa.Column('checksum_type', sa.String(length=16), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('completed_etag', sa.String(length=80), nullable=True),
    sa.Column('completed_checksum', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_multipart_uploads_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', name=op.f('pk_multipart_uploads'))
    )
    with op.batch_alter_table('multipart_uploads', schema=None) as batch_op:
        batch_op.create_index('ix_multipart_uploads_bucket_key', ['bucket', 'key', 'upload_id'], unique=False)
        batch_op.create_index('ix_multipart_uploads_initiated_at', ['initiated_at'], unique=False)

    op.create_table('objects',
    sa.Column('bucket', sa.String(length=63).with_variant(sa.VARCHAR(length=63, collation='C'), 'postgresql'), nullable=False),
    sa.Column('key', sa.String(length=1024).with_variant(sa.VARCHAR(length=1024, collation='C'), 'postgresql'), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=80), nullable=False),
    sa.Column('last_modified', sa.BigInteger(), nullable=False),
    sa.Column('storage_class', sa.String(length=32), nullable=False),
    sa.Column('content_type', sa.String(length=1024), nullable=True),
    sa.Column('content_headers', sa.Text(), nullable=True),
    sa.Column('user_metadata', sa.Text(), nullable=True),
    sa.Column('checksums', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.String(length=128), nullable=False),
    sa.Column('owner_display_name', sa.String(length=256), nullable=False),
    sa.Column('acl', sa.Text(), nullable=True),
    sa.Column('data_location', sa.String(length=256), nullable=False),
    sa.Column('data_inline', sa.Boolean(), nullable=False),
    sa.Column('parts_count', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_objects_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'key', name=op.f('pk_objects')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.create_index('ix_objects_data_location', ['data_location'], unique=False)

    op.create_table('multipart_parts',
    sa.Column('upload_id', sa.String(length=64), nullable=False),
    sa.Column('part_number', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=80), nullable=False),
    sa.Column('last_modified', sa.BigInteger(), nullable=False),
    sa.Column('checksums', sa.Text(), nullable=True),
    sa.Column('data_location', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['upload_id'], ['multipart_uploads.upload_id'], name=op.f('fk_multipart_parts_upload_id_multipart_uploads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', 'part_number', name=op.f('pk_multipart_parts')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('multipart_parts', schema=None) as batch_op:
        batch_op.create_index('ix_multipart_parts_data_location', ['data_location'], unique=False)

    op.create_table('object_parts',
    sa.Column('bucket', sa.String(length=63).with_variant(sa.VARCHAR(length=63, collation='C'), 'postgresql'), nullable=False),
    sa.Column('key', sa.String(length=1024).with_variant(sa.VARCHAR(length=1024, collation='C'), 'postgresql'), nullable=False),
    sa.Column('part_number', sa.Integer(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=80), nullable=False),
    sa.Column('checksums', sa.Text(), nullable=True),
    sa.Column('data_location', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['bucket', 'key'], ['objects.bucket', 'objects.key'], name=op.f('fk_object_parts_bucket_objects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'key', 'part_number', name=op.f('pk_object_parts')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('object_parts', schema=None) as batch_op:
        batch_op.create_index('ix_object_parts_data_location', ['data_location'], unique=False)



def downgrade():
    with op.batch_alter_table('object_parts', schema=None) as batch_op:
        batch_op.drop_index('ix_object_parts_data_location')

    op.drop_table('object_parts')
    with op.batch_alter_table('multipart_parts', schema=None) as batch_op:
        batch_op.drop_index('ix_multipart_parts_data_location')

    op.drop_table('multipart_parts')
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.drop_index('ix_objects_data_location')

    op.drop_table('objects')
    with op.batch_alter_table('multipart_uploads', schema=None) as batch_op:
        batch_op.drop_index('ix_multipart_uploads_initiated_at')
        batch_op.drop_index('ix_multipart_uploads_bucket_key')

    op.drop_table('multipart_uploads')
    op.drop_table('inline_data')
    op.drop_table('credentials')
    op.drop_table('buckets')
