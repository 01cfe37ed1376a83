"""Object versioning, per the AWS S3 User Guide ("Retaining multiple versions of objects
with S3 Versioning": working with delete markers, versioning-suspended buckets, objects
that existed before versioning) and the API Reference (PutBucketVersioning,
GetBucketVersioning, and the versionId of GetObject, HeadObject, DeleteObject,
DeleteObjects, CopyObject, UploadPartCopy, Get/PutObjectAcl, CompleteMultipartUpload).

ListObjectVersions itself is in test_list_object_versions.py.
"""
from __future__ import annotations

import hashlib
import threading
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from ..conftest import make_client
from .support_issue4 import (ALL_USERS, NS, anonymous, canonical_id, content_md5, describe, grant_set,
                             group_grant, raw)
from .support_multipart import PART, complete, data, upload_parts
from .support_versioning import (INLINE_MAX, LARGE, SMALL, all_versions, error_of, headers_of, history,
                                 make_bucket, md5_etag, payload, set_versioning, versioned_bucket)

__all__ = ["make_bucket", "versioned_bucket"]  # fixtures


def _put(s3, bucket, key, body, **kwargs) -> str:
    resp = s3.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
    assert resp["ETag"] == md5_etag(body)
    return resp.get("VersionId")


def _put_version(s3, bucket, key, body, **kwargs) -> str:
    vid = _put(s3, bucket, key, body, **kwargs)
    assert vid and vid != "null", vid
    return vid


def _get(s3, bucket, key, **kwargs) -> tuple[bytes, dict]:
    resp = s3.get_object(Bucket=bucket, Key=key, **kwargs)
    return resp["Body"].read(), resp


def _marker_header(exc_info) -> str | None:
    return headers_of(exc_info).get("x-amz-delete-marker")


