"""CopyObject: a new object from an existing one, copied inside the storage backend.

The copy's encryption is the request's or the destination bucket's default, never
the source's. Its blobs are the source's, copied as they are, when they can be:
both in clear, or the copy keeps the source's object key (SSE-S3 and SSE-KMS
re-wrap it; SSE-C with the same customer key) and ETag kind. Otherwise the bytes
stream through the server, decrypted and encrypted again (recode.py).
"""
from __future__ import annotations

import logging
import uuid

from .. import errors
from ..metadata.records import ObjectRecord, now_us
from ..metadata.tables import MULTIPART_LOCATION
from ..storage.base import BlobNotFound
from . import Caller, Services, access
from . import acl as acls
from .buckets import require_bucket
from .conditions import Conditions, check_read
from .names import check_key
from . import encryption, object_lock, recode, versions
from .objects import (ObjectAttributes, ObjectRead, absent_error, check_read_access, commit_object, delete_blobs,
                      delete_entries, open_version, prepare_write)


log = logging.getLogger(__name__)


def copy_object(svc: Services, caller: Caller | None, src_bucket: str, src_key: str, bucket: str,
                key: str, replace_metadata: bool, attrs: ObjectAttributes,
                storage_class: str | None, source_conditions: Conditions,
                acl: acls.AclRequest | None = None, source_version_id: str | None = None,
                lock: object_lock.LockRequest | None = None, sse: encryption.SseRequest | None = None,
                source_customer: encryption.CustomerKey | None = None,
                tags: dict | None = None) -> tuple[ObjectRecord, ObjectRecord]:
    """CopyObject. With ``replace_metadata`` the new object takes ``attrs`` (the
    request's headers), else the source's; ``storage_class`` overrides either way.
    The copy's tag set is ``tags`` (x-amz-tagging-directive REPLACE), else the source's.

    The copy is of one committed version of the source (row, part map and bytes
    from one snapshot); its blobs stay readable for the garbage grace period even
    if the source is replaced meanwhile, so a missing blob means lost data. Returns
    (the new version, the source version copied). The copy's Object Lock is the
    request's or the destination bucket's default, never the source's."""
    owner, new_acl, target = prepare_write(svc, caller, bucket, key, storage_class, acl)
    lock_mode, lock_until, legal_hold = object_lock.lock_for_new_version(target, lock)
    source_version = read_source(svc, caller, src_bucket, src_key, source_version_id, part_map=True)
    source, inline = source_version.record, source_version.inline
    check_read(source_conditions, source.etag, source.last_modified, copy_source=True)
    source_key = encryption.object_key(svc, source.encryption, source_customer)
    if (src_bucket, src_key) == (bucket, key) and source_version_id is None and not replace_metadata and (
            storage_class is None or storage_class == source.storage_class) and sse is None:
        raise errors.InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without "
            "changing the object's metadata, storage class, website redirect location or encryption "
            "attributes.")
    sealed = _copy_encryption(svc, target, key, sse, source.encryption, source_key)
    etag = source.etag
    try:
        if _verbatim(source.encryption, source_key, sealed):
            location, parts = _copy_bytes(svc, source, inline, source_version.parts)
        else:
            plain = open_version(svc, source_version, source_customer)
            location, inline, parts, etag = recode.recode(svc, source, plain, source_version.parts, sealed)
    except BlobNotFound as missing:
        log.error("CopyObject: the source %r/%r points at missing data %s (%s)", src_bucket, src_key,
                  source.data_location, missing)
        raise errors.InternalError() from None
    chosen = attrs if replace_metadata else ObjectAttributes(
        content_type=source.content_type, content_headers=source.content_headers,
        user_metadata=source.user_metadata, storage_class=source.storage_class)
    record = ObjectRecord(
        bucket=bucket, key=key, size=source.size, etag=etag, last_modified=now_us(),
        owner_id=owner.owner_id, owner_display_name=owner.display_name, acl=new_acl.to_json() if new_acl else None,
        data_location=location, data_inline=inline is not None,
        storage_class=storage_class or chosen.storage_class, content_type=chosen.content_type,
        content_headers=chosen.content_headers, user_metadata=chosen.user_metadata,
        checksums=dict(source.checksums), parts_count=source.parts_count,
        version_id=versions.new_version_id(target), lock_mode=lock_mode, lock_until=lock_until,
        legal_hold=legal_hold, encryption=sealed.stored if sealed is not None else None,
        tags=dict(source.tags) if tags is None else tags,
    )
    commit_object(svc, record, inline, parts=parts, versioning=target.versioning)
    return record, source


