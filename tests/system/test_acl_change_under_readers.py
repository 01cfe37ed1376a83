"""A bucket ACL changed while one worker serves many readers at once.

A request reads each bucket row once and keeps it for that request only
(service/buckets.rows_read_once, a ContextVar, so one per greenlet). Here a
single-worker server runs many concurrent ListObjectsV2 requests of another
user (each its own greenlet in that worker) while the owner flips the bucket ACL
between private and a READ grant to that user. A memo that outlived its request,
or leaked into another greenlet, would answer a request with a stale ACL.

The rule checked: a request sent after a PutBucketAcl was answered, and before
the next one was sent, sees exactly that ACL (200 with the object listed, or
AccessDenied). Requests that overlap a change may see either side, nothing else.
"""
from __future__ import annotations

import os
import random
import threading
import time

import pytest
from botocore.exceptions import ClientError

from ..conftest import make_client
from ..servers import OTHER_ACCESS_KEY, OTHER_SECRET_KEY, Server, write_config

READERS = 12
FLIPS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("acl-race")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)), BLEEPSTORE_SERVER_WORKERS="1")
    srv = Server(workdir, env).start()
    yield srv
    srv.stop()


def test_every_request_sees_the_acl_in_force_when_it_was_sent(server):
    owner = make_client(server.endpoint, max_pool_connections=4)
    other_id = make_client(server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY).list_buckets()["Owner"]["ID"]
    owner_id = owner.list_buckets()["Owner"]["ID"]
    bucket = "acl-race-" + os.urandom(3).hex()
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="listed", Body=b"x")

    def set_acl(readable: bool) -> None:
        grants = [{"Grantee": {"Type": "CanonicalUser", "ID": owner_id}, "Permission": "FULL_CONTROL"}]
        if readable:
            grants.append({"Grantee": {"Type": "CanonicalUser", "ID": other_id}, "Permission": "READ"})
        owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Grants": grants, "Owner": {"ID": owner_id}})

    # (sent_at, answered_at, readable) of each change; the first is in force before the race.
    set_acl(False)
    changes = [(0.0, time.monotonic(), False)]
    answers: list[tuple[float, float, str]] = []  # (sent_at, answered_at, outcome) of each read
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        client = make_client(server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
        try:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
                    outcome = "listed" if keys == ["listed"] else f"wrong listing {keys}"
                except ClientError as exc:
                    outcome = exc.response["Error"]["Code"]
                answers.append((sent, time.monotonic(), outcome))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    for t in threads:
        t.start()
    rng = random.Random()
    readable = False
    try:
        for _ in range(FLIPS):
            time.sleep(rng.uniform(0.01, 0.08))
            readable = not readable
            sent = time.monotonic()
            set_acl(readable)
            changes.append((sent, time.monotonic(), readable))
        time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures

    outcomes = {o for _, _, o in answers}
    assert outcomes <= {"listed", "AccessDenied"}, outcomes
    checked = 0
    for i, (_, in_force_from, state) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
        want = "listed" if state else "AccessDenied"
        for sent, answered, outcome in answers:
            if sent > in_force_from and answered < until:
                assert outcome == want, (i, state, outcome)
                checked += 1
    assert checked > READERS * 10, f"only {checked} reads fell wholly between two changes"
    assert {"listed", "AccessDenied"} <= outcomes, "both ACLs were seen by readers"
