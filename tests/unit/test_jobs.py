"""Leases and the blob sweeper, on a real SQLite database and local storage."""
from __future__ import annotations

import io

import pytest

from bleepstore_app.config import load_settings
from bleepstore_app.jobs.sweeper import LEASE_NAME, sweep_garbage
from bleepstore_app.metadata.engine import Database, make_engine
from bleepstore_app.metadata.records import BucketRecord, ObjectRecord, now_us
from bleepstore_app.metadata.store import MetadataStore
from bleepstore_app.recovery import recover
from bleepstore_app.storage import make_storage
from bleepstore_app.storage.base import BlobNotFound


@pytest.fixture
def env(tmp_path):
    settings = load_settings(environ={}, overrides={
        "metadata.sqlite.path": str(tmp_path / "m.db"), "metadata.sqlite.synchronous": "NORMAL",
        "storage.local.root_dir": str(tmp_path / "o"), "storage.local.fsync": False})
    recover(settings)
    db = Database(make_engine(settings))
    yield db, make_storage(settings)
    db.dispose()


def _put(meta, storage, key: str, data: bytes) -> str:
    location = storage.put(io.BytesIO(data)).location
    meta.put_object(ObjectRecord(bucket="b", key=key, size=len(data), etag="0" * 32, last_modified=now_us(),
                                 owner_id="o", owner_display_name="o", data_location=location))
    return location


def test_lease_has_one_holder_until_it_expires_or_is_dropped(env):
    meta = MetadataStore(env[0])
    now = now_us()
    assert meta.take_lease("job", "a", now, 1_000_000)
    assert not meta.take_lease("job", "b", now, 1_000_000), "held by a"
    assert meta.take_lease("job", "a", now, 1_000_000), "the holder renews"
    assert meta.take_lease("job", "b", now + 2_000_000, 1_000_000), "expired: anyone's"
    assert not meta.take_lease("job", "a", now + 2_000_000, 1_000_000)
    meta.drop_lease("job", "a")  # not a's to drop any more
    assert not meta.take_lease("job", "a", now + 2_000_000, 1_000_000)
    meta.drop_lease("job", "b")
    assert meta.take_lease("job", "a", now + 2_000_000, 1_000_000)


def test_progress_is_written_only_by_the_holder(env):
    meta = MetadataStore(env[0])
    assert meta.take_lease("job", "a", now_us(), 10_000_000)
    assert meta.set_lease_progress("job", "a", '{"after": "k"}')
    assert not meta.set_lease_progress("job", "b", '{"after": "z"}')
    assert meta.lease_progress("job") == '{"after": "k"}'


def test_replaced_and_deleted_blobs_stay_readable_until_their_grace_has_passed(env):
    db, storage = env
    meta = MetadataStore(db, garbage_grace_seconds=3600)
    meta.create_bucket(BucketRecord("b", "o", "o", "us-east-1", now_us()))
    first = _put(meta, storage, "k", b"one")
    reader = storage.open(first)
    _put(meta, storage, "k", b"two")
    gone = _put(meta, storage, "d", b"three")
    meta.delete_object("b", "d")
    assert sweep_garbage(meta, storage) == 0, "nothing is due for an hour"
    assert b"".join(reader.iter_range(0, 3)) == b"one"
    storage.open(gone).close()
    due = meta.due_garbage(now_us() + 3601 * 1_000_000, 10)
    assert sorted(loc for _, loc in due) == sorted([first, gone])


def test_sweep_deletes_due_blobs_once_and_survives_a_crash_between_its_steps(env):
    db, storage = env
    meta = MetadataStore(db, garbage_grace_seconds=0)
    meta.create_bucket(BucketRecord("b", "o", "o", "us-east-1", now_us()))
    old = [_put(meta, storage, f"k{i}", b"x") for i in range(3)]
    for i in range(3):
        meta.delete_object("b", f"k{i}")
    storage.delete(old[0])  # as if a sweep was killed after deleting, before forgetting
    assert sweep_garbage(meta, storage) == 3
    for location in old:
        with pytest.raises(BlobNotFound):
            storage.open(location)
    assert meta.due_garbage(now_us(), 10) == []
    assert sweep_garbage(meta, storage) == 0


def test_sweep_waits_for_another_holder(env):
    db, storage = env
    meta = MetadataStore(db, garbage_grace_seconds=0)
    assert meta.take_lease(LEASE_NAME, "other-node", now_us(), 60_000_000)
    assert sweep_garbage(meta, storage) is None
    meta.drop_lease(LEASE_NAME, "other-node")
    assert sweep_garbage(meta, storage) == 0
