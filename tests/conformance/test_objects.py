"""Object operations: PutObject, GetObject, HeadObject, DeleteObject."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import socket
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from .helpers import (UNSIGNED_PAYLOAD, assert_client_error, assert_error, error_of, key_path, md5_hex,
                      raw_request_head, read_http_response, sign_headers, signed_request)

INLINE_MAX = 16 * 1024  # storage.inline_max_size default: objects up to this size live in the database


def blob_files(server) -> set[str]:
    """Every finished blob of the server's storage (local disk or gateway bucket)
    that outlives a pass of the sweeper: replaced and deleted data is deleted by
    the sweeper, not by the write that unlinked it."""
    server.sweep()
    return server.blobs()


def payload(size: int, seed: str = "") -> bytes:
    """Deterministic, non-repeating bytes (so an offset mix-up cannot go unnoticed)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- round trips ------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 1000, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, 1024 * 1024 + 7])
def test_put_object_get_object_round_trip(s3, bucket, size):
    data = payload(size, str(size))
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "binary/octet-stream"
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == size
    assert head["ETag"] == put["ETag"]
    assert abs((head["LastModified"] - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    assert s3.delete_object(Bucket=bucket, Key="obj")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="obj")
    assert_client_error(exc, "NoSuchKey", 404)


def stored_blobs(server, size: int) -> int:
    """How many blobs an object of this size takes: none when it is inlined in
    the database (up to the server's inline_max_size; gateway test servers turn
    inlining off so that every object reaches the cloud emulator)."""
    return 0 if size <= server.inline_max_size else 1


def test_put_object_small_is_stored_inline(server, s3, bucket):
    before = blob_files(server)
    data = payload(INLINE_MAX, "inline")
    s3.put_object(Bucket=bucket, Key="small", Body=data)
    assert len(blob_files(server) - before) == stored_blobs(server, INLINE_MAX), \
        "an object of inline_max_size bytes is kept in the database"
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="small", Range="bytes=100-199")["Body"].read() == data[100:200]


def test_put_object_large_is_stored_as_file_and_delete_removes_it(server, s3, bucket):
    before = blob_files(server)
    data = payload(INLINE_MAX + 1, "file")
    s3.put_object(Bucket=bucket, Key="large", Body=data)
    new = blob_files(server) - before
    assert len(new) == 1, "an object above inline_max_size is stored as one file"
    assert server.blob_bytes(new.pop()) == data, "the blob holds the raw bytes"
    assert s3.get_object(Bucket=bucket, Key="large")["Body"].read() == data
    s3.delete_object(Bucket=bucket, Key="large")
    assert blob_files(server) == before, "DeleteObject removes the file"


