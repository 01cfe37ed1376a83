"""S3 Object Lock: bucket configuration, object retention and legal holds, and above all
their enforcement (a locked version cannot be deleted, nor its retention shortened).

AWS S3 User Guide "Locking objects with Object Lock" (retention modes, retention
periods, legal holds, bypassing governance mode, "Object Lock considerations") and API
Reference PutObjectLockConfiguration / GetObjectLockConfiguration / PutObjectRetention /
GetObjectRetention / PutObjectLegalHold / GetObjectLegalHold / PutObject (x-amz-object-
lock-* headers) / DeleteObject / DeleteObjects (x-amz-bypass-governance-retention).

What AWS answers:
- A bucket created with x-amz-bucket-object-lock-enabled has versioning Enabled, and its
  versioning cannot be suspended (409 InvalidBucketState). Object Lock can be enabled on
  an existing bucket only once versioning is Enabled (else 409 InvalidBucketState).
- A locked version (retention date in the future, or a legal hold ON) cannot be deleted by
  version id: 403 AccessDenied. GOVERNANCE yields to x-amz-bypass-governance-retention:true
  (from a caller with s3:BypassGovernanceRetention: the bucket owner here); COMPLIANCE and
  legal holds yield to nothing. A DELETE without a version id only adds a delete marker, so
  it succeeds and the locked version stays.
- A GOVERNANCE retention can be extended freely, shortened or changed to COMPLIANCE only
  with the bypass ("users can't ... alter its lock settings unless they have special
  permissions"; Ceph RGW's PutObjectRetention checks, written against AWS, agree). A
  COMPLIANCE retention can be extended, never shortened nor changed to GOVERNANCE.
- No retention / no legal hold on a version: GetObjectRetention / GetObjectLegalHold
  answer 404 NoSuchObjectLockConfiguration. Object Lock requests on a bucket without
  Object Lock: 400 InvalidRequest ("Bucket is missing Object Lock Configuration").

Locked data cannot always be cleaned up: GOVERNANCE locks are removed in teardown with the
bypass (legal holds are released first); COMPLIANCE tests use retain-until dates seconds to
a minute ahead and leave their bucket behind when it cannot be emptied (the server's data
directory is temporary).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import LARGE, SMALL, assert_error, canonical_id, client_error, describe, raw

SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["inline", "file"])
UTC = _dt.timezone.utc


# -- helpers -------------------------------------------------------------------------------------

def _in(seconds: float) -> _dt.datetime:
    """An aware UTC datetime at least ``seconds`` from now, in whole seconds (what S3 keeps
    is compared exactly)."""
    t = _dt.datetime.now(UTC) + _dt.timedelta(seconds=seconds)
    return t.replace(microsecond=0) + _dt.timedelta(seconds=1)


def _sleep_past(when: _dt.datetime, margin: float = 1.5) -> None:
    time.sleep(max(0.0, (when - _dt.datetime.now(UTC)).total_seconds()) + margin)


def _err(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return client_error(exc)


def _versions(s3, bucket: str) -> list[tuple[str, str]]:
    """(key, version id) of every version and delete marker in the bucket."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            out.append((entry["Key"], entry["VersionId"]))
    return out


def _version_ids(s3, bucket: str, key: str) -> set[str]:
    resp = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return {v["VersionId"] for v in resp.get("Versions", []) if v["Key"] == key}


def _read(s3, bucket: str, key: str, version_id: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()


def _cleanup(s3, bucket: str) -> None:
    """Best effort: delete every version (bypassing GOVERNANCE, releasing legal holds),
    then the bucket. What COMPLIANCE still protects stays, and so does its bucket."""
    try:
        versions = _versions(s3, bucket)
    except ClientError:
        versions = []
    for key, vid in versions:
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True)
            continue
        except ClientError:
            pass
        try:
            s3.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=vid, LegalHold={"Status": "OFF"})
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True)
        except ClientError:
            pass  # COMPLIANCE: left behind
    try:
        for up in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    except ClientError:
        pass
    try:
        s3.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


def _new_name(prefix: str = "lock") -> str:
    return f"{prefix}-" + uuid.uuid4().hex[:16]


@pytest.fixture
def lock_bucket(s3):
    """A fresh bucket created with Object Lock enabled (no default rule)."""
    name = _new_name()
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    _cleanup(s3, name)


def _put_locked(s3, bucket: str, key: str, body: bytes, mode: str = "GOVERNANCE",
                until: _dt.datetime | None = None, **extra) -> tuple[str, _dt.datetime]:
    until = until or _in(3600)
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ObjectLockMode=mode,
                         ObjectLockRetainUntilDate=until, **extra)
    assert resp.get("VersionId"), resp
    return resp["VersionId"], until


def _retention(s3, bucket: str, key: str, version_id: str | None = None) -> dict:
    kwargs = {"VersionId": version_id} if version_id else {}
    return s3.get_object_retention(Bucket=bucket, Key=key, **kwargs)["Retention"]


