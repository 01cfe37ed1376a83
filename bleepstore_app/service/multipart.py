"""Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

Each part is its own blob. On the local disk completion copies no data: in one
metadata transaction the object row is written with its ordered part blobs
(object_parts), so each byte is written once, when its part is uploaded. Gateway
backends first assemble the parts into one blob natively (``storage.compose``),
and the object row then points at it (object_parts keeps the part offsets for
partNumber reads). Either way ``kill -9`` at any moment leaves either the
still-completable upload or the finished object; a composed blob that lost the
race to commit is deleted, or swept as an orphan after a crash. Parts that a
commit drops (replaced, left out, composed, aborted, reaped) go to the sweeper.
"""
from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field


from .. import errors
from ..auth.payload import new_checksum
from ..metadata.multipart import NoUpload, PartRecord, UploadRecord
from ..metadata.records import BucketRecord, MissingBucket, ObjectRecord, dumps, now_us
from ..metadata.tables import MULTIPART_LOCATION
from ..storage.base import BlobNotFound
from . import Caller, Services
from . import acl as acls
from ..crypto.stream import EncryptingReader
from . import encryption, object_lock, versions
from .buckets import require_bucket, require_bucket_permission
from .objects import ObjectAttributes, delete_blobs, prepare_write

_AFTER_ALL = 2 ** 62  # an initiation time after every upload: "past this key"
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
MAX_PART_SIZE = 5 * 1024 ** 3
CHECKSUM_TYPES = ("COMPOSITE", "FULL_OBJECT")
_CRC_COMBINE = {"CRC32": ("combine_crc32", 4), "CRC32C": ("combine_crc32c", 4),
                "CRC64NVME": ("combine_crc64nvme", 8)}  # awscrt.checksums functions, imported on use


def _no_such_upload(upload_id: str) -> errors.S3Error:
    return errors.NoSuchUpload(UploadId=upload_id)


def create_multipart_upload(svc: Services, caller: Caller | None, bucket: str, key: str, attrs: ObjectAttributes,
                            acl: acls.AclRequest | None, checksum_algorithm: str | None,
                            checksum_type: str | None, lock: object_lock.LockRequest | None = None,
                            sse: encryption.SseRequest | None = None) -> UploadRecord:
    """CreateMultipartUpload: what the final object will carry is fixed now
    (its Object Lock too, when asked for; a bucket default applies at completion;
    its encryption, under which every part is written)."""
    owner, object_acl, target = prepare_write(svc, caller, bucket, key, attrs.storage_class, acl)
    sealed = encryption.for_new_object(svc, target, key, sse)
    if lock is not None and not lock.empty:
        lock_mode, lock_until, legal_hold = object_lock.lock_for_new_version(target, lock)
    else:
        lock_mode, lock_until, legal_hold = None, None, None
    if checksum_type is not None:
        checksum_type = checksum_type.upper()
        if checksum_type not in CHECKSUM_TYPES or checksum_algorithm is None:
            raise errors.InvalidRequest("The x-amz-checksum-type header needs a valid x-amz-checksum-algorithm.")
        if checksum_type == "FULL_OBJECT" and checksum_algorithm not in _CRC_COMBINE:
            raise errors.InvalidRequest(f"The FULL_OBJECT checksum type is not supported for {checksum_algorithm}.")
    elif checksum_algorithm is not None:
        checksum_type = "FULL_OBJECT" if checksum_algorithm == "CRC64NVME" else "COMPOSITE"
    upload = UploadRecord(
        upload_id=uuid.uuid4().hex + uuid.uuid4().hex[:8], bucket=bucket, key=key, initiated_at=now_us(),
        owner_id=owner.owner_id, owner_display_name=owner.display_name, storage_class=attrs.storage_class,
        content_type=attrs.content_type, content_headers=attrs.content_headers, user_metadata=attrs.user_metadata,
        acl=object_acl.to_json() if object_acl else None, checksum_algorithm=checksum_algorithm,
        checksum_type=checksum_type, state="open", completed_etag=None, completed_checksum=None,
        lock_mode=lock_mode, lock_until=lock_until, legal_hold=legal_hold,
        encryption=sealed.stored if sealed is not None else None, tags=attrs.tags)
    try:
        svc.meta.create_upload(upload)
    except MissingBucket:
        raise errors.NoSuchBucket(BucketName=bucket) from None
    return upload


