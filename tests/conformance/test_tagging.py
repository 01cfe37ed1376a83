"""Tagging against a running server with boto3: object tag sets per version, tags on
writes (PutObject, multipart, CopyObject directives), x-amz-tagging-count, bucket tag
sets; every limit refused with S3's error and nothing changed; owners only; an
unsigned tagging header refused; concurrent taggers never mix two tag sets."""
from __future__ import annotations

import base64
import hashlib
import threading
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from .helpers import client_error, key_path, presign, signed_request

ALPHA = [{"Key": "project", "Value": "apollo"}, {"Key": "stage", "Value": "raw data"}]


def _error(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return client_error(exc)


def _tags(pairs: list[tuple[str, str]]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs]}


def _head(s3, bucket, key, **kw) -> dict:
    return s3.head_object(Bucket=bucket, Key=key, **kw)["ResponseMetadata"]["HTTPHeaders"]


@pytest.fixture
def versioned(s3):
    name = f"tags-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=name)


# -- object tag sets ------------------------------------------------------------------

def test_put_get_delete_object_tagging(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"payload")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "x-amz-tagging-count" not in _head(s3, bucket, "k")
    out = s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": ALPHA})
    assert "VersionId" not in out  # a never-versioned bucket's objects have no version id
    got = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert got["TagSet"] == ALPHA and "VersionId" not in got
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ETag"] == put["ETag"] and head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    # replaced whole, not merged
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tags([("only", "")]))
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "only", "Value": ""}]
    resp = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"


def test_tagging_keeps_etag_and_last_modified(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 100_000)
    before = s3.head_object(Bucket=bucket, Key="k")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": ALPHA})
    after = s3.head_object(Bucket=bucket, Key="k")
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


def test_unicode_and_allowed_punctuation(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    tags = [("caf\u00e9 \u65e5\u672c", "a+b-c=d.e_f:g/h@i"), ("k" * 128, "v" * 256)]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tags(tags))
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == _tags(tags)["TagSet"]


@pytest.mark.parametrize("pairs, code", [
    ([(f"k{i}", "v") for i in range(11)], "BadRequest"),
    ([("a", "1"), ("a", "2")], "InvalidTag"),
    ([("k" * 129, "v")], "InvalidTag"),
    ([("k", "v" * 257)], "InvalidTag"),
    ([("bad*key", "v")], "InvalidTag"),
    ([("key", "bad#value")], "InvalidTag"),
    ([("aws:reserved", "v")], "InvalidTag"),
], ids=["eleven", "duplicate", "long-key", "long-value", "key-chars", "value-chars", "aws-prefix"])
def test_put_object_tagging_refused_changes_nothing(s3, bucket, pairs, code):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    assert _error(s3.put_object_tagging, Bucket=bucket, Key="k", Tagging=_tags(pairs)) == (code, 400)
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "keep", "Value": "me"}]


@pytest.mark.parametrize("body", [b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
                                  b"<Tagging><Tag><Key>a</Key><Value>b</Value></Tag></Tagging>",
                                  b"<Tagging><TagSet><Tag><Key>\xff</Key><Value>b</Value></Tag></TagSet></Tagging>",
                                  b"not xml"], ids=["no-value", "no-tagset", "not-utf8", "garbage"])
def test_malformed_tagging_document(server, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    resp = signed_request(server, "PUT", key_path(bucket, "k"), query="tagging", body=body,
                          headers={"Content-MD5": md5})
    assert resp.status_code == 400 and b"<Code>MalformedXML</Code>" in resp.content, resp.content
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "keep", "Value": "me"}]


