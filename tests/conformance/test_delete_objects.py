"""DeleteObjects (POST /bucket?delete), per the AWS S3 API Reference."""
from __future__ import annotations

import json
import os
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import (LARGE, NS, S3_NS, SMALL, assert_error, aws_cli, checksum_b64, client_error,
                             content_md5, describe, raw)


def _keys(s3, bucket) -> list[str]:
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]


_ENTITIES = {'"': "&quot;", "'": "&apos;"}


def _delete_xml(keys, quiet: bool | None = None) -> bytes:
    q = "" if quiet is None else f"<Quiet>{str(quiet).lower()}</Quiet>"
    objs = "".join(f"<Object><Key>{escape(k, _ENTITIES)}</Key></Object>" for k in keys)
    return f'<?xml version="1.0" encoding="UTF-8"?><Delete xmlns="{S3_NS}">{q}{objs}</Delete>'.encode()


def _post_delete(server, bucket, body: bytes, headers: dict | None = None, **kwargs):
    return raw(server, "POST", f"/{bucket}", query="delete", body=body, headers=headers, **kwargs)


def test_delete_objects_existing_and_missing_all_reported_deleted(s3, bucket):
    for key, size in (("a", SMALL), ("b", LARGE), ("dir/c", SMALL)):
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))
    s3.put_object(Bucket=bucket, Key="keep", Body=b"keep")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in
                                                                ("a", "b", "dir/c", "missing-1", "missing/2")]})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(d["Key"] for d in resp["Deleted"]) == ["a", "b", "dir/c", "missing-1", "missing/2"]
    assert "Errors" not in resp
    assert _keys(s3, bucket) == ["keep"]


def test_delete_objects_response_xml(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"x")
    body = _delete_xml(["x", "y"])
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 200, describe(resp)
    root = ET.fromstring(resp.content)
    assert root.tag == f"{NS}DeleteResult"
    assert sorted(d.find(f"{NS}Key").text for d in root.findall(f"{NS}Deleted")) == ["x", "y"]
    assert root.findall(f"{NS}Error") == []
    assert _keys(s3, bucket) == []


def test_delete_objects_quiet_reports_no_deleted_entries(s3, bucket):
    for key in ("q1", "q2"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"q")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}, {"Key": "q2"}, {"Key": "nope"}],
                                                    "Quiet": True})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Deleted" not in resp
    assert "Errors" not in resp
    assert _keys(s3, bucket) == []


def test_delete_objects_quiet_false_reports_deleted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="q1", Body=b"q")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}], "Quiet": False})
    assert [d["Key"] for d in resp["Deleted"]] == ["q1"]


def test_delete_objects_1000_keys(s3, bucket):
    keys = [f"k{i:04d}" for i in range(1000)]
    for key in keys[:20]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(resp["Deleted"]) == 1000
    assert sorted(d["Key"] for d in resp["Deleted"]) == keys
    assert _keys(s3, bucket) == []


def test_delete_objects_1001_keys_malformed_xml(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k0000", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i:04d}"} for i in range(1001)]})
    assert client_error(exc) == ("MalformedXML", 400)
    assert _keys(s3, bucket) == ["k0000"]


@pytest.mark.parametrize("body", [b"<Delete><Object><Key>a</Key></Object>", b"not xml at all",
                                  b"<Delete></Delete>", b"<Other><Object><Key>a</Key></Object></Other>",
                                  b"<Delete><Object></Object></Delete>"],
                         ids=["unclosed", "text", "no-objects", "wrong-root", "object-without-key"])
def test_delete_objects_malformed_xml(server, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body)})
    assert_error(resp, "MalformedXML", 400)
    assert _keys(s3, bucket) == ["a"]


def test_delete_objects_with_content_md5_raw(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 200, describe(resp)
    assert _keys(s3, bucket) == []


def test_delete_objects_with_checksum_crc32_header_raw(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"x-amz-checksum-crc32": checksum_b64("CRC32", body)})
    assert resp.status_code == 200, describe(resp)
    assert _keys(s3, bucket) == []


def test_delete_objects_missing_content_md5_invalid_request(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body)
    # AWS: 400 InvalidRequest "Missing required header for this request: Content-MD5"
    # (nowadays also satisfied by an x-amz-checksum-* header).
    assert_error(resp, "InvalidRequest", 400)
    assert _keys(s3, bucket) == ["a"]