def open_upload(svc: Services, caller: Caller | None, bucket: str, key: str, upload_id: str) -> UploadRecord:
    """The upload, checked to exist, be open, and be writable by the caller."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.WRITE)
    upload = svc.meta.get_upload(upload_id, bucket, key)
    if upload is None or upload.state != "open":
        raise _no_such_upload(upload_id)
    return upload


def parse_part_number(value: str | None) -> int:
    try:
        number = int(value or "")
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise errors.InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                                     ArgumentName="partNumber", ArgumentValue=value)
    return number


def upload_key(svc: Services, upload: UploadRecord, customer: encryption.CustomerKey | None) -> bytes | None:
    """The object key that the upload's parts are encrypted with (None: in clear);
    an SSE-C upload needs the same customer key on every part."""
    return encryption.object_key(svc, upload.encryption, customer)


def upload_part(svc: Services, caller: Caller | None, upload: UploadRecord, part_number: int,
                body, length: int, customer: encryption.CustomerKey | None = None) -> PartRecord:
    """UploadPart: ``body`` is a VerifyingReader (hashes, checksums, signatures),
    encrypted on its way to storage when the upload is."""
    if length > MAX_PART_SIZE:
        raise errors.EntityTooLarge(ProposedSize=length, MaxSizeAllowed=MAX_PART_SIZE)
    object_key = upload_key(svc, upload, customer)
    if object_key is None:
        blob = svc.storage.put(body)
        etag = body.md5_hex
    else:
        blob = svc.storage.put(EncryptingReader(body, length, object_key, part_number))
        etag = encryption.etag(upload.encryption, object_key, body.md5_hex)
    return _record_part(svc, upload, PartRecord(part_number, length, etag, now_us(),
                                                dict(body.checksums), blob.location))


def upload_part_copy(svc: Services, caller: Caller | None, upload: UploadRecord, part_number: int,
                     source: ObjectRecord, blob, span: tuple[int, int] | None,
                     customer: encryption.CustomerKey | None = None) -> PartRecord:
    """UploadPartCopy: a part made of (a range of) an existing object's bytes,
    streamed inside the server; ``blob`` is the source opened for reading (its
    plaintext), encrypted again under the upload's key when the upload is."""
    start, end = span if span is not None else (0, source.size)
    object_key = upload_key(svc, upload, customer)
    whole_single_blob = ((start, end) == (0, source.size) and not source.data_inline and not source.parts_count
                         and source.data_location != MULTIPART_LOCATION and source.encryption is None
                         and object_key is None)
    if whole_single_blob:  # copied inside the backend; its ETag is the source's MD5
        try:
            stored = svc.storage.copy(source.data_location)
        except BlobNotFound:
            pass  # lost? the reader opened before may still have the bytes: stream them
        else:
            return _record_part(svc, upload, PartRecord(part_number, stored.size, source.etag, now_us(),
                                                        {}, stored.location))
    reader = _HashingStream(blob.iter_range(start, end))
    if object_key is None:
        stored = svc.storage.put(reader)
        etag = reader.md5.hexdigest()
    else:
        stored = svc.storage.put(EncryptingReader(reader, end - start, object_key, part_number))
        etag = encryption.etag(upload.encryption, object_key, reader.md5.hexdigest())
    return _record_part(svc, upload, PartRecord(part_number, end - start, etag, now_us(), {}, stored.location))