def test_put_object_tagging_needs_an_integrity_header(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
    resp = signed_request(server, "PUT", key_path(bucket, "k"), query="tagging", body=body)
    assert resp.status_code == 400 and b"<Code>InvalidRequest</Code>" in resp.content, resp.content
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


def test_object_tagging_owner_only(s3, s3_other, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read-write", Tagging="a=1")
    assert _error(s3_other.get_object_tagging, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert _error(s3_other.put_object_tagging, Bucket=bucket, Key="k", Tagging=_tags([("b", "2")])) == \
        ("AccessDenied", 403)
    assert _error(s3_other.delete_object_tagging, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "a", "Value": "1"}]
    assert requests.get(f"{s3.meta.endpoint_url}/{bucket}/k?tagging", timeout=30).status_code == 403


def test_missing_object_and_bucket(s3, bucket):
    assert _error(s3.get_object_tagging, Bucket=bucket, Key="absent") == ("NoSuchKey", 404)
    assert _error(s3.put_object_tagging, Bucket=bucket, Key="absent", Tagging=_tags([("a", "b")])) == \
        ("NoSuchKey", 404)
    assert _error(s3.delete_object_tagging, Bucket=bucket, Key="absent") == ("NoSuchKey", 404)
    assert _error(s3.get_object_tagging, Bucket=f"absent-{uuid.uuid4().hex[:8]}", Key="k") == ("NoSuchBucket", 404)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == []


# -- versions -------------------------------------------------------------------------

def test_tags_belong_to_one_version(s3, versioned):
    v1 = s3.put_object(Bucket=versioned, Key="k", Body=b"one", Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=versioned, Key="k", Body=b"two")["VersionId"]
    got = s3.get_object_tagging(Bucket=versioned, Key="k")
    assert got["TagSet"] == [] and got["VersionId"] == v2
    assert s3.get_object_tagging(Bucket=versioned, Key="k", VersionId=v1)["TagSet"] == [{"Key": "gen", "Value": "1"}]
    out = s3.put_object_tagging(Bucket=versioned, Key="k", VersionId=v1, Tagging=_tags([("old", "yes")]))
    assert out["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=versioned, Key="k")["TagSet"] == []
    assert _head(s3, versioned, "k", VersionId=v1)["x-amz-tagging-count"] == "1"
    out = s3.put_object_tagging(Bucket=versioned, Key="k", Tagging=_tags([("new", "yes")]))
    assert out["VersionId"] == v2
    versions = s3.list_object_versions(Bucket=versioned)["Versions"]
    assert len(versions) == 2  # tagging made no version
    deleted = s3.delete_object_tagging(Bucket=versioned, Key="k", VersionId=v1)
    assert deleted["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=versioned, Key="k", VersionId=v1)["TagSet"] == []
    assert s3.get_object_tagging(Bucket=versioned, Key="k")["TagSet"] == [{"Key": "new", "Value": "yes"}]


def test_delete_markers(s3, versioned):
    v1 = s3.put_object(Bucket=versioned, Key="k", Body=b"one", Tagging="a=1")["VersionId"]
    marker = s3.delete_object(Bucket=versioned, Key="k")["VersionId"]
    assert _error(s3.get_object_tagging, Bucket=versioned, Key="k") == ("NoSuchKey", 404)
    assert _error(s3.put_object_tagging, Bucket=versioned, Key="k", Tagging=_tags([("b", "2")])) == \
        ("NoSuchKey", 404)
    assert _error(s3.get_object_tagging, Bucket=versioned, Key="k", VersionId=marker) == ("MethodNotAllowed", 405)
    assert _error(s3.put_object_tagging, Bucket=versioned, Key="k", VersionId=marker,
                  Tagging=_tags([("b", "2")])) == ("MethodNotAllowed", 405)
    assert s3.get_object_tagging(Bucket=versioned, Key="k", VersionId=v1)["TagSet"] == [{"Key": "a", "Value": "1"}]


def test_unknown_version(s3, versioned):
    s3.put_object(Bucket=versioned, Key="k", Body=b"one")
    code = _error(s3.get_object_tagging, Bucket=versioned, Key="k", VersionId="nosuchversion0000000000000000000")
    assert code in (("NoSuchVersion", 404), ("InvalidArgument", 400))


def test_null_version_in_a_suspended_bucket(s3, versioned):
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=versioned, Key="k", Body=b"x")
    out = s3.put_object_tagging(Bucket=versioned, Key="k", Tagging=_tags([("a", "b")]))
    assert out["VersionId"] == "null"
    assert s3.get_object_tagging(Bucket=versioned, Key="k")["VersionId"] == "null"


# -- tags on writes -------------------------------------------------------------------

def test_put_object_with_tagging_header(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&b=two%20words&empty=")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two words"}, {"Key": "empty", "Value": ""}]
    s3.put_object(Bucket=bucket, Key="k", Body=b"y")  # an overwrite carries its own (no) tags
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


@pytest.mark.parametrize("header, code", [
    ("&".join(f"k{i}=v" for i in range(11)), "BadRequest"),
    ("a=1&a=2", "InvalidTag"),
    ("aws:x=1", "InvalidTag"),
    ("bad*key=v", "InvalidTag"),
])
def test_put_object_bad_tagging_header_stores_nothing(s3, bucket, header, code):
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", Tagging=header) == (code, 400)
    assert _error(s3.create_multipart_upload, Bucket=bucket, Key="k", Tagging=header) == (code, 400)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_upload_tags_go_to_the_object(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="m", Tagging="kind=multipart")
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"y" * 1000)
    s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="m")["TagSet"] == [{"Key": "kind", "Value": "multipart"}]
    assert _head(s3, bucket, "m")["x-amz-tagging-count"] == "1"


