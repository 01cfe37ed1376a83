"""PostObject (browser form uploads) against a running server: boto3's
generate_presigned_post (SigV4) and a hand-built SigV2 form posted with requests;
every policy condition enforced with AWS's error and nothing stored when refused;
anonymous forms only on a public-write bucket; the parser's bytes edge cases."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, SECRET_KEY
from .helpers import S3_NS, assert_error

import xml.etree.ElementTree as ET


def _post(server, bucket, fields, body=b"form body", filename="hello.txt", files=None, **kwargs):
    files = files if files is not None else {"file": (filename, body, "text/plain")}
    return requests.post(f"{server.endpoint}/{bucket}", data=fields, files=files, allow_redirects=False,
                         **kwargs)


def _keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _presigned(s3, bucket, key, fields=None, conditions=None, expires=300) -> dict:
    return s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires)


def _policy(conditions, expiration: dt.datetime | None = None) -> str:
    expiration = expiration or dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    document = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def _v2_fields(bucket, key, extra_conditions=(), secret=SECRET_KEY, access_key=ACCESS_KEY, **fields) -> dict:
    policy = _policy([{"bucket": bucket}, ["starts-with", "$key", ""], *extra_conditions])
    signature = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"key": key, "AWSAccessKeyId": access_key, "policy": policy, "signature": signature, **fields}


# -- success answers ----------------------------------------------------------------

def test_post_object_default_204_stores_the_file(server, s3, bucket):
    post = _presigned(s3, bucket, "uploads/plain.txt")
    body = b"hello from a browser form"
    resp = _post(server, bucket, post["fields"], body)
    assert resp.status_code == 204, resp.content
    assert resp.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert resp.headers["Location"].endswith(f"/{bucket}/uploads/plain.txt")
    got = s3.get_object(Bucket=bucket, Key="uploads/plain.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == resp.headers["ETag"]


@pytest.mark.parametrize("status", ["200", "201"])
def test_post_object_success_action_status(server, s3, bucket, status):
    post = _presigned(s3, bucket, "s.txt", fields={"success_action_status": status},
                      conditions=[{"success_action_status": status}])
    resp = _post(server, bucket, post["fields"], b"status body")
    assert resp.status_code == int(status), resp.content
    if status == "201":
        root = ET.fromstring(resp.content)
        assert root.tag == f"{S3_NS}PostResponse"
        assert root.find(f"{S3_NS}Bucket").text == bucket and root.find(f"{S3_NS}Key").text == "s.txt"
        assert root.find(f"{S3_NS}ETag").text == f'"{hashlib.md5(b"status body").hexdigest()}"'
        assert root.find(f"{S3_NS}Location").text.endswith(f"/{bucket}/s.txt")
    else:
        assert resp.content == b""
    assert s3.get_object(Bucket=bucket, Key="s.txt")["Body"].read() == b"status body"


def test_post_object_redirect_303(server, s3, bucket):
    target = "https://app.example/done?from=form"
    post = _presigned(s3, bucket, "r.txt", fields={"success_action_redirect": target},
                      conditions=[{"success_action_redirect": target}])
    resp = _post(server, bucket, post["fields"], b"redirected")
    assert resp.status_code == 303, resp.content
    location = urlsplit(resp.headers["Location"])
    assert location.netloc == "app.example" and location.path == "/done"
    query = parse_qs(location.query)
    assert query["from"] == ["form"] and query["bucket"] == [bucket] and query["key"] == ["r.txt"]
    assert query["etag"] == [f'"{hashlib.md5(b"redirected").hexdigest()}"']


def test_post_object_filename_metadata_and_content_type(server, s3, bucket):
    fields = {"Content-Type": "image/png", "x-amz-meta-owner": "alice", "Cache-Control": "max-age=60"}
    post = _presigned(s3, bucket, "pics/${filename}", fields=fields,
                      conditions=[["starts-with", "$Content-Type", "image/"], {"x-amz-meta-owner": "alice"},
                                  ["eq", "$Cache-Control", "max-age=60"]])
    resp = _post(server, bucket, post["fields"], b"\x89PNG...", filename="cat.png")
    assert resp.status_code == 204, resp.content
    head = s3.head_object(Bucket=bucket, Key="pics/cat.png")
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"owner": "alice"}
    assert head["CacheControl"] == "max-age=60"
    assert _keys(s3, bucket) == ["pics/cat.png"]


def test_post_object_acl_public_read(server, s3, bucket):
    post = _presigned(s3, bucket, "pub.txt", fields={"acl": "public-read"}, conditions=[{"acl": "public-read"}])
    assert _post(server, bucket, post["fields"], b"public").status_code == 204
    grants = s3.get_object_acl(Bucket=bucket, Key="pub.txt")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
            "Permission": "READ"} in grants
    assert requests.get(f"{server.endpoint}/{bucket}/pub.txt").content == b"public"
    # without the acl field the object stays private
    post = _presigned(s3, bucket, "private.txt")
    assert _post(server, bucket, post["fields"], b"private").status_code == 204
    assert requests.get(f"{server.endpoint}/{bucket}/private.txt").status_code == 403


def test_post_object_versioned_bucket_returns_version_id(server, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        post = _presigned(s3, bucket, "v.txt")
        first = _post(server, bucket, post["fields"], b"one")
        second = _post(server, bucket, post["fields"], b"two")
        assert first.status_code == second.status_code == 204
        ids = [first.headers["x-amz-version-id"], second.headers["x-amz-version-id"]]
        assert ids[0] != ids[1] and "null" not in ids
        assert s3.get_object(Bucket=bucket, Key="v.txt", VersionId=ids[0])["Body"].read() == b"one"
        assert s3.get_object(Bucket=bucket, Key="v.txt")["Body"].read() == b"two"
    finally:
        for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
            s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


@pytest.mark.parametrize("size", [0, 16 * 1024, 16 * 1024 + 1, 3 * 1024 * 1024 + 17])
def test_post_object_etag_is_md5_of_the_body_at_every_size(server, s3, bucket, size):
    body = (b"--boundary-looking\r\n\r\n" * (size // 22 + 1))[:size]
    post = _presigned(s3, bucket, "sized")
    resp = _post(server, bucket, post["fields"], body)
    assert resp.status_code == 204, resp.content
    assert resp.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="sized")
    assert got["ContentLength"] == size and got["Body"].read() == body


def test_post_object_default_encryption_applies(server, s3, bucket):
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    body = bytes(range(256)) * 5000  # larger than one encryption batch
    post = _presigned(s3, bucket, "enc")
    resp = _post(server, bucket, post["fields"], body)
    assert resp.status_code == 204, resp.content
    assert resp.headers["x-amz-server-side-encryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="enc")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body


# -- content-length-range -------------------------------------------------------------

def test_post_object_content_length_range_both_sides(server, s3, bucket):
    post = _presigned(s3, bucket, "ranged", conditions=[["content-length-range", 10, 20]])
    assert_error(_post(server, bucket, post["fields"], b"x" * 21), "EntityTooLarge", 400)
    assert_error(_post(server, bucket, post["fields"], b"x" * 9), "EntityTooSmall", 400)
    assert _keys(s3, bucket) == []
    assert _post(server, bucket, post["fields"], b"x" * 10).status_code == 204
    assert _post(server, bucket, post["fields"], b"y" * 20).status_code == 204
    assert s3.get_object(Bucket=bucket, Key="ranged")["Body"].read() == b"y" * 20


def test_post_object_content_length_range_large_file_refused_and_nothing_stored(server, s3, bucket):
    post = _presigned(s3, bucket, "big", conditions=[["content-length-range", 0, 100_000]])
    assert_error(_post(server, bucket, post["fields"], b"z" * 300_000), "EntityTooLarge", 400)
    assert _keys(s3, bucket) == []


# -- policy and signature refusals --------------------------------------------------------

def test_post_object_expired_policy(server, s3, bucket):
    post = _presigned(s3, bucket, "late", expires=-10)
    fields = assert_error(_post(server, bucket, post["fields"]), "AccessDenied", 403)
    assert fields["Message"] == "Invalid according to Policy: Policy expired."
    assert _keys(s3, bucket) == []


def test_post_object_tampered_policy_or_signature(server, s3, bucket):
    post = _presigned(s3, bucket, "t.txt")
    document = json.loads(base64.b64decode(post["fields"]["policy"]))
    document["conditions"].append(["content-length-range", 0, 10**12])
    tampered = dict(post["fields"], policy=base64.b64encode(json.dumps(document).encode()).decode())
    assert_error(_post(server, bucket, tampered), "SignatureDoesNotMatch", 403)
    bad_signature = dict(post["fields"], **{"x-amz-signature": "0" * 64})
    assert_error(_post(server, bucket, bad_signature), "SignatureDoesNotMatch", 403)
    unknown_key = dict(post["fields"], **{"x-amz-credential": "NOBODY/" + post["fields"]["x-amz-credential"].split("/", 1)[1]})
    assert_error(_post(server, bucket, unknown_key), "InvalidAccessKeyId", 403)
    assert _keys(s3, bucket) == []
    assert _post(server, bucket, post["fields"]).status_code == 204  # the untouched form works


def test_post_object_condition_violations(server, s3, bucket):
    other = "other-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=other)
    try:
        post = _presigned(s3, bucket, "k")
        resp = _post(server, other, post["fields"])  # the policy names the first bucket
        assert assert_error(resp, "AccessDenied", 403)["Message"].startswith(
            "Invalid according to Policy: Policy Condition failed:")
        assert _keys(s3, other) == []
    finally:
        s3.delete_bucket(Bucket=other)
    post = _presigned(s3, bucket, "user/alice/${filename}",
                      conditions=[["starts-with", "$key", "user/alice/"]])
    outside = dict(post["fields"], key="user/bob/x")
    assert_error(_post(server, bucket, outside), "AccessDenied", 403)
    extra = dict(post["fields"], **{"x-amz-meta-sneaky": "1"})
    msg = assert_error(_post(server, bucket, extra), "AccessDenied", 403)["Message"]
    assert msg == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    ignored = dict(post["fields"], **{"x-ignore-note": "fine"})  # x-ignore-* needs no condition
    assert _keys(s3, bucket) == []
    assert _post(server, bucket, ignored, filename="a.txt").status_code == 204
    assert _keys(s3, bucket) == ["user/alice/a.txt"]


def test_post_object_eq_condition_on_content_type(server, s3, bucket):
    post = _presigned(s3, bucket, "ct", fields={"Content-Type": "text/plain"},
                      conditions=[["eq", "$Content-Type", "text/plain"]])
    wrong = dict(post["fields"], **{"Content-Type": "text/html"})
    assert_error(_post(server, bucket, wrong), "AccessDenied", 403)
    assert _keys(s3, bucket) == []
    assert _post(server, bucket, post["fields"]).status_code == 204


def test_post_object_malformed_policy(server, s3, bucket):
    fields = _v2_fields(bucket, "m")
    fields["policy"] = base64.b64encode(b"{not json").decode()
    fields["signature"] = base64.b64encode(hmac.new(SECRET_KEY.encode(), fields["policy"].encode(),
                                                    hashlib.sha1).digest()).decode()
    assert_error(_post(server, bucket, fields), "InvalidPolicyDocument", 400)
    assert _keys(s3, bucket) == []


# -- SigV2 form ------------------------------------------------------------------------

def test_post_object_sigv2_form(server, s3, bucket):
    resp = _post(server, bucket, _v2_fields(bucket, "v2/${filename}"), b"v2 body", filename="f.bin")
    assert resp.status_code == 204, resp.content
    assert s3.get_object(Bucket=bucket, Key="v2/f.bin")["Body"].read() == b"v2 body"
    wrong = _v2_fields(bucket, "v2/bad", secret="not-the-secret")
    assert_error(_post(server, bucket, wrong), "SignatureDoesNotMatch", 403)
    assert _keys(s3, bucket) == ["v2/f.bin"]


def test_post_object_signed_by_another_user_needs_write(server, s3, s3_other, bucket):
    from ..servers import OTHER_SECRET_KEY
    fields = _v2_fields(bucket, "theirs", secret=OTHER_SECRET_KEY, access_key=OTHER_ACCESS_KEY)
    assert_error(_post(server, bucket, fields), "AccessDenied", 403)
    assert _keys(s3, bucket) == []


# -- anonymous forms -------------------------------------------------------------------

def test_post_object_anonymous_denied_on_private_bucket(server, s3, bucket):
    assert_error(_post(server, bucket, {"key": "anon.txt"}), "AccessDenied", 403)
    assert _keys(s3, bucket) == []


def test_post_object_anonymous_allowed_on_public_write_bucket(server, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    resp = _post(server, bucket, {"key": "anon.txt", "acl": "public-read"}, b"anonymous")
    assert resp.status_code == 204, resp.content
    assert _keys(s3, bucket) == ["anon.txt"]
    # the anonymous writer owns it (ObjectWriter), so only its public-read ACL lets anyone read it
    assert requests.get(f"{server.endpoint}/{bucket}/anon.txt").content == b"anonymous"


# -- malformed forms ---------------------------------------------------------------------

def test_post_object_not_a_form(server, s3, bucket):
    resp = requests.post(f"{server.endpoint}/{bucket}", data=b"key=x", headers={"Content-Type": "text/plain"})
    fields = assert_error(resp, "PreconditionFailed", 412)
    assert fields["Condition"] == "Bucket POST must be of the enclosure-type multipart/form-data"


def test_post_object_missing_file_or_key(server, s3, bucket):
    post = _presigned(s3, bucket, "nofile")
    resp = requests.post(f"{server.endpoint}/{bucket}", files={k: (None, v) for k, v in post["fields"].items()})
    assert assert_error(resp, "InvalidArgument", 400)["Message"] == "POST requires exactly one file upload per request."
    no_key = {k: v for k, v in post["fields"].items() if k != "key"}
    assert_error(_post(server, bucket, no_key), "InvalidArgument", 400)
    assert _keys(s3, bucket) == []


def _raw_form(parts: list[tuple[bytes, bytes]], boundary=b"b0undary") -> tuple[bytes, str]:
    out = b""
    for name, value in parts:
        disposition = b'form-data; name="' + name + b'"' + (b'; filename="f"' if name == b"file" else b"")
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + value + b"\r\n"
    return out + b"--" + boundary + b"--\r\n", "multipart/form-data; boundary=" + boundary.decode()


def test_post_object_non_utf8_field_refused_nothing_stored(server, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    for parts in ([(b"key", b"k\xff"), (b"file", b"data")],
                  [(b"key", b"k"), (b"x-amz-meta-a", b"\xfe\xfe"), (b"file", b"data")]):
        body, content_type = _raw_form(parts)
        resp = requests.post(f"{server.endpoint}/{bucket}", data=body, headers={"Content-Type": content_type})
        assert_error(resp, "MalformedPOSTRequest", 400)
    assert _keys(s3, bucket) == []


def test_post_object_truncated_body_stores_nothing(server, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    body, content_type = _raw_form([(b"key", b"cut"), (b"file", b"x" * 50_000)])
    cut = body[:-30]  # the closing delimiter never comes
    resp = requests.post(f"{server.endpoint}/{bucket}", data=cut, headers={"Content-Type": content_type})
    assert_error(resp, "MalformedPOSTRequest", 400)
    assert _keys(s3, bucket) == []


def test_post_object_oversize_fields_refused(server, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    body, content_type = _raw_form([(b"key", b"k"), (b"x-ignore-pad", b"p" * 30_000), (b"file", b"data")])
    resp = requests.post(f"{server.endpoint}/{bucket}", data=body, headers={"Content-Type": content_type})
    assert_error(resp, "MaxPostPreDataLengthExceededError", 400)
    assert _keys(s3, bucket) == []


def test_post_object_control_character_in_metadata_refused(server, s3, bucket):
    post = _presigned(s3, bucket, "ctl", fields={"x-amz-meta-a": "x\r\nSet-Cookie: y"},
                      conditions=[{"x-amz-meta-a": "x\r\nSet-Cookie: y"}])
    assert_error(_post(server, bucket, post["fields"]), "InvalidArgument", 400)
    assert _keys(s3, bucket) == []


def test_post_object_fields_after_file_are_ignored(server, s3, bucket):
    post = _presigned(s3, bucket, "after")
    parts = [(k.encode(), v.encode()) for k, v in post["fields"].items()] + [(b"file", b"first"),
                                                                             (b"x-amz-meta-late", b"1")]
    body, content_type = _raw_form(parts)
    resp = requests.post(f"{server.endpoint}/{bucket}", data=body, headers={"Content-Type": content_type})
    assert resp.status_code == 204, resp.content
    head = s3.head_object(Bucket=bucket, Key="after")
    assert head["Metadata"] == {} and head["ContentLength"] == 5



def test_post_object_checksum_field_verified(server, s3, bucket):
    body = b"checked body"
    good = base64.b64encode(hashlib.sha256(body).digest()).decode()
    post = _presigned(s3, bucket, "sum", fields={"x-amz-checksum-sha256": good},
                      conditions=[["starts-with", "$x-amz-checksum-sha256", ""]])
    resp = _post(server, bucket, post["fields"], body)
    assert resp.status_code == 204, resp.content
    assert resp.headers["x-amz-checksum-sha256"] == good
    head = s3.head_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good
    s3.delete_object(Bucket=bucket, Key="sum")
    assert_error(_post(server, bucket, post["fields"], b"other body"), "BadDigest", 400)
    assert _keys(s3, bucket) == []


def test_post_object_unicode_filename(server, s3, bucket):
    post = _presigned(s3, bucket, "u/${filename}")
    resp = _post(server, bucket, post["fields"], b"unicode", filename="\u00e9t\u00e9 \u6587.txt")
    assert resp.status_code == 204, resp.content
    assert _keys(s3, bucket) == ["u/\u00e9t\u00e9 \u6587.txt"]


def test_post_object_unimplemented_field_refused(server, s3, bucket):
    tagging = "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
    post = _presigned(s3, bucket, "tagged", fields={"tagging": tagging}, conditions=[{"tagging": tagging}])
    assert_error(_post(server, bucket, post["fields"]), "NotImplemented", 501)
    assert _keys(s3, bucket) == []
