"""Queries for multipart uploads (a mixin of MetadataStore).

An upload row is locked (FOR UPDATE on PostgreSQL; SQLite serialises writers)
by every statement group that changes it or its parts, so UploadPart,
CompleteMultipartUpload and AbortMultipartUpload racing on one upload, even
from different nodes, see one order of events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import and_, bindparam, delete, insert, select, update

from . import tables as t
from .engine import Cursor, Prepared
from .jobs import defer_deletion
from .records import MissingBucket, ObjectRecord, dumps, loads

up, pt = t.multipart_uploads.c, t.multipart_parts.c

_UPLOAD_COLUMNS = tuple(t.multipart_uploads.c)
_UPLOAD_NAMES = tuple(c.name for c in _UPLOAD_COLUMNS)
_PART_COLUMNS = (pt.part_number, pt.size, pt.etag, pt.last_modified, pt.checksums, pt.data_location)

_THIS_UPLOAD = and_(up.upload_id == bindparam("upload_id"), up.bucket == bindparam("bucket"),
                    up.key == bindparam("key"))
Q_INSERT_UPLOAD = Prepared(insert(t.multipart_uploads).values({n: bindparam(n) for n in _UPLOAD_NAMES}))
Q_UPLOAD = Prepared(select(*_UPLOAD_COLUMNS).where(_THIS_UPLOAD))
Q_LOCK_UPLOAD = Prepared(select(*_UPLOAD_COLUMNS).where(_THIS_UPLOAD).with_for_update())
Q_PART_LOCATION = Prepared(select(pt.data_location).where(
    pt.upload_id == bindparam("upload_id"), pt.part_number == bindparam("part_number")))
Q_INSERT_PART = Prepared(insert(t.multipart_parts).values({c.name: bindparam(c.name) for c in t.multipart_parts.c}))
Q_UPDATE_PART = Prepared(update(t.multipart_parts).where(
    pt.upload_id == bindparam("b_upload_id"), pt.part_number == bindparam("b_part_number")).values(
    {c.name: bindparam(c.name) for c in t.multipart_parts.c if c.name not in ("upload_id", "part_number")}))
Q_PARTS = Prepared(select(*_PART_COLUMNS).where(pt.upload_id == bindparam("upload_id"),
                                                pt.part_number > bindparam("after"))
                   .order_by(pt.part_number).limit(bindparam("limit")))
Q_ALL_PART_LOCATIONS = Prepared(select(pt.data_location).where(pt.upload_id == bindparam("upload_id")))
Q_DELETE_PARTS = Prepared(delete(t.multipart_parts).where(pt.upload_id == bindparam("upload_id")))
Q_DELETE_UPLOAD = Prepared(delete(t.multipart_uploads).where(up.upload_id == bindparam("upload_id")))
Q_MARK_COMPLETED = Prepared(update(t.multipart_uploads).where(up.upload_id == bindparam("upload_id")).values(
    state="completed", completed_etag=bindparam("etag"), completed_checksum=bindparam("checksum")))
Q_EXPIRED_UPLOADS = Prepared(select(up.upload_id).where(up.initiated_at < bindparam("cutoff")).limit(500))
# S3 lists uploads by key, and the uploads of one key by initiation time.
_AFTER_CURSOR = (up.key > bindparam("key")) | and_(
    up.key == bindparam("key"),
    (up.initiated_at > bindparam("initiated")) | and_(up.initiated_at == bindparam("initiated"),
                                                      up.upload_id > bindparam("upload_id")))
Q_LIST_UPLOADS = {
    bounded: Prepared(select(up.key, up.upload_id, up.initiated_at, up.owner_id, up.owner_display_name,
                             up.storage_class)
                      .where(up.bucket == bindparam("bucket"), up.state == "open", _AFTER_CURSOR,
                             *([up.key < bindparam("high")] if bounded else []))
                      .order_by(up.key, up.initiated_at, up.upload_id).limit(bindparam("limit")))
    for bounded in (False, True)
}
Q_UPLOAD_INITIATED = Prepared(select(up.initiated_at).where(up.upload_id == bindparam("upload_id"),
                                                            up.bucket == bindparam("bucket")))


@dataclass
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated_at: int
    owner_id: str
    owner_display_name: str
    storage_class: str
    content_type: str | None
    content_headers: dict
    user_metadata: dict
    acl: str | None
    checksum_algorithm: str | None
    checksum_type: str | None
    state: str
    completed_etag: str | None
    completed_checksum: str | None
    lock_mode: str | None = None
    lock_until: int | None = None
    legal_hold: bool | None = None
    encryption: dict | None = None
    tags: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row) -> "UploadRecord":
        m = dict(zip(_UPLOAD_NAMES, row))
        m["content_headers"] = loads(m["content_headers"])
        m["user_metadata"] = loads(m["user_metadata"])
        m["legal_hold"] = None if m["legal_hold"] is None else bool(m["legal_hold"])
        m["encryption"] = loads(m["encryption"]) if m["encryption"] else None
        m["tags"] = loads(m["tags"])
        return cls(**m)

    def to_row(self) -> dict:
        row = dict(vars(self))
        row["content_headers"] = dumps(self.content_headers)
        row["user_metadata"] = dumps(self.user_metadata)
        row["encryption"] = dumps(self.encryption)
        row["tags"] = dumps(self.tags)
        return row


@dataclass(frozen=True)
class PartRecord:
    part_number: int
    size: int
    etag: str
    last_modified: int
    checksums: dict
    data_location: str


def _part(row) -> PartRecord:
    return PartRecord(row[0], row[1], row[2], row[3], loads(row[4]), row[5])


class NoUpload(Exception):
    """The upload does not exist (never did, aborted, or reaped)."""


class MultipartQueries:
    """Multipart upload state. Mixed into MetadataStore (needs ``self.db``)."""

    def create_upload(self, upload: UploadRecord) -> None:
        try:
            self.db.write(lambda cur: cur.run(Q_INSERT_UPLOAD, **upload.to_row()))
        except self.db.IntegrityError:
            raise MissingBucket(upload.bucket) from None

    def get_upload(self, upload_id: str, bucket: str, key: str) -> UploadRecord | None:
        row = self.db.read(lambda cur: cur.one(Q_UPLOAD, upload_id=upload_id, bucket=bucket, key=key))
        return UploadRecord.from_row(row) if row else None

    def put_part(self, upload_id: str, bucket: str, key: str, part: PartRecord) -> None:
        """Record a part (a replaced part of the same number goes to the sweeper).
        Raises NoUpload when the upload is not open (then the caller deletes the
        new blob)."""
        row = {"upload_id": upload_id, "part_number": part.part_number, "size": part.size, "etag": part.etag,
               "last_modified": part.last_modified, "checksums": dumps(part.checksums),
               "data_location": part.data_location}

        def work(cur: Cursor) -> None:
            upload = cur.one(Q_LOCK_UPLOAD, upload_id=upload_id, bucket=bucket, key=key)
            if upload is None or upload[_UPLOAD_NAMES.index("state")] != "open":
                raise NoUpload(upload_id)
            old = cur.one(Q_PART_LOCATION, upload_id=upload_id, part_number=part.part_number)
            if old is None:
                cur.run(Q_INSERT_PART, **row)
                return
            cur.run(Q_UPDATE_PART, b_upload_id=upload_id, b_part_number=part.part_number, **row)
            # An UploadPartCopy or a gateway's compose may be reading the old part.
            defer_deletion(cur, [old[0]], self.garbage_not_before())
        self.db.write(work)

    def list_parts(self, upload_id: str, after: int, limit: int) -> list[PartRecord]:
        rows = self.db.read(lambda cur: cur.all(Q_PARTS, upload_id=upload_id, after=after, limit=limit))
        return [_part(r) for r in rows]

    def list_uploads(self, bucket: str, key: str, initiated: int, upload_id: str, high: str | None,
                     limit: int) -> list[tuple]:
        """Open uploads after the cursor (key, initiated, upload_id), key < high, in
        that order: (key, upload_id, initiated_at, owner_id, owner_display_name, storage_class)."""
        params = dict(bucket=bucket, key=key, initiated=initiated, upload_id=upload_id, limit=limit)
        if high is not None:
            params["high"] = high
        return self.db.read(lambda cur: cur.all(Q_LIST_UPLOADS[high is not None], **params))

    def upload_initiated(self, bucket: str, upload_id: str) -> int | None:
        row = self.db.read(lambda cur: cur.one(Q_UPLOAD_INITIATED, upload_id=upload_id, bucket=bucket))
        return row[0] if row else None

    def complete_upload(self, upload_id: str, bucket: str, key: str,
                        assemble: Callable[[UploadRecord, list[PartRecord]], tuple[ObjectRecord, list[dict], list[str]]],
                        versioning: str | None = None) -> tuple[UploadRecord, ObjectRecord | None]:
        """Turn an open upload into its object, in one transaction.

        ``assemble(upload, parts)`` checks the parts (raising the S3 error) and
        returns the object record, its object_parts rows and the locations of
        uploaded parts left out (those, and the replaced version's blobs, go to the
        sweeper). ``versioning`` is the bucket's state (see put_object). Returns
        (upload, record); record is None when the upload had already been completed.
        """
        def work(cur: Cursor):
            row = cur.one(Q_LOCK_UPLOAD, upload_id=upload_id, bucket=bucket, key=key)
            if row is None:
                raise NoUpload(upload_id)
            upload = UploadRecord.from_row(row)
            if upload.state == "completed":
                return upload, None
            parts = [_part(r) for r in cur.all(Q_PARTS, upload_id=upload_id, after=0, limit=10_001)]
            record, object_parts, unused = assemble(upload, parts)
            self.write_object(cur, record, parts=object_parts, versioning=versioning)
            cur.run(Q_DELETE_PARTS, upload_id=upload_id)
            cur.run(Q_MARK_COMPLETED, upload_id=upload_id, etag=record.etag,
                    checksum=next(iter(record.checksums.values()), None))
            defer_deletion(cur, unused, self.garbage_not_before())
            return upload, record
        return self.db.write(work)

    def abort_upload(self, upload_id: str, bucket: str, key: str) -> None:
        """Delete an open upload and its parts (their blobs go to the sweeper). Raises NoUpload."""
        def work(cur: Cursor) -> None:
            row = cur.one(Q_LOCK_UPLOAD, upload_id=upload_id, bucket=bucket, key=key)
            if row is None or row[_UPLOAD_NAMES.index("state")] != "open":
                raise NoUpload(upload_id)
            self._drop_upload(cur, upload_id)
        self.db.write(work)

    def reap_uploads(self, cutoff_us: int) -> int:
        """Delete up to 500 uploads (open or completed) initiated before the cutoff
        (their parts go to the sweeper); returns how many. Safe from several workers."""
        def work(cur: Cursor) -> int:
            expired = cur.all(Q_EXPIRED_UPLOADS, cutoff=cutoff_us)
            for (upload_id,) in expired:
                self._drop_upload(cur, upload_id)
            return len(expired)
        return self.db.write(work)

    def _drop_upload(self, cur: Cursor, upload_id: str) -> None:
        locations = [r[0] for r in cur.all(Q_ALL_PART_LOCATIONS, upload_id=upload_id)]
        cur.run(Q_DELETE_PARTS, upload_id=upload_id)
        cur.run(Q_DELETE_UPLOAD, upload_id=upload_id)
        defer_deletion(cur, locations, self.garbage_not_before())

