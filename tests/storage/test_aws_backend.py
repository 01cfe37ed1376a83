"""The aws backend beyond the shared contract: native multipart assembly, no
leftover uploads, bounded memory, and S3 errors mapped to storage errors."""
from __future__ import annotations

import dataclasses
import os

import boto3
import pytest
from botocore.exceptions import ClientError

from bleepstore_app.storage import aws
from bleepstore_app.storage.aws import AwsStorage
from bleepstore_app.storage.base import (BlobNotFound, StorageError, StorageThrottled, StorageTimeout,
                                         StorageUnavailable)

from ..emulators.s3 import start_moto
from .test_contract import MIB, Source, payload, read_all

PART = 5 * MIB


@pytest.fixture(scope="module")
def moto(emulators):
    emulator = emulators.get("moto")
    os.environ.update(emulator.env)
    return emulator


@pytest.fixture
def storage(moto):
    return AwsStorage(dataclasses.replace(moto.settings, part_size=PART))


@pytest.fixture
def raw(moto):
    """A plain boto3 client on the backing bucket, to see what the backend left there."""
    return boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")


def pending_uploads(raw, bucket: str, prefix: str) -> list[dict]:
    return raw.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


def test_a_long_body_becomes_a_backing_multipart_upload(storage, raw):
    data = payload(2 * PART + 11)
    blob = storage.put(Source(data))
    head = raw.head_object(Bucket=storage.bucket, Key=storage.prefix + blob.location)
    assert head["ETag"].strip('"').endswith("-3")  # three chunks of part_size
    assert read_all(storage, blob.location) == data
    storage.delete(blob.location)


def test_a_body_that_fails_its_digest_leaves_no_upload_behind(storage, raw):
    class Mismatch(Exception):
        pass

    class Failing(Source):
        def read(self, n=-1):
            chunk = super().read(n)
            if not chunk:
                raise Mismatch()
            return chunk

    with pytest.raises(Mismatch):
        storage.put(Failing(payload(2 * PART)))
    assert pending_uploads(raw, storage.bucket, storage.prefix) == []


def test_compose_is_assembled_inside_s3(storage, raw):
    parts = [storage.put(Source(payload(PART))), storage.put(Source(b"last"))]
    composed = storage.compose([p.location for p in parts])
    head = raw.head_object(Bucket=storage.bucket, Key=storage.prefix + composed.location)
    assert head["ETag"].strip('"').endswith("-2")  # UploadPartCopy per part, not a re-upload
    assert head["ContentLength"] == PART + 4
    for blob in parts + [composed]:
        storage.delete(blob.location)


def test_recover_aborts_stale_backing_uploads(emulators, monkeypatch):
    """On SeaweedFS (moto reports a fixed 2010 initiation time for every upload)."""
    weed = emulators.get("seaweedfs")
    os.environ.update(weed.env)
    storage = AwsStorage(weed.settings)
    raw = boto3.client("s3", endpoint_url=weed.endpoint, region_name="us-east-1")
    key = storage.prefix + "f" * 32
    upload_id = raw.create_multipart_upload(Bucket=storage.bucket, Key=key)["UploadId"]
    storage.recover()  # young: it may belong to a live write
    assert any(u["UploadId"] == upload_id for u in pending_uploads(raw, storage.bucket, storage.prefix))
    monkeypatch.setattr(aws, "STALE_UPLOAD_SECONDS", -60)
    storage.recover()
    assert not any(u["UploadId"] == upload_id for u in pending_uploads(raw, storage.bucket, storage.prefix))


def _vm_hwm_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_memory_stays_flat_for_a_large_blob(moto):
    """256 MiB through put() and iter_range(): the process's peak RSS grows by
    about one part, not by the object."""
    storage = AwsStorage(moto.settings)  # the default 8 MiB parts
    size = 256 * MIB

    class Generated:
        def __init__(self):
            self.left = size
            self.block = os.urandom(MIB)

        def read(self, n=-1):
            n = min(self.left, MIB if n < 0 else n)
            self.left -= n
            return (self.block * (n // MIB + 1))[:n]

    before = _vm_hwm_kib()
    blob = storage.put(Generated())
    total = 0
    for chunk in storage.open(blob.location).iter_range(0, size):
        total += len(chunk)
    growth_mib = (_vm_hwm_kib() - before) / 1024
    print(f"\n[aws backend] 256 MiB put+get: peak RSS growth {growth_mib:.1f} MiB (8 MiB parts)")
    storage.delete(blob.location)
    assert total == size
    assert growth_mib < 64


def test_signature_checking_backend_refuses_wrong_credentials(emulators, monkeypatch):
    """SeaweedFS checks SigV4: the backend's errors surface as StorageError."""
    weed = emulators.get("seaweedfs")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", weed.env["AWS_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StorageError):
        AwsStorage(weed.settings).check()


def test_an_unreachable_backend_is_unavailable(tmp_path, monkeypatch):
    emulator = start_moto(tmp_path / "moto-stopped")
    for name, value in emulator.env.items():  # its credentials: not left behind by another test
        monkeypatch.setenv(name, value)
    storage = AwsStorage(emulator.settings)
    storage.check()
    emulator.stop()
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.open("a" * 32)


def test_missing_blob(storage):
    with pytest.raises(BlobNotFound):
        storage.open("b" * 32)
    with pytest.raises(BlobNotFound):
        storage.copy("b" * 32)


@pytest.mark.parametrize("code,status,expected", [
    ("SlowDown", 503, StorageThrottled), ("RequestTimeout", 400, StorageTimeout),
    ("InternalError", 500, StorageUnavailable), ("AccessDenied", 403, StorageError),
    ("NoSuchKey", 404, BlobNotFound)])
def test_s3_error_codes_map_to_storage_errors(code, status, expected):
    error = ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                        "GetObject")
    with pytest.raises(expected):
        with aws._translate("c" * 32):
            raise error