def _set_retention(s3, bucket, key, version_id, mode, until, **kwargs):
    return s3.put_object_retention(Bucket=bucket, Key=key, VersionId=version_id,
                                   Retention={"Mode": mode, "RetainUntilDate": until}, **kwargs)


# -- bucket configuration -------------------------------------------------------------------------

def test_create_bucket_with_object_lock_enables_versioning(s3, lock_bucket):
    assert s3.get_bucket_versioning(Bucket=lock_bucket).get("Status") == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}  # no Rule until one is put


def test_get_object_lock_configuration_plain_bucket_not_found(s3, bucket):
    assert _err(s3.get_object_lock_configuration, Bucket=bucket) == ("ObjectLockConfigurationNotFoundError", 404)


def test_suspend_versioning_on_lock_bucket_refused(s3, lock_bucket):
    assert _err(s3.put_bucket_versioning, Bucket=lock_bucket,
                VersioningConfiguration={"Status": "Suspended"}) == ("InvalidBucketState", 409)
    assert s3.get_bucket_versioning(Bucket=lock_bucket).get("Status") == "Enabled"
    # Enabled again is no change, and is accepted
    s3.put_bucket_versioning(Bucket=lock_bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=lock_bucket).get("Status") == "Enabled"


@pytest.mark.parametrize("rule", [{"Mode": "GOVERNANCE", "Days": 1}, {"Mode": "COMPLIANCE", "Years": 1}],
                         ids=["governance-days", "compliance-years"])
def test_put_object_lock_configuration_rule_read_back(s3, lock_bucket, rule):
    config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}}
    resp = s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration=config)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == config
    # a configuration without a Rule removes the default retention
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


@pytest.mark.parametrize("retention,expected", [
    ({"Mode": "GOVERNANCE", "Days": 1, "Years": 1}, ("MalformedXML", 400)),
    ({"Mode": "GOVERNANCE", "Days": 0}, ("InvalidArgument", 400)),
    ({"Mode": "GOVERNANCE", "Days": -1}, ("InvalidArgument", 400)),
    ({"Mode": "COMPLIANCE", "Years": 0}, ("InvalidArgument", 400)),
    ({"Mode": "FOREVER", "Days": 1}, ("MalformedXML", 400)),
], ids=["days-and-years", "days-0", "days-negative", "years-0", "bad-mode"])
def test_put_object_lock_configuration_invalid_rule(s3, lock_bucket, retention, expected):
    config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
    assert _err(s3.put_object_lock_configuration, Bucket=lock_bucket, ObjectLockConfiguration=config) == expected
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


def test_put_object_lock_configuration_without_versioning_refused(s3, bucket):
    config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}
    assert _err(s3.put_object_lock_configuration, Bucket=bucket,
                ObjectLockConfiguration=config) == ("InvalidBucketState", 409)
    assert _err(s3.get_object_lock_configuration, Bucket=bucket) == ("ObjectLockConfigurationNotFoundError", 404)


def test_put_object_lock_configuration_enables_lock_on_versioned_bucket(s3):
    """Since November 2023 Object Lock can be enabled on an existing bucket whose
    versioning is Enabled; it cannot be suspended after that."""
    name = _new_name("lockv")
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        assert s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled"}
        assert _err(s3.put_bucket_versioning, Bucket=name,
                    VersioningConfiguration={"Status": "Suspended"}) == ("InvalidBucketState", 409)
        vid, until = _put_locked(s3, name, "k", b"data")
        assert _err(s3.delete_object, Bucket=name, Key="k", VersionId=vid) == ("AccessDenied", 403)
    finally:
        _cleanup(s3, name)


def test_lock_on_null_version_from_before_versioning(s3):
    """An object written before versioning was enabled is the "null" version; once the
    bucket has Object Lock it can be locked like any version, and then neither a new
    write of its key nor a DELETE of versionId=null removes it."""
    name = _new_name("lockn")
    s3.create_bucket(Bucket=name)
    try:
        body = os.urandom(LARGE)
        s3.put_object(Bucket=name, Key="k", Body=body)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        until = _in(3600)
        _set_retention(s3, name, "k", "null", "GOVERNANCE", until)
        s3.put_object_legal_hold(Bucket=name, Key="k", VersionId="null", LegalHold={"Status": "ON"})
        head = s3.head_object(Bucket=name, Key="k", VersionId="null")
        assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"], head["ObjectLockLegalHoldStatus"]) == (
            "GOVERNANCE", until, "ON")
        newer = s3.put_object(Bucket=name, Key="k", Body=b"newer")["VersionId"]
        assert newer != "null"
        assert _read(s3, name, "k", "null") == body
        assert _err(s3.delete_object, Bucket=name, Key="k", VersionId="null",
                    BypassGovernanceRetention=True) == ("AccessDenied", 403)  # the legal hold
        s3.put_object_legal_hold(Bucket=name, Key="k", VersionId="null", LegalHold={"Status": "OFF"})
        assert _err(s3.delete_object, Bucket=name, Key="k", VersionId="null") == ("AccessDenied", 403)
        assert _read(s3, name, "k", "null") == body
        assert _retention(s3, name, "k", "null") == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
        assert _version_ids(s3, name, "k") == {"null", newer}
    finally:
        _cleanup(s3, name)


