"""Nothing asked for is silently dropped: a request for something BleepStore does
not do is an S3 error and stores nothing; a read of a configuration that was
never set is S3's empty answer (bleepstore_app/s3/unsupported.py and
s3/handlers/bucket_config.py)."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from ..servers import ACCESS_KEY, SECRET_KEY
from .helpers import assert_client_error, assert_error, client_error, key_path, signed_request
from .test_awscli import AWS

LOCK_UNTIL = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
NOT_IMPLEMENTED = ("NotImplemented", 501)

# (label, extra arguments, expected (Code, status)) for every object-creating call.
# Server-side encryption is implemented: tests/conformance/test_encryption.py.
NEW_OBJECT_REFUSALS = [
    ("lock-retention", {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": LOCK_UNTIL},
     ("InvalidRequest", 400)),
    ("lock-legal-hold", {"ObjectLockLegalHoldStatus": "ON"}, ("InvalidRequest", 400)),
    # Tagging is implemented (tests/conformance/test_tagging.py); a bad tag set is refused.
    ("tagging-aws-prefix", {"Tagging": "aws:team=blue"}, ("InvalidTag", 400)),
    ("website-redirect", {"WebsiteRedirectLocation": "/elsewhere"}, NOT_IMPLEMENTED),
    ("glacier", {"StorageClass": "GLACIER"}, ("InvalidStorageClass", 400)),
    ("deep-archive", {"StorageClass": "DEEP_ARCHIVE"}, ("InvalidStorageClass", 400)),
    ("standard-ia", {"StorageClass": "STANDARD_IA"}, ("InvalidStorageClass", 400)),
    ("intelligent-tiering", {"StorageClass": "INTELLIGENT_TIERING"}, ("InvalidStorageClass", 400)),
    ("express-onezone", {"StorageClass": "EXPRESS_ONEZONE"}, ("InvalidStorageClass", 400)),
]
LABELS = [label for label, _, _ in NEW_OBJECT_REFUSALS]


def _keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _error(call, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return client_error(exc)


@pytest.fixture
def owner_id(s3) -> str:
    return s3.list_buckets()["Owner"]["ID"]


# -- refused headers: the object-creating operations --------------------------------

@pytest.mark.parametrize("label, extra, expected", NEW_OBJECT_REFUSALS, ids=LABELS)
def test_put_object_refused_stores_nothing(s3, bucket, label, extra, expected):
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"secret data", **extra) == expected
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("label, extra, expected", NEW_OBJECT_REFUSALS, ids=LABELS)
def test_create_multipart_upload_refused_starts_nothing(s3, bucket, label, extra, expected):
    assert _error(s3.create_multipart_upload, Bucket=bucket, Key="k", **extra) == expected
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("label, extra, expected", NEW_OBJECT_REFUSALS + [
    ("tagging-replace-too-many", {"TaggingDirective": "REPLACE",
                                  "Tagging": "&".join(f"k{i}=v" for i in range(11))}, ("BadRequest", 400)),
    ("checksum-algorithm", {"ChecksumAlgorithm": "SHA256"}, NOT_IMPLEMENTED),
    ("if-none-match", {"IfNoneMatch": "*"}, NOT_IMPLEMENTED),
    ("tagging-directive-unknown", {"TaggingDirective": "MERGE"}, ("InvalidArgument", 400)),
], ids=LABELS + ["tagging-replace-too-many", "checksum-algorithm", "if-none-match",
                 "tagging-directive-unknown"])
def test_copy_object_refused_stores_nothing(s3, bucket, label, extra, expected):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    assert _error(s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                  **extra) == expected
    assert _keys(s3, bucket) == ["src"]


def test_copy_object_if_none_match_does_not_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old")
    assert _error(s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                  IfNoneMatch="*") == NOT_IMPLEMENTED
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"


def test_copy_object_tagging_directive(s3, bucket):
    # COPY (the default) copies the source's tags; REPLACE without x-amz-tagging sets none.
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Tagging="team=blue")
    expected = {"REPLACE": [], "COPY": [{"Key": "team", "Value": "blue"}]}
    for directive in ("REPLACE", "COPY"):
        s3.copy_object(Bucket=bucket, Key=f"dst-{directive}", CopySource={"Bucket": bucket, "Key": "src"},
                       TaggingDirective=directive)
        assert s3.get_object_tagging(Bucket=bucket, Key=f"dst-{directive}")["TagSet"] == expected[directive]


def test_put_object_empty_tagging_is_exact(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket, "k"), headers={"x-amz-tagging": ""}, body=b"x")
    assert resp.status_code == 200, resp.content
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


@pytest.mark.parametrize("header, value", [
    ("x-amz-write-offset-bytes", "0"),
    ("x-amz-checksum-sha512", "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="),
    ("x-amz-checksum-xxhash64", "RNiGEv6oqPNt6C4SeKuwLw=="),
    ("x-amz-object-lock-event-hold", "ON"),
])
def test_put_object_raw_header_refused(server, s3, bucket, header, value):
    resp = signed_request(server, "PUT", key_path(bucket, "k"), headers={header: value}, body=b"x")
    fields = assert_error(resp, "NotImplemented", 501)
    assert fields["Header"] == header
    assert _keys(s3, bucket) == []


def test_put_object_lock_header_names_the_bucket_state(s3, bucket):
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"x",
                  ObjectLockLegalHoldStatus="ON") == ("InvalidRequest", 400)
    # The refusal is about a bucket: a missing one is NoSuchBucket first, as in S3.
    assert _error(s3.put_object, Bucket="no-such-bucket-" + uuid.uuid4().hex[:8], Key="k", Body=b"x",
                  ObjectLockLegalHoldStatus="ON") == ("NoSuchBucket", 404)


def test_refused_large_upload_leaves_connection_usable(s3, bucket):
    body = os.urandom(3 * 1024 * 1024)  # boto3 sends Expect: 100-continue; the body is never read
    for _ in range(2):
        assert _error(s3.put_object, Bucket=bucket, Key="big", Body=body,
                      WebsiteRedirectLocation="/elsewhere") == NOT_IMPLEMENTED
    s3.put_object(Bucket=bucket, Key="after", Body=b"ok")
    assert _keys(s3, bucket) == ["after"]


# -- refused headers: parts, completion, reads -----------------------------------------

@pytest.fixture
def upload(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    yield upload_id
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    except ClientError:
        pass


@pytest.mark.parametrize("extra", [{"IfNoneMatch": "*"}, {"IfMatch": '"abc"'}],
                         ids=["if-none-match", "if-match"])
def test_complete_multipart_upload_refused_completes_nothing(s3, bucket, upload, extra):
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    assert _error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}, **extra) == NOT_IMPLEMENTED
    assert _keys(s3, bucket) == []
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]] == [1]


def test_complete_multipart_upload_object_size_checked(s3, bucket, upload):
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"12345")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    assert _error(s3.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts,
                  MpuObjectSize=6) == ("InvalidRequest", 400)
    assert _keys(s3, bucket) == []
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload=parts, MpuObjectSize=5)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"12345"


def test_abort_multipart_upload_if_match_initiated_time_refused(s3, bucket, upload):
    assert _error(s3.abort_multipart_upload, Bucket=bucket, Key="mp", UploadId=upload,
                  IfMatchInitiatedTime=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)) == NOT_IMPLEMENTED
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]


@pytest.mark.parametrize("extra", [{"IfMatch": '"0123"'}, {"IfMatch": "*"}], ids=["etag", "star"])
def test_conditional_delete_refused_deletes_nothing(s3, bucket, extra):
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    assert _error(s3.delete_object, Bucket=bucket, Key="k", **extra) == NOT_IMPLEMENTED
    assert _keys(s3, bucket) == ["k"]


@pytest.mark.parametrize("header", ["x-amz-if-match-size", "x-amz-if-match-last-modified-time"])
def test_conditional_delete_raw_headers_refused(server, s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    value = "4" if header.endswith("size") else "Wed, 01 Jan 2020 00:00:00 GMT"
    assert_error(signed_request(server, "DELETE", key_path(bucket, "k"), headers={header: value}),
                 "NotImplemented", 501)
    assert _keys(s3, bucket) == ["k"]


# -- refused headers: CreateBucket ------------------------------------------------------

def _head_bucket_status(s3, name) -> int:
    try:
        return s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_bucket_account_regional_namespace_refused(server, s3):
    name = "refused-" + uuid.uuid4().hex[:16]
    assert_error(signed_request(server, "PUT", f"/{name}", headers={"x-amz-bucket-namespace": "account-regional"}),
                 "NotImplemented", 501)
    assert _head_bucket_status(s3, name) == 404


def test_create_bucket_object_lock_disabled_is_exact(s3):
    name = "lockless-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=False)
    try:
        assert_client_error(pytest.raises(ClientError, s3.get_object_lock_configuration, Bucket=name),
                            "ObjectLockConfigurationNotFoundError", 404)
    finally:
        s3.delete_bucket(Bucket=name)


# -- storage classes -----------------------------------------------------------------------

def test_storage_classes_one_tier(s3, bucket):
    """STANDARD and REDUCED_REDUNDANCY (less durability than it gets) are accepted
    and echoed; a class that names another tier is refused."""
    s3.put_object(Bucket=bucket, Key="rrs", Body=b"x", StorageClass="REDUCED_REDUNDANCY")
    assert s3.head_object(Bucket=bucket, Key="rrs")["StorageClass"] == "REDUCED_REDUNDANCY"
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "REDUCED_REDUNDANCY"
    for refused in ("GLACIER", "GLACIER_IR", "ONEZONE_IA", "OUTPOSTS", "SNOW"):
        assert _error(s3.put_object, Bucket=bucket, Key="other", Body=b"x",
                      StorageClass=refused) == ("InvalidStorageClass", 400)
    assert _error(s3.copy_object, Bucket=bucket, Key="rrs", CopySource={"Bucket": bucket, "Key": "rrs"},
                  StorageClass="GLACIER") == ("InvalidStorageClass", 400)
    assert s3.head_object(Bucket=bucket, Key="rrs")["StorageClass"] == "REDUCED_REDUNDANCY"
    assert _keys(s3, bucket) == ["rrs"]


# -- versionId in a never-versioned bucket: "null" is the only version -------------------------

def test_version_id_of_no_version(s3, bucket):
    """An id of another shape than BleepStore's is InvalidArgument; a well-formed
    id of no version is NoSuchVersion (and deletes nothing)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"current")
    malformed, unknown = "3HL4kqtJlcpXroDTDmJ", "0123456789abcdef0123456789abcdef"
    assert _error(s3.get_object, Bucket=bucket, Key="k", VersionId=malformed) == ("InvalidArgument", 400)
    assert _error(s3.head_object, Bucket=bucket, Key="k", VersionId=malformed) == ("400", 400)
    assert _error(s3.delete_object, Bucket=bucket, Key="k", VersionId=malformed) == ("InvalidArgument", 400)
    assert _error(s3.copy_object, Bucket=bucket, Key="copy",
                  CopySource={"Bucket": bucket, "Key": "k", "VersionId": malformed}) == ("InvalidArgument", 400)
    assert _error(s3.get_object, Bucket=bucket, Key="k", VersionId=unknown) == ("NoSuchVersion", 404)
    assert _error(s3.head_object, Bucket=bucket, Key="k", VersionId=unknown) == ("404", 404)
    assert _error(s3.copy_object, Bucket=bucket, Key="copy",
                  CopySource={"Bucket": bucket, "Key": "k", "VersionId": unknown}) == ("NoSuchVersion", 404)
    assert s3.delete_object(Bucket=bucket, Key="k", VersionId=unknown)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _keys(s3, bucket) == ["k"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"current"


# -- x-amz-expected-bucket-owner ------------------------------------------------------------

def test_expected_bucket_owner_checked(s3, bucket, owner_id):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=owner_id)
    wrong = "0" * 64
    assert _error(s3.put_object, Bucket=bucket, Key="new", Body=b"x", ExpectedBucketOwner=wrong) == ("AccessDenied", 403)
    assert _error(s3.get_object, Bucket=bucket, Key="k", ExpectedBucketOwner=wrong) == ("AccessDenied", 403)
    assert _error(s3.list_objects_v2, Bucket=bucket, ExpectedBucketOwner=wrong) == ("AccessDenied", 403)
    assert _error(s3.delete_object, Bucket=bucket, Key="k", ExpectedBucketOwner=wrong) == ("AccessDenied", 403)
    assert _error(s3.get_bucket_versioning, Bucket=bucket, ExpectedBucketOwner=wrong) == ("AccessDenied", 403)
    assert _error(s3.copy_object, Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k"},
                  ExpectedSourceBucketOwner=wrong) == ("AccessDenied", 403)
    assert _keys(s3, bucket) == ["k"]
    # The right owner proceeds; a missing bucket is still NoSuchBucket.
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner=owner_id)["Body"].read() == b"x"
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k"},
                   ExpectedBucketOwner=owner_id, ExpectedSourceBucketOwner=owner_id)
    assert _answer(s3.get_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=owner_id)) == {}
    assert s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner=owner_id)["KeyCount"] == 2
    assert _error(s3.list_objects_v2, Bucket="no-such-bucket-" + uuid.uuid4().hex[:8],
                  ExpectedBucketOwner=owner_id) == ("NoSuchBucket", 404)