def _record_part(svc: Services, upload: UploadRecord, part: PartRecord) -> PartRecord:
    try:
        svc.meta.put_part(upload.upload_id, upload.bucket, upload.key, part)
    except NoUpload:  # aborted or completed while the part streamed in
        delete_blobs(svc, [part.data_location])
        raise _no_such_upload(upload.upload_id) from None
    except BaseException:
        delete_blobs(svc, [part.data_location])
        raise
    return part


@dataclass
class RequestedPart:
    part_number: int
    etag: str
    checksums: dict = field(default_factory=dict)


@dataclass
class Completed:
    bucket: str
    key: str
    etag: str
    checksum_algorithm: str | None
    checksum: str | None
    checksum_type: str | None
    version_id: str | None = None  # of the new version (None: a repeated completion)
    encryption: dict | None = None


class _PartsChanged(Exception):
    """A part was re-uploaded between composing and committing: compose again."""


def _choose_parts(upload_id: str, requested: list[RequestedPart], parts: list[PartRecord]) -> list[PartRecord]:
    """The uploaded parts the request names, checked by S3's rules."""
    by_number = {p.part_number: p for p in parts}
    chosen = []
    for want in requested:
        have = by_number.get(want.part_number)
        if have is None or have.etag != want.etag.strip().strip('"'):
            raise errors.InvalidPart(UploadId=upload_id, PartNumber=want.part_number, ETag=want.etag)
        for alg, value in want.checksums.items():
            if have.checksums.get(alg) not in (None, value):
                raise errors.InvalidPart(UploadId=upload_id, PartNumber=want.part_number, ETag=want.etag)
        chosen.append(have)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise errors.EntityTooSmall(ProposedSize=part.size, MinSizeAllowed=MIN_PART_SIZE,
                                        PartNumber=part.part_number, ETag=part.etag)
    return chosen


def _compose(svc: Services, upload_id: str, bucket: str, key: str, requested: list[RequestedPart]):
    """Gateway backends assemble the parts into one blob natively (S3 multipart,
    GCS compose, Azure block list) before the metadata transaction; returns the
    new blob and the part locations it was made of, or (None, None) when the
    backend keeps parts as they are (local disk) or the upload is not open."""
    if not svc.storage.composes:
        return None, None
    upload = svc.meta.get_upload(upload_id, bucket, key)
    if upload is None or upload.state != "open":
        return None, None
    try:
        chosen = _choose_parts(upload_id, requested, svc.meta.list_parts(upload_id, 0, MAX_PART_NUMBER + 1))
    except errors.S3Error:  # e.g. aborted meanwhile: the transaction gives the right error
        return None, None
    locations = [p.data_location for p in chosen]
    return svc.storage.compose(locations), locations


def complete_multipart_upload(svc: Services, caller: Caller | None, bucket: str, key: str, upload_id: str,
                              requested: list[RequestedPart], object_checksum: dict | None = None) -> Completed:
    """CompleteMultipartUpload, by S3's rules: parts ascending (InvalidPartOrder),
    each uploaded with that ETag (InvalidPart), all but the last >= 5 MiB
    (EntityTooSmall). A retry after success answers the same result."""
    target = require_bucket(svc, bucket)
    require_bucket_permission(target, caller, acls.WRITE)
    if not requested:
        raise errors.MalformedXML("The XML you provided was not well-formed or did not validate against our "
                                  "published schema")
    numbers = [p.part_number for p in requested]
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise errors.InvalidPartOrder(UploadId=upload_id)
    for _attempt in range(3):
        composed, composed_from = _compose(svc, upload_id, bucket, key, requested)
        unowned = [composed.location] if composed is not None else []
        try:
            completed, committed = _commit_completion(svc, target, key, upload_id, requested, object_checksum,
                                                      composed, composed_from)
        except _PartsChanged:
            delete_blobs(svc, unowned)
            continue
        except BaseException:
            delete_blobs(svc, unowned)
            raise
        if not committed:  # completed before: the object does not own this blob
            delete_blobs(svc, unowned)
        return completed
    raise errors.InternalError()


