"""Azure-specific behaviour of AzureStorage against a real Azurite process.

The shared contract suite covers the common behaviour; here: native block-list
compose, multi-block puts, failed puts leaving nothing visible, memory flatness,
server-side copies and error mapping.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import time

import pytest

from bleepstore_app.storage.azure import AzureStorage, _account_name, _translate
from bleepstore_app.storage.base import (
    BlobNotFound,
    StorageError,
    StorageThrottled,
    StorageTimeout,
    StorageUnavailable,
)
from tests.emulators.azure import ACCOUNT, ACCOUNT_KEY, CONTAINER, start_azurite

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    emulator = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def storage(azurite):
    """Small blocks so multi-block paths run with small bodies."""
    return AzureStorage(dataclasses.replace(azurite.settings, block_size=1 * MiB))


def _payload(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB of pseudo-random bytes
    return (block * (size // len(block) + 1))[:size]


def _read_all(storage: AzureStorage, location: str) -> bytes:
    reader = storage.open(location)
    return b"".join(reader.iter_range(0, reader.size))


def _visible(storage: AzureStorage) -> set[str]:
    return {b.name for b in storage.container.list_blobs()}


def _committed_ids(storage: AzureStorage, location: str) -> list[str]:
    committed, _ = storage._blob(location).get_block_list("committed")
    return [block.id for block in committed]


class Boom(Exception):
    pass


class FailingSource:
    """Serves ``data`` in small reads, then raises instead of signalling the end."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(min(n, 300_000) if n > 0 else n)
        if not chunk:
            raise Boom("digest mismatch")
        return chunk


# -- compose -------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [[1_234_567], [1, 2_345_679, 777_777]])
def test_compose_builds_a_block_list(storage, sizes):
    parts = [_payload(size, seed) for seed, size in enumerate(sizes)]
    locations = [storage.put(io.BytesIO(p)).location for p in parts]

    blob = storage.compose(locations)

    assert blob.size == sum(sizes)
    assert blob.location not in locations
    assert _read_all(storage, blob.location) == b"".join(parts)
    ids = _committed_ids(storage, blob.location)
    assert len(ids) == len(parts)                     # one block per part (all < 4000 MiB)
    assert len({len(i) for i in ids}) == 1            # Azure needs equal-length ids
    assert [int(i[:8]) for i in ids] == list(range(len(parts)))
    assert len({i[8:] for i in ids}) == 1             # one write, one suffix
    for location, part in zip(locations, parts):      # inputs stay for the caller
        assert _read_all(storage, location) == part


def test_compose_with_a_missing_part_leaves_nothing(storage):
    part = storage.put(io.BytesIO(b"x" * 1000)).location
    before = _visible(storage)
    with pytest.raises(BlobNotFound):
        storage.compose([part, "0" * 32])
    assert _visible(storage) == before


# -- put -----------------------------------------------------------------------

def test_multi_block_put_round_trips(storage):
    data = _payload(3 * MiB + 12345, seed=7)
    blob = storage.put(io.BytesIO(data))
    assert blob.size == len(data)
    assert _read_all(storage, blob.location) == data
    ids = _committed_ids(storage, blob.location)
    assert len(ids) == 4 and len({len(i) for i in ids}) == 1


def test_body_of_exactly_one_block(storage):
    data = _payload(MiB, seed=8)
    blob = storage.put(io.BytesIO(data))
    assert _read_all(storage, blob.location) == data


@pytest.mark.parametrize("size", [2 * MiB + 500, 1000], ids=["multi-block", "single-put"])
def test_source_raising_leaves_no_blob(storage, size):
    before = _visible(storage)
    source = FailingSource(_payload(size))
    with pytest.raises(Boom) as info:
        storage.put(source)
    assert str(info.value) == "digest mismatch"   # the source's own exception, unchanged
    assert _visible(storage) == before
    assert set(storage.iter_locations(0)) == {name[len("bleepstore/"):] for name in before}


# -- reads -----------------------------------------------------------------------

def test_ranged_reads(storage):
    data = _payload(5 * MiB + 3, seed=3)
    reader = storage.open(storage.put(io.BytesIO(data)).location)
    assert reader.size == len(data)
    for start, end in [(0, 1), (17, 4 * MiB + 9), (len(data) - 5, len(data)), (MiB, MiB), (0, len(data))]:
        chunks = list(reader.iter_range(start, end))
        assert b"".join(chunks) == data[start:end]
        assert all(len(c) <= MiB for c in chunks)
    reader.close()
    reader.close()  # safe twice