# -- headers that ask for nothing to refuse -----------------------------------------------------

def test_refusal_is_per_header(s3, bucket):
    """Headers that ask for nothing BleepStore lacks pass next to the refused ones."""
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", RequestPayer="requester",
                  WebsiteRedirectLocation="/elsewhere") == NOT_IMPLEMENTED
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", RequestPayer="requester")
    assert s3.get_object(Bucket=bucket, Key="k", RequestPayer="requester")["Body"].read() == b"x"
    assert s3.list_objects_v2(Bucket=bucket, RequestPayer="requester")["KeyCount"] == 1
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]}, BypassGovernanceRetention=True)
    s3.put_object(Bucket=bucket, Key="k2", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k2", BypassGovernanceRetention=True)
    assert _keys(s3, bucket) == []


# -- empty configuration reads ---------------------------------------------------------------

def _answer(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_get_bucket_versioning_never_versioned(server, s3, bucket):
    assert _answer(s3.get_bucket_versioning(Bucket=bucket)) == {}  # no Status, no MFADelete
    resp = signed_request(server, "GET", f"/{bucket}", query="versioning")
    assert resp.status_code == 200
    assert resp.content.endswith(b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>')


EMPTY_ANSWERS = [
    ("get_bucket_logging", {}),
    ("get_bucket_notification_configuration", {}),
    ("get_bucket_accelerate_configuration", {}),
    ("get_bucket_request_payment", {"Payer": "BucketOwner"}),
]
NOT_CONFIGURED = [
    ("get_bucket_cors", "NoSuchCORSConfiguration"),
    ("get_bucket_tagging", "NoSuchTagSet"),
    ("get_bucket_policy", "NoSuchBucketPolicy"),
    ("get_bucket_policy_status", "NoSuchBucketPolicy"),
    ("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration"),
    ("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError"),
    ("get_bucket_website", "NoSuchWebsiteConfiguration"),
    ("get_object_lock_configuration", "ObjectLockConfigurationNotFoundError"),
    ("get_bucket_replication", "ReplicationConfigurationNotFoundError"),
    ("get_public_access_block", "NoSuchPublicAccessBlockConfiguration"),
    ("get_bucket_ownership_controls", "OwnershipControlsNotFoundError"),
]
BUCKET_READS = ["get_bucket_versioning"] + [m for m, _ in EMPTY_ANSWERS] + [m for m, _ in NOT_CONFIGURED]


@pytest.mark.parametrize("method, answer", EMPTY_ANSWERS)
def test_empty_configuration_answer(s3, bucket, method, answer):
    assert _answer(getattr(s3, method)(Bucket=bucket)) == answer


@pytest.mark.parametrize("method, code", NOT_CONFIGURED)
def test_not_configured_error(server, s3, bucket, method, code):
    with pytest.raises(ClientError) as exc:
        getattr(s3, method)(Bucket=bucket)
    assert_client_error(exc, code, 404)
    assert exc.value.response["Error"]["BucketName"] == bucket


@pytest.mark.parametrize("method", BUCKET_READS)
def test_configuration_read_missing_bucket(s3, method):
    assert _error(getattr(s3, method), Bucket="no-such-bucket-" + uuid.uuid4().hex[:8]) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("method", BUCKET_READS)
def test_configuration_read_needs_the_bucket_owner(s3_other, bucket, method):
    assert _error(getattr(s3_other, method), Bucket=bucket) == ("AccessDenied", 403)


def test_get_object_tagging(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert _answer(s3.get_object_tagging(Bucket=bucket, Key="k")) == {"TagSet": []}
    assert _error(s3.get_object_tagging, Bucket=bucket, Key="absent") == ("NoSuchKey", 404)
    assert _error(s3_other.get_object_tagging, Bucket=bucket, Key="k") == ("AccessDenied", 403)


@pytest.mark.parametrize("read, call, kwargs", [
    ("get_bucket_website", "put_bucket_website", {"WebsiteConfiguration": {"IndexDocument": {"Suffix": "index.html"}}}),
    ("get_bucket_website", "delete_bucket_website", {}),
])
def test_configuration_writes_stay_not_implemented(s3, bucket, read, call, kwargs):
    """The write is refused and the read still answers "never configured"."""
    assert _error(getattr(s3, call), Bucket=bucket, **kwargs) == NOT_IMPLEMENTED
    try:
        assert _answer(getattr(s3, read)(Bucket=bucket)) == {}
    except ClientError as err:
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404, err


def test_awscli_get_bucket_versioning(server, bucket):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        env.pop(name, None)

    def aws(*args):
        return subprocess.run([AWS, "--endpoint-url", server.endpoint, "s3api", *args, "--bucket", bucket],
                              env=env, capture_output=True, text=True, timeout=120)

    versioning = aws("get-bucket-versioning")
    assert versioning.returncode == 0, versioning.stderr
    assert json.loads(versioning.stdout or "{}") == {}
    cors = aws("get-bucket-cors")
    assert cors.returncode != 0
    assert "NoSuchCORSConfiguration" in cors.stderr


# -- ListBuckets: its narrowing and paging parameters are honoured ------------------------------

def test_list_buckets_max_buckets_out_of_range(server):
    for value in ("0", "10001", "x"):
        assert_error(signed_request(server, "GET", "/", query=f"max-buckets={value}"), "InvalidArgument", 400)


def test_list_buckets_prefix_region_and_pages(s3):
    prefix = "lb-" + uuid.uuid4().hex[:10] + "-"
    names = [prefix + n for n in ("a", "b", "c")]
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        got = s3.list_buckets(Prefix=prefix)
        assert [b["Name"] for b in got["Buckets"]] == names
        assert got["Prefix"] == prefix and "ContinuationToken" not in got
        first = s3.list_buckets(Prefix=prefix, MaxBuckets=2)
        assert [b["Name"] for b in first["Buckets"]] == names[:2]
        rest = s3.list_buckets(Prefix=prefix, MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
        assert [b["Name"] for b in rest["Buckets"]] == names[2:] and "ContinuationToken" not in rest
        paged = [b["Name"] for page in s3.get_paginator("list_buckets").paginate(Prefix=prefix, MaxBuckets=1)
                 for b in page["Buckets"]]
        assert paged == names
        assert [b["Name"] for b in s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")["Buckets"]] == names
        assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"] == []
        assert s3.list_buckets(Prefix=prefix + "z")["Buckets"] == []
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)


# -- DeleteObjects: per-object versions and conditions ---------------------------------------------

def test_delete_objects_other_version_deletes_nothing_of_it(s3, bucket):
    for key in ("a", "b", "c", "d"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    got = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a"}, {"Key": "b", "VersionId": "3HL4kqtJlcpXroDTDmJ"}, {"Key": "c", "VersionId": "null"},
        {"Key": "d", "VersionId": "0123456789abcdef0123456789abcdef"}]})
    assert sorted(d["Key"] for d in got["Deleted"]) == ["a", "c", "d"]  # no such version of d: nothing to delete
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in got["Errors"]] == [
        ("b", "3HL4kqtJlcpXroDTDmJ", "InvalidArgument")]
    assert _keys(s3, bucket) == ["b", "d"]


@pytest.mark.parametrize("condition", [{"ETag": '"0123"'}, {"Size": 1},
                                       {"LastModifiedTime": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}],
                         ids=["etag", "size", "last-modified-time"])
def test_delete_objects_conditional_refused_deletes_nothing(s3, bucket, condition):
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert _error(s3.delete_objects, Bucket=bucket,
                  Delete={"Objects": [{"Key": "a"}, {"Key": "b", **condition}]}) == NOT_IMPLEMENTED
    assert _keys(s3, bucket) == ["a", "b"]
