"""Credential rows (a mixin of MetadataStore): seeded from the YAML, managed by
the admin API. Secrets are stored sealed (crypto/secrets.py); this module only
moves the stored text, it never sees a key."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import bindparam, delete, false, func, select, update

from . import tables as t
from .engine import Cursor, Prepared, dialect_insert
from .jobs import defer_deletion
from .records import now_us

cr, b, o, v = t.credentials.c, t.buckets.c, t.objects.c, t.object_versions.c


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """A credential as stored: ``secret_key`` (plain, legacy) or ``sealed``."""
    access_key: str
    secret_key: str | None
    sealed: str | None
    owner_id: str
    display_name: str
    active: bool
    created_at: int
    description: str | None
    source: str


_ROW = (cr.access_key, cr.secret_key, cr.secret_ciphertext, cr.owner_id, cr.display_name, cr.active,
        cr.created_at, cr.description, cr.source)
Q_ACTIVE_CREDENTIAL = Prepared(select(*_ROW).where(cr.access_key == bindparam("access_key"), cr.active.is_(True)))
Q_CREDENTIAL_ROW = Prepared(select(*_ROW).where(cr.access_key == bindparam("access_key")))
Q_ALL_CREDENTIALS = Prepared(select(*_ROW).order_by(cr.created_at, cr.access_key))


def _seed(dialect: str):
    """Insert a configured key, or refresh its secret and names; its status and
    description stay as the admin API left them (a disabled key stays disabled)."""
    stmt = dialect_insert(dialect, t.credentials).values(
        access_key=bindparam("access_key"), secret_key=None, secret_ciphertext=bindparam("sealed"),
        owner_id=bindparam("owner_id"), display_name=bindparam("display_name"), active=True,
        created_at=bindparam("created_at"), source="config")
    return stmt.on_conflict_do_update(index_elements=["access_key"], set_={
        "secret_key": None, "secret_ciphertext": stmt.excluded.secret_ciphertext, "owner_id": stmt.excluded.owner_id,
        "display_name": stmt.excluded.display_name, "source": "config"})


Q_SEED = Prepared(_seed)
Q_INSERT_CREDENTIAL = Prepared(lambda d: dialect_insert(d, t.credentials).values(
    access_key=bindparam("access_key"), secret_key=None, secret_ciphertext=bindparam("sealed"),
    owner_id=bindparam("owner_id"), display_name=bindparam("display_name"), active=True,
    created_at=bindparam("created_at"), description=bindparam("description"), source="admin",
).on_conflict_do_nothing(index_elements=["access_key"]))
Q_SET_ACTIVE = Prepared(update(t.credentials).where(cr.access_key == bindparam("b_access_key"))
                        .values(active=bindparam("b_active")))
Q_SET_SEALED = Prepared(update(t.credentials).where(cr.access_key == bindparam("b_access_key"))
                        .values(secret_ciphertext=bindparam("b_sealed"), secret_key=None))
# Re-seal only if the row still holds what was read (another node may have done it).
Q_RESEAL_IF = Prepared(update(t.credentials).where(
    cr.access_key == bindparam("b_access_key"),
    func.coalesce(cr.secret_key, "") == bindparam("b_old_plain"),
    func.coalesce(cr.secret_ciphertext, "") == bindparam("b_old_sealed"))
    .values(secret_ciphertext=bindparam("b_sealed"), secret_key=None))
Q_DELETE_CREDENTIAL = Prepared(delete(t.credentials).where(cr.access_key == bindparam("access_key")))
Q_OTHER_KEYS_OF = Prepared(select(func.count()).select_from(t.credentials).where(
    cr.owner_id == bindparam("owner_id"), cr.access_key != bindparam("access_key")))
Q_OWNER_NAME = Prepared(select(cr.display_name).where(cr.owner_id == bindparam("owner_id")).limit(1))
Q_BUCKETS_OWNED = Prepared(select(b.name).where(b.owner_id == bindparam("owner_id")).order_by(b.name))


def _transfer(table, bucket_column):
    """The old owner's rows in one bucket become the new owner's: the owner columns,
    and the ACL's owner and grants to that id (ACLs are JSON written with compact
    separators, so '"id":"<owner>"' matches exactly the id fields equal to it)."""
    return Prepared(update(table).where(bucket_column == bindparam("b_bucket"),
                                        table.c.owner_id == bindparam("b_from"))
                    .values(owner_id=bindparam("b_to"), owner_display_name=bindparam("b_to_name"),
                            acl=func.replace(table.c.acl, bindparam("b_from_token"), bindparam("b_to_token"))))


Q_TRANSFER = tuple(_transfer(table, column) for table, column in (
    (t.buckets, b.name), (t.objects, o.bucket), (t.object_versions, v.bucket),
    (t.multipart_uploads, t.multipart_uploads.c.bucket)))
Q_ANY_OBJECT = Prepared(select(o.key).where(o.bucket == bindparam("bucket")).limit(1))
Q_ANY_VERSION = Prepared(select(v.key).where(v.bucket == bindparam("bucket")).limit(1))
Q_DELETE_BUCKET = Prepared(delete(t.buckets).where(b.name == bindparam("bucket")))
Q_DELETE_UPLOADS = Prepared(delete(t.multipart_uploads).where(t.multipart_uploads.c.bucket == bindparam("bucket")))
Q_UPLOAD_PARTS = Prepared(select(t.multipart_parts.c.data_location).join(
    t.multipart_uploads, t.multipart_uploads.c.upload_id == t.multipart_parts.c.upload_id)
    .where(t.multipart_uploads.c.bucket == bindparam("bucket")))
# Storage stats: current objects (not delete markers) and noncurrent versions, per bucket.
Q_BUCKET_LIST = Prepared(select(b.name, b.owner_id, b.created_at).order_by(b.name))
Q_CURRENT_STATS = Prepared(select(o.bucket, func.count(), func.coalesce(func.sum(o.size), 0))
                           .where(o.delete_marker == false()).group_by(o.bucket))
Q_NONCURRENT_STATS = Prepared(select(v.bucket, func.count(), func.coalesce(func.sum(v.size), 0))
                              .where(v.delete_marker == false()).group_by(v.bucket))


class OwnerHasBuckets(Exception):
    """Deleting the owner's last key would orphan these buckets."""

    def __init__(self, buckets: list[str]) -> None:
        super().__init__(", ".join(buckets))
        self.buckets = buckets