def _current_keys(s3, bucket) -> dict[str, str]:
    """{key: ETag} of ListObjectsV2 (every page)."""
    return {o["Key"]: o["ETag"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}


def _versioning_status(s3, bucket) -> str | None:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status")


# -- PutBucketVersioning / GetBucketVersioning ---------------------------------------------------

def test_get_bucket_versioning_never_versioned_has_no_status(s3, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in resp and "MFADelete" not in resp


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_put_bucket_versioning_status_round_trips(server, s3, bucket, status):
    resp = s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = s3.get_bucket_versioning(Bucket=bucket)
    assert got["Status"] == status
    assert got.get("MFADelete") in (None, "Disabled")
    root = ET.fromstring(raw(server, "GET", f"/{bucket}", query="versioning").content)
    assert root.tag == f"{NS}VersioningConfiguration" and root.findtext(f"{NS}Status") == status


def test_versioning_enabled_suspended_enabled(s3, bucket):
    for status in ("Enabled", "Suspended", "Enabled", "Suspended"):
        set_versioning(s3, bucket, status)
        assert _versioning_status(s3, bucket) == status


@pytest.mark.parametrize("status", ["Bogus", "Disabled", "enabled"])
def test_put_bucket_versioning_bad_status_malformed_xml(s3, bucket, status):
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    assert error_of(exc) == ("MalformedXML", 400)
    assert _versioning_status(s3, bucket) is None
    set_versioning(s3, bucket, "Enabled")
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    assert error_of(exc) == ("MalformedXML", 400)
    assert _versioning_status(s3, bucket) == "Enabled"


@pytest.mark.parametrize("body", [b"not xml", b"<VersioningConfiguration><Status>Enabled</Status>",
                                  b"<Other><Status>Enabled</Status></Other>"], ids=["text", "unclosed", "wrong-root"])
def test_put_bucket_versioning_malformed_body(server, s3, bucket, body):
    resp = raw(server, "PUT", f"/{bucket}", query="versioning", body=body, headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 400, describe(resp)
    assert b"<Code>MalformedXML</Code>" in resp.content, describe(resp)
    assert _versioning_status(s3, bucket) is None


def test_put_bucket_versioning_mfa_delete_without_mfa_refused(s3, bucket):
    # AWS: 400 (InvalidRequest / AccessDenied-style "MFA Authentication must be used"), nothing changes.
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    assert 400 <= error_of(exc)[1] < 500, error_of(exc)
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in resp and resp.get("MFADelete") in (None, "Disabled")


def test_bucket_versioning_non_owner_access_denied(s3, s3_other, bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.get_bucket_versioning(Bucket=bucket)
    assert error_of(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert error_of(exc) == ("AccessDenied", 403)
    assert _versioning_status(s3, bucket) is None


def test_put_bucket_versioning_no_such_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket="no-such-bucket-versioning", VersioningConfiguration={"Status": "Enabled"})
    assert error_of(exc) == ("NoSuchBucket", 404)


# -- PUT / GET / HEAD on an Enabled bucket ---------------------------------------------------------

def test_each_put_gets_a_fresh_version_and_each_version_is_readable(s3, versioned_bucket):
    b = versioned_bucket
    bodies = [payload(f"v{i}", LARGE if i % 2 else SMALL) for i in range(4)]
    vids = [_put_version(s3, b, "k", body) for body in bodies]
    assert len(set(vids)) == 4
    body, resp = _get(s3, b, "k")
    assert body == bodies[-1] and resp["VersionId"] == vids[-1] and resp["ETag"] == md5_etag(bodies[-1])
    head = s3.head_object(Bucket=b, Key="k")
    assert head["VersionId"] == vids[-1] and head["ContentLength"] == len(bodies[-1])
    for vid, expected in zip(vids, bodies):
        body, resp = _get(s3, b, "k", VersionId=vid)
        assert body == expected, vid
        assert resp["VersionId"] == vid and resp["ETag"] == md5_etag(expected)
        head = s3.head_object(Bucket=b, Key="k", VersionId=vid)
        assert head["VersionId"] == vid and head["ETag"] == md5_etag(expected)
        assert head["ContentLength"] == len(expected)
        part, resp = _get(s3, b, "k", VersionId=vid, Range="bytes=2-11")
        assert part == expected[2:12] and resp["VersionId"] == vid


def test_metadata_and_conditions_are_those_of_the_named_version(s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one", ContentType="text/plain", Metadata={"n": "1"})
    v2 = _put_version(s3, b, "k", b"two", ContentType="application/json", Metadata={"n": "2"})
    for vid, ctype, n in ((v1, "text/plain", "1"), (v2, "application/json", "2")):
        head = s3.head_object(Bucket=b, Key="k", VersionId=vid)
        assert (head["ContentType"], head["Metadata"]) == (ctype, {"n": n}), vid
    assert s3.head_object(Bucket=b, Key="k")["Metadata"] == {"n": "2"}
    # Conditional GET/HEAD with a version id compare with that version's ETag.
    assert _get(s3, b, "k", VersionId=v1, IfMatch=md5_etag(b"one"))[0] == b"one"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId=v1, IfMatch=md5_etag(b"two"))
    assert error_of(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=b, Key="k", VersionId=v1, IfNoneMatch=md5_etag(b"one"))
    assert error_of(exc)[1] == 304


def test_every_version_body_hashes_to_its_etag(s3, versioned_bucket):
    b = versioned_bucket
    bodies = {}
    for i, size in enumerate((0, 1, SMALL, INLINE_MAX, INLINE_MAX + 1, LARGE)):
        body = payload(f"s{i}", size)
        bodies[_put_version(s3, b, "sizes", body)] = body
    versions, markers = all_versions(s3, b)
    assert markers == [] and sorted(v["VersionId"] for v in versions) == sorted(bodies)
    for v in versions:
        body, resp = _get(s3, b, "sizes", VersionId=v["VersionId"])
        assert body == bodies[v["VersionId"]]
        assert md5_etag(body) == v["ETag"] == resp["ETag"] and v["Size"] == len(body)


# -- delete markers ----------------------------------------------------------------------------------

def test_delete_without_version_id_makes_a_delete_marker(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    v2 = _put_version(s3, b, "k", b"two" * 9000)
    resp = s3.delete_object(Bucket=b, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp["DeleteMarker"] is True
    marker = resp["VersionId"]
    assert marker not in ("", "null", v1, v2)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404) and _marker_header(exc) == "true"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=b, Key="k")
    assert error_of(exc)[1] == 404 and _marker_header(exc) == "true"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId=marker)
    assert error_of(exc) == ("MethodNotAllowed", 405) and _marker_header(exc) == "true"
    assert "last-modified" in headers_of(exc)       # API Reference, GetObject: 405 and Last-Modified
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=b, Key="k", VersionId=marker)
    assert error_of(exc)[1] == 405 and _marker_header(exc) == "true"
    assert "last-modified" in headers_of(exc)
    assert _get(s3, b, "k", VersionId=v1)[0] == b"one"
    assert _get(s3, b, "k", VersionId=v2)[0] == b"two" * 9000
    assert _current_keys(s3, b) == {}
    assert s3.list_objects(Bucket=b).get("Contents", []) == []
    assert history(server, b, "k") == [("DeleteMarker", marker, True), ("Version", v2, False), ("Version", v1, False)]


def test_deleting_the_delete_marker_makes_the_previous_version_current(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    resp = s3.delete_object(Bucket=b, Key="k", VersionId=marker)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp["DeleteMarker"] is True and resp["VersionId"] == marker
    body, got = _get(s3, b, "k")
    assert body == b"one" and got["VersionId"] == v1
    assert _current_keys(s3, b) == {"k": md5_etag(b"one")}
    assert history(server, b, "k") == [("Version", v1, True)]


def test_stacked_delete_markers(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    m1 = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    m2 = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    assert m1 != m2
    assert history(server, b, "k") == [("DeleteMarker", m2, True), ("DeleteMarker", m1, False), ("Version", v1, False)]
    s3.delete_object(Bucket=b, Key="k", VersionId=m2)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404) and _marker_header(exc) == "true"
    s3.delete_object(Bucket=b, Key="k", VersionId=m1)
    assert _get(s3, b, "k")[0] == b"one"


def test_delete_of_a_missing_key_still_makes_a_delete_marker(server, s3, versioned_bucket):
    resp = s3.delete_object(Bucket=versioned_bucket, Key="never-was")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204 and resp["DeleteMarker"] is True
    assert history(server, versioned_bucket, "never-was") == [("DeleteMarker", resp["VersionId"], True)]


# -- deleting versions --------------------------------------------------------------------------------

def test_delete_with_version_id_removes_that_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1, v2, v3 = (_put_version(s3, b, "k", body) for body in (b"one", b"two" * 9000, b"three"))
    resp = s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp["VersionId"] == v1 and not resp.get("DeleteMarker")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId=v1)
    assert error_of(exc) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=b, Key="k", VersionId=v1)
    assert error_of(exc)[1] == 404
    assert _get(s3, b, "k")[0] == b"three"
    # Deleting the current version makes the next newer one current.
    s3.delete_object(Bucket=b, Key="k", VersionId=v3)
    body, resp = _get(s3, b, "k")
    assert body == b"two" * 9000 and resp["VersionId"] == v2
    assert s3.head_object(Bucket=b, Key="k")["VersionId"] == v2
    assert _current_keys(s3, b) == {"k": md5_etag(b"two" * 9000)}
    assert history(server, b, "k") == [("Version", v2, True)]
    # The last version gone: no object, and no delete marker either.
    s3.delete_object(Bucket=b, Key="k", VersionId=v2)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404) and _marker_header(exc) in (None, "false")
    assert all_versions(s3, b) == ([], [])