def _commit_completion(svc: Services, target: BucketRecord, key: str, upload_id: str,
                       requested: list[RequestedPart], object_checksum: dict | None, composed,
                       composed_from: list[str] | None) -> tuple[Completed, bool]:
    """The metadata transaction of a completion; returns the answer and whether
    this call committed the object (False: an earlier call had)."""
    bucket = target.name

    def assemble(upload: UploadRecord, parts: list[PartRecord]):
        chosen = _choose_parts(upload_id, requested, parts)
        if composed is not None and [p.data_location for p in chosen] != composed_from:
            raise _PartsChanged()
        etag = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen)).hexdigest() + f"-{len(chosen)}"
        checksums = _combined_checksum(upload, chosen)
        for alg, value in (object_checksum or {}).items():
            if checksums.get(alg, value).split("-")[0] != value.split("-")[0]:
                raise errors.BadDigest(f"The {alg} you specified did not match the calculated checksum.")
        rows, offset = [], 0
        for part in chosen:
            rows.append({"part_number": part.part_number, "offset": offset, "size": part.size, "etag": part.etag,
                         # the part's own checksums: GetObjectAttributes lists them
                         "checksums": dumps(part.checksums),
                         "data_location": composed.location if composed is not None else part.data_location})
            offset += part.size
        record = ObjectRecord(
            bucket=bucket, key=key, size=offset, etag=etag, last_modified=now_us(),
            owner_id=upload.owner_id, owner_display_name=upload.owner_display_name,
            data_location=composed.location if composed is not None else MULTIPART_LOCATION,
            storage_class=upload.storage_class,
            content_type=upload.content_type, content_headers=upload.content_headers,
            user_metadata=upload.user_metadata, checksums=checksums, acl=upload.acl, parts_count=len(chosen),
            version_id=versions.new_version_id(target), encryption=upload.encryption, tags=upload.tags)
        record.lock_mode, record.lock_until, record.legal_hold = (
            (upload.lock_mode, upload.lock_until, upload.legal_hold) if upload.lock_mode or upload.legal_hold is not None
            else object_lock.lock_for_new_version(target, None))
        # Parts not chosen are deleted; with a composed blob, the chosen ones too.
        kept = set() if composed is not None else {p.part_number for p in chosen}
        unused = [p.data_location for p in parts if p.part_number not in kept]
        return record, rows, unused

    try:
        upload, record = svc.meta.complete_upload(upload_id, bucket, key, assemble, versioning=target.versioning)
    except NoUpload:
        raise _no_such_upload(upload_id) from None
    except MissingBucket:
        raise errors.NoSuchBucket(BucketName=bucket) from None
    if record is None:  # completed before: the same answer again
        return Completed(bucket, key, upload.completed_etag, upload.checksum_algorithm,
                         upload.completed_checksum, upload.checksum_type, encryption=upload.encryption), False
    checksum = next(iter(record.checksums.values()), None)
    return Completed(bucket, key, record.etag, upload.checksum_algorithm, checksum, upload.checksum_type,
                     record.version_id, encryption=record.encryption), True


def _combined_checksum(upload: UploadRecord, parts: list[PartRecord]) -> dict:
    """The object's checksum from its parts': COMPOSITE (checksum of the part
    checksums, "-N") or FULL_OBJECT (CRCs combined, as if computed over all bytes)."""
    alg = upload.checksum_algorithm
    if alg is None or any(alg not in p.checksums for p in parts):
        return {}
    decoded = [base64.b64decode(p.checksums[alg]) for p in parts]
    if upload.checksum_type == "FULL_OBJECT":
        from awscrt import checksums as crt
        name, width = _CRC_COMBINE[alg]
        combine = getattr(crt, name)
        value = int.from_bytes(decoded[0], "big")
        for part, raw in zip(parts[1:], decoded[1:]):
            value = combine(value, int.from_bytes(raw, "big"), part.size)
        return {alg: base64.b64encode(value.to_bytes(width, "big")).decode()}
    hasher = new_checksum(alg)
    for raw in decoded:
        hasher.update(raw)
    return {alg: base64.b64encode(hasher.digest()).decode() + f"-{len(parts)}"}


