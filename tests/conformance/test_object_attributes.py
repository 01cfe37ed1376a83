"""GetObjectAttributes (GET /bucket/key?attributes) against a real server: the
attributes asked for and only those, single-part and multipart objects (with
and without additional checksums, COMPOSITE and FULL_OBJECT), paging the parts,
versions and delete markers, SSE-C, permissions and the errors, as AWS answers.

AWS facts relied on: the ETag is unquoted; a COMPOSITE checksum shows without
its "-<parts>" suffix (HeadObject keeps it); ObjectParts lists Part elements only
when the object has an additional checksum (else only PartsCount); a delete
marker is 404 NoSuchKey with x-amz-delete-marker, and 405 when asked for by id.
"""
from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET

import pytest

from ..conftest import make_client
from .helpers import S3_NS, assert_client_error, assert_error, key_path, signed_request
from .support_issue4 import anonymous
from .support_multipart import PART, checksum_b64, complete, composite_checksum, data
from .support_versioning import make_bucket, purge_bucket, set_versioning  # noqa: F401 (fixture)
from .test_encryption import K1, K2, _client, _secure, b64, md5_b64, ssec_args

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


@pytest.fixture(scope="module")
def s3_plain(server):
    """boto3 that sends no checksum unless asked (the server's default applies)."""
    client = make_client(server.endpoint, request_checksum_calculation="when_required")
    yield client
    client._endpoint.http_session.close()


def _attrs(s3, bucket, key, attributes=ALL, **kwargs) -> dict:
    return s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=attributes, **kwargs)