def test_unknown_version_ids(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    other = _put_version(s3, b, "other", b"other")   # a well-formed id, of another key
    for vid in (other, "null"):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=b, Key="k", VersionId=vid)
        assert error_of(exc) == ("NoSuchVersion", 404), vid
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=b, Key="k", VersionId=vid)
        assert error_of(exc)[1] == 404, vid
    # DeleteObject of a version that is not there: 204, a no-op.
    resp = s3.delete_object(Bucket=b, Key="k", VersionId=other)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    garbage = "not-a-version-id"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId=garbage)
    assert error_of(exc) in (("NoSuchVersion", 404), ("InvalidArgument", 400))
    try:
        status = s3.delete_object(Bucket=b, Key="k", VersionId=garbage)["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as err:
        status = err.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status in (204, 400)
    assert history(server, b, "k") == [("Version", v1, True)]
    assert history(server, b, "other") == [("Version", other, True)]
    assert _get(s3, b, "other")[0] == b"other"


# -- Suspended -------------------------------------------------------------------------------------------

def test_suspended_put_writes_and_replaces_the_null_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"enabled-1")
    set_versioning(s3, b, "Suspended")
    _put(s3, b, "k", b"null-1")        # (the x-amz-version-id of this response is not asserted)
    body, resp = _get(s3, b, "k", VersionId="null")
    assert body == b"null-1" and resp.get("VersionId") in (None, "null")
    assert _get(s3, b, "k")[0] == b"null-1"
    _put(s3, b, "k", b"null-2" * 5000)
    assert _get(s3, b, "k", VersionId="null")[0] == b"null-2" * 5000
    assert _get(s3, b, "k")[0] == b"null-2" * 5000
    assert history(server, b, "k") == [("Version", "null", True), ("Version", v1, False)]
    assert _get(s3, b, "k", VersionId=v1)[0] == b"enabled-1"