@pytest.mark.parametrize("first,second", [(100, 20000), (20000, 100), (20000, 30000), (100, 200)])
def test_put_object_overwrite_keeps_latest(server, s3, bucket, first, second):
    before = blob_files(server)
    old, new = payload(first, "old"), payload(second, "new")
    s3.put_object(Bucket=bucket, Key="k", Body=old, ContentType="text/old", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=new, ContentType="text/new", Metadata={"w": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == new
    assert got["ContentType"] == "text/new"
    assert got["Metadata"] == {"w": "2"}
    assert got["ETag"] == f'"{md5_hex(new)}"'
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", second)]
    assert len(blob_files(server) - before) == stored_blobs(server, second), "the replaced version's file is deleted"


def test_put_object_zero_bytes(server, s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""
    resp = signed_request(server, "GET", key_path(bucket, "empty"))
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "0"
    assert resp.content == b""


def test_put_object_without_body_raw(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket, "nobody"), headers={"Content-Length": "0"})
    assert resp.status_code == 200, resp.content
    assert resp.headers["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert s3.head_object(Bucket=bucket, Key="nobody")["ContentLength"] == 0


@pytest.mark.slow
def test_put_object_50mb(s3, bucket):
    data = os.urandom(50 * 1024 * 1024)
    put = s3.put_object(Bucket=bucket, Key="big/50mb.bin", Body=data)
    assert put["ETag"] == f'"{md5_hex(data)}"'
    got = s3.get_object(Bucket=bucket, Key="big/50mb.bin")
    assert got["ContentLength"] == len(data)
    body = got["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    start = 30 * 1024 * 1024 + 12345
    part = s3.get_object(Bucket=bucket, Key="big/50mb.bin", Range=f"bytes={start}-{start + 999_999}")
    assert part["ContentRange"] == f"bytes {start}-{start + 999_999}/{len(data)}"
    assert part["Body"].read() == data[start:start + 1_000_000]


# -- attributes --------------------------------------------------------------------

EXPIRES = dt.datetime(2031, 5, 17, 8, 30, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("size", [10, INLINE_MAX + 10])
def test_put_object_attributes_stored_and_returned(s3, bucket, size):
    data = payload(size)
    s3.put_object(
        Bucket=bucket, Key="attrs", Body=data,
        ContentType="text/plain; charset=utf-8",
        CacheControl="max-age=3600, must-revalidate",
        ContentDisposition='attachment; filename="report.txt"',
        ContentEncoding="identity",
        ContentLanguage="de-CH",
        Expires=EXPIRES,
        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces", "empty": ""},
        StorageClass="REDUCED_REDUNDANCY",
    )
    for resp in (s3.head_object(Bucket=bucket, Key="attrs"), s3.get_object(Bucket=bucket, Key="attrs")):
        assert resp["ContentType"] == "text/plain; charset=utf-8"
        assert resp["CacheControl"] == "max-age=3600, must-revalidate"
        assert resp["ContentDisposition"] == 'attachment; filename="report.txt"'
        assert resp["ContentEncoding"] == "identity"
        assert resp["ContentLanguage"] == "de-CH"
        assert resp["ExpiresString"] == "Sat, 17 May 2031 08:30:00 GMT"
        assert resp["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces", "empty": ""}
        assert resp["StorageClass"] == "REDUCED_REDUNDANCY"
        assert resp["ContentLength"] == size
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert listed["StorageClass"] == "REDUCED_REDUNDANCY"


def test_put_object_standard_storage_class_not_echoed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="std", Body=b"x", StorageClass="STANDARD")
    head = s3.head_object(Bucket=bucket, Key="std")
    assert "StorageClass" not in head  # S3 omits x-amz-storage-class for STANDARD
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"


# Unknown, or an AWS class naming a tier BleepStore does not have (one tier).
@pytest.mark.parametrize("storage_class", ["SUPER_FAST", "GLACIER", "STANDARD_IA"])
def test_put_object_invalid_storage_class(server, s3, bucket, storage_class):
    resp = signed_request(server, "PUT", key_path(bucket, "k"), body=b"x",
                          headers={"x-amz-storage-class": storage_class})
    assert_error(resp, "InvalidStorageClass", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_put_object_metadata_too_large(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="meta", Body=b"x", Metadata={"big": "v" * 2100})
    assert_client_error(exc, "MetadataTooLarge", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="meta")


def test_get_object_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ovr", Body=b"hello", ContentType="text/plain",
                  CacheControl="no-cache", ContentLanguage="en")
    got = s3.get_object(
        Bucket=bucket, Key="ovr",
        ResponseContentType="application/json",
        ResponseContentLanguage="fr-FR",
        ResponseExpires=EXPIRES,
        ResponseCacheControl="max-age=60",
        ResponseContentDisposition='inline; filename="x.json"',
        ResponseContentEncoding="identity",
    )
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "application/json"
    assert got["ContentLanguage"] == "fr-FR"
    assert got["ExpiresString"] == "Sat, 17 May 2031 08:30:00 GMT"
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'inline; filename="x.json"'
    assert got["ContentEncoding"] == "identity"
    # Overrides change this response only.
    assert s3.head_object(Bucket=bucket, Key="ovr")["ContentType"] == "text/plain"


def test_head_object_response_header_overrides(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="ovr", Body=b"hello", ContentType="text/plain")
    resp = signed_request(server, "HEAD", key_path(bucket, "ovr"),
                          query="response-content-type=image%2Fpng")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"


# -- ranges -----------------------------------------------------------------------------

RANGES = [
    ("bytes=0-0", 0, 1),
    ("bytes=0-9", 0, 10),
    ("bytes=10-19", 10, 20),
    ("bytes=100-", 100, None),
    ("bytes=-25", -25, None),
    ("bytes=50-50", 50, 51),
    ("bytes=90-5000000", 90, None),     # end past the object: clamped
    ("bytes=-5000000", 0, None),        # suffix longer than the object: whole object
]


@pytest.mark.parametrize("size", [300, INLINE_MAX + 300])
@pytest.mark.parametrize("spec,start,end", RANGES, ids=[r[0] for r in RANGES])
def test_get_object_range(s3, bucket, size, spec, start, end):
    data = payload(size, "range")
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    expected = data[start:end] if end is not None else data[start:]
    first = size + start if start < 0 else start
    got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert got["ContentLength"] == len(expected)
    assert got["Body"].read() == expected
    assert got["ETag"] == f'"{md5_hex(data)}"'


def test_head_object_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=payload(100))
    head = s3.head_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == 10
    assert head["ContentRange"] == "bytes 10-19/100"


@pytest.mark.parametrize("spec", ["bytes=100-", "bytes=100-200", "bytes=5000-", "bytes=-0"])
def test_get_object_range_unsatisfiable(server, s3, bucket, spec):
    s3.put_object(Bucket=bucket, Key="r", Body=payload(100))
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=spec)
    assert_client_error(exc, "InvalidRange", 416)
    resp = signed_request(server, "GET", key_path(bucket, "r"), headers={"Range": spec})
    fields = assert_error(resp, "InvalidRange", 416)
    assert fields.get("ActualObjectSize") == "100"
    assert resp.headers.get("Content-Range") == "bytes */100"


@pytest.mark.parametrize("spec", ["bytes=20-10", "lines=0-5", "bytes=abc", "bytes=0-1,5-6"])
def test_get_object_range_ignored_returns_whole_object(s3, bucket, spec):
    data = payload(100)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "ContentRange" not in got
    assert got["Body"].read() == data


@pytest.mark.parametrize("spec", [
    "bytes=0-",
    "bytes=0-0",
    "bytes=-1",
])
def test_get_object_range_on_empty_object(server, s3, bucket, spec):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    resp = signed_request(server, "GET", key_path(bucket, "empty"), headers={"Range": spec})
    if resp.status_code == 200:
        assert resp.content == b"" and "Content-Range" not in resp.headers
    else:
        assert_error(resp, "InvalidRange", 416)
        assert resp.headers.get("Content-Range") == "bytes */0"


# -- missing things ---------------------------------------------------------------------------

def test_head_object_missing_key_404_without_body(server, s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="nope")
    assert_client_error(exc, "404", 404)
    resp = signed_request(server, "HEAD", key_path(bucket, "nope"))
    assert resp.status_code == 404
    assert resp.content == b""
    assert resp.headers.get("x-amz-request-id")


def test_head_object_missing_bucket_404(s3):
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="missing-" + uuid.uuid4().hex[:16], Key="k")
    assert_client_error(exc, "404", 404)


def test_get_object_missing_key(server, s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/nope")
    assert_client_error(exc, "NoSuchKey", 404)
    fields = assert_error(signed_request(server, "GET", key_path(bucket, "dir/nope")), "NoSuchKey", 404)
    assert fields.get("Key") == "dir/nope"
    assert fields.get("Resource") == f"/{bucket}/dir/nope"


def test_get_object_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="missing-" + uuid.uuid4().hex[:16], Key="k")
    assert_client_error(exc, "NoSuchBucket", 404)


def test_put_object_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="missing-" + uuid.uuid4().hex[:16], Key="k", Body=b"x")
    assert_client_error(exc, "NoSuchBucket", 404)