def abort_multipart_upload(svc: Services, caller: Caller | None, bucket: str, key: str, upload_id: str) -> None:
    """AbortMultipartUpload: the upload and every part blob go."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.WRITE)
    try:
        svc.meta.abort_upload(upload_id, bucket, key)
    except NoUpload:
        raise _no_such_upload(upload_id) from None


def list_parts(svc: Services, caller: Caller | None, bucket: str, key: str, upload_id: str,
               marker: int, max_parts: int) -> tuple[UploadRecord, list[PartRecord], bool]:
    """ListParts: parts after ``marker``, up to ``max_parts``; (upload, parts, truncated)."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.READ)
    upload = svc.meta.get_upload(upload_id, bucket, key)
    if upload is None or upload.state != "open":
        raise _no_such_upload(upload_id)
    parts = svc.meta.list_parts(upload_id, marker, max_parts + 1)
    return upload, parts[:max_parts], len(parts) > max_parts


@dataclass
class UploadsPage:
    uploads: list[tuple] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str | None = None
    next_upload_id_marker: str | None = None


def list_multipart_uploads(svc: Services, caller: Caller | None, bucket: str, prefix: str, delimiter: str,
                           key_marker: str, upload_id_marker: str, max_uploads: int) -> UploadsPage:
    """ListMultipartUploads: open uploads by key, then initiation time; grouped by delimiter."""
    from .listing import successor
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.READ)
    page = UploadsPage()
    if max_uploads == 0:
        return page
    high = successor(prefix) if prefix else None
    # After key-marker: with an upload-id-marker, the later uploads of that key; without, later keys.
    initiated = svc.meta.upload_initiated(bucket, upload_id_marker) if upload_id_marker else None
    if initiated is None:
        cursor = (key_marker, _AFTER_ALL, "")
    else:
        cursor = (key_marker, initiated, upload_id_marker)
    if prefix and cursor[0] < prefix:
        cursor = (prefix, -1, "")
    count = 0
    while True:
        rows = svc.meta.list_uploads(bucket, *cursor, high, max_uploads - count + 1)
        if not rows:
            return page
        for row in rows:
            key, upload_id = row[0], row[1]
            if count == max_uploads:
                page.is_truncated = True
                return page
            cursor = (key, row[2], upload_id)
            pos = key.find(delimiter, len(prefix)) if delimiter else -1
            if pos >= 0:
                common = key[: pos + len(delimiter)]
                if common not in page.common_prefixes and not (key_marker and common <= key_marker):
                    page.common_prefixes.append(common)
                    count += 1
                    page.next_key_marker, page.next_upload_id_marker = common, None
                nxt = successor(common)
                if nxt is None:
                    return page
                cursor = (nxt, -1, "")
                break
            page.uploads.append(row)
            page.next_key_marker, page.next_upload_id_marker = key, upload_id
            count += 1
        else:
            if len(rows) < max_uploads - count + 1:
                return page


def reap_expired_uploads(svc: Services, lifetime_seconds: float) -> int:
    """Delete uploads older than the lifetime (open or already completed); their
    part blobs go to the sweeper. Returns how many uploads were removed."""
    cutoff = int((time.time() - lifetime_seconds) * 1_000_000)
    total = 0
    while True:
        count = svc.meta.reap_uploads(cutoff)
        total += count
        if count == 0:
            return total


class _HashingStream:
    """A readable over chunks that computes the MD5 as it is read."""

    def __init__(self, chunks) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.md5 = hashlib.md5()

    def read(self, n: int = -1) -> bytes:
        while self._buffer == b"" or (n > 0 and len(self._buffer) < n):
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n is None or n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        self.md5.update(data)
        return data
