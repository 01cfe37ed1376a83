"""kill -9 in the middle of a lifecycle pass, and its successor resuming it.

A versioned bucket holds 2000 keys that one rule expires (a one-second lifecycle day,
batches of 10 rows, so the pass takes a while). Once the server's log shows the pass
deleting, the whole server is killed with SIGKILL. Its lease row records where the pass
was (bucket, phase, last key). The dead holder's lease would expire after its 120 s; the
test expires it at once (as time would) and starts a second server on the same
database, which resumes the pass at that point ("resuming a pass" names it) and
finishes it. Then:
- every key has exactly one delete marker (nothing deleted twice, nothing skipped) and
  still its one version;
- no key is logged as deleted by both servers; the keys logged by neither are at most
  one chunk of deletions (committed just before the kill, not yet logged);
- every key the second server deleted is after the recorded resume point.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from ..conftest import ENGINES, make_client
from ..servers import Server, write_config
from bleepstore_app.config import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("engine", ENGINES)]

KEYS = 2000
BUCKET = "lc-kill9"
DELETED = re.compile(r"lifecycle: deleted action=expiration bucket=\S+ key=(\S+) ")
LIFECYCLE = {"BLEEPSTORE_LIFECYCLE_DAY_SECONDS": "1", "BLEEPSTORE_LIFECYCLE_INTERVAL_SECONDS": "1",
             "BLEEPSTORE_LIFECYCLE_BATCH_SIZE": "10"}


def _lease(env: dict, expire: bool = False):
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if expire:
                conn.execute(sa.text("UPDATE leases SET expires_at = 0 WHERE name = 'lifecycle'"))
            return conn.execute(sa.text("SELECT holder, progress FROM leases WHERE name = 'lifecycle'")).one()
    finally:
        engine.dispose()


def test_kill_9_mid_pass_resumes_without_skipping_or_repeating(engine, tmp_path, pg_databases):
    url = pg_databases.create() if engine == "postgresql" else None
    env = dict(os.environ, **LIFECYCLE, BLEEPSTORE_CONFIG=str(write_config(tmp_path, url)))
    first = Server(tmp_path, env).start()
    try:
        s3 = make_client(first.endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        names = [f"k/{i:05d}" for i in range(KEYS)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=b"x"), names))
        time.sleep(2)  # every key older than its one "day"
        s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
            {"ID": "all", "Filter": {"Prefix": "k/"}, "Status": "Enabled", "Expiration": {"Days": 1}}]})
        deadline = time.monotonic() + 60
        while len(DELETED.findall(first.log_path.read_text(errors="replace"))) < 100:
            assert time.monotonic() < deadline, first.log()
            time.sleep(0.005)
        first.kill()
    finally:
        first.stop()
    log_a = first.log_path.read_text(errors="replace")
    assert "lifecycle: pass done" not in log_a, "the pass ended before the kill: make it longer"
    _, progress = _lease(env, expire=True)
    assert progress is not None
    point = json.loads(progress)
    assert point["bucket"] == BUCKET and point["phase"] == "current", point
    deleted_a = DELETED.findall(log_a)

    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = Server(second_dir, env).start()
    try:
        s3 = make_client(second.endpoint)
        deadline = time.monotonic() + 120
        while s3.list_objects_v2(Bucket=BUCKET)["KeyCount"]:
            assert time.monotonic() < deadline, second.log()
            time.sleep(0.5)
        time.sleep(3)  # more passes: nothing more to do
        resp_pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET))
    finally:
        second.stop()
    log_b = second.log_path.read_text(errors="replace")
    assert f"lifecycle: resuming a pass at bucket={BUCKET} phase=current key={point['key']}" in log_b, log_b[-3000:]
    deleted_b = DELETED.findall(log_b)

    markers = Counter(m["Key"] for p in resp_pages for m in p.get("DeleteMarkers", []))
    versions = Counter(v["Key"] for p in resp_pages for v in p.get("Versions", []))
    assert markers == Counter({k: 1 for k in names})
    assert versions == Counter({k: 1 for k in names})
    assert not Counter(deleted_a) - Counter(set(deleted_a)) and not Counter(deleted_b) - Counter(set(deleted_b))
    assert not set(deleted_a) & set(deleted_b)
    unlogged = set(names) - set(deleted_a) - set(deleted_b)
    assert len(unlogged) <= 10, sorted(unlogged)
    assert all(k > point["key"] for k in deleted_b)
    print(f"first server deleted {len(deleted_a)}, second {len(deleted_b)}, unlogged {len(unlogged)}, "
          f"resumed after {point['key']}")
