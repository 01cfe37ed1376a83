"""Object operations: PutObject, GetObject, HeadObject, DeleteObject.

Crash-only order for a write: bytes durable in storage (or inline in the row) ->
metadata committed -> client answered. The replaced version's blobs are recorded
for the sweeper by that same commit and deleted after a grace period, so readers
that already chose the old version finish reading it. A delete drops the row
the same way. A blob that no row (and no garbage record) points at is an orphan,
and recovery removes it.

A reader serves one committed version: the row, its inline bytes or part map,
and the bytes they name, all from one snapshot (``MetadataStore.read_object``).
"""
from __future__ import annotations

import logging
import uuid
from email.utils import formatdate
from dataclasses import dataclass, field
from typing import Iterator

from .. import errors
from ..metadata.records import BucketRecord, ObjectRecord, VersionLocked, now_us
from ..metadata.records import ConditionFailed, MissingBucket
from ..metadata.tables import MULTIPART_LOCATION
from ..metadata.store import ObjectVersion
from ..metadata.versions import DeleteOutcome
from ..crypto.stream import DecryptingBlob, EncryptingReader, Segment, encrypt_bytes, segments_of
from ..storage.base import BlobNotFound, BlobReader, read_full
from . import Caller, Services, access
from . import acl as acls
from . import encryption, object_lock, ownership_controls, public_access_block, versions
from .buckets import (NOT_READ_WITH_BUCKET, lookup as bucket_row, read_with_bucket, require_bucket,
                      require_bucket_permission)
from .conditions import Conditions, check_read
from .names import check_key

log = logging.getLogger(__name__)

# The storage classes accepted on writes (others: InvalidStorageClass). BleepStore
# has one tier. STANDARD is it; REDUCED_REDUNDANCY asks for less durability than it
# gets, and is accepted as MinIO does. The rest would pretend: archive classes
# (GLACIER, DEEP_ARCHIVE) promise restore semantics, the infrequent-access and
# tiering classes a separate tier with its own availability and minimums, and
# OUTPOSTS, SNOW, EXPRESS_ONEZONE other kinds of bucket altogether.
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY")


@dataclass
class ObjectAttributes:
    """What a client may set on an object besides its bytes."""
    content_type: str | None = None
    content_headers: dict = field(default_factory=dict)
    user_metadata: dict = field(default_factory=dict)
    storage_class: str = "STANDARD"
    tags: dict = field(default_factory=dict)  # x-amz-tagging