def test_put_object_lock_configuration_non_owner_denied(s3, s3_other, lock_bucket):
    config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}
    assert _err(s3_other.put_object_lock_configuration, Bucket=lock_bucket,
                ObjectLockConfiguration=config) == ("AccessDenied", 403)
    assert _err(s3_other.get_object_lock_configuration, Bucket=lock_bucket) == ("AccessDenied", 403)
    assert s3.get_object_lock_configuration(Bucket=lock_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"}


# -- default retention ----------------------------------------------------------------------------

def test_default_rule_applies_to_new_objects(s3, lock_bucket):
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    before = _dt.datetime.now(UTC)
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"default")["VersionId"]
    after = _dt.datetime.now(UTC)
    head = s3.head_object(Bucket=lock_bucket, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    until = head["ObjectLockRetainUntilDate"]
    slack = _dt.timedelta(seconds=60)
    assert before + _dt.timedelta(days=1) - slack <= until <= after + _dt.timedelta(days=1) + slack, until
    assert _retention(s3, lock_bucket, "k") == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    # the default retention is a real lock
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "k", vid) == b"default"


def test_explicit_retention_overrides_default_rule(s3, lock_bucket):
    s3.put_object_lock_configuration(Bucket=lock_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    until = _in(2 * 3600)
    vid, _ = _put_locked(s3, lock_bucket, "k", b"x", until=until)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}


# -- PutObject with lock headers ---------------------------------------------------------------

@SIZES
def test_put_object_with_retention_headers(s3, lock_bucket, size):
    body = os.urandom(size)
    vid, until = _put_locked(s3, lock_bucket, "k", body)
    head = s3.head_object(Bucket=lock_bucket, Key="k")
    assert head["VersionId"] == vid
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] == until
    assert "ObjectLockLegalHoldStatus" not in head or head["ObjectLockLegalHoldStatus"] == "OFF"
    got = s3.get_object(Bucket=lock_bucket, Key="k")
    assert got["Body"].read() == body
    assert got["ObjectLockMode"] == "GOVERNANCE"
    assert got["ObjectLockRetainUntilDate"] == until
    assert _retention(s3, lock_bucket, "k") == {"Mode": "GOVERNANCE", "RetainUntilDate": until}


def test_put_object_without_lock_in_lock_bucket_has_no_retention(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"free")["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="k")
    assert "ObjectLockMode" not in head and "ObjectLockRetainUntilDate" not in head
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)
    assert _err(s3.get_object_legal_hold, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)  # nothing locks it
    assert _version_ids(s3, lock_bucket, "k") == set()


@pytest.mark.parametrize("which", ["mode-only", "date-only"])
def test_put_object_only_one_retention_header_invalid(s3, lock_bucket, which):
    extra = ({"ObjectLockMode": "GOVERNANCE"} if which == "mode-only"
             else {"ObjectLockRetainUntilDate": _in(3600)})
    assert _err(s3.put_object, Bucket=lock_bucket, Key="k", Body=b"x", **extra) == ("InvalidArgument", 400)
    assert _versions(s3, lock_bucket) == []


def test_put_object_retain_until_in_past_invalid(s3, lock_bucket):
    past = _dt.datetime.now(UTC).replace(microsecond=0) - _dt.timedelta(days=1)
    assert _err(s3.put_object, Bucket=lock_bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                ObjectLockRetainUntilDate=past) == ("InvalidArgument", 400)
    assert _versions(s3, lock_bucket) == []


def test_put_object_bad_mode_invalid(s3, lock_bucket):
    assert _err(s3.put_object, Bucket=lock_bucket, Key="k", Body=b"x", ObjectLockMode="FOREVER",
                ObjectLockRetainUntilDate=_in(3600)) == ("InvalidArgument", 400)
    assert _versions(s3, lock_bucket) == []