def test_an_opened_blob_streams_in_full_after_its_delete(storage):
    """open() starts one GET of the whole blob: a concurrent overwrite deleting it
    right after must not break a full read, even past the SDK's first chunk
    (max_single_get_size is 1 MiB here: 12 requests with download_blob)."""
    data = _payload(12 * MiB + 3, seed=12)
    blob = storage.put(io.BytesIO(data))
    reader = storage.open(blob.location)
    assert reader.size == len(data)
    storage.delete(blob.location)
    with pytest.raises(BlobNotFound):
        storage.open(blob.location)
    chunks = list(reader.iter_range(0, reader.size))
    assert b"".join(chunks) == data
    assert all(len(c) <= MiB for c in chunks)


def test_the_open_stream_serves_a_prefix_and_other_ranges_get_their_own(storage):
    data = _payload(2 * MiB + 11, seed=13)
    location = storage.put(io.BytesIO(data)).location
    reader = storage.open(location)
    assert b"".join(reader.iter_range(0, MiB + 5)) == data[:MiB + 5]   # the open stream, cut short
    assert b"".join(reader.iter_range(0, len(data))) == data            # a new GET after close
    reader = storage.open(location)
    assert b"".join(reader.iter_range(3, 10)) == data[3:10]              # drops the open stream
    reader.close()
    assert _read_all(storage, storage.put(io.BytesIO(b"")).location) == b""


def test_reads_fall_back_to_download_blob(storage, monkeypatch):
    """Should the SDK's private download operation change, reads still work (chunked)."""
    from bleepstore_app.storage import azure

    def changed(*args, **kwargs):
        raise TypeError("download() got an unexpected keyword argument 'cls'")

    data = _payload(3 * MiB + 1, seed=14)
    location = storage.put(io.BytesIO(data)).location
    monkeypatch.setattr(azure, "_pipeline_get", changed)
    reader = storage.open(location)
    assert reader.size == len(data)
    assert b"".join(reader.iter_range(0, len(data))) == data
    assert b"".join(reader.iter_range(5, MiB + 7)) == data[5:MiB + 7]


def test_missing_location(storage):
    with pytest.raises(BlobNotFound):
        storage.open("f" * 32)
    storage.delete("f" * 32)  # not an error


def test_delete(storage):
    location = storage.put(io.BytesIO(b"bye")).location
    storage.delete(location)
    with pytest.raises(BlobNotFound):
        storage.open(location)


# -- server-side copies ------------------------------------------------------------

def test_copy_is_identical_at_a_new_location(storage):
    data = _payload(2 * MiB + 99, seed=5)
    source = storage.put(io.BytesIO(data))
    copied = storage.copy(source.location)
    assert copied.location != source.location
    assert copied.size == len(data)
    assert _read_all(storage, copied.location) == data
    assert _read_all(storage, source.location) == data
    with pytest.raises(BlobNotFound):
        storage.copy("e" * 32)


def test_copy_range(storage):
    data = _payload(3 * MiB, seed=6)
    source = storage.put(io.BytesIO(data)).location
    part = storage.copy_range(source, 1000, 2 * MiB + 1)
    assert part.size == 2 * MiB + 1 - 1000
    assert _read_all(storage, part.location) == data[1000:2 * MiB + 1]


def test_copy_range_past_the_end_leaves_nothing(storage):
    source = storage.put(io.BytesIO(b"abcdef")).location
    before = _visible(storage)
    with pytest.raises(StorageError):
        storage.copy_range(source, 2, 50)
    assert _visible(storage) == before


# -- credentials -------------------------------------------------------------------

def _container_sas() -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    permission = ContainerSasPermissions(read=True, add=True, create=True, write=True, delete=True, list=True)
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    return generate_container_sas(ACCOUNT, CONTAINER, account_key=ACCOUNT_KEY, permission=permission, expiry=expiry)