class InlineBlob(BlobReader):
    """The bytes of an inline object, read like any stored blob."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        if end > start:
            yield self.data[start:end]

    def close(self) -> None:
        pass


class PartsBlob(BlobReader):
    """The bytes of a multipart object: its part blobs back to back.

    The first parts are opened at once; parts beyond EAGER_PARTS are opened as
    the stream reaches them (a replaced object's parts stay until the sweeper's
    grace period has passed, ``storage.garbage_grace_seconds``).
    """

    EAGER_PARTS = 64

    def __init__(self, storage, parts: list[tuple]) -> None:
        self._storage = storage
        # (offset, size, location, opened reader or None)
        self._parts = [[p[1], p[2], p[5], None] for p in parts]
        self.size = sum(p[2] for p in parts)
        try:
            for part in self._parts[: self.EAGER_PARTS]:
                part[3] = storage.open(part[2])
        except BaseException:
            self.close()
            raise

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            for part in self._parts:
                offset, size, location, reader = part
                if offset + size <= start or offset >= end:
                    continue
                if reader is None:
                    reader = part[3] = self._storage.open(location)
                yield from reader.iter_range(max(start - offset, 0), min(end - offset, size))
                part[3] = None
        finally:
            self.close()

    def close(self) -> None:
        for part in self._parts:
            if part[3] is not None:
                part[3].close()
                part[3] = None


@dataclass
class ObjectRead:
    record: ObjectRecord
    blob: BlobReader | None  # None for HEAD
    parts: list[tuple] | None = None  # (part_number, offset, size, etag, checksums, location)


def put_object(svc: Services, caller: Caller | None, bucket: str, key: str, body, length: int,
               attrs: ObjectAttributes, if_none_match: str | None = None,
               if_match: str | None = None, acl: acls.AclRequest | None = None,
               lock: object_lock.LockRequest | None = None,
               sse: encryption.SseRequest | None = None) -> ObjectRecord:
    """PutObject. ``body`` is a VerifyingReader of exactly ``length`` bytes (None:
    known at its end, as a POST form's file, which bounds its own size), encrypted
    on its way to storage when ``sse`` or the bucket's default asks.

    Conditional writes: ``If-None-Match: *`` creates only; ``If-Match: <etag>``
    replaces only that version (412 PreconditionFailed otherwise); a delete
    marker counts as no object.
    """
    if if_none_match is not None and if_none_match.strip() != "*":
        raise errors.NotImplemented("If-None-Match on PutObject supports only '*'.")
    owner, object_acl, target = prepare_write(svc, caller, bucket, key, attrs.storage_class, acl)
    lock_mode, lock_until, legal_hold = object_lock.lock_for_new_version(target, lock)
    if length is not None and length > svc.settings.max_object_size:
        raise errors.EntityTooLarge(ProposedSize=length, MaxSizeAllowed=svc.settings.max_object_size)
    sealed = encryption.for_new_object(svc, target, key, sse)

    inline = None
    source = body
    if length is None:  # small enough to be inline? Read at most one byte more to know.
        head = read_full(body, svc.settings.inline_max_size + 1)
        if len(head) <= svc.settings.inline_max_size:
            length, inline = len(head), head  # the body has ended and verified itself
        else:
            source = _Prepended(head, body)
    elif length <= svc.settings.inline_max_size:
        inline = body.read_all()
    if inline is not None:
        if sealed is not None:
            inline = encrypt_bytes(inline, sealed.object_key)
        location = uuid.uuid4().hex
    elif sealed is not None:
        location = svc.storage.put(EncryptingReader(source, length, sealed.object_key)).location
    else:
        location = svc.storage.put(source).location
    length = body.length if length is None else length
    stored = sealed.stored if sealed is not None else None
    record = ObjectRecord(
        bucket=bucket, key=key, size=length, last_modified=now_us(),
        etag=encryption.etag(stored, sealed and sealed.object_key, body.md5_hex),
        owner_id=owner.owner_id, owner_display_name=owner.display_name,
        data_location=location, data_inline=inline is not None,
        storage_class=attrs.storage_class, content_type=attrs.content_type,
        content_headers=attrs.content_headers, user_metadata=attrs.user_metadata,
        checksums=dict(body.checksums), acl=object_acl.to_json() if object_acl else None,
        version_id=versions.new_version_id(target), lock_mode=lock_mode, lock_until=lock_until,
        legal_hold=legal_hold, encryption=stored, tags=attrs.tags,
    )
    expected_etag = if_match.strip().removeprefix("W/").strip('"') if if_match is not None else None
    commit_object(svc, record, inline, if_none_match=if_none_match is not None, if_match=expected_etag,
                  versioning=target.versioning)
    return record


class _Prepended:
    """``read(n)`` of ``head`` (already read from ``rest``), then of ``rest``."""

    def __init__(self, head: bytes, rest) -> None:
        self._head, self._rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            take = len(self._head) if n is None or n < 0 else n
            out, self._head = self._head[:take], self._head[take:]
            return out
        return self._rest.read(n)


def prepare_write(svc: Services, caller: Caller | None, bucket: str, key: str, storage_class: str | None,
                  acl: acls.AclRequest | None) -> tuple[Caller, acls.Acl | None, BucketRecord]:
    """The checks every write of a new object starts with (key, storage class,
    bucket WRITE permission); returns the new object's owner, its ACL and the
    bucket (whose versioning and Object Lock the write follows)."""
    check_key(key)
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise errors.InvalidStorageClass(StorageClassRequested=storage_class)
    target = require_bucket(svc, bucket)
    require_bucket_permission(target, caller, acls.WRITE)
    ownership_controls.check_acl_request(target, acl)
    writer = caller or acls.ANONYMOUS
    owner = ownership_controls.object_owner(target, writer, acl) or writer
    bucket_owner = (target.owner_id, target.owner_display_name)
    built = acl.build(owner.owner_id, owner.display_name, bucket_owner) if acl else None
    public_access_block.refuse_public_acl(target, built)
    return owner, built, target


def commit_object(svc: Services, record: ObjectRecord, inline: bytes | None, *,
                  if_none_match: bool = False, if_match: str | None = None, parts: list[dict] | None = None,
                  versioning: str | None = None) -> None:
    """Make ``record`` the key's current version (a replaced null version's bytes
    go to the sweeper); a write that does not commit deletes its own new blobs at
    once (nobody saw them)."""
    try:
        svc.meta.put_object(record, inline, if_none_match=if_none_match, if_match=if_match, parts=parts,
                            versioning=versioning)
    except MissingBucket:
        _discard(svc, record, parts)
        raise errors.NoSuchBucket(BucketName=record.bucket) from None
    except ConditionFailed as failed:
        _discard(svc, record, parts)
        if failed.reason == "missing":
            raise errors.NoSuchKey(Key=record.key) from None
        raise errors.PreconditionFailed(Condition="If-None-Match" if if_none_match else "If-Match") from None
    except BaseException:
        _discard(svc, record, parts)
        raise


def _discard(svc: Services, record: ObjectRecord, parts: list[dict] | None = None) -> None:
    if parts:
        delete_blobs(svc, [p["data_location"] for p in parts])
    elif not record.data_inline:
        delete_blobs(svc, [record.data_location])


def delete_blobs(svc: Services, locations: list[str]) -> None:
    """Delete blobs that no committed row ever pointed at (a write that failed or
    lost its race); committed unlinks go through the sweeper instead."""
    for location in locations:
        try:
            svc.storage.delete(location)
        except Exception:  # the orphan sweep will get it
            log.exception("could not delete blob %s; the orphan sweep will remove it", location)


def head_object(svc: Services, caller: Caller | None, bucket: str, key: str,
                conditions: Conditions | None = None, part_map: bool = False,
                version_id: str | None = None, customer: encryption.CustomerKey | None = None) -> ObjectVersion:
    """HeadObject (metadata only; the part map too with ``part_map``, for
    partNumber). Raises NotModified / PreconditionFailed; an SSE-C object needs
    its key (``customer``)."""
    version = _readable_version(svc, caller, bucket, key, conditions, part_map, version_id, with_bytes=False)
    encryption.check_customer_key(version.record.encryption, customer)
    return version


def get_object(svc: Services, caller: Caller | None, bucket: str, key: str,
               conditions: Conditions | None = None, part_map: bool = False,
               version_id: str | None = None, customer: encryption.CustomerKey | None = None) -> ObjectRead:
    """GetObject: one committed version (the current one, or ``version_id``) and
    its opened bytes (decrypted as they stream, when encrypted). The blobs it
    names stay readable for the garbage grace period even if the key is
    overwritten or deleted meanwhile, so a missing blob here means lost data."""
    version = _readable_version(svc, caller, bucket, key, conditions, part_map, version_id)
    return open_version(svc, version, customer)


def open_version(svc: Services, version: ObjectVersion,
                 customer: encryption.CustomerKey | None = None) -> ObjectRead:
    """A version read from the metadata, with its bytes opened for reading (an
    encrypted one's plaintext: its SSE-C key is ``customer``)."""
    record, inline, parts = version
    bucket, key = record.bucket, record.key
    object_key = encryption.object_key(svc, record.encryption, customer)
    try:
        if object_key is not None:
            return ObjectRead(record, _decrypting(svc, record, inline, parts, object_key), parts)
        if record.data_inline:
            if inline is None:
                raise BlobNotFound(record.data_location)
            return ObjectRead(record, InlineBlob(inline), parts)
        if record.data_location == MULTIPART_LOCATION:
            if not parts or len(parts) != record.parts_count:
                raise BlobNotFound(f"{record.parts_count} parts, found {len(parts or ())}")
            return ObjectRead(record, PartsBlob(svc.storage, parts), parts)
        # A composed multipart object (gateway backends) is one blob, with part
        # rows naming it that map partNumber to its offsets.
        return ObjectRead(record, svc.storage.open(record.data_location), parts)
    except BlobNotFound as missing:
        log.error("object %r/%r points at missing data %s (%s)", bucket, key, record.data_location, missing)
        raise errors.InternalError() from None


def _decrypting(svc: Services, record: ObjectRecord, inline: bytes | None, parts: list[tuple] | None,
                object_key: bytes) -> DecryptingBlob:
    """The plaintext reader of an encrypted version: its blob, its part blobs, or
    the parts' runs inside one composed blob (gateways), the first one opened now."""
    if record.data_inline:
        if inline is None:
            raise BlobNotFound(record.data_location)
        return DecryptingBlob(object_key, [Segment(0, record.size, record.data_location)], lambda _: InlineBlob(inline))
    if record.parts_count:
        if not parts or len(parts) != record.parts_count:
            raise BlobNotFound(f"{record.parts_count} parts, found {len(parts or ())}")
        segments = segments_of([(p[0], p[1], p[2], p[5]) for p in parts],
                               composed=record.data_location != MULTIPART_LOCATION)
    else:
        segments = [Segment(0, record.size, record.data_location)]
    segments[0].reader = svc.storage.open(segments[0].location)
    return DecryptingBlob(object_key, segments, svc.storage.open)


def _readable_version(svc: Services, caller: Caller | None, bucket: str, key: str,
                      conditions: Conditions | None, part_map: bool, version_id: str | None,
                      with_bytes: bool = True) -> ObjectVersion:
    if version_id is not None:
        versions.check_version_id(version_id)
    version = NOT_READ_WITH_BUCKET if version_id is not None or part_map else \
        read_with_bucket(svc, bucket, key, with_bytes)
    if version is NOT_READ_WITH_BUCKET:
        version = svc.meta.read_object(bucket, key, part_map, with_bytes, version_id)
    if version is None or version.record.delete_marker:
        raise absent_error(svc, caller, bucket, key, version_id, version.record if version else None)
    check_read_access(svc, caller, version.record)
    if conditions:
        check_read(conditions, version.record.etag, version.record.last_modified)
    return version


def absent_error(svc: Services, caller: Caller | None, bucket: str, key: str, version_id: str | None,
            marker: ObjectRecord | None) -> errors.S3Error:
    """The error for a read that finds no object: no such key or version, or a
    delete marker (404 for the current version, 405 when asked for by id)."""
    err = missing_object_error(svc, caller, bucket, key)
    if not isinstance(err, errors.NoSuchKey):
        return err
    if marker is None:
        return err if version_id is None else errors.NoSuchVersion(Key=key, VersionId=version_id)
    if version_id is not None:
        err = errors.MethodNotAllowed(Method=None, ResourceType="DeleteMarker")
        err.headers["Last-Modified"] = _http_date(marker.last_modified)
        err.headers["Allow"] = "DELETE"
    err.headers["x-amz-delete-marker"] = "true"
    err.headers["x-amz-version-id"] = marker.version_id
    return err


def _http_date(us: int) -> str:
    return formatdate(us / 1_000_000, usegmt=True)


def delete_object(svc: Services, caller: Caller | None, bucket: str, key: str, version_id: str | None = None,
                  bypass_governance: bool = False) -> DeleteOutcome:
    """DeleteObject: 204 whether or not the key (or version) existed. In a
    versioned bucket, without a version id, a delete marker becomes the current
    version; with one, that version is deleted for good (AccessDenied while
    Object Lock protects it)."""
    check_key(key)
    target = require_bucket(svc, bucket)
    require_bucket_permission(target, caller, acls.WRITE)
    if version_id is None and target.versioning is None:
        svc.meta.delete_object(bucket, key)
        return DeleteOutcome(key, None, False, None)
    (outcome,) = delete_entries(svc, caller, target, [(key, version_id)], bypass_governance)
    if isinstance(outcome, errors.S3Error):
        raise outcome
    return outcome


def delete_entries(svc: Services, caller: Caller | None, target: BucketRecord,
                   entries: list[tuple[str, str | None]], bypass_governance: bool,
                   expect: dict[str, int] | None = None) -> list[DeleteOutcome | errors.S3Error]:
    """Delete (key, version id or None) entries in one transaction: each one's
    outcome, or the S3 error that entry alone got."""
    for _, version_id in entries:
        if version_id is not None:
            versions.check_version_id(version_id)
    # s3:BypassGovernanceRetention: the bucket owner has it.
    bypass = bypass_governance and caller is not None and caller.owner_id == target.owner_id
    results = svc.meta.delete_many(target.name, entries, target.versioning,
                                   lambda key: versions.delete_marker(target, key, caller), bypass, expect)
    return [errors.AccessDenied("Access Denied because object protected by object lock.")
            if isinstance(r, VersionLocked) else r for r in results]


def check_read_access(svc: Services, caller: Caller | None, record: ObjectRecord) -> None:
    """GetObject/HeadObject need READ in the object's own ACL."""
    acls.require(record.acl, record.owner_id, caller, acls.READ, (record.bucket, record.key))


def missing_object_error(svc: Services, caller: Caller | None, bucket: str, key: str) -> errors.S3Error:
    """The error for a key that is not there: a caller who may not list the bucket
    learns nothing about which keys exist (AccessDenied, as S3 answers)."""
    found = bucket_row(svc, bucket)
    if found is None:
        return errors.NoSuchBucket(BucketName=bucket)
    if access.policy_decision("s3:ListBucket", bucket) == "Allow":
        return errors.NoSuchKey(Key=key)
    if not acls.allows(found.acl, found.owner_id, caller, acls.READ):
        return errors.AccessDenied()
    return errors.NoSuchKey(Key=key)


def require_version(svc: Services, caller: Caller | None, bucket: str, key: str,
                    version_id: str | None) -> ObjectRecord:
    """The current version (or ``version_id``), not a delete marker, or the error
    a read of it answers (the subresources of a version: ACL, tags)."""
    if version_id is not None:
        versions.check_version_id(version_id)
    record = svc.meta.get_object(bucket, key, version_id)
    if record is None or record.delete_marker:
        raise absent_error(svc, caller, bucket, key, version_id, record)
    return record


def get_object_acl(svc: Services, caller: Caller | None, bucket: str, key: str,
                   version_id: str | None = None) -> acls.Acl:
    """GetObjectAcl."""
    record = require_version(svc, caller, bucket, key, version_id)
    acls.require(record.acl, record.owner_id, caller, acls.READ_ACP, (record.bucket, record.key))
    settings = access.current().of(bucket)
    if settings is not None and settings.acls_disabled:  # BucketOwnerEnforced: the bucket owner owns it
        target = require_bucket(svc, bucket)
        return acls.private(target.owner_id, target.owner_display_name)
    return acls.load(record.acl, record.owner_id, record.owner_display_name)


def writable_acl_object(svc: Services, caller: Caller | None, bucket: str, key: str,
                        version_id: str | None = None) -> ObjectRecord:
    """The object whose ACL the caller may replace (WRITE_ACP), or the error; a
    handler runs this before it reads the ACL document too."""
    record = require_version(svc, caller, bucket, key, version_id)
    acls.require(record.acl, record.owner_id, caller, acls.WRITE_ACP, (record.bucket, record.key))
    return record


def put_object_acl(svc: Services, caller: Caller | None, bucket: str, key: str, request: acls.AclRequest,
                   version_id: str | None = None) -> None:
    """PutObjectAcl."""
    record = writable_acl_object(svc, caller, bucket, key, version_id)
    target = require_bucket(svc, bucket)
    ownership_controls.check_acl_request(target, request)
    acl = request.build(record.owner_id, record.owner_display_name, (target.owner_id, target.owner_display_name))
    public_access_block.refuse_public_acl(target, acl)
    if not svc.meta.set_object_acl(bucket, key, acl.to_json(), version_id):
        raise errors.NoSuchKey(Key=key) if version_id is None else errors.NoSuchVersion(Key=key, VersionId=version_id)
