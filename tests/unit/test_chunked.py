"""aws-chunked decoding against AWS's published example (sigv4-streaming docs)."""
from __future__ import annotations

import base64
import io
import zlib

import pytest

from bleepstore_app import errors
from bleepstore_app.auth.chunked import AwsChunkedReader
from bleepstore_app.auth.payload import VerifyingReader
from bleepstore_app.auth.sigv4 import SignedRequest, signing_key

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGS = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
              "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
              "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
PAYLOAD = b"a" * 66560
MODE = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def _signed() -> SignedRequest:
    return SignedRequest(access_key="AKIAIOSFODNN7EXAMPLE",
                         signing_key=signing_key(SECRET, "20130524", "us-east-1", "s3"),
                         scope="20130524/us-east-1/s3/aws4_request", amz_date="20130524T000000Z",
                         signature=SEED, payload_hash=MODE, presigned=False)


def _aws_example_body(sigs=CHUNK_SIGS) -> bytes:
    return (b"10000;chunk-signature=" + sigs[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=" + sigs[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=" + sigs[2].encode() + b"\r\n\r\n")


def _read_all(body: bytes, mode=MODE, trailers=(), checksums=None, length=len(PAYLOAD)) -> VerifyingReader:
    reader = VerifyingReader(AwsChunkedReader(io.BytesIO(body), mode, _signed(), trailers), length,
                             expected_checksums=checksums)
    assert reader.read_all() == PAYLOAD
    return reader


def test_chunked_aws_example_decodes_and_verifies():
    reader = _read_all(_aws_example_body())
    assert reader.md5_hex == __import__("hashlib").md5(PAYLOAD).hexdigest()


def test_chunked_bad_chunk_signature_is_signature_does_not_match():
    sigs = list(CHUNK_SIGS)
    sigs[1] = "0" * 64
    with pytest.raises(errors.SignatureDoesNotMatch):
        _read_all(_aws_example_body(sigs))


def test_chunked_bad_final_signature_is_rejected():
    sigs = list(CHUNK_SIGS)
    sigs[2] = "f" * 64
    with pytest.raises(errors.SignatureDoesNotMatch):
        _read_all(_aws_example_body(sigs))


def test_chunked_truncated_body_is_incomplete():
    with pytest.raises(errors.IncompleteBody):
        _read_all(_aws_example_body()[:66000])


def test_chunked_decoded_length_too_small_is_rejected():
    with pytest.raises(errors.IncompleteBody):
        reader = VerifyingReader(AwsChunkedReader(io.BytesIO(_aws_example_body()), MODE, _signed()), 1000)
        reader.read_all()


def test_unsigned_trailer_checksum_verified():
    crc = base64.b64encode(zlib.crc32(PAYLOAD).to_bytes(4, "big")).decode()
    body = (b"%x\r\n" % len(PAYLOAD) + PAYLOAD + b"\r\n0\r\n"
            + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    reader = _read_all(body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", ("x-amz-checksum-crc32",), {"CRC32": None})
    assert reader.checksums == {"CRC32": crc}


def test_unsigned_trailer_checksum_mismatch_is_bad_digest():
    body = (b"%x\r\n" % len(PAYLOAD) + PAYLOAD + b"\r\n0\r\n" + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    with pytest.raises(errors.BadDigest):
        _read_all(body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", ("x-amz-checksum-crc32",), {"CRC32": None})