@pytest.mark.parametrize("extra", [
    {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": "later"},
    {"ObjectLockLegalHoldStatus": "ON"},
], ids=["retention", "legal-hold"])
def test_put_object_lock_headers_on_plain_bucket_invalid_request(s3, bucket, extra):
    extra = {k: (_in(3600) if v == "later" else v) for k, v in extra.items()}
    assert _err(s3.put_object, Bucket=bucket, Key="k", Body=b"x", **extra) == ("InvalidRequest", 400)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_put_object_with_lock_headers_needs_content_md5_or_checksum(server, s3, lock_bucket):
    """"The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for any request
    to upload an object with a retention period configured using Amazon S3 Object Lock"
    (PutObject); a SigV4 payload hash is not enough."""
    until = _in(3600).strftime("%Y-%m-%dT%H:%M:%SZ")
    lock = {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": until}
    resp = raw(server, "PUT", f"/{lock_bucket}/k", headers=dict(lock), body=b"payload")
    assert_error(resp, "InvalidRequest", 400)
    assert _versions(s3, lock_bucket) == []
    md5 = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    resp = raw(server, "PUT", f"/{lock_bucket}/k", headers=dict(lock, **{"Content-MD5": md5}), body=b"payload")
    assert resp.status_code == 200, describe(resp)
    assert s3.head_object(Bucket=lock_bucket, Key="k")["ObjectLockMode"] == "GOVERNANCE"


def test_put_object_with_legal_hold_header(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="k")
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert "ObjectLockMode" not in head
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k")["LegalHold"] == {"Status": "ON"}
    assert s3.get_object(Bucket=lock_bucket, Key="k")["ObjectLockLegalHoldStatus"] == "ON"
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)


# -- enforcement: GOVERNANCE ------------------------------------------------------------------

@SIZES
def test_governance_delete_version_denied_unless_bypass(s3, lock_bucket, size):
    body = os.urandom(size)
    vid, _ = _put_locked(s3, lock_bucket, "k", body)
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=False) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "k", vid) == body
    assert s3.get_object(Bucket=lock_bucket, Key="k")["Body"].read() == body
    assert _version_ids(s3, lock_bucket, "k") == {vid}

    resp = s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp.get("VersionId") == vid
    assert _version_ids(s3, lock_bucket, "k") == set()
    assert _err(s3.get_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("NoSuchVersion", 404)


@SIZES
def test_governance_delete_without_version_adds_delete_marker(s3, lock_bucket, size):
    body = os.urandom(size)
    vid, until = _put_locked(s3, lock_bucket, "k", body)
    resp = s3.delete_object(Bucket=lock_bucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp.get("DeleteMarker") is True
    marker = resp["VersionId"]
    assert marker and marker != vid
    assert _err(s3.get_object, Bucket=lock_bucket, Key="k") == ("NoSuchKey", 404)
    assert _read(s3, lock_bucket, "k", vid) == body
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    listing = s3.list_object_versions(Bucket=lock_bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listing.get("Versions", [])] == [(vid, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])] == [(marker, True)]
    # the marker itself carries no lock: removing it brings the locked version back
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=marker)
    assert s3.get_object(Bucket=lock_bucket, Key="k")["Body"].read() == body


def test_governance_overwrite_keeps_locked_version(s3, lock_bucket):
    vid, _ = _put_locked(s3, lock_bucket, "k", b"locked")
    newer = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"newer")["VersionId"]
    assert newer != vid
    assert s3.get_object(Bucket=lock_bucket, Key="k")["Body"].read() == b"newer"
    assert _read(s3, lock_bucket, "k", vid) == b"locked"
    assert _version_ids(s3, lock_bucket, "k") == {vid, newer}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)


def test_governance_shorten_retention_needs_bypass(s3, lock_bucket):
    vid, until = _put_locked(s3, lock_bucket, "k", b"x", until=_in(7200))
    shorter = until - _dt.timedelta(hours=1)
    assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="GOVERNANCE",
                until=shorter) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    _set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", shorter, BypassGovernanceRetention=True)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": shorter}


def test_governance_extend_retention_without_bypass(s3, lock_bucket):
    vid, until = _put_locked(s3, lock_bucket, "k", b"x")
    longer = until + _dt.timedelta(days=1)
    _set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", longer)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": longer}
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid)["ObjectLockRetainUntilDate"] == longer
    # the same date again is not a shortening either
    _set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", longer)


def test_governance_to_compliance_needs_bypass(s3, lock_bucket):
    """Changing the mode alters a GOVERNANCE lock: only with the bypass. Afterwards the
    version is COMPLIANCE-locked (a few seconds: the bucket can be emptied at the end)."""
    until = _in(8)
    vid, _ = _put_locked(s3, lock_bucket, "k", b"x", until=until)
    assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="COMPLIANCE",
                until=until) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid)["Mode"] == "GOVERNANCE"
    _set_retention(s3, lock_bucket, "k", vid, "COMPLIANCE", until, BypassGovernanceRetention=True)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid)["ObjectLockMode"] == "COMPLIANCE"
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)
    _sleep_past(until)


def test_put_object_retention_on_unlocked_version(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    until = _in(3600)
    resp = _set_retention(s3, lock_bucket, "k", vid, "GOVERNANCE", until)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)


def test_put_object_retention_date_in_past_invalid(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    past = _dt.datetime.now(UTC).replace(microsecond=0) - _dt.timedelta(hours=1)
    assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="GOVERNANCE",
                until=past) == ("InvalidArgument", 400)
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)


def test_remove_governance_retention_needs_bypass(s3, lock_bucket):
    """An empty <Retention/> removes a retention: a weakening like any other."""
    vid, until = _put_locked(s3, lock_bucket, "k", b"x")
    assert _err(s3.put_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid,
                Retention={}) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    s3.put_object_retention(Bucket=lock_bucket, Key="k", VersionId=vid, Retention={}, BypassGovernanceRetention=True)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)  # no lock left
    assert _version_ids(s3, lock_bucket, "k") == set()