def _copy_encryption(svc: Services, target, key: str, sse: encryption.SseRequest | None,
                     source_stored: dict | None, source_key: bytes | None) -> encryption.Encryption | None:
    """The copy's encryption; SSE-S3 and SSE-KMS keep the source's object key when
    the ETag stays of the same kind, so that its blobs can be copied as they are."""
    sealed = encryption.for_new_object(svc, target, key, sse)
    if (sealed is not None and source_key is not None and sealed.stored["algorithm"] != encryption.SSE_C
            and encryption.plaintext_etag(source_stored) == encryption.plaintext_etag(sealed.stored)):
        sealed = encryption.for_new_object(svc, target, key, sse, object_key=source_key)
    return sealed


def _verbatim(source_stored: dict | None, source_key: bytes | None, sealed: encryption.Encryption | None) -> bool:
    """Whether the copy's stored bytes are the source's, byte for byte."""
    if sealed is None or source_key is None:
        return sealed is None and source_key is None
    return sealed.object_key == source_key and (
        encryption.plaintext_etag(source_stored) == encryption.plaintext_etag(sealed.stored))


def read_source(svc: Services, caller: Caller | None, bucket: str, key: str, version_id: str | None,
                part_map: bool = False):
    """The copy source (CopyObject, UploadPartCopy): the current version or
    ``version_id``, readable by the caller; a delete marker is no source."""
    if version_id is not None:
        versions.check_version_id(version_id)
    version = svc.meta.read_object(bucket, key, part_map=part_map, version_id=version_id)
    if version is None or version.record.delete_marker:
        err = absent_error(svc, caller, bucket, key, version_id, version.record if version else None)
        if version_id is not None and version is not None:  # S3: a marker as copy source is 400
            err = errors.InvalidRequest("The source of a copy request may not specifically refer to a delete "
                                        "marker by version id.")
        raise err
    check_read_access(svc, caller, version.record)
    return version


def open_source(svc: Services, caller: Caller | None, bucket: str, key: str,
                version_id: str | None, customer: encryption.CustomerKey | None = None) -> ObjectRead:
    """UploadPartCopy's source version, its bytes opened (as plaintext)."""
    return open_version(svc, read_source(svc, caller, bucket, key, version_id), customer)


def _copy_bytes(svc: Services, source: ObjectRecord, inline: bytes | None,
                parts: list[tuple] | None) -> tuple[str, list[dict] | None]:
    """The copy's data location and part rows, made inside the storage backend.
    A multipart source is copied part by part, keeping its shape (the same part
    boundaries, ETag and partNumber reads); a composed one (gateways) is one blob
    whose part map is kept."""
    if source.data_inline:
        if inline is None:
            raise BlobNotFound(source.data_location)
        return uuid.uuid4().hex, None
    if source.parts_count and (parts is None or len(parts) != source.parts_count):
        raise BlobNotFound(f"{source.parts_count} parts, found {len(parts or ())}")
    if source.data_location != MULTIPART_LOCATION:
        location = svc.storage.copy(source.data_location).location
        if not source.parts_count:
            return location, None
        return location, [_part_row(p, location) for p in parts]
    rows: list[dict] = []
    try:
        for part in parts:
            rows.append(_part_row(part, svc.storage.copy(part[5]).location))
    except BaseException:
        delete_blobs(svc, [row["data_location"] for row in rows])
        raise
    return MULTIPART_LOCATION, rows


def _part_row(part: tuple, location: str) -> dict:
    number, offset, size, etag, checksums, _ = part
    return {"part_number": number, "offset": offset, "size": size, "etag": etag, "checksums": checksums,
            "data_location": location}


def delete_objects(svc: Services, caller: Caller | None, bucket: str, entries: list[tuple[str, str | None]],
                   bypass_governance: bool = False) -> list[tuple[str, str | None, object]]:
    """DeleteObjects: one transaction for all (key, version id) entries; per
    entry (key, version id, DeleteOutcome or the S3Error it got)."""
    target = require_bucket(svc, bucket)
    # Each key is its own DeleteObject for the bucket policy: a Deny refuses that
    # key, an Allow grants it without the ACL's WRITE (service/access.py).
    has_policy = access.current().decide is not None and target.policy is not None
    acl_write = acls.allows(target.acl, target.owner_id, caller, acls.WRITE, (bucket, None))
    if not acl_write and not has_policy:
        raise errors.AccessDenied()
    results: list = [None] * len(entries)
    valid = []
    for i, (key, version_id) in enumerate(entries):
        try:
            check_key(key)
            if version_id is not None:
                versions.check_version_id(version_id)
            if has_policy:
                action = "s3:DeleteObjectVersion" if version_id is not None else "s3:DeleteObject"
                decision = access.policy_decision_or_deny(action, bucket, key)
                if decision == "Deny" or (decision is None and not acl_write):
                    raise errors.AccessDenied()
        except errors.S3Error as err:
            results[i] = (key, version_id, err)
            continue
        valid.append(i)
    if valid:
        outcomes = delete_entries(svc, caller, target, [entries[i] for i in valid], bypass_governance)
        for i, outcome in zip(valid, outcomes):
            results[i] = (entries[i][0], entries[i][1], outcome)
    return results
