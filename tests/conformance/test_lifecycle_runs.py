"""Lifecycle rules really run: a pass of the server's lifecycle runner (the same code its
workers run on their timer, here run on demand from the test on the server's database
"as if" days later, like Server.sweep()) and then the bucket, read over HTTP with boto3,
holds exactly what the rules leave: expired objects gone (a delete marker in a versioned
bucket, as S3), noncurrent versions past NoncurrentDays beyond NewerNoncurrentVersions
gone, lone delete markers gone with ExpiredObjectDeleteMarker, old incomplete uploads
aborted, locked versions kept, and nothing else touched. A second pass deletes nothing.
The servers' own timers running the rules are shown in tests/system/test_lifecycle_cluster.py.
"""
from __future__ import annotations

import datetime as _dt
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import client_error

DAY_US = 86400 * 1_000_000
UTC = _dt.timezone.utc


def days_later(days: float) -> int:
    return int(time.time() * 1_000_000 + days * DAY_US)


def put_rules(s3, bucket: str, *rules: dict) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def keys(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def versions(s3, bucket: str) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is delete marker, is latest), listing order."""
    resp = s3.list_object_versions(Bucket=bucket)
    out = [(v["Key"], v["VersionId"], False, v["IsLatest"]) for v in resp.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], True, m["IsLatest"]) for m in resp.get("DeleteMarkers", [])]
    return sorted(out, key=lambda v: (v[0], not v[3]))


@pytest.fixture
def versioned(s3):
    """A fresh versioned bucket with Object Lock, emptied (governance bypassed, holds
    released) and deleted after the test."""
    name = "lcv-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    s3.delete_bucket_lifecycle(Bucket=name)
    for key, version_id, marker, _ in versions(s3, name):
        if not marker:
            s3.put_object_legal_hold(Bucket=name, Key=key, VersionId=version_id, LegalHold={"Status": "OFF"})
        s3.delete_object(Bucket=name, Key=key, VersionId=version_id, BypassGovernanceRetention=True)
    s3.delete_bucket(Bucket=name)


def test_expiration_days_prefix_and_size(server, s3, bucket):
    for key, size in (("logs/a", 10), ("logs/b", 10), ("logs/big", 5000), ("keep/a", 10), ("logsx", 10),
                      ("big/a", 5000), ("big/small", 10)):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    put_rules(s3, bucket,
              {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 2}},
              {"ID": "big", "Filter": {"And": {"Prefix": "big/", "ObjectSizeGreaterThan": 1000}},
               "Status": "Enabled", "Expiration": {"Days": 1}},
              {"ID": "off", "Filter": {"Prefix": "keep/"}, "Status": "Disabled", "Expiration": {"Days": 1}})
    assert server.lifecycle(days_later(0)) == {}  # not due yet
    assert server.lifecycle(days_later(2)) == {"expiration": 1}  # "big" only: logs/ needs 2 days + midnight
    assert "big/a" not in keys(s3, bucket)
    assert server.lifecycle(days_later(4)) == {"expiration": 3}
    assert keys(s3, bucket) == ["big/small", "keep/a", "logsx"]
    assert server.lifecycle(days_later(4)) == {}
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="logs/a")
    assert client_error(exc) == ("NoSuchKey", 404)


def test_expiration_date(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="old/a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="new/a", Body=b"1")
    put_rules(s3, bucket, {"ID": "past", "Filter": {"Prefix": "old/"}, "Status": "Enabled",
                           "Expiration": {"Date": _dt.datetime(2020, 1, 1, tzinfo=UTC)}},
              {"ID": "future", "Filter": {"Prefix": "new/"}, "Status": "Enabled",
               "Expiration": {"Date": _dt.datetime(2099, 1, 1, tzinfo=UTC)}})
    assert server.lifecycle() == {"expiration": 1}
    assert keys(s3, bucket) == ["new/a"]


def test_versioned_expiration_makes_one_delete_marker(server, s3, versioned):
    for i in range(3):
        s3.put_object(Bucket=versioned, Key=f"k{i}", Body=b"v1")
    put_rules(s3, versioned, {"ID": "all", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}})
    assert server.lifecycle(days_later(3)) == {"expiration": 3}
    listed = versions(s3, versioned)
    assert [(k, m, latest) for k, _, m, latest in listed] == [
        (f"k{i}", marker, marker) for i in range(3) for marker in (True, False)]
    assert keys(s3, versioned) == []
    assert server.lifecycle(days_later(6)) == {}  # a delete marker does not expire again
    assert len(versions(s3, versioned)) == 6


def test_noncurrent_expiration_and_newer_noncurrent_versions(server, s3, versioned):
    ids = [s3.put_object(Bucket=versioned, Key="doc", Body=f"v{i}".encode())["VersionId"] for i in range(5)]
    ids_other = [s3.put_object(Bucket=versioned, Key="other/doc", Body=b"o")["VersionId"] for _ in range(2)]
    put_rules(s3, versioned, {"ID": "nc", "Filter": {"Prefix": "doc"}, "Status": "Enabled",
                              "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2}})
    assert server.lifecycle(days_later(0)) == {}
    assert server.lifecycle(days_later(3)) == {"noncurrent_expiration": 2}  # v0, v1: beyond the 2 newest
    left = [v for k, v, _, _ in versions(s3, versioned) if k == "doc"]
    assert sorted(left) == sorted(ids[2:])
    assert sorted(v for k, v, _, _ in versions(s3, versioned) if k == "other/doc") == sorted(ids_other)
    assert s3.get_object(Bucket=versioned, Key="doc")["Body"].read() == b"v4"


def test_noncurrent_days_counts_from_when_replaced(server, s3, versioned):
    first = s3.put_object(Bucket=versioned, Key="k", Body=b"1")["VersionId"]
    s3.put_object(Bucket=versioned, Key="k", Body=b"2")
    put_rules(s3, versioned, {"ID": "nc", "Filter": {}, "Status": "Enabled",
                              "NoncurrentVersionExpiration": {"NoncurrentDays": 2}})
    assert server.lifecycle(days_later(1.5)) == {}  # replaced just now: 2 days + midnight not reached
    assert server.lifecycle(days_later(3.01)) == {"noncurrent_expiration": 1}
    assert first not in [v for _, v, _, _ in versions(s3, versioned)]


def test_expired_object_delete_marker(server, s3, versioned):
    s3.put_object(Bucket=versioned, Key="alone", Body=b"1")
    s3.put_object(Bucket=versioned, Key="kept", Body=b"1")
    s3.delete_object(Bucket=versioned, Key="alone")
    s3.delete_object(Bucket=versioned, Key="kept")
    put_rules(s3, versioned, {"ID": "nc", "Filter": {"Prefix": "alone"}, "Status": "Enabled",
                              "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
              {"ID": "markers", "Filter": {}, "Status": "Enabled",
               "Expiration": {"ExpiredObjectDeleteMarker": True}})
    # The first pass removes "alone"'s only version (noncurrent), leaving its marker alone;
    # the next removes that marker. "kept" keeps its version, so its marker stays.
    assert server.lifecycle(days_later(3)) == {"noncurrent_expiration": 1}
    assert server.lifecycle(days_later(3)) == {"expired_delete_marker": 1}
    assert [(k, m) for k, _, m, _ in versions(s3, versioned)] == [("kept", True), ("kept", False)]


def test_locked_versions_are_kept(server, s3, versioned):
    held = s3.put_object(Bucket=versioned, Key="held", Body=b"1", ObjectLockLegalHoldStatus="ON")["VersionId"]
    until = _dt.datetime.now(UTC) + _dt.timedelta(days=30)
    retained = s3.put_object(Bucket=versioned, Key="retained", Body=b"1", ObjectLockMode="GOVERNANCE",
                             ObjectLockRetainUntilDate=until)["VersionId"]
    free = s3.put_object(Bucket=versioned, Key="free", Body=b"1")["VersionId"]
    for key in ("held", "retained", "free"):
        s3.put_object(Bucket=versioned, Key=key, Body=b"2")
    put_rules(s3, versioned, {"ID": "nc", "Filter": {}, "Status": "Enabled",
                              "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})
    assert server.lifecycle(days_later(3)) == {"noncurrent_expiration": 1, "skipped_locked": 2}
    remaining = {v for _, v, _, _ in versions(s3, versioned)}
    assert held in remaining and retained in remaining and free not in remaining


def test_abort_incomplete_multipart_upload(server, s3, bucket):
    old = s3.create_multipart_upload(Bucket=bucket, Key="tmp/upload")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="tmp/upload", UploadId=old, PartNumber=1, Body=b"p" * 100)
    other = s3.create_multipart_upload(Bucket=bucket, Key="keep/upload")["UploadId"]
    put_rules(s3, bucket, {"ID": "abort", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
                           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    assert server.lifecycle(days_later(0)) == {}
    assert server.lifecycle(days_later(3)) == {"abort_incomplete_multipart_upload": 1}
    left = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == [other]
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="tmp/upload", UploadId=old)
    assert client_error(exc) == ("NoSuchUpload", 404)
    s3.abort_multipart_upload(Bucket=bucket, Key="keep/upload", UploadId=other)


def test_many_keys_across_batches(server, s3, bucket):
    """More keys than one batch of the runner holds, under two prefixes and between them."""
    names = [f"a/{i:04d}" for i in range(1100)] + ["b/0", "c/0"] + [f"d/{i:04d}" for i in range(50)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), names))
    put_rules(s3, bucket, {"ID": "a", "Filter": {"Prefix": "a/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
              {"ID": "d", "Filter": {"Prefix": "d/"}, "Status": "Enabled", "Expiration": {"Days": 1}})
    assert server.lifecycle(days_later(3)) == {"expiration": 1150}
    assert keys(s3, bucket) == ["b/0", "c/0"]


def test_tag_filters_use_each_objects_tag_set(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x", Tagging="class=scratch&team=x")
    s3.put_object(Bucket=bucket, Key="b", Body=b"x", Tagging="class=keep")
    s3.put_object(Bucket=bucket, Key="c", Body=b"x")
    s3.put_object(Bucket=bucket, Key="d", Body=b"x", Tagging="class=scratch")
    put_rules(s3, bucket, {"ID": "and", "Filter": {"And": {"Prefix": "", "Tags": [
        {"Key": "class", "Value": "scratch"}, {"Key": "team", "Value": "x"}]}},
        "Status": "Enabled", "Expiration": {"Days": 1}},
        {"ID": "tag", "Filter": {"Tag": {"Key": "class", "Value": "keep"}}, "Status": "Enabled",
         "Expiration": {"Days": 30}})
    head = s3.head_object(Bucket=bucket, Key="a")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"].endswith('rule-id="and"')
    assert "x-amz-expiration" not in s3.head_object(Bucket=bucket, Key="d")["ResponseMetadata"]["HTTPHeaders"]
    assert server.lifecycle(days_later(3)) == {"expiration": 1}
    assert keys(s3, bucket) == ["b", "c", "d"]