def _multipart(s3, bucket, key, parts, **create) -> dict:
    """A completed multipart upload of ``parts`` (bytes each), sending each part's
    checksum when the upload has an algorithm; returns CompleteMultipartUpload's answer."""
    algorithm = create.get("ChecksumAlgorithm")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra)
        entry = {"PartNumber": number, "ETag": resp["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = resp[f"Checksum{algorithm}"]
        done.append(entry)
    return complete(s3, bucket, key, upload_id, done)


# -- single-part objects ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1000, 70_000], ids=["empty", "inline", "blob"])
def test_single_part_all_attributes(s3, bucket, size):
    body = data(size, "single")
    s3.put_object(Bucket=bucket, Key="k", Body=body, ChecksumAlgorithm="SHA256")
    got = _attrs(s3, bucket, "k")
    assert got["ETag"] == hashlib.md5(body).hexdigest()  # no quotes
    assert got["ObjectSize"] == size
    assert got["StorageClass"] == "STANDARD"
    assert got["Checksum"] == {"ChecksumSHA256": checksum_b64("SHA256", body), "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in got  # not a multipart object
    assert got["LastModified"] == s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    assert "VersionId" not in got  # never-versioned bucket


def test_default_checksum_is_crc64nvme(s3_plain, bucket):
    body = data(5000, "default")
    s3_plain.put_object(Bucket=bucket, Key="k", Body=body)
    got = _attrs(s3_plain, bucket, "k", ["Checksum"])
    assert got["Checksum"] == {"ChecksumCRC64NVME": checksum_b64("CRC64NVME", body), "ChecksumType": "FULL_OBJECT"}


def test_only_the_asked_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello", StorageClass="REDUCED_REDUNDANCY")
    got = _attrs(s3, bucket, "k", ["ObjectSize", "StorageClass"])
    assert got["ObjectSize"] == 5 and got["StorageClass"] == "REDUCED_REDUNDANCY"
    for absent in ("ETag", "Checksum", "ObjectParts"):
        assert absent not in got


def test_raw_response_shape_and_list_forms(server, s3, bucket):
    """The XML as S3 writes it; the header's names may come with spaces or repeated."""
    s3.put_object(Bucket=bucket, Key="a b", Body=b"xyz", ChecksumAlgorithm="CRC32")
    resp = signed_request(server, "GET", key_path(bucket, "a b"), query="attributes",
                          headers={"x-amz-object-attributes": "ObjectSize, ETag,Checksum"})
    assert resp.status_code == 200, resp.content
    root = ET.fromstring(resp.content)
    assert root.tag == f"{S3_NS}GetObjectAttributesResponse"
    assert [c.tag.removeprefix(S3_NS) for c in root] == ["ETag", "Checksum", "ObjectSize"]
    assert root.find(f"{S3_NS}ETag").text == hashlib.md5(b"xyz").hexdigest()
    assert [c.tag.removeprefix(S3_NS) for c in root.find(f"{S3_NS}Checksum")] == ["ChecksumCRC32", "ChecksumType"]
    assert resp.headers["Last-Modified"].endswith("GMT")


# -- multipart objects -----------------------------------------------------------------------------

def test_multipart_without_checksum_shows_only_parts_count(s3_plain, bucket):
    parts = [data(PART, "p1"), data(1234, "p2")]
    done = _multipart(s3_plain, bucket, "mp", parts)
    got = _attrs(s3_plain, bucket, "mp")
    assert got["ETag"] == done["ETag"].strip('"') and got["ETag"].endswith("-2")
    assert got["ObjectSize"] == PART + 1234
    assert got["ObjectParts"] == {"TotalPartsCount": 2}  # no Part list without a checksum (as S3)
    assert "Checksum" not in got


def test_multipart_composite_checksum_and_parts_paging(s3, bucket):
    parts = [data(PART, "c1"), data(PART, "c2"), data(777, "c3")]
    done = _multipart(s3, bucket, "mp", parts, ChecksumAlgorithm="SHA256")
    composite = composite_checksum("SHA256", parts)
    assert done["ChecksumSHA256"] == composite  # CompleteMultipartUpload keeps "-3"
    got = _attrs(s3, bucket, "mp")
    assert got["Checksum"] == {"ChecksumSHA256": composite.split("-")[0], "ChecksumType": "COMPOSITE"}
    want = [{"PartNumber": n, "Size": len(p), "ChecksumSHA256": checksum_b64("SHA256", p)}
            for n, p in enumerate(parts, start=1)]
    assert got["ObjectParts"] == {"TotalPartsCount": 3, "PartNumberMarker": 0, "NextPartNumberMarker": 3,
                                  "MaxParts": 1000, "IsTruncated": False, "Parts": want}
    # Paging: two parts, then the rest from the marker.
    first = _attrs(s3, bucket, "mp", ["ObjectParts"], MaxParts=2)["ObjectParts"]
    assert (first["Parts"], first["IsTruncated"], first["NextPartNumberMarker"], first["MaxParts"]) == \
        (want[:2], True, 2, 2)
    rest = _attrs(s3, bucket, "mp", ["ObjectParts"], MaxParts=2,
                  PartNumberMarker=first["NextPartNumberMarker"])["ObjectParts"]
    assert (rest["Parts"], rest["IsTruncated"], rest["PartNumberMarker"], rest["TotalPartsCount"]) == \
        (want[2:], False, 2, 3)
    beyond = _attrs(s3, bucket, "mp", ["ObjectParts"], PartNumberMarker=3)["ObjectParts"]
    assert beyond.get("Parts", []) == [] and beyond["IsTruncated"] is False
    # HeadObject still shows the stored composite value with its suffix.
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite


def test_multipart_full_object_crc(s3, bucket):
    parts = [data(PART, "f1"), data(4321, "f2")]
    _multipart(s3, bucket, "mp", parts, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    got = _attrs(s3, bucket, "mp", ["Checksum", "ObjectParts"])
    assert got["Checksum"] == {"ChecksumCRC32": checksum_b64("CRC32", b"".join(parts)), "ChecksumType": "FULL_OBJECT"}
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in got["ObjectParts"]["Parts"]] == \
        [(n, len(p), checksum_b64("CRC32", p)) for n, p in enumerate(parts, start=1)]


def test_copied_multipart_object_keeps_its_parts(s3, bucket):
    parts = [data(PART, "k1"), data(99, "k2")]
    _multipart(s3, bucket, "src", parts, ChecksumAlgorithm="CRC32C")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    src, dst = _attrs(s3, bucket, "src"), _attrs(s3, bucket, "dst")
    for name in ("ETag", "ObjectSize"):
        assert src[name] == dst[name]
    assert dst["ObjectParts"]["TotalPartsCount"] == 2


# -- versions and delete markers -------------------------------------------------------------------

def test_versions_and_delete_markers(s3, make_bucket):  # noqa: F811 (fixture)
    name = make_bucket("Enabled")
    v1 = s3.put_object(Bucket=name, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=name, Key="k", Body=b"second")["VersionId"]
    current = _attrs(s3, name, "k", ["ObjectSize"])
    assert (current["ObjectSize"], current["VersionId"]) == (6, v2)
    old = _attrs(s3, name, "k", ["ObjectSize", "ETag"], VersionId=v1)
    assert (old["ObjectSize"], old["ETag"], old["VersionId"]) == (3, hashlib.md5(b"one").hexdigest(), v1)
    marker = s3.delete_object(Bucket=name, Key="k")["VersionId"]
    with pytest.raises(Exception) as exc:
        _attrs(s3, name, "k", ["ObjectSize"])
    assert_client_error(exc, "NoSuchKey", 404)
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(Exception) as exc:
        _attrs(s3, name, "k", ["ObjectSize"], VersionId=marker)
    assert_client_error(exc, "MethodNotAllowed", 405)
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert _attrs(s3, name, "k", ["ObjectSize"], VersionId=v1)["ObjectSize"] == 3  # still readable by id
    s3.delete_object(Bucket=name, Key="k", VersionId=v2)
    with pytest.raises(Exception) as exc:
        _attrs(s3, name, "k", ["ObjectSize"], VersionId=v2)
    assert_client_error(exc, "NoSuchVersion", 404)


def test_null_version_by_id(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"abc")
    got = _attrs(s3, bucket, "k", ["ObjectSize"], VersionId="null")
    assert (got["ObjectSize"], got["VersionId"]) == (3, "null")


# -- errors and permissions ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", ",", "Bogus", "ETag,Bogus", "etag"])
def test_bad_attribute_names(server, s3, bucket, value):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    headers = {} if value is None else {"x-amz-object-attributes": value}
    resp = signed_request(server, "GET", key_path(bucket, "k"), query="attributes", headers=headers)
    assert_error(resp, "InvalidArgument", 400)


@pytest.mark.parametrize("header,value", [("x-amz-max-parts", "abc"), ("x-amz-max-parts", "-1"),
                                          ("x-amz-part-number-marker", "x")])
def test_bad_paging_headers(server, s3, bucket, header, value):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    resp = signed_request(server, "GET", key_path(bucket, "k"), query="attributes",
                          headers={"x-amz-object-attributes": "ObjectParts", header: value})
    assert_error(resp, "InvalidArgument", 400)


def test_missing_key_bucket_and_bad_version(s3, bucket):
    with pytest.raises(Exception) as exc:
        _attrs(s3, bucket, "nope")
    assert_client_error(exc, "NoSuchKey", 404)
    with pytest.raises(Exception) as exc:
        _attrs(s3, "no-such-bucket-attrs-0", "k")
    assert_client_error(exc, "NoSuchBucket", 404)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(Exception) as exc:
        _attrs(s3, bucket, "k", VersionId="not-a-version")
    assert_client_error(exc, "InvalidArgument", 400)


def test_anonymous_and_other_user_need_read_on_the_object(server, s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    path = key_path(bucket, "k")
    resp = signed_request(server, "GET", path, query="attributes", sign=False,
                          headers={"x-amz-object-attributes": "ObjectSize"})
    assert_error(resp, "AccessDenied", 403)
    with pytest.raises(Exception) as exc:
        _attrs(s3_other, bucket, "k")
    assert_client_error(exc, "AccessDenied", 403)
    # A missing key tells a caller who may not list the bucket nothing either.
    with pytest.raises(Exception) as exc:
        _attrs(s3_other, bucket, "missing")
    assert_client_error(exc, "AccessDenied", 403)
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert _attrs(s3_other, bucket, "k", ["ObjectSize"])["ObjectSize"] == 6
    resp = signed_request(server, "GET", path, query="attributes", sign=False,
                          headers={"x-amz-object-attributes": "ObjectSize"})
    assert resp.status_code == 200 and b"<ObjectSize>6</ObjectSize>" in resp.content
    assert anonymous(server, "GET", bucket, "k").content == b"secret"  # GetObject agrees


# -- server-side encryption ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3s(server):
    endpoint, verify, headers = _secure(server)
    client = _client(endpoint, verify, bool(headers))
    yield client
    client._endpoint.http_session.close()


def _ssec_b64(key: bytes) -> dict:
    """SSE-C parameters already encoded: botocore base64s the key (and adds its
    MD5) for GetObject and HeadObject, not for GetObjectAttributes."""
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": b64(key), "SSECustomerKeyMD5": md5_b64(key)}


def test_sse_c_needs_its_key(s3s, bucket):
    body = data(70_000, "ssec")
    s3s.put_object(Bucket=bucket, Key="k", Body=body, **ssec_args(K1))
    with pytest.raises(Exception) as exc:
        _attrs(s3s, bucket, "k")
    assert_client_error(exc, "InvalidRequest", 400)
    with pytest.raises(Exception) as exc:
        _attrs(s3s, bucket, "k", **_ssec_b64(K2))
    assert_client_error(exc, "AccessDenied", 403)
    got = _attrs(s3s, bucket, "k", ["ObjectSize", "ETag"], **_ssec_b64(K1))
    assert got["ObjectSize"] == len(body)
    assert got["ETag"] == s3s.head_object(Bucket=bucket, Key="k", **ssec_args(K1))["ETag"].strip('"')


def test_sse_s3_needs_nothing(s3, bucket):
    body = data(70_000, "sses3")
    s3.put_object(Bucket=bucket, Key="k", Body=body, ServerSideEncryption="AES256", ChecksumAlgorithm="CRC32")
    got = _attrs(s3, bucket, "k", ["ObjectSize", "Checksum"])
    assert got["ObjectSize"] == len(body)
    assert got["Checksum"]["ChecksumCRC32"] == checksum_b64("CRC32", body)
