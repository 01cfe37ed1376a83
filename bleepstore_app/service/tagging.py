"""Tag sets: PutObjectTagging, GetObjectTagging, DeleteObjectTagging, and the
bucket's Put/Get/DeleteBucketTagging; the limits S3 puts on every tag set.

A tag set is a dict {key: value} in the order given (S3 keys are unique within a
set). An object version's tags change in place: no new version, same ETag and
Last-Modified. Permission, as S3 without policies: the object's owner for an
object's tags (no ACL grant covers tagging), the bucket's owner for the bucket's.
"""
from __future__ import annotations

import json
import re

from .. import errors
from ..metadata.records import dumps
from . import versions
from .buckets import require_bucket, require_owner
from . import Caller, Services, access
from .objects import require_version

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
# Letters and digits of any script, whitespace, and + - = . _ : / @ (S3's rule).
_ALLOWED = re.compile(r"[\w\s+\-=.:/@]*")


def validate(pairs: list[tuple[str, str]], for_bucket: bool = False) -> dict:
    """The tag set of ``pairs``, or the S3 error for the first rule it breaks."""
    limit = MAX_BUCKET_TAGS if for_bucket else MAX_OBJECT_TAGS
    if len(pairs) > limit:
        if for_bucket:
            raise errors.InvalidTag(f"Bucket tag count cannot be greater than {limit}")
        raise errors.BadRequest(f"Object tags cannot be greater than {limit}")
    tags: dict = {}
    for key, value in pairs:
        if not key or len(key) > MAX_KEY_LENGTH:
            raise errors.InvalidTag(f"The TagKey you have provided is too long, max {MAX_KEY_LENGTH}"
                                    if key else "The TagKey you have provided is invalid", TagKey=key)
        if len(value) > MAX_VALUE_LENGTH:
            raise errors.InvalidTag(f"The TagValue you have provided is too long, max {MAX_VALUE_LENGTH}",
                                    TagKey=key)
        if _ALLOWED.fullmatch(key) is None:
            raise errors.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if _ALLOWED.fullmatch(value) is None:
            raise errors.InvalidTag("The TagValue you have provided is invalid", TagKey=key)
        if key.lower().startswith("aws:"):
            raise errors.InvalidTag("Your TagKey cannot be prefixed with aws:", TagKey=key)
        if key in tags:
            raise errors.InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        tags[key] = value
    return tags


# -- objects -----------------------------------------------------------------

def _owned_version(svc: Services, caller: Caller | None, bucket: str, key: str, version_id: str | None):
    record = require_version(svc, caller, bucket, key, version_id)
    settings = access.current().of(bucket)
    if access.policy_allows(bucket, key) or (settings is not None and settings.acls_disabled
                                             and caller is not None and caller.owner_id == settings.owner):
        return record  # allowed by the policy, or ACLs disabled: the bucket owner owns every object
    if caller is None or caller.owner_id != record.owner_id:
        raise errors.AccessDenied()
    return record


def get_object_tagging(svc: Services, caller: Caller | None, bucket: str, key: str,
                       version_id: str | None) -> tuple[dict, str]:
    """GetObjectTagging: (tag set, the version id read)."""
    record = _owned_version(svc, caller, bucket, key, version_id)
    return record.tags, record.version_id


def check_object_tagging(svc: Services, caller: Caller | None, bucket: str, key: str,
                         version_id: str | None) -> None:
    """The checks of Put/DeleteObjectTagging, run before the body is read."""
    _owned_version(svc, caller, bucket, key, version_id)


def put_object_tagging(svc: Services, caller: Caller | None, bucket: str, key: str, version_id: str | None,
                       tags: dict) -> str:
    """PutObjectTagging (DeleteObjectTagging with no tags): the version id tagged."""
    _owned_version(svc, caller, bucket, key, version_id)
    tagged = svc.meta.set_object_tags(bucket, key, version_id, dumps(tags))
    if tagged is None:  # deleted (or replaced by a marker) since the check
        if version_id is not None:
            versions.check_version_id(version_id)
            raise errors.NoSuchVersion(Key=key, VersionId=version_id)
        raise errors.NoSuchKey(Key=key)
    return tagged


# -- buckets -----------------------------------------------------------------

def _owned_bucket(svc: Services, caller: Caller | None, name: str):
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    return bucket


def get_bucket_tagging(svc: Services, caller: Caller | None, name: str) -> dict:
    bucket = _owned_bucket(svc, caller, name)
    if not bucket.tagging:
        raise errors.NoSuchTagSet(BucketName=name)
    return json.loads(bucket.tagging)


def check_bucket_tagging(svc: Services, caller: Caller | None, name: str) -> None:
    _owned_bucket(svc, caller, name)


def put_bucket_tagging(svc: Services, caller: Caller | None, name: str, tags: dict | None) -> None:
    """PutBucketTagging; ``tags`` None is DeleteBucketTagging."""
    _owned_bucket(svc, caller, name)
    svc.meta.set_bucket_tagging(name, dumps(tags) if tags else None)
