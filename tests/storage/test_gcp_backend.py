"""GcpStorage specifics on a real fake-gcs-server: chained compose and its
cleanup, resumable uploads, cancelled writes, ranged reads, memory flatness,
error mapping. (The shared contract suite covers the rest.)"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import uuid
from pathlib import Path

import pytest

from bleepstore_app.storage import gcp
from bleepstore_app.storage.base import BlobNotFound, StorageError, StorageThrottled, StorageTimeout, StorageUnavailable
from bleepstore_app.storage.gcp import GcpStorage

from ..emulators.gcs import start_gcs

KIB, MIB = 1024, 1024 * 1024
CHUNK = 256 * KIB


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    em = start_gcs(tmp_path_factory.mktemp("gcs"))
    saved = {k: os.environ.get(k) for k in em.env}
    os.environ.update(em.env)
    yield em
    em.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def backend(emulator):
    """Small chunks, so that a few hundred KiB take the resumable path."""
    return GcpStorage(dataclasses.replace(emulator.settings, chunk_size=CHUNK))


def bucket_names(backend: GcpStorage) -> set[str]:
    """Every object in the bucket, under the prefix or not."""
    return {blob.name for blob in backend.client.list_blobs(backend.bucket)}


def read_all(backend: GcpStorage, location: str, start: int = 0, end: int | None = None) -> bytes:
    reader = backend.open(location)
    return b"".join(reader.iter_range(start, reader.size if end is None else end))


class Boom(Exception):
    pass


class Source:
    """read(n) over bytes: short reads optional, raising after ``fail_after`` bytes."""

    def __init__(self, data: bytes, max_read: int | None = None, fail_after: int | None = None) -> None:
        self._io = io.BytesIO(data)
        self.max_read, self.fail_after = max_read, fail_after

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self._io.tell() >= self.fail_after:
            raise Boom()
        if self.max_read and (n < 0 or n > self.max_read):
            n = self.max_read
        return self._io.read(n)


# -- compose ---------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 3, 70])
def test_compose_gives_the_exact_bytes_and_leaves_no_intermediates(backend, count):
    rng = random.Random(count)
    parts = [os.urandom(rng.randint(1 * KIB, 10 * KIB)) for _ in range(count)]
    locations = [backend.put(Source(p)).location for p in parts]
    before = bucket_names(backend)
    composed = backend.compose(locations)
    assert composed.size == sum(map(len, parts))
    assert read_all(backend, composed.location) == b"".join(parts)
    assert bucket_names(backend) == before | {backend.prefix + composed.location}
    for location in locations:  # the parts stay, for the caller to delete
        assert backend.open(location).size > 0
    for location in locations + [composed.location]:
        backend.delete(location)


def test_compose_chains_to_any_depth(backend, monkeypatch):
    monkeypatch.setattr(gcp, "MAX_COMPOSE", 3)  # 20 parts -> 7 -> 3 -> final
    parts = [bytes([65 + i]) * (i + 1) for i in range(20)]
    locations = [backend.put(Source(p)).location for p in parts]
    before = bucket_names(backend)
    composed = backend.compose(locations)
    assert read_all(backend, composed.location) == b"".join(parts)
    assert bucket_names(backend) == before | {backend.prefix + composed.location}
    for location in locations + [composed.location]:
        backend.delete(location)


def test_compose_with_a_missing_part_leaves_nothing_new(backend):
    # 40 parts: the first group of 32 composes into an intermediate before the
    # second group fails on the missing part; the intermediate must go too.
    locations = [backend.put(Source(b"part %d" % i)).location for i in range(40)]
    locations[35] = uuid.uuid4().hex
    before = bucket_names(backend)
    with pytest.raises(BlobNotFound):
        backend.compose(locations)
    assert bucket_names(backend) == before
    for location in locations:
        backend.delete(location)


# -- put -------------------------------------------------------------------

@pytest.mark.parametrize("size", [CHUNK - 1, CHUNK, 2 * CHUNK, 3 * CHUNK + 5])
def test_put_one_or_many_chunks_round_trips(backend, size):
    data = os.urandom(size)
    blob = backend.put(Source(data, max_read=100_000))  # short reads as from a socket
    assert blob.size == size
    assert read_all(backend, blob.location) == data
    backend.delete(blob.location)


@pytest.mark.parametrize("fail_after", [2 * CHUNK, 2 * CHUNK + 10, 10])
def test_a_failing_source_leaves_no_object(backend, fail_after):
    before = bucket_names(backend)
    with pytest.raises(Boom):
        backend.put(Source(os.urandom(4 * CHUNK), fail_after=fail_after))
    assert bucket_names(backend) == before


def test_iter_locations_skips_foreign_names(backend):
    backend.bucket.blob(backend.prefix + "not-a-location").upload_from_string(b"x")
    blob = backend.put(Source(b"listed"))
    found = set(backend.iter_locations(0))
    assert blob.location in found
    assert all(len(loc) == 32 for loc in found)
    assert blob.location not in set(backend.iter_locations(3600))
    backend.bucket.blob(backend.prefix + "not-a-location").delete()
    backend.delete(blob.location)


# -- reads -----------------------------------------------------------------

@pytest.mark.parametrize("start,end", [(0, 1), (CHUNK - 1, CHUNK + 1), (5, 3 * MIB + 7), (MIB, MIB), (0, 3 * MIB + 7)])
def test_ranged_reads(backend, start, end):
    data = os.urandom(3 * MIB + 7)
    blob = backend.put(Source(data))
    reader = backend.open(blob.location)
    chunks = list(reader.iter_range(start, end))
    assert b"".join(chunks) == data[start:end]
    assert all(len(c) <= MIB for c in chunks)
    reader.close()
    backend.delete(blob.location)


def test_an_opened_blob_streams_in_full_after_its_delete(backend):
    """open() starts the GET: a concurrent overwrite deleting the blob right after
    must not break a full read (the whole body, many chunks)."""
    data = os.urandom(12 * MIB + 3)
    blob = backend.put(Source(data))
    reader = backend.open(blob.location)
    assert reader.size == len(data)
    backend.delete(blob.location)
    with pytest.raises(BlobNotFound):
        backend.open(blob.location)
    chunks = list(reader.iter_range(0, reader.size))
    assert b"".join(chunks) == data
    assert all(len(c) <= MIB for c in chunks)


def test_the_open_stream_serves_a_prefix_and_other_ranges_get_their_own(backend):
    data = os.urandom(2 * MIB + 11)
    blob = backend.put(Source(data))
    reader = backend.open(blob.location)
    assert b"".join(reader.iter_range(0, MIB + 5)) == data[:MIB + 5]   # the open stream, cut short
    assert b"".join(reader.iter_range(0, len(data))) == data            # a new GET after close
    assert b"".join(reader.iter_range(7, MIB)) == data[7:MIB]
    reader.close()
    reader = backend.open(blob.location)
    assert b"".join(reader.iter_range(3, 10)) == data[3:10]              # drops the open stream
    reader.close()
    reader.close()  # safe twice
    backend.delete(blob.location)


def test_missing_locations(backend):
    missing = uuid.uuid4().hex
    with pytest.raises(BlobNotFound):
        backend.open(missing)
    with pytest.raises(BlobNotFound):
        backend.open("../not-hex")
    with pytest.raises(BlobNotFound):
        backend.copy(missing)
    backend.delete(missing)  # not an error


# -- memory ----------------------------------------------------------------

BLOCK = os.urandom(MIB)
PATTERN = BLOCK * 9  # any read of up to 8 MiB at any offset is one slice of it


class PatternSource:
    """``size`` bytes of a repeating 1 MiB block, hashed as they are handed out."""

    def __init__(self, size: int) -> None:
        self.left, self.pos, self.sha = size, 0, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = min(self.left, 8 * MIB if n < 0 else n, 8 * MIB)
        off = self.pos % MIB
        out = PATTERN[off:off + n]
        self.pos += n
        self.left -= n
        self.sha.update(out)
        return out


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def test_large_put_and_get_keep_memory_flat(emulator):
    backend = GcpStorage(emulator.settings)  # the default 8 MiB chunks
    size = 256 * MIB
    backend.check()  # make the client before measuring
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline = _rss_kib("VmRSS")
    source = PatternSource(size)
    blob = backend.put(source)
    reader = backend.open(blob.location)
    sha, total = hashlib.sha256(), 0
    for chunk in reader.iter_range(0, reader.size):
        sha.update(chunk)
        total += len(chunk)
    growth = (_rss_kib("VmHWM") - baseline) / 1024
    print(f"\nGCS 256 MiB put+get: peak RSS growth {growth:.1f} MiB")
    assert blob.size == total == size
    assert sha.digest() == source.sha.digest()
    assert growth < 64
    backend.delete(blob.location)


# -- errors ----------------------------------------------------------------

def test_check_fails_when_the_emulator_is_down(tmp_path):
    em = start_gcs(tmp_path)
    backend = GcpStorage(em.settings)
    backend.check()
    em.stop()
    with pytest.raises(StorageUnavailable):  # at once: readiness does not retry
        backend.check()


def test_constructor_makes_no_network_call(emulator):
    settings = dataclasses.replace(emulator.settings, endpoint="http://127.0.0.1:9")
    backend = GcpStorage(settings)  # nothing listens on port 9
    with pytest.raises(StorageUnavailable):
        backend.check()


def test_sdk_errors_map_to_storage_errors():
    import requests
    from google.api_core import exceptions as gx

    assert isinstance(gcp._translate(gx.NotFound("x"), "loc"), BlobNotFound)
    assert isinstance(gcp._translate(gx.TooManyRequests("x")), StorageThrottled)
    assert isinstance(gcp._translate(gx.DeadlineExceeded("x")), StorageTimeout)
    assert isinstance(gcp._translate(requests.ReadTimeout("x")), StorageTimeout)
    assert isinstance(gcp._translate(gx.ServiceUnavailable("x")), StorageUnavailable)
    assert isinstance(gcp._translate(gx.InternalServerError("x")), StorageUnavailable)
    assert isinstance(gcp._translate(requests.ConnectionError("x")), StorageUnavailable)
    assert isinstance(gcp._translate(gx.RetryError("gave up", gx.BadGateway("x"))), StorageUnavailable)
    forbidden = gcp._translate(gx.Forbidden("x"))
    assert type(forbidden) is StorageError
