"""Unit tests for bleepstore_app.auth.payload: self-verifying request bodies.

Checksums are compared with botocore's own implementations
(botocore.httpchecksum) and with the published "123456789" check values.
"""
from __future__ import annotations

import base64
import hashlib
import io

import pytest
from botocore import httpchecksum

from bleepstore_app import errors
from bleepstore_app.auth.payload import (CHECKSUM_ALGORITHMS, VerifyingReader, decode_content_md5,
                                         new_checksum)

ORACLES = {
    "CRC32": httpchecksum.Crc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}

BODIES = [b"", b"a", b"123456789", b"hello world\n" * 1000, bytes(range(256)) * 300]


def oracle(algorithm: str, data: bytes) -> str:
    c = ORACLES[algorithm]()
    c.update(data)
    return c.b64digest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def read_in_chunks(reader: VerifyingReader, size: int) -> bytes:
    out = []
    while chunk := reader.read(size):
        out.append(chunk)
    return b"".join(out)


class TrickleSource:
    """A source that hands out at most ``step`` bytes per read (like a socket)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._pos = data, step, 0

    def read(self, n: int = -1) -> bytes:
        n = self._step if n is None or n < 0 else min(n, self._step)
        chunk = self._data[self._pos:self._pos + n]
        self._pos += len(chunk)
        return chunk


# --- plain reading and MD5 ------------------------------------------------------

@pytest.mark.parametrize("body", BODIES, ids=lambda b: f"len{len(b)}")
def test_verifying_reader_md5_hex(body):
    reader = VerifyingReader(io.BytesIO(body), len(body))
    assert reader.read_all() == body
    assert reader.md5_hex == hashlib.md5(body).hexdigest()


def test_verifying_reader_small_reads_and_trickle_source():
    body = b"0123456789" * 1000
    reader = VerifyingReader(TrickleSource(body, 7), len(body), content_md5=hashlib.md5(body).digest(),
                             expected_sha256=hashlib.sha256(body).hexdigest())
    assert read_in_chunks(reader, 3) == body
    assert reader.md5_hex == hashlib.md5(body).hexdigest()


def test_verifying_reader_stops_at_length():
    source = io.BytesIO(b"abcdefXYZ")
    reader = VerifyingReader(source, 6)
    assert reader.read_all() == b"abcdef"
    assert reader.md5_hex == hashlib.md5(b"abcdef").hexdigest()
    assert source.read() == b"XYZ"  # the rest of the stream is untouched


def test_verifying_reader_read_minus_one_reads_remaining():
    reader = VerifyingReader(io.BytesIO(b"abc"), 3)
    assert reader.read(-1) == b"abc"
    assert reader.read(-1) == b""


def test_verifying_reader_empty_body_verifies():
    reader = VerifyingReader(io.BytesIO(b""), 0, content_md5=hashlib.md5(b"").digest(),
                             expected_sha256=hashlib.sha256(b"").hexdigest())
    assert reader.read() == b""
    assert reader.md5_hex == "d41d8cd98f00b204e9800998ecf8427e"


def test_verifying_reader_read_zero_returns_empty():
    reader = VerifyingReader(io.BytesIO(b"abc"), 3)
    assert reader.read(0) == b""
    assert reader.read_all() == b"abc"


# --- truncated input -------------------------------------------------------------

@pytest.mark.parametrize("sent, length", [(b"", 1), (b"abc", 4), (b"a" * 100, 1000)])
def test_verifying_reader_truncated_input_incomplete_body(sent, length):
    reader = VerifyingReader(io.BytesIO(sent), length)
    with pytest.raises(errors.IncompleteBody) as exc:
        reader.read_all()
    assert exc.value.status == 400
    assert exc.value.code == "IncompleteBody"


def test_verifying_reader_truncated_input_after_partial_reads():
    reader = VerifyingReader(io.BytesIO(b"abcdef"), 10)
    assert reader.read(4) == b"abcd"
    assert reader.read(4) == b"ef"
    with pytest.raises(errors.IncompleteBody):
        reader.read(4)


# --- x-amz-content-sha256 --------------------------------------------------------

def test_verifying_reader_sha256_match():
    body = b"Welcome to Amazon S3."
    reader = VerifyingReader(io.BytesIO(body), len(body),
                             expected_sha256="44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
    assert reader.read_all() == body


def test_verifying_reader_sha256_mismatch():
    body = b"Welcome to Amazon S3!"
    claimed = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    reader = VerifyingReader(io.BytesIO(body), len(body), expected_sha256=claimed)
    with pytest.raises(errors.XAmzContentSHA256Mismatch) as exc:
        reader.read_all()
    assert exc.value.status == 400
    assert exc.value.fields == {"ClientComputedContentSHA256": claimed,
                                "S3ComputedContentSHA256": hashlib.sha256(body).hexdigest()}


def test_verifying_reader_sha256_mismatch_only_at_end():
    body = b"x" * 100
    reader = VerifyingReader(io.BytesIO(body), len(body), expected_sha256="0" * 64)
    assert reader.read(100) == body  # no verdict until the end is seen
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        reader.read(1)


def test_verifying_reader_error_raised_once():
    reader = VerifyingReader(io.BytesIO(b"x"), 1, expected_sha256="0" * 64)
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        reader.read_all()
    assert reader.read() == b""  # verified already; no second verdict


# --- Content-MD5 -------------------------------------------------------------------

def test_verifying_reader_content_md5_match():
    body = b"hello"
    reader = VerifyingReader(io.BytesIO(body), len(body), content_md5=decode_content_md5(md5_b64(body)))
    assert reader.read_all() == body


def test_verifying_reader_content_md5_mismatch_bad_digest():
    body = b"hello"
    claimed = md5_b64(b"hellp")
    reader = VerifyingReader(io.BytesIO(body), len(body), content_md5=decode_content_md5(claimed))
    with pytest.raises(errors.BadDigest) as exc:
        reader.read_all()
    assert exc.value.status == 400
    assert exc.value.fields == {"ExpectedDigest": claimed, "CalculatedDigest": md5_b64(body)}


def test_decode_content_md5_valid():
    assert decode_content_md5("XUFAKrxLKna5cZ2REBfFkg==") == hashlib.md5(b"hello").digest()


@pytest.mark.parametrize("value", [
    "", "not base64!", "XUFAKrxLKna5cZ2REBfFkg", "XUFAKrxLKna5cZ2REBfFkg=",
    base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 17).decode(),
    hashlib.md5(b"hello").hexdigest(),  # hex, not base64 of the digest
    "XUFAKrxLKna5cZ2R EBfFkg==",
])
def test_decode_content_md5_invalid(value):
    with pytest.raises(errors.InvalidDigest) as exc:
        decode_content_md5(value)
    assert exc.value.status == 400


def test_decode_content_md5_invalid_reports_value():
    with pytest.raises(errors.InvalidDigest) as exc:
        decode_content_md5("@@@")
    assert exc.value.fields == {"Content-MD5": "@@@"}


# --- flexible checksums --------------------------------------------------------------

@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
@pytest.mark.parametrize("body", BODIES, ids=lambda b: f"len{len(b)}")
def test_verifying_reader_checksum_computed_matches_botocore(algorithm, body):
    reader = VerifyingReader(TrickleSource(body, 4093), len(body), expected_checksums={algorithm: None})
    assert read_in_chunks(reader, 1000) == body
    assert reader.checksums == {algorithm: oracle(algorithm, body)}


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_verifying_reader_checksum_expected_match(algorithm):
    body = b"The quick brown fox jumps over the lazy dog"
    value = oracle(algorithm, body)
    reader = VerifyingReader(io.BytesIO(body), len(body), expected_checksums={algorithm: value})
    assert reader.read_all() == body
    assert reader.checksums[algorithm] == value


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_verifying_reader_checksum_mismatch_bad_digest(algorithm):
    body = b"The quick brown fox jumps over the lazy dog"
    wrong = oracle(algorithm, body + b".")
    reader = VerifyingReader(io.BytesIO(body), len(body), expected_checksums={algorithm: wrong})
    with pytest.raises(errors.BadDigest) as exc:
        reader.read_all()
    assert exc.value.message == f"The {algorithm} you specified did not match the calculated checksum."
    assert algorithm not in reader.checksums


@pytest.mark.parametrize("algorithm, expected_int, width", [
    ("CRC32", 0xCBF43926, 4),
    ("CRC32C", 0xE3069283, 4),
    ("CRC64NVME", 0xAE8B14860A799888, 8),
])
def test_new_checksum_check_values_123456789(algorithm, expected_int, width):
    hasher = new_checksum(algorithm)
    hasher.update(b"1234")
    hasher.update(b"56789")
    assert hasher.digest() == expected_int.to_bytes(width, "big")


def test_new_checksum_sha_digests():
    for algorithm, ref in (("SHA1", hashlib.sha1), ("SHA256", hashlib.sha256)):
        hasher = new_checksum(algorithm)
        hasher.update(b"abc")
        assert hasher.digest() == ref(b"abc").digest()


@pytest.mark.parametrize("algorithm", ["MD5", "crc32", "SHA512", "XXHASH64", ""])
def test_new_checksum_unknown_algorithm(algorithm):
    with pytest.raises(errors.InvalidRequest) as exc:
        new_checksum(algorithm)
    assert algorithm in exc.value.message


def test_new_checksum_empty_crc_is_zero():
    assert base64.b64encode(new_checksum("CRC32").digest()).decode() == "AAAAAA=="
    assert base64.b64encode(new_checksum("CRC64NVME").digest()).decode() == "AAAAAAAAAAA="


def test_verifying_reader_checksum_value_filled_in_later():
    """A trailer-supplied value may be set on expected_checksums after construction."""
    body = b"trailer body"
    reader = VerifyingReader(io.BytesIO(body), len(body), expected_checksums={"CRC32C": None})
    assert reader.read(len(body)) == body
    reader.expected_checksums["CRC32C"] = oracle("CRC32C", b"other")
    with pytest.raises(errors.BadDigest):
        reader.read()


def test_verifying_reader_all_checks_pass_together():
    body = b"all together now" * 100
    reader = VerifyingReader(
        io.BytesIO(body), len(body), content_md5=hashlib.md5(body).digest(),
        expected_sha256=hashlib.sha256(body).hexdigest(),
        expected_checksums={"CRC32": oracle("CRC32", body), "SHA1": None})
    assert reader.read_all() == body
    assert reader.checksums == {"CRC32": oracle("CRC32", body), "SHA1": oracle("SHA1", body)}