class BucketsNotEmpty(OwnerHasBuckets):
    """``delete_buckets`` was asked, but these still hold objects or versions."""


class UnknownOwner(Exception):
    """``transfer_to`` names no owner of any credential."""


class CredentialQueries:
    """Mixed into MetadataStore (needs ``self.db`` and ``garbage_not_before``)."""

    def seed_sealed_credentials(self, rows: Iterable[dict]) -> None:
        """Upsert configured keys: dicts of access_key, sealed, owner_id, display_name."""
        rows = [dict(row, created_at=now_us()) for row in rows]

        def work(cur: Cursor) -> None:
            for row in rows:
                cur.run(Q_SEED, **row)
        self.db.write(work)

    def active_credential(self, access_key: str) -> CredentialRow | None:
        row = self.db.read(lambda cur: cur.one(Q_ACTIVE_CREDENTIAL, access_key=access_key))
        return CredentialRow(*row) if row else None

    def credential(self, access_key: str) -> CredentialRow | None:
        row = self.db.read(lambda cur: cur.one(Q_CREDENTIAL_ROW, access_key=access_key))
        return CredentialRow(*row) if row else None

    def all_credentials(self) -> list[CredentialRow]:
        return [CredentialRow(*row) for row in self.db.read(lambda cur: cur.all(Q_ALL_CREDENTIALS))]

    def insert_credential(self, access_key: str, sealed: str, owner_id: str, display_name: str,
                          description: str | None) -> bool:
        """False when the access key exists already."""
        return self.db.write(lambda cur: cur.run(
            Q_INSERT_CREDENTIAL, access_key=access_key, sealed=sealed, owner_id=owner_id,
            display_name=display_name, created_at=now_us(), description=description)) == 1

    def set_credential_active(self, access_key: str, active: bool) -> bool:
        return self.db.write(lambda cur: cur.run(Q_SET_ACTIVE, b_access_key=access_key, b_active=active)) == 1

    def set_credential_sealed(self, access_key: str, sealed: str) -> bool:
        return self.db.write(lambda cur: cur.run(Q_SET_SEALED, b_access_key=access_key, b_sealed=sealed)) == 1

    def reseal_credential(self, row: CredentialRow, sealed: str) -> bool:
        """Replace the stored secret if it is still what ``row`` read (one statement:
        the row is plain or sealed at every instant)."""
        return self.db.write(lambda cur: cur.run(
            Q_RESEAL_IF, b_access_key=row.access_key, b_old_plain=row.secret_key or "",
            b_old_sealed=row.sealed or "", b_sealed=sealed)) == 1

    def delete_credential(self, access_key: str, transfer_to: str | None = None,
                          delete_buckets: bool = False) -> bool:
        """Delete a key in one transaction; False when unknown. When it is its
        owner's last key and the owner has buckets: transfer them to
        ``transfer_to`` (with the objects, versions and uploads the old owner owns
        in them, in this one transaction however many they are), delete them if ``delete_buckets`` (empty ones only: no
        object, no version; their unfinished uploads go), or raise OwnerHasBuckets."""
        def work(cur: Cursor) -> bool:
            row = cur.one(Q_CREDENTIAL_ROW, access_key=access_key)
            if row is None:
                return False
            owner = CredentialRow(*row).owner_id
            last_key = cur.one(Q_OTHER_KEYS_OF, owner_id=owner, access_key=access_key)[0] == 0
            owned = [r[0] for r in cur.all(Q_BUCKETS_OWNED, owner_id=owner)] if last_key else []
            if owned and transfer_to is not None:
                name = cur.one(Q_OWNER_NAME, owner_id=transfer_to)
                if name is None or transfer_to == owner:
                    raise UnknownOwner(transfer_to)
                tokens = dict(b_from_token=f'"id":"{owner}"', b_to_token=f'"id":"{transfer_to}"')
                for bucket in owned:
                    for query in Q_TRANSFER:
                        cur.run(query, b_bucket=bucket, b_from=owner, b_to=transfer_to, b_to_name=name[0], **tokens)
            elif owned and delete_buckets:
                full = [n for n in owned if cur.one(Q_ANY_OBJECT, bucket=n) or cur.one(Q_ANY_VERSION, bucket=n)]
                if full:
                    raise BucketsNotEmpty(full)
                for name in owned:
                    parts = [r[0] for r in cur.all(Q_UPLOAD_PARTS, bucket=name)]
                    cur.run(Q_DELETE_UPLOADS, bucket=name)
                    cur.run(Q_DELETE_BUCKET, bucket=name)
                    defer_deletion(cur, parts, self.garbage_not_before())
            elif owned:
                raise OwnerHasBuckets(owned)
            return cur.run(Q_DELETE_CREDENTIAL, access_key=access_key) == 1
        return self.db.write(work)

    def storage_stats(self) -> list[tuple[str, str, int, int, int, int, int]]:
        """Per bucket: (name, owner_id, created_at, objects, bytes, noncurrent
        versions, noncurrent bytes), from one read snapshot."""
        def work(cur: Cursor):
            current = {r[0]: (int(r[1]), int(r[2])) for r in cur.all(Q_CURRENT_STATS)}
            old = {r[0]: (int(r[1]), int(r[2])) for r in cur.all(Q_NONCURRENT_STATS)}
            return [(name, owner, created, *current.get(name, (0, 0)), *old.get(name, (0, 0)))
                    for name, owner, created in cur.all(Q_BUCKET_LIST)]
        return self.db.read_snapshot(work)


__all__ = ["CredentialQueries", "CredentialRow", "OwnerHasBuckets", "BucketsNotEmpty", "UnknownOwner"]