@pytest.mark.parametrize("mode", ["governance", "FOREVER"])
def test_put_object_retention_bad_mode_malformed(s3, lock_bucket, mode):
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")["VersionId"]
    assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode=mode,
                until=_in(3600)) == ("MalformedXML", 400)
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)


def test_governance_expired_version_can_be_deleted(s3, lock_bucket):
    until = _in(3)
    vid, _ = _put_locked(s3, lock_bucket, "k", b"x", until=until)
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    _sleep_past(until)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert _version_ids(s3, lock_bucket, "k") == set()


# -- enforcement: COMPLIANCE ---------------------------------------------------------------------

@SIZES
def test_compliance_locked_version_cannot_be_deleted_or_weakened(s3, lock_bucket, size):
    body = os.urandom(size)
    vid, until = _put_locked(s3, lock_bucket, "k", body, mode="COMPLIANCE", until=_in(60))
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid, **bypass) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "k", vid) == body
    expected = {"Mode": "COMPLIANCE", "RetainUntilDate": until}

    shorter = until - _dt.timedelta(seconds=30)
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="COMPLIANCE",
                    until=shorter, **bypass) == ("AccessDenied", 403)
        assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="GOVERNANCE",
                    until=until, **bypass) == ("AccessDenied", 403)
        assert _err(_set_retention, s3=s3, bucket=lock_bucket, key="k", version_id=vid, mode="GOVERNANCE",
                    until=until + _dt.timedelta(seconds=30), **bypass) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid) == expected

    longer = until + _dt.timedelta(seconds=30)
    _set_retention(s3, lock_bucket, "k", vid, "COMPLIANCE", longer)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "COMPLIANCE", "RetainUntilDate": longer}
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid)["ObjectLockRetainUntilDate"] == longer

    # DELETE without a version id only adds a delete marker
    resp = s3.delete_object(Bucket=lock_bucket, Key="k")
    assert resp.get("DeleteMarker") is True
    assert _read(s3, lock_bucket, "k", vid) == body
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)
    assert vid in _version_ids(s3, lock_bucket, "k")
    # left behind: this bucket is locked for another ~90 seconds


def test_compliance_version_deletable_after_retain_until(s3, lock_bucket):
    until = _in(3)
    vid, _ = _put_locked(s3, lock_bucket, "k", b"x", mode="COMPLIANCE", until=until)
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)
    _sleep_past(until)
    resp = s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _version_ids(s3, lock_bucket, "k") == set()


# -- legal hold ------------------------------------------------------------------------------------

@SIZES
def test_legal_hold_blocks_version_delete_until_released(s3, lock_bucket, size):
    body = os.urandom(size)
    vid = s3.put_object(Bucket=lock_bucket, Key="k", Body=body)["VersionId"]
    resp = s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "ON"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid)["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=vid)["ObjectLockLegalHoldStatus"] == "ON"
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid, **bypass) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "k", vid) == body
    # a legal hold is not a retention
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="k",
                VersionId=vid) == ("NoSuchObjectLockConfiguration", 404)

    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid)["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert _version_ids(s3, lock_bucket, "k") == set()


def test_legal_hold_independent_of_governance_retention(s3, lock_bucket):
    """Bypassing GOVERNANCE does not lift a legal hold; releasing the hold leaves the
    retention in force."""
    vid, until = _put_locked(s3, lock_bucket, "k", b"x")
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "ON"})
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert _version_ids(s3, lock_bucket, "k") == set()


def test_legal_hold_outlives_expired_retention(s3, lock_bucket):
    until = _in(3)
    vid, _ = _put_locked(s3, lock_bucket, "k", b"x", mode="COMPLIANCE", until=until,
                         ObjectLockLegalHoldStatus="ON")
    _sleep_past(until)
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "k", vid) == b"x"
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid)
    assert _version_ids(s3, lock_bucket, "k") == set()


def test_put_object_legal_hold_bad_status_malformed(s3, lock_bucket):
    s3.put_object(Bucket=lock_bucket, Key="k", Body=b"x")
    assert _err(s3.put_object_legal_hold, Bucket=lock_bucket, Key="k",
                LegalHold={"Status": "abc"}) == ("MalformedXML", 400)
    assert _err(s3.get_object_legal_hold, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)


@pytest.mark.parametrize("op", ["put_object_legal_hold", "get_object_legal_hold", "put_object_retention",
                                "get_object_retention"])
