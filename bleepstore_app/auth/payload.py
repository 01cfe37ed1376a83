"""Request bodies that verify themselves while they stream.

``VerifyingReader`` wraps the decoded body (the socket input, or the aws-chunked
decoder) and computes, in the one pass that feeds storage, the MD5 for the ETag,
the SHA-256 when the payload hash is signed, and any flexible checksum. When the
input ends it checks the length, Content-MD5, payload hash and checksums and
raises the S3 error on a mismatch — before the storage backend makes the blob
durable, so a bad body leaves nothing behind.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import zlib


from .. import errors
from ..cooperative import native_thread_pool

CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
# Reads at least this large are hashed in a native thread while the caller stores
# them and reads the next one (hashlib releases the GIL): MD5 alone runs at about
# 760 MB/s on one core, which would otherwise cap a single upload stream. Smaller
# reads are hashed in line, where a thread hop would cost more than it saves.
PARALLEL_HASH_MIN = 256 * 1024


class _Crc:
    """hashlib-like wrapper over a CRC function (value, bytes) -> value."""

    def __init__(self, fn, width: int) -> None:
        self._fn, self._width, self._value = fn, width, 0

    def update(self, data) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def new_checksum(algorithm: str):
    """A fresh hasher for one of CHECKSUM_ALGORITHMS."""
    if algorithm == "CRC32":
        return _Crc(lambda d, v: zlib.crc32(d, v), 4)
    if algorithm in ("CRC32C", "CRC64NVME"):
        # awscrt (about 5 MB of native code) is loaded by the first request that needs it:
        # most clients send CRC32 or nothing, and an idle worker stays small.
        from awscrt import checksums as crt
        return _Crc(crt.crc32c, 4) if algorithm == "CRC32C" else _Crc(crt.crc64nvme, 8)
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise errors.InvalidRequest(f"Value for x-amz-checksum-algorithm header is invalid: {algorithm}")


DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}


def check_checksum_value(algorithm: str, value: str) -> str:
    """A sent checksum must be base64 of a digest of the algorithm's size."""
    try:
        ok = len(base64.b64decode(value, validate=True)) == DIGEST_SIZES[algorithm]
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise errors.InvalidRequest(f"Value for x-amz-checksum-{algorithm.lower()} header is invalid.")
    return value


def decode_content_md5(value: str) -> bytes:
    """Content-MD5 is base64 of the 16-byte digest; anything else is InvalidDigest."""
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidDigest(**{"Content-MD5": value}) from None
    if len(digest) != 16:
        raise errors.InvalidDigest()
    return digest


