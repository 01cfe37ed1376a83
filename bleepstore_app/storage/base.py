"""The StorageBackend interface: where object bytes live.

A backend stores opaque blobs under *locations* it chooses itself (a fresh, unique
name for every write), so two writes never share a name and metadata decides which
blob an object is. It never sees bucket names, keys, Flask or SQLAlchemy.

The source handed to ``put`` is any object with ``read(n) -> bytes``. The caller's
reader computes hashes and verifies digests as the backend pulls bytes through it,
and raises at end of input if anything does not match: a backend must then leave
nothing behind (no blob, no temp file) and let the exception propagate.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator, Protocol


class Readable(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class StorageError(Exception):
    """A backend failed for a reason other than a missing blob."""


class BlobNotFound(StorageError):
    """The location names no blob (metadata points at missing data)."""


class StorageThrottled(StorageError):
    """The backing store asked us to slow down (S3 SlowDown)."""


class StorageTimeout(StorageError):
    """The backing store did not answer in time (S3 RequestTimeout)."""


class StorageUnavailable(StorageError):
    """The backing store cannot be reached or is failing (S3 ServiceUnavailable)."""


@dataclass(frozen=True)
class StoredBlob:
    location: str
    size: int


class BlobReader(ABC):
    """An opened blob: iterate a byte range in chunks, then close."""

    size: int

    @abstractmethod
    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes [start, end) in bounded chunks; closes the blob when done."""

    @abstractmethod
    def close(self) -> None:
        """Release the blob (safe to call twice)."""


class StorageBackend(ABC):
    """Blob storage. Locations are created by the backend and never reused."""

    name: str = "abstract"
    # True when compose() builds one blob natively (gateways); False: parts stay as they are.
    composes: bool = False

    @abstractmethod
    def put(self, source: Readable) -> StoredBlob:
        """Stream ``source`` to a new durable blob; return its location and size.

        The blob becomes visible only once complete and durable. If reading the
        source raises, nothing remains and the exception propagates.
        """

    @abstractmethod
    def open(self, location: str) -> BlobReader:
        """Open a blob for reading. Raises BlobNotFound."""

    @abstractmethod
    def delete(self, location: str) -> None:
        """Delete a blob; deleting a missing blob is not an error."""

    @abstractmethod
    def copy(self, location: str) -> StoredBlob:
        """Server-side copy of a whole blob into a new location."""

    def copy_range(self, location: str, start: int, end: int) -> StoredBlob:
        """A new blob holding bytes [start, end) of a blob (UploadPartCopy).
        By default streamed through this process; backends override it with a
        server-side copy where their store has one."""
        reader = self.open(location)
        try:
            return self.put(_IterReader(reader.iter_range(start, end)))
        finally:
            reader.close()

    def compose(self, locations: list[str]) -> StoredBlob | None:
        """Multipart completion: a new blob holding the given part blobs back to
        back, built inside the store (S3 UploadPartCopy, GCS compose, Azure block
        list), or None when the parts are best left as they are and read in order
        (the local disk: completion then copies nothing). The part blobs stay; the
        caller deletes them once metadata points at the new blob."""
        return None

    @abstractmethod
    def recover(self) -> None:
        """Start-up: remove the leftovers of writes that a crash interrupted."""

    @abstractmethod
    def iter_locations(self, older_than_seconds: float) -> Iterator[str]:
        """Every stored location older than the given age (for the orphan sweep)."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError if the backend cannot serve now (readiness)."""


def read_full(source: Readable, n: int) -> bytes:
    """Up to n bytes from ``source``; fewer only at its end (a socket may return
    less per read). Gateways send bodies in chunks of exactly their chunk size."""
    first = source.read(n)
    if len(first) >= n or not first:
        return first
    pieces, have = [first], len(first)
    while have < n:
        piece = source.read(n - have)
        if not piece:
            break
        pieces.append(piece)
        have += len(piece)
    return b"".join(pieces)


class _IterReader:
    """``read(n)`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out
