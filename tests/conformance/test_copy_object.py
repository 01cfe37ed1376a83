"""CopyObject (PUT with x-amz-copy-source), per the AWS S3 API Reference.

Sizes: SMALL objects are stored inline in the metadata database, LARGE ones as
files, so each copy path is exercised for both.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import (LARGE, NS, SMALL, assert_error, aws_cli, client_error, md5_etag, object_path,
                             raw, utcnow)

SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["inline", "file"])


def _cleanup(client, name):
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=o["Key"])
        client.delete_bucket(Bucket=name)
    except ClientError:
        pass


@pytest.fixture
def bucket2(s3):
    name = "copy2-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    yield name
    _cleanup(s3, name)


@pytest.fixture
def other_bucket(s3_other):
    name = "copyo-" + uuid.uuid4().hex[:16]
    s3_other.create_bucket(Bucket=name)
    yield name
    _cleanup(s3_other, name)


def _put(s3, bucket, key, size, **kwargs):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key=key, Body=data, **kwargs)
    return data


def _exists(s3, bucket, key) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return False


# -- basic copies -------------------------------------------------------------------------------

@SIZES
def test_copy_object_same_bucket(s3, bucket, size):
    data = _put(s3, bucket, "src", size)
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(data)
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == data


@SIZES
def test_copy_object_across_buckets(s3, bucket, bucket2, size):
    data = _put(s3, bucket, "a/src.bin", size)
    resp = s3.copy_object(Bucket=bucket2, Key="b/dst.bin", CopySource=f"{bucket}/a/src.bin")
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket2, Key="b/dst.bin")["Body"].read() == data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket2)["Contents"]] == ["b/dst.bin"]


def test_copy_object_zero_bytes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    resp = s3.copy_object(Bucket=bucket, Key="empty2", CopySource={"Bucket": bucket, "Key": "empty"})
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(b"")
    got = s3.get_object(Bucket=bucket, Key="empty2")
    assert got["ContentLength"] == 0 and got["Body"].read() == b""


@SIZES
def test_copy_object_result_xml_has_etag_and_last_modified(server, s3, bucket, size):
    data = _put(s3, bucket, "src", size)
    before = utcnow().replace(microsecond=0) - dt.timedelta(seconds=2)
    resp = raw(server, "PUT", object_path(bucket, "dst"), headers={"x-amz-copy-source": f"{bucket}/src"})
    assert resp.status_code == 200, resp.content
    root = ET.fromstring(resp.content)
    assert root.tag == f"{NS}CopyObjectResult", resp.content
    etag = root.find(f"{NS}ETag").text
    last_modified = root.find(f"{NS}LastModified").text
    assert etag == md5_etag(data)
    # ISO 8601 UTC timestamp, e.g. 2009-10-12T17:50:30.000Z
    parsed = dt.datetime.strptime(last_modified.replace("Z", ""), "%Y-%m-%dT%H:%M:%S.%f")
    assert before <= parsed <= utcnow() + dt.timedelta(seconds=2)
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ETag"] == etag
    assert head["LastModified"].replace(tzinfo=None) == parsed.replace(microsecond=0)


def test_copy_object_etag_is_source_md5_etag(s3, bucket):
    data = b"hello copy"
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    src_etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert resp["CopyObjectResult"]["ETag"] == src_etag == md5_etag(data)


@SIZES
def test_copy_object_overwriting_source_afterwards_keeps_copy(s3, bucket, size):
    data = _put(s3, bucket, "src", size)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    new = _put(s3, bucket, "src", size)
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == new
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


@SIZES
def test_copy_object_deleting_source_afterwards_keeps_copy(s3, bucket, size):
    data = _put(s3, bucket, "src", size)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


@SIZES
def test_copy_object_overwrites_existing_destination(s3, bucket, size):
    data = _put(s3, bucket, "src", size)
    _put(s3, bucket, "dst", LARGE if size == SMALL else SMALL)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data and got["ETag"] == md5_etag(data)


# -- copy-source encoding -----------------------------------------------------------------------

ODD_KEYS = ["dir/with space.txt", "unicodé/日本語 ü.bin", "plus+sign+key", "percent%20literal", "q?x=y&z#frag"]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_copy_object_url_encoded_source_key_boto3(s3, bucket, key):
    data = b"odd key " + key.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == data


@pytest.mark.parametrize("leading_slash", [True, False], ids=["leading-slash", "no-leading-slash"])
@pytest.mark.parametrize("key", ODD_KEYS)
def test_copy_object_url_encoded_source_key_raw(server, s3, bucket, bucket2, key, leading_slash):
    data = b"raw odd key " + key.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    source = ("/" if leading_slash else "") + f"{bucket}/{quote(key, safe='/')}"
    resp = raw(server, "PUT", object_path(bucket2, key), headers={"x-amz-copy-source": source})
    assert resp.status_code == 200, resp.content
    assert s3.get_object(Bucket=bucket2, Key=key)["Body"].read() == data


def test_copy_object_source_without_key_invalid_argument(server, bucket):
    resp = raw(server, "PUT", object_path(bucket, "dst"), headers={"x-amz-copy-source": bucket})
    # AWS: 400 InvalidArgument "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
    assert_error(resp, "InvalidArgument", 400)


# -- metadata directive -----------------------------------------------------------------------------

ATTRS = dict(ContentType="text/x-source", ContentDisposition='attachment; filename="s.txt"',
             ContentEncoding="identity", ContentLanguage="en-GB", CacheControl="max-age=60",
             Expires=dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
             Metadata={"colour": "blue", "shape": "round"})


def _assert_source_attrs(head):
    assert head["ContentType"] == "text/x-source"
    assert head["ContentDisposition"] == 'attachment; filename="s.txt"'
    assert head["ContentEncoding"] == "identity"
    assert head["ContentLanguage"] == "en-GB"
    assert head["CacheControl"] == "max-age=60"
    assert head["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Thu, 02 Jan 2031 03:04:05 GMT"
    assert head["Metadata"] == {"colour": "blue", "shape": "round"}


@SIZES
@pytest.mark.parametrize("directive", [None, "COPY"])
def test_copy_object_metadata_directive_copy_carries_metadata(s3, bucket, bucket2, size, directive):
    _put(s3, bucket, "src", size, **ATTRS)
    kwargs = {"MetadataDirective": directive} if directive else {}
    s3.copy_object(Bucket=bucket2, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **kwargs)
    _assert_source_attrs(s3.head_object(Bucket=bucket2, Key="dst"))


def test_copy_object_metadata_directive_copy_ignores_request_metadata(s3, bucket):
    _put(s3, bucket, "src", SMALL, **ATTRS)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="COPY", Metadata={"colour": "red"}, ContentType="text/other")
    _assert_source_attrs(s3.head_object(Bucket=bucket, Key="dst"))


@SIZES
def test_copy_object_metadata_directive_replace_takes_request_metadata(s3, bucket, size):
    data = _put(s3, bucket, "src", size, **ATTRS)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", ContentType="application/json", Metadata={"new": "value"},
                   ContentDisposition="inline")
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"new": "value"}
    assert head["ContentDisposition"] == "inline"
    # With REPLACE, nothing of the source's metadata survives that the request did not give.
    assert "CacheControl" not in head
    assert "ContentLanguage" not in head
    assert "ContentEncoding" not in head
    assert "expires" not in head["ResponseMetadata"]["HTTPHeaders"]
    assert head["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


def test_copy_object_invalid_metadata_directive(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    resp = raw(server, "PUT", object_path(bucket, "dst"),
               headers={"x-amz-copy-source": f"{bucket}/src", "x-amz-metadata-directive": "MERGE"})
    assert_error(resp, "InvalidArgument", 400)


# -- copy onto itself -------------------------------------------------------------------------------

@SIZES
def test_copy_object_onto_itself_without_replace_invalid_request(s3, bucket, size):
    data = _put(s3, bucket, "self", size, Metadata={"a": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert client_error(exc) == ("InvalidRequest", 400)
    # "This copy request is illegal because it is trying to copy an object to itself without
    # changing the object's metadata, storage class, website redirect location or encryption attributes."
    assert "copy an object to itself" in exc.value.response["Error"]["Message"]
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"a": "1"}
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == data


@SIZES
def test_copy_object_onto_itself_with_replace_updates_metadata(s3, bucket, size):
    data = _put(s3, bucket, "self", size, Metadata={"a": "1"}, ContentType="text/plain")
    resp = s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"},
                          MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="image/png")
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(data)
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "image/png"
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == data


# -- copy-source conditions -------------------------------------------------------------------------

def _src(s3, bucket):
    data = b"conditional source"
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    head = s3.head_object(Bucket=bucket, Key="src")
    return data, head["ETag"], head["LastModified"]


DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("case", ["if-match", "if-match-star", "if-none-match", "if-modified-since",
                                  "if-unmodified-since"])
def test_copy_object_copy_source_condition_holds_200(s3, bucket, case):
    data, etag, lm = _src(s3, bucket)
    kwargs = {"if-match": {"CopySourceIfMatch": etag},
              "if-match-star": {"CopySourceIfMatch": "*"},
              "if-none-match": {"CopySourceIfNoneMatch": '"0123456789abcdef0123456789abcdef"'},
              "if-modified-since": {"CopySourceIfModifiedSince": lm - DAY},
              "if-unmodified-since": {"CopySourceIfUnmodifiedSince": lm + DAY}}[case]
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **kwargs)
    assert resp["CopyObjectResult"]["ETag"] == etag
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


@pytest.mark.parametrize("case", ["if-match", "if-none-match", "if-none-match-star", "if-modified-since",
                                  "if-unmodified-since"])
def test_copy_object_copy_source_condition_fails_412(s3, bucket, case):
    _data, etag, lm = _src(s3, bucket)
    kwargs = {"if-match": {"CopySourceIfMatch": '"0123456789abcdef0123456789abcdef"'},
              "if-none-match": {"CopySourceIfNoneMatch": etag},
              "if-none-match-star": {"CopySourceIfNoneMatch": "*"},
              "if-modified-since": {"CopySourceIfModifiedSince": lm},
              "if-unmodified-since": {"CopySourceIfUnmodifiedSince": lm - DAY}}[case]
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, **kwargs)
    assert client_error(exc) == ("PreconditionFailed", 412)
    assert not _exists(s3, bucket, "dst")


def test_copy_object_if_match_true_and_if_unmodified_since_false_copies(s3, bucket):
    # AWS: "If both x-amz-copy-source-if-match and x-amz-copy-source-if-unmodified-since are
    # present and evaluate as follows, S3 returns 200 OK and copies the data: if-match true,
    # if-unmodified-since false."
    data, etag, lm = _src(s3, bucket)
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   CopySourceIfMatch=etag, CopySourceIfUnmodifiedSince=lm - DAY)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


def test_copy_object_if_none_match_false_and_if_modified_since_true_412(s3, bucket):
    # AWS: "If both x-amz-copy-source-if-none-match and x-amz-copy-source-if-modified-since are
    # present and evaluate as follows, S3 returns 412 Precondition Failed: if-none-match false,
    # if-modified-since true."
    _data, etag, lm = _src(s3, bucket)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfNoneMatch=etag, CopySourceIfModifiedSince=lm - DAY)
    assert client_error(exc) == ("PreconditionFailed", 412)
    assert not _exists(s3, bucket, "dst")


def test_copy_object_condition_fails_keeps_existing_destination(s3, bucket):
    _data, etag, _lm = _src(s3, bucket)
    s3.put_object(Bucket=bucket, Key="dst", Body=b"old destination")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfNoneMatch=etag)
    assert client_error(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old destination"


# -- missing things / permissions -----------------------------------------------------------------

def test_copy_object_missing_source_key(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    assert client_error(exc) == ("NoSuchKey", 404)
    assert not _exists(s3, bucket, "dst")


def test_copy_object_missing_source_bucket(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": "no-such-" + uuid.uuid4().hex[:12],
                                                             "Key": "k"})
    assert client_error(exc) == ("NoSuchBucket", 404)


def test_copy_object_missing_destination_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket="no-such-" + uuid.uuid4().hex[:12], Key="dst",
                       CopySource={"Bucket": bucket, "Key": "src"})
    assert client_error(exc) == ("NoSuchBucket", 404)


def test_copy_object_other_user_cannot_copy_private_source(s3, s3_other, bucket, other_bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    with pytest.raises(ClientError) as exc:
        s3_other.copy_object(Bucket=other_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "private"})
    assert client_error(exc) == ("AccessDenied", 403)
    assert s3_other.list_objects_v2(Bucket=other_bucket)["KeyCount"] == 0


def test_copy_object_cannot_copy_into_other_users_bucket(s3, bucket, other_bucket, s3_other):
    s3.put_object(Bucket=bucket, Key="src", Body=b"mine")
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=other_bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert client_error(exc) == ("AccessDenied", 403)
    assert s3_other.list_objects_v2(Bucket=other_bucket)["KeyCount"] == 0


# -- AWS CLI ------------------------------------------------------------------------------------------

def test_copy_object_awscli_s3_cp(server, s3, bucket):
    data = os.urandom(LARGE)
    s3.put_object(Bucket=bucket, Key="k", Body=data, ContentType="text/x-cli", Metadata={"m": "v"})
    proc = aws_cli(server, "s3", "cp", f"s3://{bucket}/k", f"s3://{bucket}/k2")
    assert proc.returncode == 0, proc.stderr
    assert f"copy: s3://{bucket}/k to s3://{bucket}/k2" in proc.stdout
    got = s3.get_object(Bucket=bucket, Key="k2")
    assert got["Body"].read() == data
    assert got["ETag"] == md5_etag(data)


def test_copy_object_awscli_s3api_copy_object(server, s3, bucket):
    data = b"cli copy-object"
    s3.put_object(Bucket=bucket, Key="dir/k y", Body=data)
    proc = aws_cli(server, "s3api", "copy-object", "--bucket", bucket, "--key", "k3",
                   "--copy-source", f"{bucket}/dir/k y")  # the CLI (botocore) percent-encodes it
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["CopyObjectResult"]["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="k3")["Body"].read() == data
