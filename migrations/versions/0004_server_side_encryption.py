"""server-side encryption

Buckets gain their default encryption (PutBucketEncryption); every object version
and open multipart upload gains how its bytes are encrypted (mode, wrapped data
key, or a salted HMAC of an SSE-C key). Existing rows take NULL: they were stored
in clear, and stay readable as they are.

Downgrade is refused while any encrypted object, upload or bucket default exists:
without the column the server would serve ciphertext as the object.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TABLES = ('buckets', 'objects', 'object_versions', 'multipart_uploads')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('encryption', sa.Text(), nullable=True))


def downgrade():
    conn = op.get_bind()
    found = {table: conn.execute(sa.text(f'SELECT count(*) FROM {table} WHERE encryption IS NOT NULL')).scalar()
             for table in TABLES}
    if any(found.values()):
        counts = ', '.join(f'{n} in {table}' for table, n in found.items() if n)
        raise RuntimeError(f'cannot downgrade below 0004: encrypted data exists ({counts}); without the '
                           f'encryption column its ciphertext would be served as the object. Delete or '
                           f'rewrite those objects in clear first.')
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('encryption')