def test_object_lock_requests_on_plain_bucket_invalid_request(s3, bucket, op):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    kwargs = {"put_object_legal_hold": {"LegalHold": {"Status": "ON"}},
              "put_object_retention": {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": _in(3600)}}
              }.get(op, {})
    assert _err(getattr(s3, op), Bucket=bucket, Key="k", **kwargs) == ("InvalidRequest", 400)
    s3.delete_object(Bucket=bucket, Key="k")  # nothing was locked


def test_get_retention_and_legal_hold_missing_key(s3, lock_bucket):
    for op in (s3.get_object_retention, s3.get_object_legal_hold):
        assert _err(op, Bucket=lock_bucket, Key="missing") == ("NoSuchKey", 404)


# -- DeleteObjects ----------------------------------------------------------------------------------

def test_delete_objects_locked_version_reported_as_error(s3, lock_bucket):
    locked, _ = _put_locked(s3, lock_bucket, "locked", b"L")
    free = s3.put_object(Bucket=lock_bucket, Key="free", Body=b"F")["VersionId"]
    resp = s3.delete_objects(Bucket=lock_bucket, Delete={"Objects": [
        {"Key": "locked", "VersionId": locked}, {"Key": "free", "VersionId": free}]})
    assert [(d["Key"], d.get("VersionId")) for d in resp.get("Deleted", [])] == [("free", free)]
    errors = resp.get("Errors", [])
    assert [(e["Key"], e.get("VersionId"), e["Code"]) for e in errors] == [("locked", locked, "AccessDenied")]
    assert _read(s3, lock_bucket, "locked", locked) == b"L"
    assert _version_ids(s3, lock_bucket, "free") == set()

    resp = s3.delete_objects(Bucket=lock_bucket, BypassGovernanceRetention=True,
                             Delete={"Objects": [{"Key": "locked", "VersionId": locked}]})
    assert [(d["Key"], d.get("VersionId")) for d in resp.get("Deleted", [])] == [("locked", locked)]
    assert "Errors" not in resp
    assert _version_ids(s3, lock_bucket, "locked") == set()


def test_delete_objects_bypass_does_not_lift_legal_hold_or_compliance(s3, lock_bucket):
    held = s3.put_object(Bucket=lock_bucket, Key="held", Body=b"H", ObjectLockLegalHoldStatus="ON")["VersionId"]
    until = _in(8)
    comp, _ = _put_locked(s3, lock_bucket, "comp", b"C", mode="COMPLIANCE", until=until)
    resp = s3.delete_objects(Bucket=lock_bucket, BypassGovernanceRetention=True, Delete={"Objects": [
        {"Key": "held", "VersionId": held}, {"Key": "comp", "VersionId": comp}]})
    assert resp.get("Deleted", []) == []
    assert sorted((e["Key"], e.get("VersionId"), e["Code"]) for e in resp.get("Errors", [])) == [
        ("comp", comp, "AccessDenied"), ("held", held, "AccessDenied")]
    assert _read(s3, lock_bucket, "held", held) == b"H"
    assert _read(s3, lock_bucket, "comp", comp) == b"C"
    # without version ids: delete markers, which are allowed
    resp = s3.delete_objects(Bucket=lock_bucket, Delete={"Objects": [{"Key": "held"}, {"Key": "comp"}]})
    assert sorted((d["Key"], d.get("DeleteMarker")) for d in resp.get("Deleted", [])) == [
        ("comp", True), ("held", True)]
    assert "Errors" not in resp
    assert _read(s3, lock_bucket, "comp", comp) == b"C"
    _sleep_past(until)


# -- version targeting --------------------------------------------------------------------------------

def test_retention_targets_version_or_current(s3, lock_bucket):
    old, old_until = _put_locked(s3, lock_bucket, "k", b"old")
    new = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"new")["VersionId"]
    # without VersionId: the current version, which has none
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)
    assert _retention(s3, lock_bucket, "k", old) == {"Mode": "GOVERNANCE", "RetainUntilDate": old_until}
    head_old = s3.head_object(Bucket=lock_bucket, Key="k", VersionId=old)
    assert (head_old["ObjectLockMode"], head_old["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", old_until)
    assert "ObjectLockMode" not in s3.head_object(Bucket=lock_bucket, Key="k")

    new_until = _in(7200)
    s3.put_object_retention(Bucket=lock_bucket, Key="k",
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": new_until})
    assert _retention(s3, lock_bucket, "k") == {"Mode": "GOVERNANCE", "RetainUntilDate": new_until}
    assert _retention(s3, lock_bucket, "k", new) == {"Mode": "GOVERNANCE", "RetainUntilDate": new_until}
    assert _retention(s3, lock_bucket, "k", old) == {"Mode": "GOVERNANCE", "RetainUntilDate": old_until}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=new) == ("AccessDenied", 403)


def test_legal_hold_targets_version_or_current(s3, lock_bucket):
    old = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"old")["VersionId"]
    new = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"new")["VersionId"]
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=old, LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=old)["LegalHold"] == {"Status": "ON"}
    assert _err(s3.get_object_legal_hold, Bucket=lock_bucket, Key="k") == ("NoSuchObjectLockConfiguration", 404)
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=new)  # the current one is not held
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=old) == ("AccessDenied", 403)

    newest = s3.put_object(Bucket=lock_bucket, Key="k", Body=b"newest")["VersionId"]
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k")["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=lock_bucket, Key="k", VersionId=newest)["ObjectLockLegalHoldStatus"] == "ON"
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="k", VersionId=newest) == ("AccessDenied", 403)


