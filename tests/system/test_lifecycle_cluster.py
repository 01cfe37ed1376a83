"""Lifecycle rules run once across a cluster: three nodes (two workers each) on ONE
PostgreSQL database (tests/cluster.py), every worker offering to run the pass every
second (lifecycle.interval_seconds 1) with a one-second lifecycle day, while clients
write through nginx.

- A versioned bucket with Object Lock: 200 keys under exp/ expire (Days 3) into a delete
  marker each; 20 of them have a legal hold on their version, which stays. 100 keys
  under nc/ have two versions; the noncurrent one expires (NoncurrentDays 1), except
  for 20 with a legal hold.
- An unversioned bucket: 200 keys under tmp/ expire (Days 2); keep/ keys do not.

Then, after several more passes: every key expired exactly once (one delete marker per
exp/ key, one "lifecycle: deleted" log line per key or version across all nodes' logs,
and bleepstore_lifecycle_deleted_total summed over the nodes equal to the number of
expected deletions), held versions still readable, keys outside the rules untouched.

Needs PostgreSQL (BLEEPSTORE_TEST_DATABASE_URL) and nginx; skipped without the URL,
as the other PostgreSQL tests are.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ..cluster import Cluster
from ..conftest import PG_URL, make_client

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="needs BLEEPSTORE_TEST_DATABASE_URL (PostgreSQL)")]

VERSIONED, PLAIN = "lc-versioned", "lc-plain"
EXP, NC, TMP, KEEP = 200, 100, 200, 20
HELD_EVERY = 10  # every 10th exp/ and nc/ key has a legal hold on its (first) version
DELETED = re.compile(r"lifecycle: deleted action=(\S+) bucket=(\S+) key=(\S+) version_id=(\S+) rule=(\S+)")
METRIC = re.compile(r'^bleepstore_lifecycle_deleted_total\{action="([a-z_]+)"\} ([0-9.e+]+)$', re.M)


@pytest.fixture
def cluster(tmp_path, pg_databases):
    c = Cluster(tmp_path, pg_databases.create())
    c.env.update({"BLEEPSTORE_LIFECYCLE_DAY_SECONDS": "1", "BLEEPSTORE_LIFECYCLE_INTERVAL_SECONDS": "1",
                  "BLEEPSTORE_LIFECYCLE_BATCH_SIZE": "50"})
    c.start()
    yield c
    c.stop()


def _listing(s3, bucket: str) -> tuple[list[dict], list[dict]]:
    versions, markers = [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers


def _done(s3, held_nc: set[str]) -> bool:
    if s3.list_objects_v2(Bucket=PLAIN, Prefix="tmp/")["KeyCount"]:
        return False
    versions, markers = _listing(s3, VERSIONED)
    marked = {m["Key"] for m in markers}
    noncurrent_nc = [v for v in versions if v["Key"].startswith("nc/") and not v["IsLatest"]]
    return len([k for k in marked if k.startswith("exp/")]) == EXP and len(noncurrent_nc) == len(held_nc)


def test_each_expired_object_is_deleted_exactly_once(cluster):
    s3 = make_client(cluster.endpoint)
    s3.create_bucket(Bucket=VERSIONED, ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket=PLAIN)
    s3.put_bucket_lifecycle_configuration(Bucket=VERSIONED, LifecycleConfiguration={"Rules": [
        {"ID": "exp", "Filter": {"Prefix": "exp/"}, "Status": "Enabled", "Expiration": {"Days": 3}},
        {"ID": "nc", "Filter": {"Prefix": "nc/"}, "Status": "Enabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    s3.put_bucket_lifecycle_configuration(Bucket=PLAIN, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 2}}]})

    def put_exp(i: int) -> tuple[str, str]:
        extra = {"ObjectLockLegalHoldStatus": "ON"} if i % HELD_EVERY == 0 else {}
        return f"exp/{i:04d}", s3.put_object(Bucket=VERSIONED, Key=f"exp/{i:04d}", Body=b"e", **extra)["VersionId"]

    def put_nc(i: int) -> tuple[str, str]:
        key = f"nc/{i:04d}"
        extra = {"ObjectLockLegalHoldStatus": "ON"} if i % HELD_EVERY == 0 else {}
        first = s3.put_object(Bucket=VERSIONED, Key=key, Body=b"1", **extra)["VersionId"]
        s3.put_object(Bucket=VERSIONED, Key=key, Body=b"2")
        return key, first

    with ThreadPoolExecutor(8) as pool:
        exp = dict(pool.map(put_exp, range(EXP)))
        nc_first = dict(pool.map(put_nc, range(NC)))
        list(pool.map(lambda i: s3.put_object(Bucket=PLAIN, Key=f"tmp/{i:04d}", Body=b"t"), range(TMP)))
        list(pool.map(lambda i: s3.put_object(Bucket=PLAIN, Key=f"keep/{i:04d}", Body=b"k"), range(KEEP)))
    held_exp = {exp[f"exp/{i:04d}"] for i in range(0, EXP, HELD_EVERY)}
    held_nc = {nc_first[f"nc/{i:04d}"] for i in range(0, NC, HELD_EVERY)}

    deadline = time.monotonic() + 120
    while not _done(s3, held_nc):
        assert time.monotonic() < deadline, "the rules did not run within 120 s:\n" + cluster.log()
        time.sleep(1)
    time.sleep(5)  # several more passes, on any node: they must find nothing more to do

    totals: Counter = Counter()
    for node in cluster.nodes:
        for action, value in METRIC.findall(requests.get(node.endpoint + "/metrics", timeout=10).text):
            totals[action] += int(float(value))
    versions, markers = _listing(s3, VERSIONED)
    plain_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=PLAIN).get("Contents", [])]
    cluster.stop()  # every log line written
    lines = [m.groups() for node in cluster.nodes for m in DELETED.finditer(node.log_path.read_text())]
    per_node = {node.name: len(DELETED.findall(node.log_path.read_text())) for node in cluster.nodes}
    print("deletions logged per node:", per_node)

    # Each exp/ key: exactly one delete marker (current), its version kept as noncurrent.
    assert Counter(m["Key"] for m in markers) == Counter(exp.keys())
    assert all(m["IsLatest"] for m in markers)
    assert {v["VersionId"] for v in versions if v["Key"].startswith("exp/")} == set(exp.values())
    marker_ids = {m["Key"]: m["VersionId"] for m in markers}
    # nc/: the held first versions stay, the others went; the current ones stay.
    nc_versions = {v["VersionId"] for v in versions if v["Key"].startswith("nc/")}
    assert held_nc <= nc_versions and not (set(nc_first.values()) - held_nc) & nc_versions
    assert len(nc_versions) == NC + len(held_nc)
    assert held_exp <= {v["VersionId"] for v in versions}
    # The unversioned bucket: tmp/ gone, keep/ untouched.
    assert plain_keys == [f"keep/{i:04d}" for i in range(KEEP)]

    expired = Counter((b, k) for action, b, k, _, _ in lines if action == "expiration")
    assert expired == Counter({(VERSIONED, k): 1 for k in exp} | {(PLAIN, f"tmp/{i:04d}"): 1 for i in range(TMP)})
    logged_markers = {k: v for action, b, k, v, _ in lines if action == "expiration" and b == VERSIONED}
    assert logged_markers == marker_ids
    noncurrent = Counter(v for action, _, _, v, _ in lines if action == "noncurrent_expiration")
    assert noncurrent == Counter({v: 1 for v in set(nc_first.values()) - held_nc})
    assert len(lines) == EXP + TMP + NC - len(held_nc)
    assert totals == Counter({"expiration": EXP + TMP, "noncurrent_expiration": NC - len(held_nc)})

