"""The StorageBackend contract, run unchanged against every backend: the local
disk, S3 on moto and on SeaweedFS, GCS on fake-gcs-server, Azure on Azurite."""
from __future__ import annotations

import io
import os

import pytest

from bleepstore_app.storage.base import BlobNotFound, StoredBlob

MIB = 1024 * 1024


class Source:
    """A request-body stand-in: read(n), optionally raising at the end like a
    verifying reader whose digest does not match."""

    def __init__(self, data: bytes, fail_at_end: bool = False, max_read: int | None = None) -> None:
        self._io = io.BytesIO(data)
        self.fail_at_end = fail_at_end
        self.max_read = max_read  # short reads, as a socket gives

    def read(self, n: int = -1) -> bytes:
        if self.max_read and (n < 0 or n > self.max_read):
            n = self.max_read
        chunk = self._io.read(n)
        if not chunk and self.fail_at_end:
            raise DigestMismatch()
        return chunk


class DigestMismatch(Exception):
    pass


def read_all(backend, location: str, start: int = 0, end: int | None = None) -> bytes:
    reader = backend.open(location)
    end = reader.size if end is None else end
    return b"".join(reader.iter_range(start, end))


def payload(size: int, seed: int = 1) -> bytes:
    block = os.urandom(64 * 1024) if seed else bytes(64 * 1024)
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def written(backend):
    """Locations written by a test, deleted afterwards."""
    locations: list[str] = []
    yield locations
    for location in locations:
        backend.delete(location)


def put(backend, written, data: bytes, **source) -> StoredBlob:
    blob = backend.put(Source(data, **source))
    written.append(blob.location)
    return blob


@pytest.mark.parametrize("size", [0, 1, 1000, 6 * MIB + 123])
def test_put_then_read_back(backend, written, size):
    data = payload(size)
    blob = put(backend, written, data)
    assert blob.size == size
    reader = backend.open(blob.location)
    assert reader.size == size
    assert b"".join(reader.iter_range(0, size)) == data


def test_short_reads_from_the_source(backend, written):
    data = payload(3 * MIB + 7)
    blob = put(backend, written, data, max_read=100_000)
    assert read_all(backend, blob.location) == data


def test_every_write_gets_a_new_location(backend, written):
    a = put(backend, written, b"same bytes")
    b = put(backend, written, b"same bytes")
    assert a.location != b.location
    assert read_all(backend, a.location) == read_all(backend, b.location) == b"same bytes"


@pytest.mark.parametrize("start,end", [(0, 1), (5, 10), (MIB - 1, MIB + 1), (2 * MIB, 6 * MIB + 123), (7, 7)])
def test_ranged_reads(backend, written, start, end):
    data = payload(6 * MIB + 123)
    blob = put(backend, written, data)
    assert read_all(backend, blob.location, start, end) == data[start:end]


def test_reads_come_in_bounded_chunks(backend, written):
    data = payload(12 * MIB)
    blob = put(backend, written, data)
    reader = backend.open(blob.location)
    sizes = [len(chunk) for chunk in reader.iter_range(0, len(data))]
    assert sum(sizes) == len(data)
    assert max(sizes) <= 8 * MIB


def test_open_twice_and_close_without_reading(backend, written):
    blob = put(backend, written, b"abc")
    first, second = backend.open(blob.location), backend.open(blob.location)
    first.close()
    first.close()
    assert b"".join(second.iter_range(1, 3)) == b"bc"


def test_missing_blob(backend):
    with pytest.raises(BlobNotFound):
        backend.open("0" * 32)
    backend.delete("0" * 32)  # not an error


def test_delete(backend, written):
    blob = put(backend, written, b"to be deleted")
    backend.delete(blob.location)
    with pytest.raises(BlobNotFound):
        backend.open(blob.location)
    backend.delete(blob.location)


@pytest.mark.parametrize("size", [10, 6 * MIB + 5])
def test_failed_source_leaves_nothing(backend, written, size):
    before = set(backend.iter_locations(0))
    with pytest.raises(DigestMismatch):
        backend.put(Source(payload(size), fail_at_end=True))
    backend.recover()
    assert set(backend.iter_locations(0)) - before == set()


def test_copy_is_a_new_independent_blob(backend, written):
    data = payload(6 * MIB + 1)
    source = put(backend, written, data)
    copied = backend.copy(source.location)
    written.append(copied.location)
    assert copied.location != source.location and copied.size == len(data)
    backend.delete(source.location)
    assert read_all(backend, copied.location) == data


@pytest.mark.parametrize("start,end", [(0, 10), (3, 6 * MIB), (6 * MIB - 2, 6 * MIB + 1), (0, 6 * MIB + 1)])
def test_copy_range(backend, written, start, end):
    data = payload(6 * MIB + 1)
    source = put(backend, written, data)
    part = backend.copy_range(source.location, start, end)
    written.append(part.location)
    assert part.size == end - start
    assert read_all(backend, part.location) == data[start:end]
    assert read_all(backend, source.location) == data


def test_compose_parts_in_order(backend, written):
    parts = [payload(5 * MIB, seed=1), payload(5 * MIB + 3, seed=1), b"tail"]
    blobs = [put(backend, written, p) for p in parts]
    composed = backend.compose([b.location for b in blobs])
    if composed is None:  # the backend keeps parts as they are (local disk)
        assert backend.name == "local"
        return
    written.append(composed.location)
    assert composed.size == sum(map(len, parts))
    assert read_all(backend, composed.location) == b"".join(parts)
    for blob, data in zip(blobs, parts):  # the inputs stay until the caller deletes them
        assert read_all(backend, blob.location) == data


def test_compose_a_single_part(backend, written):
    blob = put(backend, written, b"only part")
    composed = backend.compose([blob.location])
    if composed is not None:
        written.append(composed.location)
        assert read_all(backend, composed.location) == b"only part"


def test_compose_with_a_missing_part_fails_and_leaves_nothing(backend, written):
    blob = put(backend, written, payload(5 * MIB))
    before = set(backend.iter_locations(0))
    try:
        composed = backend.compose([blob.location, "f" * 32])
    except BlobNotFound:
        composed = None
    else:
        assert composed is None, "compose of a missing part must fail"
    assert set(backend.iter_locations(0)) - before == set()


def test_iter_locations_by_age(backend, written):
    blob = put(backend, written, b"listed")
    assert blob.location in set(backend.iter_locations(0))
    assert blob.location not in set(backend.iter_locations(3600))


def test_check_and_recover(backend):
    backend.check()
    backend.recover()
