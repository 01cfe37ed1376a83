"""aws-chunked request bodies (Content-Encoding: aws-chunked), hand-built.

AWS S3 API Reference: "Signature Calculations for the Authorization Header: Transferring
Payload in Multiple Chunks (Chunked Upload)" (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and
"... Including Trailing Headers" (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER,
STREAMING-UNSIGNED-PAYLOAD-TRAILER). The signer lives in support_issue4.py.
"""
from __future__ import annotations

import os

import pytest

from .support_issue4 import (SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER, ChunkSigner, checksum_b64,
                             encode_aws_chunked, md5_etag, streaming_put, xml_error)

MODES = pytest.mark.parametrize("mode", [SIGNED, UNSIGNED_TRAILER, SIGNED_TRAILER],
                                ids=["signed", "unsigned-trailer", "signed-trailer"])
SIGNED_MODES = pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER], ids=["signed", "signed-trailer"])
TRAILER_MODES = pytest.mark.parametrize("mode", [UNSIGNED_TRAILER, SIGNED_TRAILER],
                                        ids=["unsigned-trailer", "signed-trailer"])
# (size, chunk size): inline (several small chunks) and a 3 MiB file in 64 KiB chunks.
SHAPES = pytest.mark.parametrize("size,chunk", [(5000, 1024), (3 * 1024 * 1024 + 17, 64 * 1024)],
                                 ids=["inline", "file-3MiB"])


def _keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _err(status, body):
    return (status, xml_error(body).get("Code") if body else None)


@MODES
@SHAPES
def test_put_object_aws_chunked_stores_decoded_payload(s3, server, bucket, mode, size, chunk):
    data = os.urandom(size)
    status, headers, body = streaming_put(server, bucket, "k", data, mode, chunk_size=chunk)
    assert status == 200, body
    assert headers["etag"] == md5_etag(data)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["ContentLength"] == size
    assert got["ETag"] == md5_etag(data)
    assert got["Body"].read() == data
    # aws-chunked is a transfer detail: it must not be stored as the object's Content-Encoding.
    assert "ContentEncoding" not in got, got.get("ContentEncoding")


@TRAILER_MODES
def test_put_object_aws_chunked_trailer_checksum_stored(s3, server, bucket, mode):
    data = os.urandom(40000)
    status, headers, body = streaming_put(server, bucket, "k", data, mode, chunk_size=8192,
                                          trailer_algorithm="CRC32")
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == checksum_b64("CRC32", data)


@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA256", "CRC64NVME"])
def test_put_object_aws_chunked_unsigned_trailer_other_algorithms(s3, server, bucket, algorithm):
    data = os.urandom(20000)
    status, _h, body = streaming_put(server, bucket, "k", data, UNSIGNED_TRAILER, chunk_size=8192,
                                     trailer_algorithm=algorithm)
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head.get(f"Checksum{algorithm}") == checksum_b64(algorithm, data)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_put_object_aws_chunked_with_gzip_keeps_gzip_encoding(s3, server, bucket):
    # "Content-Encoding: aws-chunked,gzip": S3 strips aws-chunked and stores gzip.
    data = os.urandom(3000)
    status, _h, body = streaming_put(server, bucket, "k", data, SIGNED, chunk_size=1024,
                                     extra_headers={"Content-Encoding": "aws-chunked,gzip"})
    assert status == 200, body
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got.get("ContentEncoding") == "gzip"
    assert got["Body"].read() == data


