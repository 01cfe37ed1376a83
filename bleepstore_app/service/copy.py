"""CopyObject: a new object from an existing one, copied inside the storage backend."""
from __future__ import annotations

import logging
import uuid

from .. import errors
from ..metadata.records import ObjectRecord, now_us
from ..metadata.tables import MULTIPART_LOCATION
from ..storage.base import BlobNotFound
from . import Caller, Services
from . import acl as acls
from .buckets import require_bucket, require_bucket_permission
from .conditions import Conditions, check_read
from .names import check_key
from .objects import (ObjectAttributes, check_read_access, commit_object, delete_blobs, missing_object_error,
                      prepare_write)


log = logging.getLogger(__name__)


def copy_object(svc: Services, caller: Caller | None, src_bucket: str, src_key: str, bucket: str,
                key: str, replace_metadata: bool, attrs: ObjectAttributes,
                storage_class: str | None, source_conditions: Conditions,
                acl: acls.AclRequest | None = None) -> ObjectRecord:
    """CopyObject. With ``replace_metadata`` the new object takes ``attrs`` (the
    request's headers), else the source's; ``storage_class`` overrides either way."""
    owner, new_acl = prepare_write(svc, caller, bucket, key, storage_class, acl)
    for _attempt in range(3):
        source, inline = svc.meta.get_object_with_inline(src_bucket, src_key)
        if source is None:
            raise missing_object_error(svc, caller, src_bucket, src_key)
        check_read_access(svc, caller, source)
        check_read(source_conditions, source.etag, source.last_modified, copy_source=True)
        if (src_bucket, src_key) == (bucket, key) and not replace_metadata and (
                storage_class is None or storage_class == source.storage_class):
            raise errors.InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without "
                "changing the object's metadata, storage class, website redirect location or encryption "
                "attributes.")
        parts = None
        if source.data_inline:
            if inline is None:
                continue  # replaced between our reads; look again
            location = uuid.uuid4().hex
        else:
            inline = None
            try:
                if source.data_location == MULTIPART_LOCATION:
                    location, parts = MULTIPART_LOCATION, _copy_parts(svc, src_bucket, src_key, source)
                    if parts is None:
                        continue
                else:
                    location = svc.storage.copy(source.data_location).location
                    if source.parts_count:  # a composed multipart object: keep its part map
                        parts = _part_map(svc, src_bucket, src_key, source, location)
                        if parts is None:
                            delete_blobs(svc, [location])
                            continue
            except BlobNotFound:
                continue
        chosen = attrs if replace_metadata else ObjectAttributes(
            content_type=source.content_type, content_headers=source.content_headers,
            user_metadata=source.user_metadata, storage_class=source.storage_class)
        record = ObjectRecord(
            bucket=bucket, key=key, size=source.size, etag=source.etag, last_modified=now_us(),
            owner_id=owner.owner_id, owner_display_name=owner.display_name, acl=new_acl.to_json() if new_acl else None,
            data_location=location, data_inline=inline is not None,
            storage_class=storage_class or chosen.storage_class, content_type=chosen.content_type,
            content_headers=chosen.content_headers, user_metadata=chosen.user_metadata,
            checksums=dict(source.checksums), parts_count=source.parts_count,
        )
        commit_object(svc, record, inline, parts=parts)
        return record
    log.error("CopyObject: the source %s/%s kept changing or lost its data", src_bucket, src_key)
    raise errors.InternalError()


def _copy_parts(svc: Services, bucket: str, key: str, source: ObjectRecord) -> list[dict] | None:
    """A multipart source is copied part by part (server-side), keeping its shape:
    the same part boundaries, ETag and partNumber reads. None if it changed meanwhile."""
    parts = svc.meta.get_object_parts(bucket, key)
    if len(parts) != source.parts_count:
        return None
    rows = []
    try:
        for number, offset, size, etag, checksums, location in parts:
            rows.append({"part_number": number, "offset": offset, "size": size, "etag": etag,
                         "checksums": checksums, "data_location": svc.storage.copy(location).location})
    except BlobNotFound:
        delete_blobs(svc, [row["data_location"] for row in rows])
        return None
    return rows


def _part_map(svc: Services, bucket: str, key: str, source: ObjectRecord, location: str) -> list[dict] | None:
    """The part rows of a composed source (one blob), for its copy at ``location``;
    None if the source was replaced meanwhile (its rows name another blob)."""
    parts = svc.meta.get_object_parts(bucket, key)
    if len(parts) != source.parts_count or any(row[5] != source.data_location for row in parts):
        return None
    return [{"part_number": number, "offset": offset, "size": size, "etag": etag, "checksums": checksums,
             "data_location": location} for number, offset, size, etag, checksums, _ in parts]


def delete_objects(svc: Services, caller: Caller | None, bucket: str,
                   keys: list[str]) -> list[tuple[str, errors.S3Error | None]]:
    """DeleteObjects: one transaction for all keys; per-key result (None = deleted)."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.WRITE)
    results: list[tuple[str, errors.S3Error | None]] = []
    valid = []
    for key in keys:
        try:
            check_key(key)
        except errors.S3Error as err:
            results.append((key, err))
            continue
        valid.append(key)
        results.append((key, None))
    if valid:
        delete_blobs(svc, svc.meta.delete_objects(bucket, valid))
    return results
