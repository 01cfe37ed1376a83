"""Queries over the metadata tables, each one short transaction.

Every statement is SQLAlchemy Core, built once at import and compiled once per
dialect (see ``engine.Prepared``). Methods return records or plain values;
deciding which S3 error that means is the service layer's job.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, delete, false, func, insert, literal, select, update

from . import tables as t
from .credentials import CredentialQueries
from .encryption import EncryptionQueries
from .engine import Cursor, Database, Prepared, dialect_insert
from .jobs import JobQueries, defer_deletion
from .lifecycle import LifecycleQueries
from .multipart import MultipartQueries, NoUpload
from .tagging import TaggingQueries
from .records import (BucketRecord, ConditionFailed, ListedObject, MissingBucket, ObjectRecord,
                      VersionLocked, now_us)
from .versions import (Q_REPLACE_CURRENT, ObjectVersion, VersionQueries, move_to_history, needs_parts,
                       object_record as _object_record, release_version, take_null_from_history)


__all__ = ["MetadataStore", "MissingBucket", "ConditionFailed", "NoUpload", "ObjectVersion", "VersionLocked"]

def _upsert(table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Prepared:
    """INSERT ... ON CONFLICT (keys) DO UPDATE of the other columns, per dialect."""
    def build(dialect: str):
        stmt = dialect_insert(dialect, table).values({c: bindparam(c) for c in columns})
        return stmt.on_conflict_do_update(index_elements=list(keys),
                                          set_={c: stmt.excluded[c] for c in columns if c not in keys})
    return Prepared(build)


o, b, cr, inl = t.objects.c, t.buckets.c, t.credentials.c, t.inline_data.c
up, pt = t.multipart_uploads.c, t.multipart_parts.c

_BUCKET_COLUMNS = (b.name, b.owner_id, b.owner_display_name, b.region, b.created_at, b.acl, b.versioning,
                   b.object_lock, b.encryption, b.tagging, b.lifecycle, b.cors, b.policy,
                   b.public_access_block, b.ownership_controls)
_OBJECT_COLUMNS = tuple(t.objects.c)
_OBJECT_NAMES = tuple(c.name for c in _OBJECT_COLUMNS)
_LISTING_COLUMNS = (o.key, o.size, o.etag, o.last_modified, o.storage_class, o.owner_id, o.owner_display_name)
_PARTS_COUNT_INDEX = _OBJECT_NAMES.index("parts_count")
_LOCATION_INDEX = _OBJECT_NAMES.index("data_location")
_VERSION_ID_INDEX = _OBJECT_NAMES.index("version_id")


Q_BUCKET = Prepared(select(*_BUCKET_COLUMNS).where(b.name == bindparam("name")))
# One owner's buckets by name, one page: after a name, in a [prefix, prefix_end)
# range of the primary key (bucket names are ASCII, below prefix_end's last
# character), in one region or any (NULL; coalesce keeps the parameter typed).
Q_BUCKETS_OF = Prepared(select(*_BUCKET_COLUMNS).where(
    b.owner_id == bindparam("owner_id"), b.name > bindparam("after"), b.name >= bindparam("prefix"),
    b.name < bindparam("prefix_end"), b.region == func.coalesce(bindparam("region"), b.region))
    .order_by(b.name).limit(bindparam("limit")))
_NAME_END = "\U0010ffff"  # sorts after every bucket name, as UTF-8 bytes too
_NO_LIMIT = 2**31 - 1  # a LIMIT both engines take (SQLite refuses LIMIT NULL)
Q_CREATE_BUCKET = Prepared(lambda d: dialect_insert(d, t.buckets).values(
    {c.name: bindparam(c.name) for c in _BUCKET_COLUMNS}).on_conflict_do_nothing(index_elements=["name"]))
# The bucket configurations stored whole as one JSON text column each (0006).
_ACCESS_CONFIG_COLUMNS = ("cors", "policy", "public_access_block", "ownership_controls")
Q_SET_BUCKET_CONFIG = {name: Prepared(update(t.buckets).where(b.name == bindparam("b_name"))
                                      .values({name: bindparam("value")})) for name in _ACCESS_CONFIG_COLUMNS}
Q_ANY_OBJECT_IN = Prepared(select(o.key).where(o.bucket == bindparam("bucket")).limit(1))
Q_PARTS_IN_BUCKET = Prepared(select(pt.data_location).join(t.multipart_uploads, up.upload_id == pt.upload_id)
                             .where(up.bucket == bindparam("bucket")))
Q_DELETE_UPLOADS_IN = Prepared(delete(t.multipart_uploads).where(up.bucket == bindparam("bucket")))
Q_DELETE_BUCKET = Prepared(delete(t.buckets).where(b.name == bindparam("bucket")))
Q_SET_OBJECT_ACL = Prepared(update(t.objects).where(o.bucket == bindparam("b_bucket"), o.key == bindparam("b_key"),
                                                    o.delete_marker == false())
                            .values(acl=bindparam("acl")))
Q_SET_BUCKET_VERSIONING = Prepared(update(t.buckets).where(b.name == bindparam("bucket"))
                                   .values(versioning=bindparam("versioning")))
Q_SET_BUCKET_OBJECT_LOCK = Prepared(update(t.buckets).where(b.name == bindparam("bucket"))
                                    .values(object_lock=bindparam("object_lock"), versioning="Enabled"))
Q_SET_BUCKET_ENCRYPTION = Prepared(update(t.buckets).where(b.name == bindparam("bucket"))
                                   .values(encryption=bindparam("encryption")))
Q_OWNER_NAME = Prepared(select(cr.display_name).where(cr.owner_id == bindparam("owner_id")).limit(1))
Q_SET_BUCKET_ACL = Prepared(update(t.buckets).where(b.name == bindparam("bucket")).values(acl=bindparam("acl")))

_WHERE_KEY = and_(o.bucket == bindparam("bucket"), o.key == bindparam("key"))
Q_OBJECT = Prepared(select(*_OBJECT_COLUMNS).where(_WHERE_KEY))
Q_OBJECT_WITH_INLINE = Prepared(
    select(*_OBJECT_COLUMNS, inl.data)
    .outerjoin(t.inline_data, and_(o.data_inline.is_(True), inl.id == o.data_location))
    .where(_WHERE_KEY))
# A bucket's row and one key's current version (NULLs: no such key), in one
# statement: GetObject and HeadObject need both (service/buckets.rows_read_once).
_BUCKET_WITH_KEY = t.buckets.outerjoin(t.objects, and_(o.bucket == b.name, o.key == bindparam("key")))
Q_BUCKET_AND_OBJECT = Prepared(select(*_BUCKET_COLUMNS, *_OBJECT_COLUMNS).select_from(_BUCKET_WITH_KEY)
                               .where(b.name == bindparam("name")))
Q_BUCKET_AND_OBJECT_WITH_INLINE = Prepared(
    select(*_BUCKET_COLUMNS, *_OBJECT_COLUMNS, inl.data)
    .select_from(_BUCKET_WITH_KEY.outerjoin(t.inline_data, and_(o.data_inline.is_(True), inl.id == o.data_location)))
    .where(b.name == bindparam("name")))
# FOR UPDATE (PostgreSQL; SQLite writers are serialised anyway): the location read
# is the one this transaction replaces, even with writers racing on other nodes.
Q_OBJECT_LOCATION = Prepared(select(o.data_location, o.data_inline, o.etag, o.parts_count, o.version_id,
                                    o.version_seq, o.delete_marker)
                             .where(_WHERE_KEY).with_for_update())
Q_INSERT_OBJECT_IF_ABSENT = Prepared(lambda d: dialect_insert(d, t.objects).values(
    {c: bindparam(c) for c in _OBJECT_NAMES}).on_conflict_do_nothing(index_elements=["bucket", "key"]))
Q_DELETE_OBJECT = Prepared(delete(t.objects).where(_WHERE_KEY))
Q_INSERT_INLINE = Prepared(insert(t.inline_data).values(id=bindparam("id"), data=bindparam("data")))
op_ = t.object_parts.c
_WHERE_OBJECT_PARTS = and_(op_.bucket == bindparam("bucket"), op_.key == bindparam("key"),
                           op_.version_id == bindparam("version_id"))
Q_OBJECT_PARTS = Prepared(select(op_.part_number, op_.offset, op_.size, op_.etag, op_.checksums, op_.data_location)
                          .where(_WHERE_OBJECT_PARTS).order_by(op_.part_number))
Q_INSERT_OBJECT_PART = Prepared(insert(t.object_parts).values(
    {c.name: bindparam(c.name) for c in t.object_parts.c}))
Q_PING = Prepared(select(literal(1)))
Q_COUNT_ALL_BUCKETS = Prepared(select(func.count()).select_from(t.buckets))
Q_COUNT_ALL_OBJECTS = Prepared(select(func.count()).select_from(t.objects))
# Bytes of every stored version, current (objects) and noncurrent (object_versions).
Q_SUM_OBJECT_BYTES = Prepared(select(func.coalesce(func.sum(o.size), 0)))
Q_SUM_VERSION_BYTES = Prepared(select(func.coalesce(func.sum(t.object_versions.c.size), 0)))
Q_COUNT_OBJECTS = Prepared(select(func.count()).select_from(t.objects).where(o.bucket == bindparam("bucket")))
Q_BUCKET_USAGE = Prepared(select(func.count(), func.sum(o.size)).where(o.bucket == bindparam("bucket"),
                                                                       o.delete_marker == false()))

_LIST_BASE = select(*_LISTING_COLUMNS).order_by(o.key).limit(bindparam("limit"))
_LIST_QUERIES = {
    (inclusive, bounded): Prepared(_LIST_BASE.where(
        o.bucket == bindparam("bucket"), o.delete_marker == false(),
        (o.key >= bindparam("start")) if inclusive else (o.key > bindparam("start")),
        *([o.key < bindparam("high")] if bounded else [])))
    for inclusive in (True, False) for bounded in (True, False)
}



class MetadataStore(VersionQueries, MultipartQueries, JobQueries, EncryptionQueries, TaggingQueries,
                    LifecycleQueries, CredentialQueries):
    """Everything the service layer asks of the metadata database.

    A write never deletes blobs: what it unlinks is recorded in blob_garbage in the
    same transaction (not to be deleted before ``garbage_grace_seconds`` from now),
    and the sweeper deletes it later.
    """

    def __init__(self, db: Database, garbage_grace_seconds: float = 3600) -> None:
        self.db = db
        self.garbage_grace_us = int(garbage_grace_seconds * 1_000_000)

    def garbage_not_before(self) -> int:
        """When blobs unlinked now may be deleted."""
        return now_us() + self.garbage_grace_us

    # -- buckets -----------------------------------------------------------

    def create_bucket(self, record: BucketRecord) -> BucketRecord | None:
        """Create the bucket; return the existing one instead if the name is taken."""
        def work(cur: Cursor) -> BucketRecord | None:
            if cur.run(Q_CREATE_BUCKET, **{c.name: getattr(record, c.name) for c in _BUCKET_COLUMNS}) == 1:
                return None
            row = cur.one(Q_BUCKET, name=record.name)
            return BucketRecord(*row) if row else None
        return self.db.write(work)

    def set_bucket_config(self, name: str, column: str, value: str | None) -> bool:
        """Store (text) or clear (None) one of the bucket's access configurations:
        "cors", "policy", "public_access_block" or "ownership_controls". False when
        the bucket no longer exists."""
        return self.db.write(lambda cur: cur.run(Q_SET_BUCKET_CONFIG[column], b_name=name, value=value)) == 1

    def get_bucket(self, name: str) -> BucketRecord | None:
        row = self.db.read(lambda cur: cur.one(Q_BUCKET, name=name))
        return BucketRecord(*row) if row else None

    def list_buckets(self, owner_id: str, *, after: str = "", prefix: str = "", region: str | None = None,
                     limit: int | None = None) -> list[BucketRecord]:
        """An owner's buckets in name order: named after ``after``, starting with
        ``prefix``, in ``region`` (any when None), at most ``limit`` (all when None)."""
        rows = self.db.read(lambda cur: cur.all(
            Q_BUCKETS_OF, owner_id=owner_id, after=after, prefix=prefix, prefix_end=prefix + _NAME_END,
            region=region, limit=limit if limit is not None else _NO_LIMIT))
        return [BucketRecord(*r) for r in rows]

    def delete_bucket(self, name: str) -> bool:
        """Delete an empty bucket and its unfinished uploads (their parts go to the
        sweeper); False when it still holds objects."""
        def work(cur: Cursor) -> bool:
            if cur.one(Q_ANY_OBJECT_IN, bucket=name):
                return False
            parts = [r[0] for r in cur.all(Q_PARTS_IN_BUCKET, bucket=name)]
            cur.run(Q_DELETE_UPLOADS_IN, bucket=name)
            cur.run(Q_DELETE_BUCKET, bucket=name)
            defer_deletion(cur, parts, self.garbage_not_before())
            return True
        return self.db.write(work)

    def set_bucket_acl(self, name: str, acl: str) -> None:
        self.db.write(lambda cur: cur.run(Q_SET_BUCKET_ACL, bucket=name, acl=acl))

    def set_bucket_versioning(self, name: str, state: str) -> None:
        self.db.write(lambda cur: cur.run(Q_SET_BUCKET_VERSIONING, bucket=name, versioning=state))

    def set_bucket_object_lock(self, name: str, config: str) -> None:
        """Store the Object Lock configuration (JSON); Object Lock keeps versioning on."""
        self.db.write(lambda cur: cur.run(Q_SET_BUCKET_OBJECT_LOCK, bucket=name, object_lock=config))

    def set_bucket_encryption(self, name: str, config: str | None) -> None:
        """Store (JSON) or clear (None) the bucket's default encryption."""
        self.db.write(lambda cur: cur.run(Q_SET_BUCKET_ENCRYPTION, bucket=name, encryption=config))

    def set_object_acl(self, bucket: str, key: str, acl: str, version_id: str | None = None) -> bool:
        """Replace the ACL of the current version (or of ``version_id``); False when
        there is no such version (or it is a delete marker)."""
        if version_id is not None:
            return self.set_version_acl(bucket, key, version_id, acl)
        return self.db.write(lambda cur: cur.run(Q_SET_OBJECT_ACL, b_bucket=bucket, b_key=key, acl=acl)) == 1

    def owner_display_name(self, owner_id: str) -> str | None:
        """The display name of a known user's canonical id (None: no such user)."""
        row = self.db.read(lambda cur: cur.one(Q_OWNER_NAME, owner_id=owner_id))
        return row[0] if row else None

    # -- objects -----------------------------------------------------------

    def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectRecord | None:
        """The current version's row (a delete marker too), or that of ``version_id``."""
        if version_id is not None:
            return self.get_version(bucket, key, version_id)
        row = self.db.read(lambda cur: cur.one(Q_OBJECT, bucket=bucket, key=key))
        return _object_record(row) if row else None

    def read_object(self, bucket: str, key: str, part_map: bool = False,
                    with_bytes: bool = True, version_id: str | None = None) -> ObjectVersion | None:
        """The current version of an object (or ``version_id``), whole: row, inline
        bytes and, when its bytes are its parts or ``part_map`` asks for them, its
        parts. Without ``with_bytes`` (HeadObject) only the row, and the parts if
        asked for. The row may be a delete marker's.

        A plain object is one statement. A multipart one is read again with its part
        map in one read transaction: the first read only says that parts are needed
        (a concurrent overwrite may replace the object between the two; the answer is
        then entirely the newer version, never a mix of both)."""
        if version_id is not None:
            return self.read_version(bucket, key, version_id, part_map, with_bytes)
        q = Q_OBJECT_WITH_INLINE if with_bytes else Q_OBJECT
        row = self.db.read(lambda cur: cur.one(q, bucket=bucket, key=key))
        return self._whole_version(row, bucket, key, part_map, with_bytes)

    def read_bucket_and_object(self, name: str, key: str,
                               with_bytes: bool = True) -> tuple[BucketRecord | None, ObjectVersion | None]:
        """The bucket's row and ``read_object(name, key, with_bytes=with_bytes)``,
        the row of both from one statement: one round trip where a GetObject or a
        HeadObject made two. (None, None): no such bucket."""
        q = Q_BUCKET_AND_OBJECT_WITH_INLINE if with_bytes else Q_BUCKET_AND_OBJECT
        row = self.db.read(lambda cur: cur.one(q, name=name, key=key))
        if row is None:
            return None, None
        bucket, version = BucketRecord(*row[:len(_BUCKET_COLUMNS)]), row[len(_BUCKET_COLUMNS):]
        if version[0] is None:  # objects.bucket is NULL: the key has no current version
            return bucket, None
        return bucket, self._whole_version(version, name, key, False, with_bytes)

    def _whole_version(self, row: tuple | None, bucket: str, key: str, part_map: bool,
                       with_bytes: bool) -> ObjectVersion | None:
        """read_object from its first read of the version row (None: no such key)."""
        q = Q_OBJECT_WITH_INLINE if with_bytes else Q_OBJECT
        parts = None
        if row is not None and needs_parts(row, part_map, with_bytes):
            def work(cur: Cursor):
                again = cur.one(q, bucket=bucket, key=key)
                return again, (cur.all(Q_OBJECT_PARTS, bucket=bucket, key=key,
                                       version_id=again[_VERSION_ID_INDEX])
                               if again and again[_PARTS_COUNT_INDEX] else None)
            row, parts = self.db.read_snapshot(work)
        if row is None:
            return None
        if not with_bytes:
            return ObjectVersion(_object_record(row), None, parts)
        data = row[-1]
        return ObjectVersion(_object_record(row[:-1]), bytes(data) if data is not None else None, parts)

    def put_object(self, record: ObjectRecord, inline: bytes | None = None, *,
                   if_none_match: bool = False, if_match: str | None = None,
                   parts: list[dict] | None = None, versioning: str | None = None) -> None:
        """Make ``record`` the key's current version (with its inline bytes, or its
        part rows) in one transaction. ``versioning`` is the bucket's state: in a
        versioned bucket the previous current version becomes noncurrent, unless
        both are the "null" version (then, as in a never-versioned bucket, the old
        one is replaced and its blobs go to the sweeper).

        ``if_none_match`` (no current object) and ``if_match`` (the current object
        has that ETag) are checked under the row lock, so they hold even against
        concurrent writers; a delete marker counts as no object. Raises
        MissingBucket, ConditionFailed.
        """
        try:
            self.db.write(lambda cur: self.write_object(cur, record, inline, if_none_match=if_none_match,
                                                        if_match=if_match, parts=parts, versioning=versioning))
        except self.db.IntegrityError:
            raise MissingBucket(record.bucket) from None

    def write_object(self, cur: Cursor, record: ObjectRecord, inline: bytes | None = None, *,
                     if_none_match: bool = False, if_match: str | None = None,
                     parts: list[dict] | None = None, versioning: str | None = None) -> None:
        """put_object's statements, for use inside a larger transaction. Sets
        ``record.version_seq``."""
        bucket, key = record.bucket, record.key
        if inline is not None:
            cur.run(Q_INSERT_INLINE, id=record.data_location, data=inline)
        while True:
            old = cur.one(Q_OBJECT_LOCATION, bucket=bucket, key=key)
            exists = old is not None and not old[6]
            if if_none_match and exists:
                raise ConditionFailed("exists")
            if if_match is not None and (not exists or old[2] != if_match):
                raise ConditionFailed("etag" if exists else "missing")
            if old is None:
                record.version_seq = now_us()
                if cur.run(Q_INSERT_OBJECT_IF_ABSENT, **record.to_row()) == 1:
                    break
                continue  # another writer inserted the key after our read: lock its row and go on
            record.version_seq = max(now_us(), old[5] + 1)
            not_before = self.garbage_not_before()
            if old[4] == record.version_id:  # the "null" version, replaced in place
                release_version(cur, bucket, key, old[4], old, not_before)
            else:
                move_to_history(cur, bucket, key)
                if record.version_id == t.NULL_VERSION:  # a suspended bucket keeps one null version
                    take_null_from_history(cur, bucket, key, not_before)
            row = record.to_row()
            del row["bucket"], row["key"]
            cur.run(Q_REPLACE_CURRENT, b_bucket=bucket, b_key=key, **row)
            break
        for part in parts or ():
            cur.run(Q_INSERT_OBJECT_PART, bucket=bucket, key=key, version_id=record.version_id, **part)

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete the key of a never-versioned bucket (its blobs go to the
        sweeper). Returns whether it existed."""
        def work(cur: Cursor) -> bool:
            old = cur.one(Q_OBJECT_LOCATION, bucket=bucket, key=key)
            if old is None:
                return False
            release_version(cur, bucket, key, old[4], old, self.garbage_not_before())
            cur.run(Q_DELETE_OBJECT, bucket=bucket, key=key)
            return True
        return self.db.write(work)

    def list_objects(self, bucket: str, start: str, inclusive: bool, high: str | None,
                     limit: int) -> list[ListedObject]:
        """Up to ``limit`` objects with start <(=) key < high, in key order."""
        q = _LIST_QUERIES[(inclusive, high is not None)]
        params = dict(bucket=bucket, start=start, limit=limit)
        if high is not None:
            params["high"] = high
        rows = self.db.read(lambda cur: cur.all(q, **params))
        return [ListedObject._make(r) for r in rows]

    def count_buckets_and_objects(self) -> tuple[int, int]:
        def work(cur: Cursor) -> tuple[int, int]:
            return cur.one(Q_COUNT_ALL_BUCKETS)[0], cur.one(Q_COUNT_ALL_OBJECTS)[0]
        return self.db.read(work)

    def stored_bytes(self) -> int:
        """The size of every object version held, current and noncurrent (metrics)."""
        return self.db.read(lambda cur: int(cur.one(Q_SUM_OBJECT_BYTES)[0]) + int(cur.one(Q_SUM_VERSION_BYTES)[0]))

    def ping(self) -> None:
        """One trivial query (readiness)."""
        self.db.read(lambda cur: cur.one(Q_PING))

    def count_objects(self, bucket: str) -> int:
        return self.db.read(lambda cur: cur.one(Q_COUNT_OBJECTS, bucket=bucket))[0]

    def bucket_usage(self, bucket: str) -> tuple[int, int]:
        """(objects, bytes) of the bucket's current versions (delete markers not counted)."""
        row = self.db.read(lambda cur: cur.one(Q_BUCKET_USAGE, bucket=bucket))
        return int(row[0] or 0), int(row[1] or 0)

    # -- recovery ----------------------------------------------------------

    def locations_in_use(self, candidates: list[str]) -> set[str]:
        """Which of these storage locations some object or part row points at, or
        the sweeper will delete in its time (readers may still be reading them)."""
        with self.db.engine.connect() as conn:  # not a hot path: plain SQLAlchemy
            used = set()
            for column in (o.data_location, t.object_versions.c.data_location, pt.data_location, op_.data_location,
                           t.blob_garbage.c.location):
                used |= {r[0] for r in conn.execute(select(column).where(column.in_(candidates)))}
        return used