def test_retention_unknown_version(s3, lock_bucket):
    vid = s3.put_object(Bucket=lock_bucket, Key="other", Body=b"y")["VersionId"]
    s3.delete_object(Bucket=lock_bucket, Key="other", VersionId=vid)
    assert _err(s3.get_object_retention, Bucket=lock_bucket, Key="other", VersionId=vid) == ("NoSuchVersion", 404)


# -- CopyObject and multipart --------------------------------------------------------------------------

def test_copy_object_with_lock_headers_locks_destination(s3, lock_bucket, bucket):
    body = os.urandom(LARGE)
    s3.put_object(Bucket=bucket, Key="src", Body=body)
    until = _in(3600)
    resp = s3.copy_object(Bucket=lock_bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                          ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                          ObjectLockLegalHoldStatus="ON")
    vid = resp["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="dst")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"], head["ObjectLockLegalHoldStatus"]) == (
        "GOVERNANCE", until, "ON")
    assert _retention(s3, lock_bucket, "dst", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="dst", VersionId=vid,
                BypassGovernanceRetention=True) == ("AccessDenied", 403)  # the legal hold
    assert _read(s3, lock_bucket, "dst", vid) == body


def test_copy_object_lock_headers_to_plain_bucket_invalid_request(s3, lock_bucket, bucket):
    s3.put_object(Bucket=lock_bucket, Key="src", Body=b"x")
    assert _err(s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": lock_bucket, "Key": "src"},
                ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=_in(3600)) == ("InvalidRequest", 400)


def test_multipart_upload_with_lock_headers_locks_completed_object(s3, lock_bucket):
    until = _in(3600)
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1234)
    upload = s3.create_multipart_upload(Bucket=lock_bucket, Key="mp", ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=until)["UploadId"]
    parts = []
    for number, data in ((1, part1), (2, part2)):
        etag = s3.upload_part(Bucket=lock_bucket, Key="mp", UploadId=upload, PartNumber=number, Body=data)["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    resp = s3.complete_multipart_upload(Bucket=lock_bucket, Key="mp", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    vid = resp["VersionId"]
    head = s3.head_object(Bucket=lock_bucket, Key="mp")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    assert _retention(s3, lock_bucket, "mp", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert _err(s3.delete_object, Bucket=lock_bucket, Key="mp", VersionId=vid) == ("AccessDenied", 403)
    assert _read(s3, lock_bucket, "mp", vid) == part1 + part2


def test_multipart_upload_with_lock_headers_on_plain_bucket_invalid_request(s3, bucket):
    assert _err(s3.create_multipart_upload, Bucket=bucket, Key="mp", ObjectLockMode="GOVERNANCE",
                ObjectLockRetainUntilDate=_in(3600)) == ("InvalidRequest", 400)


# -- background work ----------------------------------------------------------------------------------

@SIZES
def test_sweeper_keeps_locked_versions(server, s3, lock_bucket, size):
    """A locked version, no longer current (overwritten, then hidden by a delete marker),
    survives a pass of the server's blob sweeper with its bytes."""
    body = os.urandom(size)
    vid, until = _put_locked(s3, lock_bucket, "k", body)
    held = s3.put_object(Bucket=lock_bucket, Key="k", Body=os.urandom(size),
                         ObjectLockLegalHoldStatus="ON")["VersionId"]
    s3.delete_object(Bucket=lock_bucket, Key="k")  # a delete marker on top
    server.sweep()
    assert _read(s3, lock_bucket, "k", vid) == body
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=held)["LegalHold"] == {"Status": "ON"}
    assert {vid, held} <= _version_ids(s3, lock_bucket, "k")
    server.sweep()
    assert _read(s3, lock_bucket, "k", vid) == body


# -- other users ------------------------------------------------------------------------------------------

def test_non_owner_cannot_change_retention_or_legal_hold(s3, s3_other, lock_bucket):
    vid, until = _put_locked(s3, lock_bucket, "k", b"x")
    shorter = until - _dt.timedelta(minutes=30)
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        assert _err(s3_other.put_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid,
                    Retention={"Mode": "GOVERNANCE", "RetainUntilDate": shorter}, **bypass) == ("AccessDenied", 403)
    assert _err(s3_other.put_object_legal_hold, Bucket=lock_bucket, Key="k", VersionId=vid,
                LegalHold={"Status": "ON"}) == ("AccessDenied", 403)
    assert _err(s3_other.get_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    assert _err(s3_other.get_object_legal_hold, Bucket=lock_bucket, Key="k", VersionId=vid) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}


def test_writer_granted_by_acl_cannot_bypass_governance(s3, s3_other, lock_bucket):
    """ACL grants map to no s3:BypassGovernanceRetention (nor s3:PutObjectRetention): a
    user the bucket ACL lets write still cannot remove or weaken a GOVERNANCE lock."""
    owner, other = canonical_id(s3), canonical_id(s3_other)
    body = os.urandom(LARGE)
    vid, until = _put_locked(s3, lock_bucket, "k", body)
    s3.put_bucket_acl(Bucket=lock_bucket, GrantFullControl=f"id={owner},id={other}")
    for bypass in ({}, {"BypassGovernanceRetention": True}):
        assert _err(s3_other.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid,
                    **bypass) == ("AccessDenied", 403)
        assert _err(s3_other.put_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid,
                    Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until - _dt.timedelta(minutes=30)},
                    **bypass) == ("AccessDenied", 403)
    resp = s3_other.delete_objects(Bucket=lock_bucket, BypassGovernanceRetention=True,
                                   Delete={"Objects": [{"Key": "k", "VersionId": vid}]})
    assert [(e["Key"], e["Code"]) for e in resp.get("Errors", [])] == [("k", "AccessDenied")]
    assert _read(s3, lock_bucket, "k", vid) == body
    assert _retention(s3, lock_bucket, "k", vid) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}