def test_delete_objects_wrong_content_md5_bad_digest(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body + b" ")})
    assert_error(resp, "BadDigest", 400)
    assert _keys(s3, bucket) == ["a"]


def test_delete_objects_invalid_content_md5_invalid_digest(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": "not-base64!"})
    assert_error(resp, "InvalidDigest", 400)
    assert _keys(s3, bucket) == ["a"]


def test_delete_objects_wrong_checksum_crc32_bad_digest(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"x-amz-checksum-crc32": checksum_b64("CRC32", b"other")})
    assert_error(resp, "BadDigest", 400)
    assert _keys(s3, bucket) == ["a"]


SPECIAL_KEYS = ["a&b", "<tag>", 'dq"uote', "ap'os", "x>y<z&amp;", "ü/ñ/日本語", "emoji-\U0001F600", "sp ace+plus",
                "tab\tkey"]


def test_delete_objects_special_and_unicode_keys_round_trip(s3, bucket):
    for key in SPECIAL_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"s")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in SPECIAL_KEYS]})
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(SPECIAL_KEYS)
    assert _keys(s3, bucket) == []


def test_delete_objects_special_keys_raw_xml_escaped(server, s3, bucket):
    keys = ["a&b", "<tag>", 'dq"uote']
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"s")
    body = _delete_xml(keys)
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 200, describe(resp)
    root = ET.fromstring(resp.content)  # well-formed: specials escaped
    assert sorted(d.find(f"{NS}Key").text for d in root.findall(f"{NS}Deleted")) == sorted(keys)
    assert _keys(s3, bucket) == []


def test_delete_objects_other_users_bucket_access_denied(server, s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    # AWS evaluates s3:DeleteObject per key: the documented form is 200 with an <Error>
    # AccessDenied per key; a 403 AccessDenied for the whole request is also an AccessDenied
    # that boto3 users see. Either way nothing may be deleted.
    try:
        resp = s3_other.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    except ClientError as e:
        assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == \
            ("AccessDenied", 403)
    else:
        assert "Deleted" not in resp, resp
        assert sorted((e["Key"], e["Code"]) for e in resp["Errors"]) == [("a", "AccessDenied"),
                                                                         ("b", "AccessDenied")]
    assert _keys(s3, bucket) == ["a", "b"]


def test_delete_objects_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(Bucket="no-such-" + uuid.uuid4().hex[:12], Delete={"Objects": [{"Key": "a"}]})
    assert client_error(exc) == ("NoSuchBucket", 404)


def test_delete_objects_anonymous_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    body = _delete_xml(["a"])
    resp = _post_delete(server, bucket, body, headers={"Content-MD5": content_md5(body)}, sign=False)
    assert_error(resp, "AccessDenied", 403)
    assert _keys(s3, bucket) == ["a"]


def test_delete_objects_awscli_s3api_delete_objects(server, s3, bucket):
    for key in ("c1", "c2", "c 3"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"c")
    delete = json.dumps({"Objects": [{"Key": "c1"}, {"Key": "c2"}, {"Key": "c 3"}], "Quiet": False})
    proc = aws_cli(server, "s3api", "delete-objects", "--bucket", bucket, "--delete", delete)
    assert proc.returncode == 0, proc.stderr
    assert sorted(d["Key"] for d in json.loads(proc.stdout)["Deleted"]) == ["c 3", "c1", "c2"]
    assert _keys(s3, bucket) == []


def test_delete_objects_awscli_s3_rm_recursive(server, s3, bucket):
    # NB: AWS CLI v1's `aws s3 rm --recursive` deletes with one DeleteObject per key
    # (awscli/customizations/s3 + s3transfer/delete.py), not DeleteObjects.
    for i in range(12):
        s3.put_object(Bucket=bucket, Key=f"dir/f{i}", Body=b"r")
    s3.put_object(Bucket=bucket, Key="other", Body=b"o")
    proc = aws_cli(server, "s3", "rm", "--recursive", f"s3://{bucket}/dir/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("delete: s3://") == 12
    assert _keys(s3, bucket) == ["other"]
