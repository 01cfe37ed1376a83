"""A copy whose stored bytes cannot be the source's: its plaintext streamed through
the server into the copy's encryption (or into clear), in one pass.

The copy keeps the source's shape: a multipart source gives a copy with the same
part boundaries (so partNumber reads and the "-N" ETag stay), written as one blob
holding the parts back to back, each part its own encrypted run when encrypted
(the composed layout gateways use; crypto/stream.py maps offsets). ETags follow
the copy's encryption (encryption.etag).
"""
from __future__ import annotations

import hashlib
import uuid
from typing import Iterator

from ..crypto.stream import EncryptingReader, encrypt_bytes
from ..metadata.records import ObjectRecord
from ..storage.base import StorageError
from . import Services, encryption


class _Plaintext:
    """One plaintext stream, taken from in pieces of given sizes."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


class _Part:
    """``read(n)`` of the next ``size`` bytes of the plaintext, hashing them."""

    def __init__(self, plaintext: _Plaintext, size: int) -> None:
        self._plaintext, self._left = plaintext, size
        self.md5 = hashlib.md5()

    def read(self, n: int = -1) -> bytes:
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._plaintext.take(want) if want else b""
        if len(data) != want:
            raise StorageError("the copy source ended before its recorded size")
        self._left -= len(data)
        self.md5.update(data)
        return data


class _Concatenated:
    """``read(n)`` over readers one after the other."""

    def __init__(self, readers: list) -> None:
        self._readers, self._index = readers, 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while self._index < len(self._readers) and (n is None or n < 0 or len(out) < n):
            piece = self._readers[self._index].read(-1 if n is None or n < 0 else n - len(out))
            if piece:
                out += piece
            else:
                self._index += 1
        return bytes(out)


def recode(svc: Services, source: ObjectRecord, plain, parts: list[tuple] | None,
           sealed: encryption.Encryption | None) -> tuple[str, bytes | None, list[dict] | None, str]:
    """The copy's (data location, inline bytes, part rows, ETag) from ``plain``,
    the source's opened plaintext (an ObjectRead)."""
    numbers, sizes = ([p[0] for p in parts], [p[2] for p in parts]) if source.parts_count else ([0], [source.size])
    plaintext = _Plaintext(iter(plain.blob.iter_range(0, source.size)))
    pieces = [_Part(plaintext, size) for size in sizes]
    stored = sealed.stored if sealed is not None else None
    object_key = sealed.object_key if sealed is not None else None
    if not source.parts_count and source.size <= svc.settings.inline_max_size:
        data = pieces[0].read(-1)
        inline = encrypt_bytes(data, sealed.object_key) if sealed is not None else data
        return uuid.uuid4().hex, inline, None, encryption.etag(stored, object_key, pieces[0].md5.hexdigest())
    writers = [EncryptingReader(piece, size, sealed.object_key, number)
               for piece, size, number in zip(pieces, sizes, numbers)] if sealed is not None else pieces
    location = svc.storage.put(_Concatenated(writers)).location
    etags = [encryption.etag(stored, object_key, piece.md5.hexdigest()) for piece in pieces]
    if not source.parts_count:
        return location, None, None, etags[0]
    rows = []
    for (number, offset, size, _, checksums, _), etag in zip(parts, etags):
        rows.append({"part_number": number, "offset": offset, "size": size, "etag": etag, "checksums": checksums,
                     "data_location": location})
    etag = hashlib.md5(b"".join(bytes.fromhex(e) for e in etags)).hexdigest() + f"-{len(etags)}"
    return location, None, rows, etag