def test_delete_object_missing_key_204(s3, bucket):
    resp = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_object_twice_204(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_object_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket="missing-" + uuid.uuid4().hex[:16], Key="k")
    assert_client_error(exc, "NoSuchBucket", 404)


# -- Content-MD5 and checksums ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [5, INLINE_MAX + 5])
def test_put_object_content_md5_correct(s3, bucket, size):
    data = payload(size)
    put = s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=content_md5(data))
    assert put["ETag"] == f'"{md5_hex(data)}"'
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == data


@pytest.mark.parametrize("size", [5, INLINE_MAX + 5])
def test_put_object_content_md5_wrong_bad_digest(server, s3, bucket, size):
    before = blob_files(server)
    data = payload(size)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=content_md5(b"something else"))
    assert_client_error(exc, "BadDigest", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="md5")
    assert_client_error(exc, "404", 404)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert blob_files(server) == before, "no file is left behind by a rejected upload"


@pytest.mark.parametrize("size", [5, INLINE_MAX + 5])
def test_put_object_content_md5_wrong_keeps_previous_version(s3, bucket, size):
    old = payload(size, "old")
    s3.put_object(Bucket=bucket, Key="md5", Body=old, Metadata={"gen": "1"})
    new = payload(size, "new")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=new, ContentMD5=content_md5(old), Metadata={"gen": "2"})
    assert_client_error(exc, "BadDigest", 400)
    got = s3.get_object(Bucket=bucket, Key="md5")
    assert got["Body"].read() == old
    assert got["Metadata"] == {"gen": "1"}


