"""managed credentials: secrets encrypted at rest, a description, where a key came from

Credentials gain ``secret_ciphertext`` (the secret key sealed with AES-256-GCM
under the server's credential key: ``v1:<key id>:<base64 nonce+ciphertext>``),
``description`` (free text from the admin API) and ``source`` ("config" for a
key seeded from the YAML, "admin" for one made by the admin API or CLI).
``secret_key`` (the plain secret) becomes nullable: NULL once encrypted.

The upgrade does not encrypt: the key may not be readable where migrations run
(deploy/migrate.sh, ``flask db upgrade`` on an operator's laptop). The server's
start-up (recovery.py) encrypts every row still in clear, one row per
statement, each update setting the ciphertext and clearing the plain secret
together; a crash in between leaves rows that are either plain or encrypted,
both of which authenticate, and the next start finishes the job.

Downgrade is refused when it would lose something: a credential made by the
admin API, a disabled credential (it would come back enabled from the YAML), or
a description. Otherwise it deletes the configured credentials whose secret is
only held encrypted: the older release seeds them again from its YAML at start.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('credentials') as batch:
        batch.add_column(sa.Column('secret_ciphertext', sa.Text(), nullable=True))
        batch.add_column(sa.Column('description', sa.String(256), nullable=True))
        batch.add_column(sa.Column('source', sa.String(16), nullable=False, server_default='config'))
        batch.alter_column('secret_key', existing_type=sa.String(256), nullable=True)


def downgrade():
    conn = op.get_bind()

    def count(where):
        return conn.execute(sa.text(f'SELECT count(*) FROM credentials WHERE {where}')).scalar()
    found = {'made by the admin API': count("source <> 'config'"),
             'disabled': count('NOT active'),
             'with a description': count('description IS NOT NULL')}
    if any(found.values()):
        counts = ', '.join(f'{n} credential(s) {what}' for what, n in found.items() if n)
        raise RuntimeError(f'cannot downgrade below 0007: {counts}; the older release would lose them (or '
                           f'enable a disabled key). Delete them with `bleepstore admin credentials delete` '
                           f'(enable or delete the disabled ones) first.')
    # Configured keys held only encrypted: the older release seeds them again at start.
    conn.execute(sa.text('DELETE FROM credentials WHERE secret_key IS NULL'))
    with op.batch_alter_table('credentials') as batch:
        batch.alter_column('secret_key', existing_type=sa.String(256), nullable=False)
        batch.drop_column('source')
        batch.drop_column('description')
        batch.drop_column('secret_ciphertext')
