"""object and bucket tagging, lifecycle configuration

Every object version and open multipart upload gains its tag set; buckets gain
their tag set (PutBucketTagging) and lifecycle configuration. All JSON text,
NULL when none: existing rows have no tags and no rules, as before.

Downgrade is refused while any tag set or lifecycle rule exists: dropping the
columns would silently discard what clients stored (and lifecycle rules filtered
by tag would then match nothing).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COLUMNS = (('objects', 'tags'), ('object_versions', 'tags'), ('multipart_uploads', 'tags'),
           ('buckets', 'tagging'), ('buckets', 'lifecycle'))


def upgrade():
    for table, column in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(column, sa.Text(), nullable=True))


def downgrade():
    conn = op.get_bind()
    found = {(table, column): conn.execute(sa.text(f'SELECT count(*) FROM {table} WHERE {column} IS NOT NULL')).scalar()
             for table, column in COLUMNS}
    if any(found.values()):
        counts = ', '.join(f'{n} {column} in {table}' for (table, column), n in found.items() if n)
        raise RuntimeError(f'cannot downgrade below 0005: tag sets or lifecycle rules exist ({counts}); the '
                           f'downgrade would discard them. Delete them first (DeleteObjectTagging, '
                           f'DeleteBucketTagging, DeleteBucketLifecycle).')
    for table, column in reversed(COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