@pytest.mark.parametrize("value", ["not-base64!!", "YWJj", base64.b64encode(b"x" * 17).decode(), ""])
def test_put_object_content_md5_malformed_invalid_digest(server, s3, bucket, value):
    resp = signed_request(server, "PUT", key_path(bucket, "md5"), body=b"data",
                          headers={"Content-MD5": value})
    assert_error(resp, "InvalidDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="md5")


def test_put_object_checksum_crc32_and_sha256_returned(s3, bucket):
    data = payload(1000)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="c1", Body=data, ChecksumCRC32=crc)
    assert put["ChecksumCRC32"] == crc
    put = s3.put_object(Bucket=bucket, Key="c2", Body=data, ChecksumSHA256=sha)
    assert put["ChecksumSHA256"] == sha
    head = s3.head_object(Bucket=bucket, Key="c2", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == sha
    got = s3.get_object(Bucket=bucket, Key="c1", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc
    assert got["Body"].read() == data


@pytest.mark.parametrize("algorithm", ["crc32", "sha256"])
def test_put_object_checksum_wrong_bad_digest(server, s3, bucket, algorithm):
    wrong = {"crc32": base64.b64encode(b"\0\0\0\0").decode(),
             "sha256": base64.b64encode(hashlib.sha256(b"other").digest()).decode()}[algorithm]
    resp = signed_request(server, "PUT", key_path(bucket, "ck"), body=b"payload",
                          headers={f"x-amz-checksum-{algorithm}": wrong})
    assert_error(resp, "BadDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="ck")


# -- keys --------------------------------------------------------------------------------------------------

KEYS = [
    "with space",
    "  leading and trailing spaces  ",
    "ünïcödé/中文/ファイル/😀.txt",
    "plus+sign+",
    "percent%20literal%",
    "percent%2Fslash",
    "double//slash",
    "trailing/",
    "/leading-slash",
    "question?mark",
    "hash#tag",
    "amp&and=equals",
    "semi;colon,comma",
    "tilde~and'quote\"",
    "brackets[]{}()<>",
    "at@dollar$caret^pipe|backslash\\",
    "star*bang!",
    "tab\tkey",
    "cr\rkey",
    "newline\nkey",
    "xml&lt;entity",
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_put_object_special_keys(s3, bucket, key):
    data = key.encode("utf-8") * 3
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(data)
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_object_keys_differing_only_in_slashes_are_distinct(s3, bucket):
    keys = ["a/b", "a//b", "a/b/", "/a/b", "a%2Fb"]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    for i, key in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == str(i).encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(keys)


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512, "中" * 341 + "x"], ids=["ascii", "2-byte", "3-byte"])
def test_put_object_key_1024_bytes(s3, bucket, key):
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b"max")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"max"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "x", "中" * 342], ids=["ascii", "2-byte", "3-byte"])
def test_put_object_key_too_long(s3, bucket, key):
    assert len(key.encode()) > 1024
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key=key, Body=b"too long")
    assert_client_error(exc, "KeyTooLongError", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_object_raw_percent_encoded_key(server, s3, bucket):
    """The key is the percent-decoded path: %2B is '+', '+' stays '+'."""
    resp = signed_request(server, "PUT", f"/{bucket}/a%2Bb+c%20d%25e", body=b"raw")
    assert resp.status_code == 200, resp.content
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a+b+c d%e"]
    assert s3.get_object(Bucket=bucket, Key="a+b+c d%e")["Body"].read() == b"raw"


def test_get_object_unknown_query_parameter_ignored(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"value")
    resp = signed_request(server, "GET", key_path(bucket, "k"), query="foo=bar&x-id=GetObject")
    assert resp.status_code == 200
    assert resp.content == b"value"


# -- concurrency ---------------------------------------------------------------------------------------------

def test_put_object_concurrent_overwrites_leave_one_consistent_version(server, s3, bucket):
    """Writers racing on one key (inline and file-sized bodies mixed): the survivor is one
    whole version, and every replaced file is gone."""
    before = blob_files(server)
    bodies = [payload(100 + i, f"w{i}") if i % 2 else payload(INLINE_MAX + 100 + i, f"w{i}") for i in range(24)]
    by_etag = {f'"{md5_hex(b)}"': b for b in bodies}
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda b: s3.put_object(Bucket=bucket, Key="race", Body=b), bodies))
    got = s3.get_object(Bucket=bucket, Key="race")
    data = got["Body"].read()
    assert got["ETag"] in by_etag
    assert data == by_etag[got["ETag"]]
    left = blob_files(server) - before
    assert len(left) == stored_blobs(server, len(data)), "replaced versions' files are deleted"


