"""Versioning: PutBucketVersioning, GetBucketVersioning, ListObjectVersions, and
the rules that give every write and delete its version.

A bucket is never versioned, then Enabled or Suspended (never back to "never").
In an Enabled bucket each write (and each delete without a version id) makes a
version with a fresh id; in the other two, writes make the "null" version,
replacing the previous null version, as S3 does. The current version of a key
is its newest; a delete marker as current version hides the key.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from .. import errors
from ..metadata.records import BucketRecord, ListedVersion, ObjectRecord, now_us
from ..metadata.tables import NULL_VERSION
from . import Caller, Services
from . import acl as acls
from .buckets import require_bucket, require_bucket_permission, require_owner
from .listing import common_prefix, successor

ENABLED, SUSPENDED = "Enabled", "Suspended"
# Version ids made here are 32 hex digits; anything of another shape names no
# version (S3 answers such ids 400 InvalidArgument, not 404).
_VERSION_ID = re.compile(r"[0-9a-f]{32}")
_NEWEST = 2 ** 63 - 1  # a cursor before every version of a key


def new_version_id(bucket: BucketRecord) -> str:
    """The id a write in this bucket gives its new version."""
    return uuid.uuid4().hex if bucket.versioning == ENABLED else NULL_VERSION


def check_version_id(version_id: str) -> str:
    if version_id != NULL_VERSION and not _VERSION_ID.fullmatch(version_id):
        raise errors.InvalidArgument("Invalid version id specified", ArgumentName="versionId",
                                     ArgumentValue=version_id)
    return version_id


def delete_marker(bucket: BucketRecord, key: str, caller: Caller | None) -> ObjectRecord:
    """A new delete marker for ``key`` (its owner is whoever deleted)."""
    owner = caller or acls.ANONYMOUS
    return ObjectRecord(bucket=bucket.name, key=key, size=0, etag="", last_modified=now_us(),
                        owner_id=owner.owner_id, owner_display_name=owner.display_name, data_location="",
                        version_id=new_version_id(bucket), delete_marker=True)


def version_headers(bucket: BucketRecord, record: ObjectRecord) -> dict[str, str]:
    """x-amz-version-id on a response about ``record``: sent once the bucket has
    versioning (Enabled or Suspended), as S3 does."""
    return {"x-amz-version-id": record.version_id} if bucket.versioning else {}


# -- bucket configuration ----------------------------------------------------

def get_bucket_versioning(svc: Services, caller: Caller | None, name: str) -> str | None:
    """GetBucketVersioning: None for a never-versioned bucket (no Status)."""
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    return bucket.versioning


def put_bucket_versioning(svc: Services, caller: Caller | None, name: str, status: str | None,
                          mfa_delete: str | None, mfa_header: str | None) -> None:
    """PutBucketVersioning. MFA delete needs an MFA device, which BleepStore has
    none of: asking to enable it is refused as S3 refuses a caller without one."""
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    if status not in (ENABLED, SUSPENDED) or mfa_delete not in (None, "Enabled", "Disabled"):
        raise errors.MalformedXML()
    if mfa_delete == "Enabled":
        if mfa_header is None:
            raise errors.InvalidRequest("DevPay and Mfa are mutually exclusive authorization methods.")
        raise errors.AccessDenied("Mfa Authentication must be used for this request")
    if status == SUSPENDED and bucket.lock_config:
        raise errors.InvalidBucketState("An Object Lock configuration is present on this bucket, so the "
                                        "versioning state cannot be changed.")
    svc.meta.set_bucket_versioning(name, status)


# -- ListObjectVersions ------------------------------------------------------

@dataclass
class VersionsPage:
    # Versions and delete markers, in order: the metadata rows as they are, tuples
    # shaped as ListedVersion (a page is a thousand of them: no object per row).
    versions: list[tuple] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None


def list_object_versions(svc: Services, caller: Caller | None, bucket: str, prefix: str, delimiter: str,
                         key_marker: str, version_id_marker: str, max_keys: int) -> VersionsPage:
    """ListObjectVersions: keys in UTF-8 byte order, each key's versions newest
    first, after (key-marker, version-id-marker); common prefixes for a delimiter
    count towards max-keys as in ListObjects."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.READ)
    if version_id_marker and not key_marker:
        raise errors.InvalidArgument("A version-id marker cannot be specified without a key marker.",
                                     ArgumentName="version-id-marker", ArgumentValue=version_id_marker)
    page = VersionsPage()
    if max_keys == 0:
        return page
    high = successor(prefix) if prefix else None
    if key_marker and key_marker >= prefix:
        cursor = (key_marker, -1)  # past every version of the marker key
        if version_id_marker:
            seq = svc.meta.version_seq(bucket, key_marker, check_version_id(version_id_marker))
            if seq is None:
                raise errors.InvalidArgument("Invalid version id specified", ArgumentName="version-id-marker",
                                             ArgumentValue=version_id_marker)
            cursor = (key_marker, seq)
    else:
        cursor = (prefix, _NEWEST)
    if not delimiter:  # the rows are the page: one read, one more row than asked tells truncation
        rows = svc.meta.list_versions(bucket, cursor[0], cursor[1], high, max_keys + 1)
        page.versions = rows[:max_keys]
        if len(rows) > max_keys:
            last = ListedVersion._make(rows[max_keys - 1])
            page.is_truncated = True
            page.next_key_marker, page.next_version_id_marker = last.key, last.version_id
        return page
    count, reported = 0, None  # the common prefix being skipped
    while True:
        batch = max(max_keys - count + 1, 100 if delimiter else 1)
        rows = svc.meta.list_versions(bucket, cursor[0], cursor[1], high, batch)
        for row in map(ListedVersion._make, rows):
            if reported is not None and row.key.startswith(reported):
                continue
            reported = None
            if count == max_keys:
                page.is_truncated = True
                return page
            common = common_prefix(row.key, prefix, delimiter)
            if common is None:
                page.versions.append(row)
                page.next_key_marker, page.next_version_id_marker = row.key, row.version_id
                cursor = (row.key, row.version_seq)
                count += 1
                continue
            if not key_marker or common > key_marker:  # reported on an earlier page otherwise
                page.common_prefixes.append(common)
                page.next_key_marker, page.next_version_id_marker = common, None
                count += 1
            reported = common
            after = successor(common)
            if after is None or (high is not None and after >= high):
                return page
            cursor = (after, _NEWEST)
        if len(rows) < batch:
            return page
