"""Object Lock: PutObjectLockConfiguration, GetObjectLockConfiguration,
PutObjectRetention, GetObjectRetention, PutObjectLegalHold, GetObjectLegalHold,
and the lock every new version in a locked bucket gets.

Enforced where versions are deleted (metadata/versions.py refuses, under the
row lock, to delete a version under retention or legal hold), so DeleteObject,
DeleteObjects and every background job go through the same check. A lock is
never weakened: COMPLIANCE retention can only be extended; GOVERNANCE retention
can be shortened or removed only with x-amz-bypass-governance-retention.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .. import errors
from ..metadata.records import BucketRecord, ObjectRecord, now_us
from . import Caller, Services, access
from .buckets import require_bucket, require_owner

MODES = ("GOVERNANCE", "COMPLIANCE")
DAY_US = 86_400 * 1_000_000
MISSING_CONFIGURATION = "Bucket is missing Object Lock Configuration"


@dataclass(frozen=True)
class LockRequest:
    """Object Lock asked for on a write (x-amz-object-lock-* headers)."""
    mode: str | None = None
    retain_until: int | None = None  # microseconds
    legal_hold: bool | None = None

    @property
    def empty(self) -> bool:
        return self.mode is None and self.retain_until is None and self.legal_hold is None


def _future(until: int) -> int:
    if until <= now_us():
        raise errors.InvalidArgument("The retain until date must be in the future!")
    return until


def lock_for_new_version(bucket: BucketRecord,
                         asked: LockRequest | None) -> tuple[str | None, int | None, bool | None]:
    """(mode, retain-until, legal hold) for a new version in ``bucket``: what the
    write asked for, else the bucket's default retention."""
    config = bucket.lock_config
    if asked is not None and not asked.empty:
        if config is None:
            raise errors.InvalidRequest(MISSING_CONFIGURATION)
        if (asked.mode is None) != (asked.retain_until is None):
            raise errors.InvalidArgument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must "
                                         "both be supplied")
        if asked.mode is not None:
            return asked.mode, _future(asked.retain_until), asked.legal_hold
        hold = asked.legal_hold
    else:
        hold = None
    rule = (config or {}).get("rule")
    if not rule:
        return None, None, hold
    days = rule.get("days") or rule.get("years", 0) * 365
    return rule["mode"], now_us() + days * DAY_US, hold


def _locked_bucket(svc: Services, name: str) -> BucketRecord:
    bucket = require_bucket(svc, name)
    if bucket.lock_config is None:
        raise errors.InvalidRequest(MISSING_CONFIGURATION)
    return bucket


def _may_change_lock(bucket: BucketRecord, record: ObjectRecord, caller: Caller | None) -> None:
    """Only the bucket owner reads and sets retention and legal holds: no ACL grants
    s3:PutObjectRetention, s3:PutObjectLegalHold or s3:BypassGovernanceRetention,
    so the writer of a version cannot weaken the lock it got (a bucket policy may)."""
    if access.policy_allows(record.bucket, record.key):
        return
    if caller is None or caller.owner_id != bucket.owner_id:
        raise errors.AccessDenied()


# -- bucket configuration ----------------------------------------------------

def get_object_lock_configuration(svc: Services, caller: Caller | None, name: str) -> dict:
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    if bucket.lock_config is None:
        raise errors.ObjectLockConfigurationNotFoundError(BucketName=name)
    return bucket.lock_config


def put_object_lock_configuration(svc: Services, caller: Caller | None, name: str, enabled: bool,
                                  rule: dict | None) -> None:
    """PutObjectLockConfiguration: enable Object Lock (on a bucket with versioning
    enabled; it cannot be turned off again) and set or clear the default rule."""
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    if not enabled:
        raise errors.MalformedXML()
    if bucket.lock_config is None and bucket.versioning != "Enabled":
        raise errors.InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply a Object Lock "
                                        "configuration")
    config = {"enabled": True}
    if rule:
        config["rule"] = rule
    svc.meta.set_bucket_object_lock(name, json.dumps(config))


# -- per version -------------------------------------------------------------

def _version(svc: Services, caller: Caller | None, bucket: BucketRecord, key: str,
             version_id: str | None) -> ObjectRecord:
    from .objects import missing_object_error
    record = svc.meta.get_object(bucket.name, key, version_id)
    if record is None or record.delete_marker:
        if version_id is not None:
            raise errors.NoSuchVersion(Key=key, VersionId=version_id)
        raise missing_object_error(svc, caller, bucket.name, key)
    return record


def get_object_retention(svc: Services, caller: Caller | None, name: str, key: str,
                         version_id: str | None) -> tuple[str, int]:
    bucket = _locked_bucket(svc, name)
    record = _version(svc, caller, bucket, key, version_id)
    _may_change_lock(bucket, record, caller)
    if record.lock_mode is None:
        raise errors.NoSuchObjectLockConfiguration()
    return record.lock_mode, record.lock_until


def put_object_retention(svc: Services, caller: Caller | None, name: str, key: str, version_id: str | None,
                         mode: str | None, until: int | None, bypass_governance: bool) -> None:
    """PutObjectRetention; ``mode`` None removes the retention."""
    bucket = _locked_bucket(svc, name)
    _may_change_lock(bucket, _version(svc, caller, bucket, key, version_id), caller)
    if until is not None:
        _future(until)

    def change(record: ObjectRecord):
        now = now_us()
        active = record.lock_until is not None and record.lock_until > now
        weaker = until is None or until < (record.lock_until or 0)
        if active and record.lock_mode == "COMPLIANCE" and (weaker or mode != "COMPLIANCE"):
            raise errors.AccessDenied("Access Denied because object protected by object lock.")
        # Any change to a GOVERNANCE lock but extending it is an override.
        if active and record.lock_mode == "GOVERNANCE" and (weaker or mode != "GOVERNANCE") \
                and not bypass_governance:
            raise errors.AccessDenied("Access Denied because object protected by object lock.")
        return mode, until, record.legal_hold

    if svc.meta.change_lock(name, key, version_id, change) is None:
        raise (errors.NoSuchVersion(Key=key, VersionId=version_id) if version_id else errors.NoSuchKey(Key=key))


def get_object_legal_hold(svc: Services, caller: Caller | None, name: str, key: str,
                          version_id: str | None) -> bool:
    bucket = _locked_bucket(svc, name)
    record = _version(svc, caller, bucket, key, version_id)
    _may_change_lock(bucket, record, caller)
    if record.legal_hold is None:
        raise errors.NoSuchObjectLockConfiguration()
    return record.legal_hold


def put_object_legal_hold(svc: Services, caller: Caller | None, name: str, key: str, version_id: str | None,
                          on: bool) -> None:
    bucket = _locked_bucket(svc, name)
    _may_change_lock(bucket, _version(svc, caller, bucket, key, version_id), caller)
    if svc.meta.change_lock(name, key, version_id, lambda r: (r.lock_mode, r.lock_until, on)) is None:
        raise (errors.NoSuchVersion(Key=key, VersionId=version_id) if version_id else errors.NoSuchKey(Key=key))