def test_get_object_during_overwrites_is_never_torn(s3, bucket):
    bodies = [payload(INLINE_MAX * 4 + i, f"v{i}") if i % 2 else payload(50 + i, f"v{i}") for i in range(10)]
    by_etag = {f'"{md5_hex(b)}"': b for b in bodies}
    s3.put_object(Bucket=bucket, Key="hot", Body=bodies[0])

    def writer():
        for b in bodies[1:] * 2:
            s3.put_object(Bucket=bucket, Key="hot", Body=b)

    def reader(_):
        out = []
        for _ in range(15):
            got = s3.get_object(Bucket=bucket, Key="hot")
            out.append((got["ETag"], got["Body"].read()))
        return out

    with ThreadPoolExecutor(5) as pool:
        w = pool.submit(writer)
        reads = [r for chunk in pool.map(reader, range(4)) for r in chunk]
        w.result()
    for etag, data in reads:
        assert etag in by_etag
        assert data == by_etag[etag], "a GET returns exactly the version its ETag names"


def test_put_object_entity_too_large(server, s3, bucket):
    """A declared Content-Length above the 5 GiB single-PUT limit is refused up front."""
    path = key_path(bucket, "huge")
    size = 5 * 1024 ** 3 + 1
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", payload_hash=UNSIGNED_PAYLOAD,
                           headers={"Content-Length": str(size)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw_request_head("PUT", path, headers) + b"x" * 1000)
        status, _, body, _ = read_http_response(sock)
    assert status == 400
    fields = error_of(body)
    assert fields["Code"] == "EntityTooLarge"
    assert fields.get("ProposedSize") == str(size)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="huge")
