"""bucket access configuration: CORS, bucket policy, public access block, ownership controls

Buckets gain four JSON text columns, NULL when none (as every existing bucket
has): the CORS rules (PutBucketCors), the bucket policy (PutBucketPolicy), the
public access block (PutPublicAccessBlock) and the object ownership controls
(PutBucketOwnershipControls; NULL means the configured default).

Downgrade is refused while any of them is set: dropping a policy or a public
access block would silently open what it denies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 23:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = ('cors', 'policy', 'public_access_block', 'ownership_controls')


def upgrade():
    with op.batch_alter_table('buckets') as batch:
        for column in COLUMNS:
            batch.add_column(sa.Column(column, sa.Text(), nullable=True))


def downgrade():
    conn = op.get_bind()
    found = {column: conn.execute(sa.text(f'SELECT count(*) FROM buckets WHERE {column} IS NOT NULL')).scalar()
             for column in COLUMNS}
    if any(found.values()):
        counts = ', '.join(f'{n} bucket(s) with {column}' for column, n in found.items() if n)
        raise RuntimeError(f'cannot downgrade below 0006: bucket access configurations exist ({counts}); the '
                           f'downgrade would discard them. Delete them first (DeleteBucketCors, '
                           f'DeleteBucketPolicy, DeletePublicAccessBlock, DeleteBucketOwnershipControls).')
    with op.batch_alter_table('buckets') as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