class VerifyingReader:
    """A bounded reader over ``source`` that hashes as it goes and verifies at the end.

    ``expected_sha256`` is a hex digest or None; ``expected_checksums`` maps an
    algorithm to its base64 value, or to None to compute one without checking it
    (the value may be filled in later, e.g. from an aws-chunked trailer).
    ``check_sha256`` is called with the body's hex SHA-256 before any other check
    (a signature over the body, when the signer sent no x-amz-content-sha256).

    ``length`` None: a body whose size is known only at its end (a POST form's
    file); ``length`` then counts the bytes read so far, and the size must come
    to ``min_length``..``max_length`` (EntityTooSmall / EntityTooLarge, raised
    from the read that crosses the bound, so nothing is stored).
    """

    def __init__(self, source, length: int | None, *, content_md5: bytes | None = None,
                 expected_sha256: str | None = None,
                 expected_checksums: dict[str, str | None] | None = None,
                 min_length: int = 0, max_length: int | None = None, check_sha256=None) -> None:
        self._source = source
        self._open_ended = length is None
        self.length = 0 if length is None else length
        self._remaining = self.length
        self._min_length, self._max_length = min_length, max_length
        self._md5 = hashlib.md5()
        self._sha256 = hashlib.sha256() if expected_sha256 or check_sha256 else None
        self._expected_sha256 = expected_sha256
        self._check_sha256 = check_sha256
        self._content_md5 = content_md5
        self.expected_checksums = dict(expected_checksums or {})
        self._checksums = {alg: new_checksum(alg) for alg in self.expected_checksums}
        self._verified = False
        self.checksums: dict[str, str] = {}
        self._hashing = None  # the previous chunk's hashing, when it runs in a native thread

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if self._open_ended:
            return self._read_open_ended(n)
        if self._remaining <= 0:
            self._verify()
            return b""
        want = self._remaining if n is None or n < 0 else min(n, self._remaining)
        try:
            data = self._source.read(want)
        except TimeoutError:  # the client went quiet mid-body (the worker's idle timeout)
            raise errors.RequestTimeout() from None
        except OSError:  # the connection ended before Content-Length bytes came
            raise errors.IncompleteBody() from None
        if not data:
            raise errors.IncompleteBody()
        self._remaining -= len(data)
        self._join_hashing()  # chunks are hashed in order
        if len(data) >= PARALLEL_HASH_MIN and (pool := native_thread_pool()) is not None:
            self._hashing = pool.spawn(self._hash, data)
        else:
            self._hash(data)
        return data

    def _read_open_ended(self, n: int) -> bytes:
        try:
            data = self._source.read(n if n is not None and n > 0 else 1024 * 1024)
        except TimeoutError:
            raise errors.RequestTimeout() from None
        if not data:
            if self.length < self._min_length:
                raise errors.EntityTooSmall(ProposedSize=self.length, MinSizeAllowed=self._min_length)
            self._verify()
            return b""
        self.length += len(data)
        if self._max_length is not None and self.length > self._max_length:
            raise errors.EntityTooLarge(ProposedSize=self.length, MaxSizeAllowed=self._max_length)
        self._join_hashing()
        if len(data) >= PARALLEL_HASH_MIN and (pool := native_thread_pool()) is not None:
            self._hashing = pool.spawn(self._hash, data)
        else:
            self._hash(data)
        return data

    def _hash(self, data: bytes) -> None:
        self._md5.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        for hasher in self._checksums.values():
            hasher.update(data)

    def _join_hashing(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            hashing.get()

    def read_all(self) -> bytes:
        """The whole (small) body, verified. Only for bodies known to be small."""
        parts = []
        while chunk := self.read(1024 * 1024):
            parts.append(chunk)
        return b"".join(parts)

    @property
    def md5_hex(self) -> str:
        self._join_hashing()
        return self._md5.hexdigest()

    def drain(self) -> None:
        """Read (and hash) whatever of the body is left, then verify it."""
        while self.read(1024 * 1024):
            pass

    def _verify(self) -> None:
        if self._verified:
            return
        self._verified = True
        self._join_hashing()
        if self._check_sha256 is not None:  # the signature first: a forged body is not a bad digest
            self._check_sha256(self._sha256.hexdigest())
        finish = getattr(self._source, "finish", None)
        if finish is not None:  # an aws-chunked decoder: read its trailer
            for name, value in finish().items():
                algorithm = name.removeprefix("x-amz-checksum-").upper()
                if name.startswith("x-amz-checksum-") and algorithm in self._checksums:
                    self.expected_checksums[algorithm] = value
        if self._expected_sha256 is not None and self._sha256.hexdigest() != self._expected_sha256:
            raise errors.XAmzContentSHA256Mismatch(ClientComputedContentSHA256=self._expected_sha256,
                                                   S3ComputedContentSHA256=self._sha256.hexdigest())
        if self._content_md5 is not None and self._md5.digest() != self._content_md5:
            raise errors.BadDigest(ExpectedDigest=base64.b64encode(self._content_md5).decode(),
                                   CalculatedDigest=base64.b64encode(self._md5.digest()).decode())
        for alg, hasher in self._checksums.items():
            value = base64.b64encode(hasher.digest()).decode()
            expected = self.expected_checksums.get(alg)
            if expected is not None and expected != value:
                raise errors.BadDigest(f"The {alg} you specified did not match the calculated checksum.")
            self.checksums[alg] = value