@pytest.mark.parametrize("mode", ["account_key", "sas_token"])
def test_other_credentials(azurite, mode):
    """account_url with a shared key (source SAS signed by us) or with a container
    SAS (source URLs carry it): put, copy, compose and check all work."""
    auth = {"account_key": ACCOUNT_KEY} if mode == "account_key" else {"sas_token": "?" + _container_sas()}
    storage = AzureStorage(dataclasses.replace(azurite.settings, connection_string="", block_size=MiB, **auth))
    storage.check()
    data = _payload(MiB + 77, seed=11)
    blob = storage.put(io.BytesIO(data))
    copied = storage.copy(blob.location)
    composed = storage.compose([blob.location, copied.location])
    assert _read_all(storage, composed.location) == data + data
    assert composed.location in set(storage.iter_locations(0))


# -- listing -------------------------------------------------------------------------

def test_iter_locations(storage):
    location = storage.put(io.BytesIO(b"listed")).location
    storage.container.upload_blob("bleepstore/not-a-location", b"x")
    storage.container.upload_blob("elsewhere/" + "a" * 32, b"x")
    time.sleep(1.1)  # last_modified has one-second resolution
    found = set(storage.iter_locations(0.5))
    assert location in found
    assert "not-a-location" not in found and "a" * 32 not in found
    assert location not in set(storage.iter_locations(3600))


# -- memory ----------------------------------------------------------------------------

class PatternSource:
    """``size`` bytes generated on the fly, hashed as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = _payload(MiB, seed=9)
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = min(n if n > 0 else MiB, self.left, MiB)
        self.left -= n
        chunk = self.block[:n]
        self.digest.update(chunk)
        return chunk


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def test_large_put_and_get_memory_is_flat(azurite):
    storage = AzureStorage(azurite.settings)   # the default 8 MiB blocks
    size = 256 * MiB
    source = PatternSource(size)
    _reset_peak_rss()
    base = _peak_rss()

    blob = storage.put(source)
    after_put = _peak_rss()
    reader = storage.open(blob.location)
    digest = hashlib.sha256()
    for chunk in reader.iter_range(0, reader.size):
        digest.update(chunk)
    after_get = _peak_rss()

    print(f"\nazure 256 MiB: peak RSS growth put {(after_put - base) / MiB:.1f} MiB, "
          f"put+get {(after_get - base) / MiB:.1f} MiB")
    assert blob.size == size and reader.size == size
    assert digest.hexdigest() == source.digest.hexdigest()
    assert after_get - base < 64 * MiB
    storage.delete(blob.location)


# -- errors ----------------------------------------------------------------------------

def test_unreachable_emulator(tmp_path):
    emulator = start_azurite(tmp_path)
    storage = AzureStorage(emulator.settings)
    storage.check()
    emulator.stop()
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        storage.check()
    assert time.monotonic() - started < 10
    with pytest.raises(StorageError):
        storage.open("a" * 32)
    # Constructing a backend that cannot be reached makes no network call.
    AzureStorage(emulator.settings)


def _http_error(status: int, code: str | None = None):
    from azure.core.exceptions import HttpResponseError
    exc = HttpResponseError(message=f"status {status}")
    exc.status_code, exc.error_code = status, code
    return exc


def test_error_mapping():
    from azure.core.exceptions import (
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceRequestTimeoutError,
        ServiceResponseTimeoutError,
    )
    assert type(_translate(ResourceNotFoundError("gone"), "loc")) is BlobNotFound
    assert type(_translate(_http_error(503, "ServerBusy"), None)) is StorageThrottled
    assert type(_translate(_http_error(429), None)) is StorageThrottled
    assert type(_translate(_http_error(500, "OperationTimedOut"), None)) is StorageTimeout
    assert type(_translate(_http_error(500, "InternalError"), None)) is StorageUnavailable
    assert type(_translate(_http_error(403, "AuthorizationFailure"), None)) is StorageError
    assert type(_translate(ServiceRequestTimeoutError("slow"), None)) is StorageTimeout
    assert type(_translate(ServiceResponseTimeoutError("slow"), None)) is StorageTimeout
    assert type(_translate(ServiceRequestError("refused"), None)) is StorageUnavailable
    from azure.core.exceptions import IncompleteReadError
    assert type(_translate(IncompleteReadError("cut"), None)) is StorageUnavailable


def test_account_name_from_url():
    assert _account_name("https://acme.blob.core.windows.net") == "acme"
    assert _account_name("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"
    assert _account_name("http://localhost:10000/devstoreaccount1/") == "devstoreaccount1"
