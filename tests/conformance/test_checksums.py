"""Flexible checksums on PutObject / GetObject / HeadObject (x-amz-checksum-*).

AWS S3 User Guide "Checking object integrity"; API Reference PutObject (ChecksumAlgorithm,
x-amz-checksum-crc32/-crc32c/-crc64nvme/-sha1/-sha256), GetObject/HeadObject (ChecksumMode).
"""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import (LARGE, SMALL, assert_error, checksum_b64, content_md5, describe, md5_etag,
                             object_path, raw)

ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["inline", "file"])


def _response_checksum(resp: dict, algorithm: str):
    return resp.get(f"Checksum{algorithm}")


@SIZES
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_object_checksum_algorithm_stored_and_returned(s3, bucket, algorithm, size):
    data = os.urandom(size)
    expected = checksum_b64(algorithm, data)
    sent = {}

    def capture(request, **_):
        sent.update({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
    s3.meta.events.register("before-send.s3.PutObject", capture)
    try:
        put = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    finally:
        s3.meta.events.unregister("before-send.s3.PutObject", capture)
    # boto3 over plain http sends the checksum as a header (not as an aws-chunked trailer).
    assert sent.get(f"x-amz-checksum-{algorithm.lower()}") == expected, sent
    assert put["ETag"] == md5_etag(data)
    assert _response_checksum(put, algorithm) == expected

    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert _response_checksum(got, algorithm) == expected
    assert got["ResponseMetadata"]["HTTPHeaders"][f"x-amz-checksum-{algorithm.lower()}"] == expected

    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert _response_checksum(head, algorithm) == expected
    # Only the algorithm that was uploaded is reported.
    for other in ALGORITHMS:
        if other != algorithm:
            assert _response_checksum(head, other) is None, head


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_get_object_without_checksum_mode_has_no_checksum_header(server, s3, bucket, algorithm, method):
    # Raw request: boto3 >= 1.36 adds x-amz-checksum-mode: ENABLED to GetObject by itself.
    # AWS GetObject/HeadObject: "To retrieve the checksum, this mode must be enabled."
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ChecksumAlgorithm=algorithm)
    resp = raw(server, method, object_path(bucket, "k"))
    assert resp.status_code == 200, describe(resp)
    assert {h: v for h, v in resp.headers.items() if h.lower().startswith("x-amz-checksum-")} == {}
    enabled = raw(server, method, object_path(bucket, "k"), headers={"x-amz-checksum-mode": "ENABLED"})
    assert enabled.headers.get(f"x-amz-checksum-{algorithm.lower()}") == checksum_b64(algorithm, b"data")


def test_put_object_default_checksum_crc32_boto3(s3, bucket):
    # boto3 >= 1.36 computes a CRC32 for PutObject by default (request_checksum_calculation
    # = when_supported).
    data = b"default checksum"
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == checksum_b64("CRC32", data)


def test_head_object_checksum_type_full_object(s3, bucket):
    # AWS returns x-amz-checksum-type: FULL_OBJECT for a single-part upload's checksum.
    s3.put_object(Bucket=bucket, Key="k", Body=b"typed", ChecksumAlgorithm="CRC32C")
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32C") == checksum_b64("CRC32C", b"typed")
    assert head.get("ChecksumType") == "FULL_OBJECT", sorted(head["ResponseMetadata"]["HTTPHeaders"])


@SIZES
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_object_checksum_header_raw(server, s3, bucket, algorithm, size):
    data = os.urandom(size)
    value = checksum_b64(algorithm, data)
    resp = raw(server, "PUT", object_path(bucket, "k"), body=data,
               headers={f"x-amz-checksum-{algorithm.lower()}": value})
    assert resp.status_code == 200, describe(resp)
    assert resp.headers.get(f"x-amz-checksum-{algorithm.lower()}") == value
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert _response_checksum(head, algorithm) == value


@SIZES
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_object_wrong_checksum_bad_digest_nothing_stored(server, s3, bucket, algorithm, size):
    data = os.urandom(size)
    resp = raw(server, "PUT", object_path(bucket, "new"), body=data,
               headers={f"x-amz-checksum-{algorithm.lower()}": checksum_b64(algorithm, data + b"!")})
    fields = assert_error(resp, "BadDigest", 400)
    # AWS: "The CRC32 you specified did not match the calculated checksum."
    assert f"{algorithm} you specified did not match the calculated checksum" in fields.get("Message", ""), fields
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@SIZES
def test_put_object_wrong_crc32_keeps_previous_version(server, s3, bucket, size):
    old = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=old)
    data = os.urandom(size)
    resp = raw(server, "PUT", object_path(bucket, "k"), body=data,
               headers={"x-amz-checksum-crc32": checksum_b64("CRC32", b"something else")})
    assert_error(resp, "BadDigest", 400)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == old
    assert got["ETag"] == md5_etag(old)


def test_put_object_two_checksum_headers_invalid_request(server, s3, bucket):
    data = b"two checksums"
    resp = raw(server, "PUT", object_path(bucket, "k"), body=data,
               headers={"x-amz-checksum-crc32": checksum_b64("CRC32", data),
                        "x-amz-checksum-sha256": checksum_b64("SHA256", data)})
    # AWS: 400 InvalidRequest "Expecting a single x-amz-checksum- header. Multiple checksum Types
    # are not allowed."
    assert_error(resp, "InvalidRequest", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_object_malformed_checksum_value_invalid_request(server, s3, bucket):
    # AWS: 400 InvalidRequest "Value for x-amz-checksum-crc32 header is invalid." (not base64 of 4 bytes)
    resp = raw(server, "PUT", object_path(bucket, "k"), body=b"x",
               headers={"x-amz-checksum-crc32": "not-a-checksum"})
    assert_error(resp, "InvalidRequest", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_object_checksum_and_content_md5_both_correct(server, s3, bucket):
    data = os.urandom(LARGE)
    resp = raw(server, "PUT", object_path(bucket, "k"), body=data,
               headers={"x-amz-checksum-sha1": checksum_b64("SHA1", data), "Content-MD5": content_md5(data)})
    assert resp.status_code == 200, describe(resp)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_put_object_wrong_checksum_boto3_client_error(s3, bucket):
    # A boto3 user supplying a precomputed (wrong) ChecksumCRC32 gets BadDigest.
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ChecksumCRC32=checksum_b64("CRC32", b"other"))
    assert (exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("BadDigest", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
