"""The encrypted blob format: a header, then AES-256-GCM chunks.

    header   b"BSE1" + 16 random salt bytes
    chunk i  AES-256-GCM(blob key, nonce(i, last), up to CHUNK plaintext bytes) + 16-byte tag

The blob key is HKDF-SHA256(object key, salt, part number): a fresh key per blob,
so nonces (the chunk index, plus a flag on the last chunk) never repeat under one
key, even when one object key encrypts many blobs (the parts of an upload); and a
part's blob does not open as another part of its object (0: a single-blob object). A reordered or swapped chunk fails its tag (the index is in the
nonce); a truncated blob fails too (its new last chunk lacks the flag); an empty
object still has one authenticated empty chunk. A Range read decrypts only the
chunks it covers. Sizes are exact functions of the plaintext size, so the
metadata's plaintext offsets map to ciphertext offsets with no lookup, even inside
a composed blob whose parts were encrypted one by one.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..storage.base import BlobReader, Readable, StorageError, read_full

MAGIC = b"BSE1"
SALT_SIZE = 16
HEADER_SIZE = len(MAGIC) + SALT_SIZE
CHUNK = 64 * 1024
TAG = 16
SEALED_CHUNK = CHUNK + TAG
BATCH = 16  # chunks sealed per read of the plaintext (1 MiB)
YIELD_SIZE = 1024 * 1024  # plaintext handed out per piece (fewer, larger socket writes)
_INFO = b"bleepstore blob key v1"


class BlobTampered(StorageError):
    """An encrypted blob failed authentication: changed, truncated, or not ours."""


def chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK))


def cipher_size(size: int) -> int:
    """The stored size of a blob holding ``size`` plaintext bytes."""
    return HEADER_SIZE + size + TAG * chunk_count(size)


def _blob_aead(object_key: bytes, header: bytes, part_number: int) -> AESGCM:
    if len(header) != HEADER_SIZE or header[:len(MAGIC)] != MAGIC:
        raise BlobTampered("not an encrypted blob (bad header)")
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=header[len(MAGIC):],
               info=_INFO + part_number.to_bytes(4, "big"))
    return AESGCM(kdf.derive(object_key))


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x00\x00\x00\x01" if last else b"\x00\x00\x00\x00")


class EncryptingReader:
    """``read(n)`` of the encrypted blob of the ``size`` plaintext bytes that
    ``source`` yields (up to n bytes a read, as a socket gives them). The source is
    drained to its end (a VerifyingReader then checks its digests) before the last
    ciphertext byte is handed out, so a bad body raises before the storage backend
    makes the blob durable."""

    def __init__(self, source: Readable, size: int | None, object_key: bytes, part_number: int = 0) -> None:
        header = MAGIC + os.urandom(SALT_SIZE)
        self._source = source
        self._aead = _blob_aead(object_key, header, part_number)
        # size None: known only at the source's end (a POST form's file), found by
        # reading one byte past each batch (the last chunk's nonce needs to know).
        self._chunks = chunk_count(size) if size is not None else None
        self._size = size
        self._carry = b""
        self._index = 0
        self._pending: deque[bytes] = deque([header])  # sealed pieces, handed out without copying

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else float("inf")
        out, have = [], 0
        while have < want:
            if not self._pending:
                if self._index == self._chunks:
                    break
                self._seal_batch()
                continue
            piece = self._pending.popleft()
            if have + len(piece) > want:  # split: the rest waits for the next read
                self._pending.appendleft(piece[want - have:])
                piece = piece[:want - have]
            out.append(piece)
            have += len(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    def _seal_batch(self) -> None:
        """Read up to BATCH chunks' plaintext at once (large reads let the body's
        hashing run beside the encryption, see auth/payload.py) and seal them."""
        if self._chunks is None:
            return self._seal_open_ended_batch()
        first = self._index
        count = min(BATCH, self._chunks - first)
        want = min(count * CHUNK, self._size - first * CHUNK)
        plain = read_full(self._source, want) if want else b""
        if len(plain) != want:
            raise StorageError("the body ended before its length")
        if first + count == self._chunks:
            self._source.read(1)  # end of input: the body verifies itself now
        view = memoryview(plain)
        for i in range(count):
            index = first + i
            self._pending.append(self._aead.encrypt(_nonce(index, index == self._chunks - 1),
                                                    view[i * CHUNK:(i + 1) * CHUNK], None))
        self._index = first + count


    def _seal_open_ended_batch(self) -> None:
        want = BATCH * CHUNK
        plain = self._carry + read_full(self._source, want + 1 - len(self._carry))
        last = len(plain) <= want  # the source has ended (and verified itself)
        plain, self._carry = plain[:want], plain[want:]
        count = chunk_count(len(plain)) if last else BATCH
        view = memoryview(plain)
        for i in range(count):
            self._pending.append(self._aead.encrypt(_nonce(self._index + i, last and i == count - 1),
                                                    view[i * CHUNK:(i + 1) * CHUNK], None))
        self._index += count
        if last:
            self._chunks = self._index


def encrypt_bytes(data: bytes, object_key: bytes, part_number: int = 0) -> bytes:
    """A whole (small, inline) blob at once."""
    reader = EncryptingReader(_BytesSource(data), len(data), object_key, part_number)
    return reader.read(-1)


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else self._pos + n
        out = bytes(self._view[self._pos:end])
        self._pos += len(out)
        return out


@dataclass
class Segment:
    """One encrypted blob (or one part's run of a composed blob) of an object:
    plaintext bytes [offset, offset + size) of the object, stored at
    ``cipher_offset`` of the blob at ``location``."""
    offset: int
    size: int
    location: str
    cipher_offset: int = 0
    part_number: int = 0
    reader: BlobReader | None = None  # opened ahead, used for the first read


def segments_of(parts: list[tuple[int, int, int, str]], composed: bool) -> list[Segment]:
    """Segments from (part number, offset, size, location) of each part, in
    order; in a composed blob each part's ciphertext follows the previous one's."""
    out, cipher_offset = [], 0
    for number, offset, size, location in parts:
        out.append(Segment(offset, size, location, cipher_offset if composed else 0, number))
        cipher_offset += cipher_size(size)
    return out


class DecryptingBlob(BlobReader):
    """The plaintext of an encrypted object, as a BlobReader over its segments.
    ``open_raw(location)`` opens a ciphertext blob."""

    def __init__(self, object_key: bytes, segments: list[Segment],
                 open_raw: Callable[[str], BlobReader]) -> None:
        self._key = object_key
        self._segments = segments
        self._open_raw = open_raw
        self.size = sum(s.size for s in segments)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        try:
            for segment in self._segments:
                a, b = max(start - segment.offset, 0), min(end - segment.offset, segment.size)
                if a < b:
                    yield from self._decrypt(segment, a, b)
        finally:
            self.close()

    def _raw(self, segment: Segment, start: int, end: int) -> Iterator[bytes]:
        reader, segment.reader = segment.reader, None
        if reader is None:
            reader = self._open_raw(segment.location)
        return reader.iter_range(segment.cipher_offset + start, segment.cipher_offset + end)

    def _decrypt(self, segment: Segment, a: int, b: int) -> Iterator[bytes]:
        """Plaintext bytes [a, b) of one segment."""
        size, chunks = segment.size, chunk_count(segment.size)
        first, last = a // CHUNK, (b - 1) // CHUNK
        raw_end = HEADER_SIZE + last * SEALED_CHUNK + min(CHUNK, size - last * CHUNK) + TAG
        if first == 0:
            raw, aead = self._raw(segment, 0, raw_end), None
        else:  # a separate small read for the header, then only the chunks asked for
            header = b"".join(self._open_raw(segment.location).iter_range(
                segment.cipher_offset, segment.cipher_offset + HEADER_SIZE))
            aead = _blob_aead(self._key, header, segment.part_number)  # before the chunk reader opens
            raw = self._raw(segment, HEADER_SIZE + first * SEALED_CHUNK, raw_end)
        sealed = _Sealed(raw)
        try:
            if aead is None:
                aead = _blob_aead(self._key, bytes(sealed.take(HEADER_SIZE)), segment.part_number)
            out, have = bytearray(min(YIELD_SIZE, b - a)), 0
            for index in range(first, last + 1):
                is_last = index == chunks - 1
                plain_size = min(CHUNK, size - index * CHUNK) if is_last else CHUNK
                lo = a - index * CHUNK if index == first else 0
                hi = b - index * CHUNK if index == last else plain_size
                nonce, ciphertext = _nonce(index, is_last), sealed.take(plain_size + TAG)
                try:
                    if (lo, hi) == (0, plain_size) and have + plain_size <= len(out):
                        aead.decrypt_into(nonce, ciphertext, None, memoryview(out)[have:have + plain_size])
                    else:  # a partial first or last chunk
                        out[have:have + hi - lo] = aead.decrypt(nonce, ciphertext, None)[lo:hi]
                except InvalidTag:
                    raise BlobTampered("encrypted chunk failed authentication") from None
                have += hi - lo
                if have == len(out) or index == last:  # big writes to the socket, as for clear objects
                    yield out if have == len(out) else out[:have]
                    out, have = bytearray(min(YIELD_SIZE, b - (index + 1) * CHUNK)) if index < last else None, 0
        finally:
            close = getattr(raw, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        for segment in self._segments:
            if segment.reader is not None:
                segment.reader.close()
                segment.reader = None


class _Sealed:
    """The ciphertext stream, taken from in exact sizes: a view into the piece the
    storage gave, copied only when a chunk straddles two pieces."""

    def __init__(self, raw: Iterator[bytes]) -> None:
        self._raw, self._data, self._pos = raw, b"", 0

    def take(self, n: int) -> memoryview:
        if len(self._data) - self._pos >= n:
            view = memoryview(self._data)[self._pos:self._pos + n]
            self._pos += n
            return view
        pieces, have = [memoryview(self._data)[self._pos:]], len(self._data) - self._pos
        while True:
            piece = next(self._raw, None)
            if piece is None:
                raise BlobTampered("encrypted blob shorter than its recorded size")
            if have + len(piece) >= n:
                break
            pieces.append(piece)
            have += len(piece)
        if have == 0:
            self._data, self._pos = piece, n
            return memoryview(piece)[:n]
        pieces.append(memoryview(piece)[:n - have])
        self._data, self._pos = piece, n - have
        return memoryview(b"".join(pieces))