def test_put_object_aws_chunked_empty_payload(s3, server, bucket):
    status, headers, body = streaming_put(server, bucket, "empty", b"", SIGNED)
    assert status == 200, body
    assert headers["etag"] == md5_etag(b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0 and got["Body"].read() == b""


@MODES
def test_put_object_aws_chunked_http_transfer_encoding_chunked(s3, server, bucket, mode):
    data = os.urandom(1024 * 1024 + 5)
    status, headers, body = streaming_put(server, bucket, "te", data, mode, chunk_size=64 * 1024,
                                          transfer_encoding_chunked=True)
    assert status == 200, body
    assert headers["etag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="te")["Body"].read() == data


# -- errors ---------------------------------------------------------------------------------------

@SIGNED_MODES
@SHAPES
@pytest.mark.parametrize("where", ["first", "last-data", "final"])
def test_put_object_aws_chunked_bad_chunk_signature(s3, server, bucket, mode, size, chunk, where):
    data = os.urandom(size)
    n_chunks = -(-size // chunk)
    index = {"first": 0, "last-data": n_chunks - 1, "final": n_chunks}[where]
    status, _h, body = streaming_put(server, bucket, "k", data, mode, chunk_size=chunk, tamper_chunk=index)
    assert _err(status, body) == (403, "SignatureDoesNotMatch")
    assert _keys(s3, bucket) == []


@SHAPES
def test_put_object_aws_chunked_bad_chunk_signature_keeps_previous(s3, server, bucket, size, chunk):
    old = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=old)
    status, _h, body = streaming_put(server, bucket, "k", os.urandom(size), SIGNED, chunk_size=chunk,
                                     tamper_chunk=1)
    assert _err(status, body) == (403, "SignatureDoesNotMatch")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == old


def test_put_object_aws_chunked_bad_trailer_signature(s3, server, bucket):
    data = os.urandom(10000)
    status, _h, body = streaming_put(server, bucket, "k", data, SIGNED_TRAILER, chunk_size=4096,
                                     tamper_trailer_signature=True)
    assert _err(status, body) == (403, "SignatureDoesNotMatch")
    assert _keys(s3, bucket) == []


def _tail_length(mode: str) -> int:
    """Bytes of the final zero-size chunk (and trailer, and closing CRLF) in ``mode``."""
    trailer = [("x-amz-checksum-crc32", "AAAAAA==")] if mode.endswith("-TRAILER") else None
    return len(encode_aws_chunked(b"", mode, 1024, signer=ChunkSigner("0" * 64, "20000101T000000Z"),
                                  trailer=trailer))


@MODES
@SHAPES
@pytest.mark.parametrize("cut", ["no-final-chunk", "mid-data"])
def test_put_object_aws_chunked_truncated_body(s3, server, bucket, mode, size, chunk, cut):
    # The aws-chunked stream ends early (Content-Length matches what is sent): either right
    # after the last data chunk (no zero-size chunk, no trailer) or in the middle of the data.
    # AWS answers a 4xx (IncompleteBody), and nothing is stored.
    data = os.urandom(size)
    tail = _tail_length(mode)
    status, _h, body = streaming_put(server, bucket, "k", data, mode, chunk_size=chunk,
                                     truncate=tail if cut == "no-final-chunk" else tail + 100)
    assert 400 <= status < 500, (status, body)
    assert _keys(s3, bucket) == []


@MODES
@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_put_object_aws_chunked_wrong_decoded_content_length(s3, server, bucket, mode, delta):
    data = os.urandom(5000)
    status, _h, body = streaming_put(server, bucket, "k", data, mode, chunk_size=1024,
                                     decoded_length=len(data) + delta)
    assert 400 <= status < 500, (status, body)
    assert _keys(s3, bucket) == []


@TRAILER_MODES
@SHAPES
def test_put_object_aws_chunked_wrong_trailer_checksum_bad_digest(s3, server, bucket, mode, size, chunk):
    data = os.urandom(size)
    status, _h, body = streaming_put(server, bucket, "k", data, mode, chunk_size=chunk,
                                     trailer_value=checksum_b64("CRC32", data + b"x"))
    assert _err(status, body) == (400, "BadDigest")
    assert _keys(s3, bucket) == []


@TRAILER_MODES
def test_put_object_aws_chunked_wrong_trailer_checksum_keeps_previous(s3, server, bucket, mode):
    old = os.urandom(30000)
    s3.put_object(Bucket=bucket, Key="k", Body=old)
    status, _h, body = streaming_put(server, bucket, "k", os.urandom(30000), mode, chunk_size=8192,
                                     trailer_value=checksum_b64("CRC32", b"nope"))
    assert _err(status, body) == (400, "BadDigest")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == old


def test_put_object_aws_chunked_wrong_secret_signature_does_not_match(s3, server, bucket):
    from ..servers import ACCESS_KEY
    status, _h, body = streaming_put(server, bucket, "k", os.urandom(5000), SIGNED, chunk_size=1024,
                                     access_key=ACCESS_KEY, secret_key="wrong-secret")
    assert _err(status, body) == (403, "SignatureDoesNotMatch")
    assert _keys(s3, bucket) == []
