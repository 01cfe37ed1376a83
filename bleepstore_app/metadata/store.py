"""Queries over the metadata tables, each one short transaction.

SQLAlchemy Core throughout: the hot paths (get an object, put an object, list a
page) are one or two statements and read rows as tuples, never ORM objects.
Methods return records or plain values; deciding which S3 error that means is the
service layer's job.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import tables as t
from .engine import Database
from .records import BucketRecord, CredentialRecord, ListedObject, ObjectRecord, now_us


class MissingBucket(Exception):
    """The bucket a write referred to no longer exists."""


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


_LISTING_COLUMNS = (t.objects.c.key, t.objects.c.size, t.objects.c.etag, t.objects.c.last_modified,
                    t.objects.c.storage_class, t.objects.c.owner_id, t.objects.c.owner_display_name)


class MetadataStore:
    """Everything the service layer asks of the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- credentials -------------------------------------------------------

    def seed_credentials(self, creds: Iterable[CredentialRecord]) -> None:
        """Insert or refresh the configured credentials (safe to run concurrently)."""
        rows = [{"access_key": c.access_key, "secret_key": c.secret_key, "owner_id": c.owner_id,
                 "display_name": c.display_name, "active": True, "created_at": now_us()} for c in creds]

        def work(conn: Connection) -> None:
            for row in rows:
                stmt = _insert(conn, t.credentials).values(**row)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[t.credentials.c.access_key],
                    set_={k: stmt.excluded[k] for k in ("secret_key", "owner_id", "display_name", "active")})
                conn.execute(stmt)
        self.db.write(work)

    def get_credential(self, access_key: str) -> CredentialRecord | None:
        c = t.credentials.c
        stmt = select(c.access_key, c.secret_key, c.owner_id, c.display_name).where(
            c.access_key == access_key, c.active.is_(True))
        row = self.db.read(lambda conn: conn.execute(stmt).first())
        return CredentialRecord(*row) if row else None

    # -- buckets -----------------------------------------------------------

    def create_bucket(self, record: BucketRecord) -> BucketRecord | None:
        """Create the bucket; return the existing one instead if the name is taken."""
        def work(conn: Connection) -> BucketRecord | None:
            stmt = _insert(conn, t.buckets).values(
                name=record.name, owner_id=record.owner_id, owner_display_name=record.owner_display_name,
                region=record.region, created_at=record.created_at, acl=record.acl,
            ).on_conflict_do_nothing(index_elements=[t.buckets.c.name])
            if conn.execute(stmt).rowcount == 1:
                return None
            return self._get_bucket(conn, record.name)
        return self.db.write(work)

    def get_bucket(self, name: str) -> BucketRecord | None:
        return self.db.read(lambda conn: self._get_bucket(conn, name))

    @staticmethod
    def _get_bucket(conn: Connection, name: str) -> BucketRecord | None:
        c = t.buckets.c
        row = conn.execute(select(c.name, c.owner_id, c.owner_display_name, c.region, c.created_at, c.acl)
                           .where(c.name == name)).first()
        return BucketRecord(*row) if row else None

    def list_buckets(self, owner_id: str) -> list[BucketRecord]:
        c = t.buckets.c
        stmt = (select(c.name, c.owner_id, c.owner_display_name, c.region, c.created_at, c.acl)
                .where(c.owner_id == owner_id).order_by(c.name))
        return self.db.read(lambda conn: [BucketRecord(*r) for r in conn.execute(stmt)])

    def delete_bucket(self, name: str) -> tuple[bool, list[str]]:
        """Delete an empty bucket. Returns (deleted, part data locations to remove);
        (False, []) when it still holds objects."""
        def work(conn: Connection) -> tuple[bool, list[str]]:
            if conn.execute(select(t.objects.c.key).where(t.objects.c.bucket == name).limit(1)).first():
                return False, []
            up, pt = t.multipart_uploads.c, t.multipart_parts.c
            parts = [r[0] for r in conn.execute(
                select(pt.data_location).join(t.multipart_uploads, up.upload_id == pt.upload_id)
                .where(up.bucket == name))]
            conn.execute(delete(t.multipart_uploads).where(up.bucket == name))
            conn.execute(delete(t.buckets).where(t.buckets.c.name == name))
            return True, parts
        return self.db.write(work)

    # -- objects -----------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        c = t.objects.c
        stmt = select(t.objects).where(c.bucket == bucket, c.key == key)
        row = self.db.read(lambda conn: conn.execute(stmt).first())
        return ObjectRecord.from_row(row) if row else None

    def get_object_with_inline(self, bucket: str, key: str) -> tuple[ObjectRecord | None, bytes | None]:
        """The object row and, for an inline object, its bytes — in one statement,
        so a concurrent overwrite cannot pair one version's row with no bytes."""
        c = t.objects.c
        stmt = (select(t.objects, t.inline_data.c.data.label("inline_bytes"))
                .outerjoin(t.inline_data, and_(c.data_inline.is_(True), t.inline_data.c.id == c.data_location))
                .where(c.bucket == bucket, c.key == key))
        row = self.db.read(lambda conn: conn.execute(stmt).first())
        if row is None:
            return None, None
        data = row._mapping["inline_bytes"]
        return ObjectRecord.from_row(row), (bytes(data) if data is not None else None)

    def put_object(self, record: ObjectRecord, inline: bytes | None = None) -> str | None:
        """Insert or replace an object row (and its inline bytes) in one transaction.

        Returns the storage location the replaced version pointed at, for the caller
        to delete after this commit; None when there is nothing to delete.
        Raises MissingBucket when the bucket vanished meanwhile.
        """
        row = record.to_row()

        def work(conn: Connection) -> str | None:
            c = t.objects.c
            old = conn.execute(select(c.data_location, c.data_inline)
                               .where(c.bucket == record.bucket, c.key == record.key)).first()
            if old is not None and old.data_inline:
                conn.execute(delete(t.inline_data).where(t.inline_data.c.id == old.data_location))
            if inline is not None:
                conn.execute(t.inline_data.insert().values(id=record.data_location, data=inline))
            stmt = _insert(conn, t.objects).values(**row)
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.bucket, c.key],
                set_={k: stmt.excluded[k] for k in row if k not in ("bucket", "key")})
            conn.execute(stmt)
            return old.data_location if old is not None and not old.data_inline else None

        try:
            return self.db.write(work)
        except IntegrityError:
            raise MissingBucket(record.bucket) from None

    def delete_object(self, bucket: str, key: str) -> tuple[bool, str | None]:
        """Delete an object row. Returns (existed, storage location to delete after commit)."""
        def work(conn: Connection) -> tuple[bool, str | None]:
            c = t.objects.c
            old = conn.execute(select(c.data_location, c.data_inline)
                               .where(c.bucket == bucket, c.key == key)).first()
            if old is None:
                return False, None
            conn.execute(delete(t.objects).where(c.bucket == bucket, c.key == key))
            if old.data_inline:
                conn.execute(delete(t.inline_data).where(t.inline_data.c.id == old.data_location))
                return True, None
            return True, old.data_location
        return self.db.write(work)

    def list_objects(self, bucket: str, start: str, inclusive: bool, high: str | None,
                     limit: int) -> list[ListedObject]:
        """Up to ``limit`` objects with start <(=) key < high, in key order."""
        c = t.objects.c
        cond = [c.bucket == bucket, (c.key >= start) if inclusive else (c.key > start)]
        if high is not None:
            cond.append(c.key < high)
        stmt = select(*_LISTING_COLUMNS).where(and_(*cond)).order_by(c.key).limit(limit)
        return self.db.read(lambda conn: [ListedObject(*r) for r in conn.execute(stmt)])

    def count_objects(self, bucket: str) -> int:
        stmt = select(func.count()).select_from(t.objects).where(t.objects.c.bucket == bucket)
        return self.db.read(lambda conn: conn.execute(stmt).scalar_one())

    # -- recovery ----------------------------------------------------------

    def locations_in_use(self, candidates: list[str]) -> set[str]:
        """Which of these storage locations some object or part row points at."""
        def work(conn: Connection) -> set[str]:
            o, p = t.objects.c, t.multipart_parts.c
            used = {r[0] for r in conn.execute(select(o.data_location).where(o.data_location.in_(candidates)))}
            used |= {r[0] for r in conn.execute(select(p.data_location).where(p.data_location.in_(candidates)))}
            return used
        return self.db.read(work)

    def set_bucket_acl(self, name: str, acl: str) -> None:
        self.db.write(lambda conn: conn.execute(update(t.buckets).where(t.buckets.c.name == name).values(acl=acl)))