def test_suspended_delete_replaces_the_null_version_with_a_null_marker(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"enabled-1")
    set_versioning(s3, b, "Suspended")
    _put(s3, b, "k", b"null-1")
    resp = s3.delete_object(Bucket=b, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert resp["DeleteMarker"] is True and resp["VersionId"] == "null"
    assert history(server, b, "k") == [("DeleteMarker", "null", True), ("Version", v1, False)]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404) and _marker_header(exc) == "true"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId="null")
    assert error_of(exc) == ("MethodNotAllowed", 405)
    assert _get(s3, b, "k", VersionId=v1)[0] == b"enabled-1"


def test_suspended_delete_without_a_null_version_keeps_the_versions(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    v2 = _put_version(s3, b, "k", b"two")
    set_versioning(s3, b, "Suspended")
    resp = s3.delete_object(Bucket=b, Key="k")
    assert resp["DeleteMarker"] is True and resp["VersionId"] == "null"
    assert history(server, b, "k") == [("DeleteMarker", "null", True), ("Version", v2, False), ("Version", v1, False)]
    # A second delete replaces the null marker by another: still one.
    s3.delete_object(Bucket=b, Key="k")
    assert history(server, b, "k") == [("DeleteMarker", "null", True), ("Version", v2, False), ("Version", v1, False)]


def test_reenabled_bucket_keeps_the_null_version_as_noncurrent(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    set_versioning(s3, b, "Suspended")
    _put(s3, b, "k", b"null")
    set_versioning(s3, b, "Enabled")
    v3 = _put_version(s3, b, "k", b"three")
    assert history(server, b, "k") == [("Version", v3, True), ("Version", "null", False), ("Version", v1, False)]
    assert _get(s3, b, "k", VersionId="null")[0] == b"null"


def test_objects_from_before_versioning_keep_the_null_version(server, s3, make_bucket):
    b = make_bucket(None)
    before = payload("before", LARGE)
    _put(s3, b, "k", before)
    _put(s3, b, "small", b"small")
    set_versioning(s3, b, "Enabled")
    assert history(server, b, "k") == [("Version", "null", True)]
    assert _get(s3, b, "k", VersionId="null")[0] == before
    assert s3.head_object(Bucket=b, Key="k", VersionId="null")["ETag"] == md5_etag(before)
    v2 = _put_version(s3, b, "k", b"after")
    assert history(server, b, "k") == [("Version", v2, True), ("Version", "null", False)]
    assert _get(s3, b, "k", VersionId="null")[0] == before
    assert _get(s3, b, "k")[0] == b"after"
    assert _get(s3, b, "small")[0] == b"small"
    resp = s3.delete_object(Bucket=b, Key="k", VersionId="null")
    assert resp["VersionId"] == "null" and not resp.get("DeleteMarker")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=b, Key="k", VersionId="null")
    assert error_of(exc) == ("NoSuchVersion", 404)
    assert history(server, b, "k") == [("Version", v2, True)]


# -- CopyObject / UploadPartCopy ----------------------------------------------------------------------------

def test_copy_object_from_a_version(server, s3, versioned_bucket):
    b = versioned_bucket
    old, new = payload("old", LARGE), payload("new", SMALL)
    v1, v2 = _put_version(s3, b, "src", old), _put_version(s3, b, "src", new)
    with pytest.raises(ClientError) as exc:      # the copy-source conditions see the named version
        s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src", "VersionId": v1},
                       CopySourceIfMatch=md5_etag(new))
    assert error_of(exc) == ("PreconditionFailed", 412)
    resp = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src", "VersionId": v1},
                          CopySourceIfMatch=md5_etag(old))
    assert resp["CopySourceVersionId"] == v1
    d1 = resp["VersionId"]
    assert d1 not in (None, "", "null", v1, v2)
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(old)
    body, got = _get(s3, b, "dst")
    assert body == old and got["VersionId"] == d1
    resp = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert resp["CopySourceVersionId"] == v2
    d2 = resp["VersionId"]
    assert _get(s3, b, "dst")[0] == new and _get(s3, b, "dst", VersionId=d1)[0] == old
    assert history(server, b, "dst") == [("Version", d2, True), ("Version", d1, False)]
    assert history(server, b, "src") == [("Version", v2, True), ("Version", v1, False)]