def test_copy_object_tagging_directives(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Tagging="from=source")
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=src)
    assert s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"] == [{"Key": "from", "Value": "source"}]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=src, TaggingDirective="REPLACE", Tagging="new=tag")
    assert s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "new", "Value": "tag"}]
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=src, TaggingDirective="REPLACE")
    assert s3.get_object_tagging(Bucket=bucket, Key="cleared")["TagSet"] == []
    assert _error(s3.copy_object, Bucket=bucket, Key="bad", CopySource=src, TaggingDirective="MERGE") == \
        ("InvalidArgument", 400)
    assert "bad" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]


def test_copy_of_a_version_takes_that_versions_tags(s3, versioned):
    v1 = s3.put_object(Bucket=versioned, Key="src", Body=b"1", Tagging="gen=1")["VersionId"]
    s3.put_object(Bucket=versioned, Key="src", Body=b"2", Tagging="gen=2")
    s3.copy_object(Bucket=versioned, Key="dst", CopySource={"Bucket": versioned, "Key": "src", "VersionId": v1})
    assert s3.get_object_tagging(Bucket=versioned, Key="dst")["TagSet"] == [{"Key": "gen", "Value": "1"}]


# -- the attacker ---------------------------------------------------------------------

def test_unsigned_tagging_header_refused(server, s3, bucket):
    url = presign("PUT", f"{server.endpoint}{key_path(bucket, 'k')}")
    resp = requests.put(url, data=b"x", headers={"x-amz-tagging": "owner=attacker"}, timeout=30)
    assert resp.status_code == 403, resp.content
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_presigned_url_extended_with_tagging_refused(server, s3, bucket):
    url = presign("PUT", f"{server.endpoint}{key_path(bucket, 'k')}")
    resp = requests.put(url + "&x-amz-tagging=owner%3Dattacker", data=b"x", timeout=30)
    assert resp.status_code == 403, resp.content
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
    assert requests.put(url, data=b"x", timeout=30).status_code == 200
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []


# -- concurrency ----------------------------------------------------------------------

def test_concurrent_taggers_never_mix_tag_sets(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    sets = [[(f"w{w}-k{i}", f"v{w}") for i in range(5)] for w in range(4)]
    allowed = [[]] + [_tags(pairs)["TagSet"] for pairs in sets]
    bad, stop = [], threading.Event()

    def writer(pairs):
        for _ in range(15):
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tags(pairs))

    def reader():
        while not stop.is_set():
            got = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
            if got not in allowed:
                bad.append(got)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(pairs,)) for pairs in sets]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert bad == []
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] in allowed[1:]


# -- bucket tag sets ------------------------------------------------------------------

def test_bucket_tagging(s3, s3_other, bucket):
    assert _error(s3.get_bucket_tagging, Bucket=bucket) == ("NoSuchTagSet", 404)
    resp = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": ALPHA})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == ALPHA
    assert _error(s3_other.get_bucket_tagging, Bucket=bucket) == ("AccessDenied", 403)
    assert _error(s3_other.put_bucket_tagging, Bucket=bucket, Tagging=_tags([("x", "y")])) == ("AccessDenied", 403)
    assert _error(s3_other.delete_bucket_tagging, Bucket=bucket) == ("AccessDenied", 403)
    fifty = [(f"k{i}", "v") for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tags(fifty))
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    for pairs in ([(f"k{i}", "v") for i in range(51)], [("aws:x", "v")], [("a", "1"), ("a", "2")]):
        code, status = _error(s3.put_bucket_tagging, Bucket=bucket, Tagging=_tags(pairs))
        assert status == 400 and code in ("InvalidTag", "BadRequest"), code
        assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(s3.get_bucket_tagging, Bucket=bucket) == ("NoSuchTagSet", 404)


def test_bucket_tagging_missing_bucket(s3):
    name = f"absent-{uuid.uuid4().hex[:8]}"
    assert _error(s3.get_bucket_tagging, Bucket=name) == ("NoSuchBucket", 404)
    assert _error(s3.put_bucket_tagging, Bucket=name, Tagging=_tags([("a", "b")])) == ("NoSuchBucket", 404)
