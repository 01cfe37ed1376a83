"""object versions and object lock

Buckets gain a versioning state and an Object Lock configuration; every object
version gains its version id ("null" for every existing object: they were written
to never-versioned buckets), an ordering sequence, a delete-marker flag and its
lock (mode, retain-until, legal hold). Noncurrent versions live in the new
object_versions table. object_parts rows now belong to one version of a key
(existing rows to its "null" version), so their key no longer points at the
objects row. Open multipart uploads keep the lock asked for at creation.

Existing rows keep every value they had; only the new columns take their
defaults. Downgrade is refused while versioned data exists (a versioned or
object-locked bucket, a noncurrent version, a delete marker, a lock): dropping
them would lose versions silently.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 04:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _byte_order_string(length):
    return sa.String(length=length).with_variant(sa.VARCHAR(length=length, collation='C'), 'postgresql')


def _version_columns():
    return [
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
    ] + _new_version_columns()


def _new_version_columns():
    return [
        sa.Column('version_id', sa.String(length=64), server_default='null', nullable=False),
        sa.Column('version_seq', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('delete_marker', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('lock_mode', sa.String(length=16), nullable=True),
        sa.Column('lock_until', sa.BigInteger(), nullable=True),
        sa.Column('legal_hold', sa.Boolean(), nullable=True),
    ]


def upgrade():
    with op.batch_alter_table('buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('versioning', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('object_lock', sa.Text(), nullable=True))

    with op.batch_alter_table('objects', schema=None) as batch_op:
        for column in _new_version_columns():
            batch_op.add_column(column)

    with op.batch_alter_table('multipart_uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_mode', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('lock_until', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=True))

    op.create_table('object_versions',
    sa.Column('bucket', _byte_order_string(63), nullable=False),
    sa.Column('key', _byte_order_string(1024), nullable=False),
    *_version_columns(),
    sa.ForeignKeyConstraint(['bucket'], ['buckets.name'], name=op.f('fk_object_versions_bucket_buckets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bucket', 'key', 'version_seq', name=op.f('pk_object_versions')),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('object_versions', schema=None) as batch_op:
        batch_op.create_index('ix_object_versions_data_location', ['data_location'], unique=False)
        batch_op.create_index('ix_object_versions_version_id', ['bucket', 'key', 'version_id'], unique=True)

    # PostgreSQL alters the table in place; SQLite rebuilds it (copying every row).
    with op.batch_alter_table('object_parts', schema=None, recreate='auto',
                              table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.drop_constraint('fk_object_parts_bucket_objects', type_='foreignkey')
        batch_op.add_column(sa.Column('version_id', sa.String(length=64), server_default='null', nullable=False))
        batch_op.drop_constraint('pk_object_parts', type_='primary')
        batch_op.create_primary_key('pk_object_parts', ['bucket', 'key', 'version_id', 'part_number'])


_VERSIONED_DATA = (
    ("buckets with versioning or Object Lock", "SELECT count(*) FROM buckets "
     "WHERE versioning IS NOT NULL OR object_lock IS NOT NULL"),
    ("noncurrent object versions", "SELECT count(*) FROM object_versions"),
    ("objects with a version id, a delete marker or a lock", "SELECT count(*) FROM objects "
     "WHERE version_id <> 'null' OR delete_marker OR lock_mode IS NOT NULL OR legal_hold IS NOT NULL"),
    ("multipart uploads asking for Object Lock", "SELECT count(*) FROM multipart_uploads "
     "WHERE lock_mode IS NOT NULL OR legal_hold IS NOT NULL"),
)


def downgrade():
    conn = op.get_bind()
    counts = [(what, conn.execute(sa.text(query)).scalar()) for what, query in _VERSIONED_DATA]
    found = [f"{what}: {count}" for what, count in counts if count]
    if found:
        raise RuntimeError(
            "cannot downgrade below 0003: this database holds versioned data that the older schema cannot "
            f"represent ({'; '.join(found)}). S3 has no way back to 'never versioned' either: to run the older "
            "release, restore a backup taken before the upgrade.")

    with op.batch_alter_table('object_parts', schema=None, recreate='auto',
                              table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        batch_op.drop_constraint('pk_object_parts', type_='primary')
        batch_op.drop_column('version_id')
        batch_op.create_primary_key('pk_object_parts', ['bucket', 'key', 'part_number'])
        batch_op.create_foreign_key('fk_object_parts_bucket_objects', 'objects', ['bucket', 'key'],
                                    ['bucket', 'key'], ondelete='CASCADE')

    with op.batch_alter_table('object_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_object_versions_version_id')
        batch_op.drop_index('ix_object_versions_data_location')
    op.drop_table('object_versions')

    with op.batch_alter_table('multipart_uploads', schema=None) as batch_op:
        batch_op.drop_column('legal_hold')
        batch_op.drop_column('lock_until')
        batch_op.drop_column('lock_mode')

    with op.batch_alter_table('objects', schema=None, table_kwargs={'sqlite_with_rowid': False}) as batch_op:
        for column in reversed(_new_version_columns()):
            batch_op.drop_column(column.name)

    with op.batch_alter_table('buckets', schema=None) as batch_op:
        batch_op.drop_column('object_lock')
        batch_op.drop_column('versioning')