def test_copy_object_in_place_restores_an_old_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    v2 = _put_version(s3, b, "k", b"two")
    resp = s3.copy_object(Bucket=b, Key="k", CopySource={"Bucket": b, "Key": "k", "VersionId": v1})
    v3 = resp["VersionId"]
    assert resp["CopySourceVersionId"] == v1 and v3 not in (v1, v2, "null")
    assert _get(s3, b, "k")[0] == b"one"
    assert history(server, b, "k") == [("Version", v3, True), ("Version", v2, False), ("Version", v1, False)]


def test_copy_object_from_a_delete_marker(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "src", b"one")
    marker = s3.delete_object(Bucket=b, Key="src")["VersionId"]
    with pytest.raises(ClientError) as exc:      # the current version is a marker: as if deleted
        s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert error_of(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:      # a marker named by its version id: 400
        s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src", "VersionId": marker})
    assert error_of(exc)[1] == 400
    assert history(server, b, "dst") == []
    s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src", "VersionId": v1})
    assert _get(s3, b, "dst")[0] == b"one"


def test_upload_part_copy_from_a_version(s3, versioned_bucket):
    b = versioned_bucket
    old = payload("old", LARGE)
    v1 = _put_version(s3, b, "src", old)
    _put_version(s3, b, "src", payload("new", LARGE))
    for key, copy_range, expected in (("whole", None, old), ("ranged", "bytes=100-1099", old[100:1100])):
        upload_id = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        kwargs = {"CopySourceRange": copy_range} if copy_range else {}
        resp = s3.upload_part_copy(Bucket=b, Key=key, UploadId=upload_id, PartNumber=1,
                                   CopySource={"Bucket": b, "Key": "src", "VersionId": v1}, **kwargs)
        assert resp["CopySourceVersionId"] == v1
        assert resp["CopyPartResult"]["ETag"] == md5_etag(expected)
        done = complete(s3, b, key, upload_id, [{"PartNumber": 1, "ETag": resp["CopyPartResult"]["ETag"]}])
        assert done["VersionId"] not in (None, "", "null")
        assert _get(s3, b, key)[0] == expected, key


# -- object ACLs by version ---------------------------------------------------------------------------------

def test_object_acl_by_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    v2 = _put_version(s3, b, "k", b"two")
    public_read = group_grant(ALL_USERS, "READ")
    s3.put_object_acl(Bucket=b, Key="k", VersionId=v1, ACL="public-read")
    assert public_read in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v1))
    assert public_read not in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v2))
    assert public_read not in grant_set(s3.get_object_acl(Bucket=b, Key="k"))
    resp = anonymous(server, "GET", b, "k", query=f"versionId={v1}")
    assert resp.status_code == 200 and resp.content == b"one", describe(resp)
    assert anonymous(server, "GET", b, "k").status_code == 403
    assert anonymous(server, "GET", b, "k", query=f"versionId={v2}").status_code == 403
    # Without a version id: the current version's ACL.
    s3.put_object_acl(Bucket=b, Key="k", ACL="public-read")
    assert public_read in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v2))
    s3.put_object_acl(Bucket=b, Key="k", VersionId=v1, ACL="private")
    assert public_read not in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v1))
    assert public_read in grant_set(s3.get_object_acl(Bucket=b, Key="k"))
    assert {g[1] for g in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v1))} == {canonical_id(s3)}
    other = _put_version(s3, b, "other", b"other")
    with pytest.raises(ClientError) as exc:
        s3.get_object_acl(Bucket=b, Key="k", VersionId=other)
    assert error_of(exc) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket=b, Key="k")
    with pytest.raises(ClientError) as exc:      # the current version is a marker: as if deleted
        s3.get_object_acl(Bucket=b, Key="k")
    assert error_of(exc) == ("NoSuchKey", 404)
    assert public_read in grant_set(s3.get_object_acl(Bucket=b, Key="k", VersionId=v2))