def _version_written_by_other(s3, s3_other, bucket: str, body: bytes) -> str:
    """A version s3_other writes (a bucket ACL grants it WRITE), locked by the bucket's
    default GOVERNANCE rule."""
    owner, other = canonical_id(s3), canonical_id(s3_other)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f"id={owner}", GrantWrite=f"id={other}")
    vid = s3_other.put_object(Bucket=bucket, Key="k", Body=body)["VersionId"]
    assert _retention(s3, bucket, "k", vid)["Mode"] == "GOVERNANCE"
    return vid


@pytest.mark.parametrize("bypass", [False, True], ids=["plain", "bypass"])
def test_object_writer_cannot_weaken_retention_of_own_version(s3, s3_other, lock_bucket, bypass):
    """The writer a bucket ACL lets in owns the versions it writes, but ACLs grant none of
    s3:PutObjectRetention, s3:BypassGovernanceRetention, s3:DeleteObjectVersion: it cannot
    shorten or remove the retention of its own version, nor delete it."""
    body = os.urandom(SMALL)
    vid = _version_written_by_other(s3, s3_other, lock_bucket, body)
    retention = _retention(s3, lock_bucket, "k", vid)
    extra = {"BypassGovernanceRetention": True} if bypass else {}
    assert _err(s3_other.put_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid,
                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": _in(60)}, **extra) == ("AccessDenied", 403)
    assert _err(s3_other.put_object_retention, Bucket=lock_bucket, Key="k", VersionId=vid,
                Retention={}, **extra) == ("AccessDenied", 403)
    assert _retention(s3, lock_bucket, "k", vid) == retention
    assert _err(s3_other.delete_object, Bucket=lock_bucket, Key="k", VersionId=vid, **extra) == ("AccessDenied", 403)
    assert _read(s3_other, lock_bucket, "k", vid) == body  # the writer owns it


def test_object_writer_cannot_release_owner_legal_hold(s3, s3_other, lock_bucket):
    """Nor can that writer release a legal hold the bucket owner put on its version."""
    body = os.urandom(SMALL)
    vid = _version_written_by_other(s3, s3_other, lock_bucket, body)
    s3.put_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid, LegalHold={"Status": "ON"})
    assert _err(s3_other.put_object_legal_hold, Bucket=lock_bucket, Key="k", VersionId=vid,
                LegalHold={"Status": "OFF"}) == ("AccessDenied", 403)
    assert s3.get_object_legal_hold(Bucket=lock_bucket, Key="k", VersionId=vid)["LegalHold"] == {"Status": "ON"}
    assert _read(s3_other, lock_bucket, "k", vid) == body  # the writer owns it


# -- the attacker: a bypass that the signature does not cover ------------------------------

def test_unsigned_bypass_header_on_presigned_delete_is_refused(s3, lock_bucket):
    """A presigned DeleteObject of a GOVERNANCE-locked version, handed to someone
    who adds x-amz-bypass-governance-retention: true: the header is not signed, so
    the request is refused (HeadersNotSigned) and the version stays, byte-exact.
    The owner's own signed bypass still works."""
    import requests

    body = os.urandom(SMALL)
    vid, _ = _put_locked(s3, lock_bucket, "k", body)
    url = s3.generate_presigned_url("delete_object", Params={"Bucket": lock_bucket, "Key": "k", "VersionId": vid},
                                    ExpiresIn=300)
    assert requests.delete(url, timeout=30).status_code == 403  # locked: no bypass
    resp = requests.delete(url, headers={"x-amz-bypass-governance-retention": "true"}, timeout=30)
    assert resp.status_code == 403, resp.content
    assert b"<HeadersNotSigned>x-amz-bypass-governance-retention</HeadersNotSigned>" in resp.content, resp.content
    assert s3.get_object(Bucket=lock_bucket, Key="k", VersionId=vid)["Body"].read() == body
    s3.delete_object(Bucket=lock_bucket, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert _err(s3.head_object, Bucket=lock_bucket, Key="k", VersionId=vid)[1] == 404