# -- DeleteObjects -----------------------------------------------------------------------------------------------

def test_delete_objects_with_versions_and_markers(server, s3, versioned_bucket):
    b = versioned_bucket
    a1, a2 = _put_version(s3, b, "a", b"a1"), _put_version(s3, b, "a", b"a2")
    b1 = _put_version(s3, b, "b", b"b1")
    c1 = _put_version(s3, b, "c", b"c1")
    resp = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a", "VersionId": a1}, {"Key": "b"},
                                                           {"Key": "c", "VersionId": c1}]})
    assert "Errors" not in resp, resp.get("Errors")
    deleted = {d["Key"]: d for d in resp["Deleted"]}
    assert sorted(deleted) == ["a", "b", "c"]
    assert deleted["a"]["VersionId"] == a1 and not deleted["a"].get("DeleteMarker")
    assert deleted["c"]["VersionId"] == c1 and not deleted["c"].get("DeleteMarker")
    assert deleted["b"]["DeleteMarker"] is True
    marker = deleted["b"]["DeleteMarkerVersionId"]
    assert marker not in (None, "", "null", b1)
    assert history(server, b, "a") == [("Version", a2, True)]
    assert history(server, b, "b") == [("DeleteMarker", marker, True), ("Version", b1, False)]
    assert history(server, b, "c") == []
    assert _current_keys(s3, b) == {"a": md5_etag(b"a2")}
    # The marker deleted by its version id: b1 is current again.
    resp = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "b", "VersionId": marker}]})
    assert "Errors" not in resp, resp.get("Errors")
    [entry] = resp["Deleted"]
    assert entry["Key"] == "b" and entry["VersionId"] == marker and entry["DeleteMarker"] is True
    assert _get(s3, b, "b")[0] == b"b1"


# -- multipart --------------------------------------------------------------------------------------------------

def test_multipart_upload_is_one_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v_old = _put_version(s3, b, "k", b"old")
    parts = [data(PART, "v1"), data(1234, "v2")]
    upload_id, done = upload_parts(s3, b, "k", parts)
    resp = complete(s3, b, "k", upload_id, done)
    vid = resp["VersionId"]
    assert vid not in (None, "", "null", v_old)
    assert history(server, b, "k") == [("Version", vid, True), ("Version", v_old, False)]
    body, got = _get(s3, b, "k")
    assert body == parts[0] + parts[1] and got["VersionId"] == vid
    assert _get(s3, b, "k", VersionId=v_old)[0] == b"old"
    body, got = _get(s3, b, "k", VersionId=vid, PartNumber=1)
    assert body == parts[0] and got["PartsCount"] == 2 and got["VersionId"] == vid
    head = s3.head_object(Bucket=b, Key="k", VersionId=vid, PartNumber=2)
    assert head["ContentLength"] == len(parts[1]) and head["VersionId"] == vid


def test_multipart_upload_in_a_suspended_bucket_is_the_null_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"enabled")
    set_versioning(s3, b, "Suspended")
    _put(s3, b, "k", b"null")
    parts = [data(PART, "s1"), data(100, "s2")]
    upload_id, done = upload_parts(s3, b, "k", parts)
    complete(s3, b, "k", upload_id, done)     # (its x-amz-version-id is not asserted)
    assert _get(s3, b, "k", VersionId="null")[0] == parts[0] + parts[1]
    assert history(server, b, "k") == [("Version", "null", True), ("Version", v1, False)]


# -- conditional writes -------------------------------------------------------------------------------------------

def test_if_none_match_star_over_a_delete_marker(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    v2 = _put_version(s3, b, "k", b"two", IfNoneMatch="*")    # no current object: allowed
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=b, Key="k", Body=b"three", IfNoneMatch="*")
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert history(server, b, "k") == [("Version", v2, True), ("DeleteMarker", marker, False), ("Version", v1, False)]


def test_if_match_current_etag_adds_a_version(server, s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    v2 = _put_version(s3, b, "k", b"two", IfMatch=md5_etag(b"one"))
    assert v2 != v1
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=b, Key="k", Body=b"three", IfMatch=md5_etag(b"one"))
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert history(server, b, "k") == [("Version", v2, True), ("Version", v1, False)]
    assert _get(s3, b, "k", VersionId=v1)[0] == b"one" and _get(s3, b, "k")[0] == b"two"


# -- DeleteBucket ----------------------------------------------------------------------------------------------------

def test_delete_bucket_with_only_noncurrent_versions_and_markers(s3, versioned_bucket):
    b = versioned_bucket
    v1 = _put_version(s3, b, "k", b"one")
    marker = s3.delete_object(Bucket=b, Key="k")["VersionId"]
    with pytest.raises(ClientError) as exc:      # a noncurrent version and a marker
        s3.delete_bucket(Bucket=b)
    assert error_of(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=b, Key="k", VersionId=v1)
    with pytest.raises(ClientError) as exc:      # a delete marker alone
        s3.delete_bucket(Bucket=b)
    assert error_of(exc) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=b, Key="k", VersionId=marker)
    s3.delete_bucket(Bucket=b)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=b)
    assert error_of(exc)[1] == 404


# -- concurrency --------------------------------------------------------------------------------------------------------

def test_concurrent_puts_of_one_key_each_make_a_version(server, versioned_bucket):
    b = versioned_bucket
    client = make_client(server.endpoint, max_pool_connections=16)
    first = payload("first", SMALL)
    written = {client.put_object(Bucket=b, Key="k", Body=first)["VersionId"]: first}
    lock, done, failures = threading.Lock(), threading.Event(), []
    reads = []

    def writer(n):
        try:
            for i in range(10):
                body = payload(f"w{n}-{i}", LARGE if (n + i) % 3 == 0 else SMALL)
                resp = client.put_object(Bucket=b, Key="k", Body=body)
                assert resp["ETag"] == md5_etag(body)
                with lock:
                    written[resp["VersionId"]] = body
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    def reader():
        try:
            while not done.is_set():
                resp = client.get_object(Bucket=b, Key="k")
                body = resp["Body"].read()
                assert md5_etag(body) == resp["ETag"], (resp["VersionId"], len(body))
                reads.append((resp["VersionId"], hashlib.md5(body).hexdigest()))
        except Exception as exc:  # noqa: BLE001
            failures.append(repr(exc))

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(120)
    done.set()
    for t in readers:
        t.join(60)
    assert failures == []
    assert reads, "no read completed while the writers ran"
    assert len(written) == 81      # distinct version ids
    versions, markers = all_versions(client, b)
    assert markers == [] and len(versions) == 81
    assert {v["VersionId"] for v in versions} == set(written)
    assert sum(v["IsLatest"] for v in versions) == 1
    for v in versions:
        body = client.get_object(Bucket=b, Key="k", VersionId=v["VersionId"])["Body"].read()
        assert body == written[v["VersionId"]] and md5_etag(body) == v["ETag"]
    for vid, digest in reads:       # every read body was the one written under its version id
        assert vid in written and hashlib.md5(written[vid]).hexdigest() == digest
    client._endpoint.http_session.close()
