"""Versioning across a cluster: three nodes on ONE PostgreSQL database (tests/cluster.py),
each addressed directly (and nginx in front, for one listing).

1. Racing writers. On a versioned bucket, threads each bound to one node PUT
   (inline-sized and blob-sized bodies) and DELETE without a version id (delete
   markers) the same few keys, recording every VersionId the server acknowledged and
   whether it was a marker. Right after each write the writer GETs the key on its own
   node and on the next node, and records the version id it was served. Then, from
   the raw ListObjectVersions of every node (document order: versions and markers
   interleaved, each key newest first):

   - every node and nginx list the same thing;
   - every acknowledged version and marker is listed exactly once, with its kind and
     key, and nothing else is listed; version ids are unique;
   - each key has exactly one IsLatest, its newest entry;
   - each writer's writes of a key are in the writer's own order (a later write is
     newer);
   - read-after-write: the version a GET returned right after a write is that write's
     version or a newer one, never an older one (on the writer's node and on another);
   - every version's bytes (GET by VersionId) hash to its ETag and are the bytes sent.

2. Racing deletes of the current version. Round after round, two nodes DELETE the
   key's current version by VersionId (both the same one, or the current and the one
   that would be promoted) while the third PUTs the key, makes a delete marker on it,
   or writes a sibling key. Whatever the interleaving, the outcome is determined: the
   deleted versions are gone, every other one is still there in the same order, the
   new write (if on that key) is the newest, and the current version (IsLatest, and
   what GET serves) is the newest survivor: the promoted one when nothing new landed.

3. Three deletes down the promotion chain: the three nodes at once DELETE by VersionId
   the current version, the one its deletion promotes, and the one after that. All
   three answer 204; all three must be gone.

4. The version being promoted, read and re-ACLed meanwhile: GetObject and GetObjectAcl
   by its VersionId never answer NoSuchVersion (it exists throughout), PutObjectAcl on
   it never answers NoSuchVersion, and an acknowledged ACL is its ACL afterwards.

Needs PostgreSQL (BLEEPSTORE_TEST_DATABASE_URL; CI sets it, and a missing server then
fails) and nginx. Skipped without the URL, as the other PostgreSQL tests are.
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from ..cluster import Cluster
from ..conformance.support_issue4 import NS, describe, raw
from ..conftest import PG_URL, make_client

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="needs BLEEPSTORE_TEST_DATABASE_URL (PostgreSQL)")]

KiB = 1024
INLINE_MAX = 16 * KiB
SEED = int(os.environ.get("BLEEPSTORE_TEST_SEED") or random.SystemRandom().randrange(10 ** 9))
WRITERS_PER_NODE = 2
OPS_PER_WRITER = int(os.environ.get("BLEEPSTORE_TEST_VERSION_OPS", "30"))
KEYS = ("hot/a", "hot/b", "hot/c")
ROUNDS = 18
CHAIN_ROUNDS = int(os.environ.get("BLEEPSTORE_TEST_CHAIN_ROUNDS", "60"))
PROMOTION_ROUNDS = int(os.environ.get("BLEEPSTORE_TEST_PROMOTION_ROUNDS", "60"))
VERSION_ID = re.compile(r"[0-9a-f]{32}")


def _rerun() -> str:
    return f"seed {SEED} (rerun: BLEEPSTORE_TEST_SEED={SEED})"


@dataclass(frozen=True)
class Write:
    """One acknowledged write: a version (with its body's MD5) or a delete marker."""
    writer: str
    n: int            # the writer's own sequence number
    key: str
    version_id: str
    marker: bool
    md5: str | None   # the body's MD5 (None for a marker)
    node: int


@dataclass(frozen=True)
class Entry:
    """One row of a raw ListObjectVersions, in document order."""
    kind: str         # "Version" or "DeleteMarker"
    key: str
    version_id: str
    latest: bool
    etag: str | None


# -- helpers -------------------------------------------------------------------------------------

def list_versions(node, bucket: str, prefix: str = "") -> list[Entry]:
    """The whole raw ListObjectVersions of ``bucket`` from one node (or nginx),
    following the key / version-id markers, small pages so pagination is used."""
    out: list[Entry] = []
    params = {"max-keys": "97"}
    if prefix:
        params["prefix"] = prefix
    while True:
        query = "versions" + "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
        resp = raw(node, "GET", f"/{bucket}", query=query)
        assert resp.status_code == 200, describe(resp)
        root = ET.fromstring(resp.content)
        for child in root:
            kind = child.tag.replace(NS, "")
            if kind in ("Version", "DeleteMarker"):
                etag = child.findtext(f"{NS}ETag")
                out.append(Entry(kind, child.findtext(f"{NS}Key"), child.findtext(f"{NS}VersionId"),
                                 child.findtext(f"{NS}IsLatest") == "true", etag.strip('"') if etag else None))
        if root.findtext(f"{NS}IsTruncated") != "true":
            return out
        params["key-marker"] = root.findtext(f"{NS}NextKeyMarker")
        params["version-id-marker"] = root.findtext(f"{NS}NextVersionIdMarker") or ""


def by_key(entries: list[Entry]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(e.key, []).append(e)
    return out


def body_for(rng: random.Random, label: str) -> bytes:
    size = rng.choice((rng.randrange(1, 2 * KiB), rng.randrange(INLINE_MAX + 1, 96 * KiB)))
    head = f"<{label}>".encode()
    return head + rng.randbytes(max(0, size - len(head)))


def served_version(s3, bucket: str, key: str) -> tuple[str | None, bool, bytes | None, str | None]:
    """What a plain GET of ``key`` serves: (version id, is a delete marker, body, ETag)."""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        headers = exc.response["ResponseMetadata"]["HTTPHeaders"]
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return headers.get("x-amz-version-id"), headers.get("x-amz-delete-marker") == "true", None, None
        raise
    return resp.get("VersionId"), False, resp["Body"].read(), resp["ETag"].strip('"')


def close(clients) -> None:
    for client in clients:
        client._endpoint.http_session.close()
    gc.collect()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_databases):
    c = Cluster(tmp_path_factory.mktemp("versions-cluster"), pg_databases.create()).start()
    clients = [make_client(n.endpoint, max_pool_connections=8, connect_timeout=5, read_timeout=30)
               for n in c.nodes]
    c.clients = clients
    try:
        yield c
    finally:
        close(clients)
        c.stop()


def new_versioned_bucket(cluster) -> str:
    name = "vc-" + uuid.uuid4().hex[:16]
    s3 = cluster.clients[0]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for other in cluster.clients[1:]:  # no node serves a stale versioning state
        assert other.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"
    return name


# -- 1: racing writers on three nodes --------------------------------------------------------

def test_racing_writers_on_three_nodes_lose_no_version_and_keep_each_writers_order(cluster, capsys):
    bucket = new_versioned_bucket(cluster)
    nodes, clients = cluster.nodes, cluster.clients
    writes: list[Write] = []
    bodies: dict[str, bytes] = {}
    reads: list[tuple[Write, int, str | None, bool]] = []  # (the write, node read, version served, marker)
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(nodes) * WRITERS_PER_NODE)
    with capsys.disabled():
        print(f"\n[versions cluster] {_rerun()}: {len(nodes) * WRITERS_PER_NODE} writers x {OPS_PER_WRITER} ops")

    def writer(node: int, w: int) -> None:
        name = f"n{node}w{w}"
        s3, other = clients[node], clients[(node + 1) % len(nodes)]
        rng = random.Random(f"{SEED}-{name}")
        start.wait(30)
        try:
            for n in range(OPS_PER_WRITER):
                key = rng.choice(KEYS)
                label = f"{name}#{n}"
                if rng.random() < 0.25:
                    resp = s3.delete_object(Bucket=bucket, Key=key)
                    vid = resp.get("VersionId")
                    if not resp.get("DeleteMarker") or not vid:
                        problems.append(f"{label} DELETE {key} on node{node}: no delete marker in {resp}")
                        continue
                    write = Write(name, n, key, vid, True, None, node)
                else:
                    body = body_for(rng, label)
                    resp = s3.put_object(Bucket=bucket, Key=key, Body=body)
                    vid, md5 = resp.get("VersionId"), hashlib.md5(body).hexdigest()
                    if resp["ETag"].strip('"') != md5:
                        problems.append(f"{label} PUT {key} on node{node}: ETag {resp['ETag']}, MD5 {md5}")
                    write = Write(name, n, key, vid, False, md5, node)
                    with lock:
                        bodies[vid] = body
                if not vid or not VERSION_ID.fullmatch(vid):
                    problems.append(f"{label} on node{node}: version id {vid!r}")
                    continue
                with lock:
                    writes.append(write)
                for reader, client in ((node, s3), ((node + 1) % len(nodes), other)):
                    served, marker, got, etag = served_version(client, bucket, key)
                    if got is not None and hashlib.md5(got).hexdigest() != etag:
                        problems.append(f"{label}: GET {key} on node{reader} served {served}, "
                                        f"a body that does not hash to its ETag {etag}")
                    if served == vid and (marker != write.marker or (
                            got is not None and hashlib.md5(got).hexdigest() != write.md5)):
                        problems.append(f"{label}: GET {key} on node{reader} served this write's id {vid} "
                                        f"with other content (marker {marker})")
                    with lock:
                        reads.append((write, reader, served, marker))
        except Exception as exc:  # noqa: BLE001 - reported with the seed
            problems.append(f"{name} on node{node}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer, args=(node, w), daemon=True)
               for node in range(len(nodes)) for w in range(WRITERS_PER_NODE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads), f"{_rerun()}: a writer never finished"
    assert not problems, f"{_rerun()}:\n  " + "\n  ".join(problems[:30])

    # Every node (and nginx) lists the same versions in the same order.
    listing = list_versions(nodes[0], bucket)
    for i, node in enumerate(nodes[1:], 1):
        assert list_versions(node, bucket) == listing, f"{_rerun()}: node{i} lists otherwise than node0"
    assert list_versions(cluster, bucket) == listing, f"{_rerun()}: nginx lists otherwise than node0"

    ids = [e.version_id for e in listing]
    dupes = sorted(v for v in set(ids) if ids.count(v) > 1)
    assert not dupes, f"{_rerun()}: version ids listed more than once: {dupes[:10]}"
    listed = {e.version_id: e for e in listing}
    acked = {w.version_id: w for w in writes}
    assert len(acked) == len(writes), f"{_rerun()}: the server gave one version id to two writes"
    missing = sorted(set(acked) - set(listed))
    extra = sorted(set(listed) - set(acked))
    assert not missing, (f"{_rerun()}: {len(missing)} acknowledged writes are not listed: "
                         + ", ".join(f"{acked[v].writer}#{acked[v].n} {acked[v].key} {v}" for v in missing[:10]))
    assert not extra, f"{_rerun()}: versions nobody wrote are listed: {extra[:10]}"
    for vid, w in acked.items():
        e = listed[vid]
        assert (e.key, e.kind) == (w.key, "DeleteMarker" if w.marker else "Version"), (
            f"{_rerun()}: {w.writer}#{w.n} ({'marker' if w.marker else 'version'} of {w.key}) "
            f"is listed as a {e.kind} of {e.key}")

    order = by_key(listing)
    position = {e.version_id: i for entries in order.values() for i, e in enumerate(entries)}  # 0: newest
    for key, entries in order.items():
        latest = [e.version_id for e in entries if e.latest]
        assert latest == [entries[0].version_id], (
            f"{_rerun()}: {key}: IsLatest on {latest}, the newest listed is {entries[0].version_id}")

    # Each writer's own writes of a key: a later one is newer (listed before).
    mine: dict[tuple[str, str], list[Write]] = {}
    for w in sorted(writes, key=lambda w: (w.writer, w.n)):
        mine.setdefault((w.writer, w.key), []).append(w)
    for (name, key), ws in mine.items():
        for earlier, later in zip(ws, ws[1:]):
            assert position[later.version_id] < position[earlier.version_id], (
                f"{_rerun()}: {name}'s write #{later.n} of {key} ({later.version_id}) is listed as older "
                f"than its write #{earlier.n} ({earlier.version_id})")

    # Read-after-write: never a version older than the one just written.
    for write, reader, served, marker in reads:
        what = f"GET {write.key} on node{reader} right after {write.writer}#{write.n} on node{write.node}"
        assert served is not None, f"{_rerun()}: {what} served no version at all"
        assert served in position, f"{_rerun()}: {what} served {served}, which is not listed"
        assert listed[served].key == write.key, f"{_rerun()}: {what} served a version of {listed[served].key}"
        assert position[served] <= position[write.version_id], (
            f"{_rerun()}: {what} served {served} (listed {position[served]}), older than the write's "
            f"{write.version_id} (listed {position[write.version_id]})")
        assert marker == (listed[served].kind == "DeleteMarker"), f"{_rerun()}: {what}: marker flag {marker}"

    # Every version's bytes, by VersionId (from a node of its own choosing).
    for i, (vid, e) in enumerate(listed.items()):
        s3 = clients[i % len(clients)]
        if e.kind == "DeleteMarker":
            continue
        resp = s3.get_object(Bucket=bucket, Key=e.key, VersionId=vid)
        got = resp["Body"].read()
        assert resp["VersionId"] == vid
        assert hashlib.md5(got).hexdigest() == e.etag == acked[vid].md5, (
            f"{_rerun()}: {e.key} version {vid}: {len(got)} bytes hashing to {hashlib.md5(got).hexdigest()}, "
            f"listed ETag {e.etag}, written {acked[vid].md5}")
        assert got == bodies[vid]
    # The current version, as every node serves it, is the newest listed.
    for key, entries in order.items():
        for node, s3 in enumerate(clients):
            served, marker, _, _ = served_version(s3, bucket, key)
            assert (served, marker) == (entries[0].version_id, entries[0].kind == "DeleteMarker"), (
                f"{_rerun()}: node{node} serves {served} as {key}'s current version; newest listed "
                f"{entries[0].version_id}")
    with capsys.disabled():
        print(f"[versions cluster] {len(writes)} writes ({sum(w.marker for w in writes)} markers), "
              f"{len(reads)} reads after write, {len(listing)} versions listed")


# -- 2: racing deletes of the current version --------------------------------------------------

def test_racing_deletes_of_the_current_version_promote_the_right_one(cluster, capsys):
    bucket = new_versioned_bucket(cluster)
    nodes, clients = cluster.nodes, cluster.clients
    key, sibling = "promo", "promo-sibling"
    rng = random.Random(f"{SEED}-promo")
    bodies: dict[str, bytes] = {}

    def put(s3, k: str, label: str) -> str:
        body = f"<{label}>".encode() + rng.randbytes(rng.choice((300, 20 * KiB)))
        resp = s3.put_object(Bucket=bucket, Key=k, Body=body)
        bodies[resp["VersionId"]] = body
        return resp["VersionId"]

    for i in range(ROUNDS + 8):  # history enough for every round to delete up to two
        put(clients[i % 3], key, f"seed{i}")
        if i % 5 == 2:
            clients[i % 3].delete_object(Bucket=bucket, Key=key)
    put(clients[0], sibling, "sibling")
    with capsys.disabled():
        print(f"\n[versions cluster promote] {_rerun()}: {ROUNDS} rounds")

    kinds: Counter = Counter()
    for r in range(ROUNDS):
        before = [(e.kind, e.version_id) for e in list_versions(nodes[r % 3], bucket, prefix=key) if e.key == key]
        assert len(before) >= 3, before
        current, previous = before[0][1], before[1][1]
        targets = (current, current) if r % 2 == 0 else (current, previous)
        action = ("put", "marker", "sibling")[(r // 2) % 3]
        kinds[("same" if targets[0] == targets[1] else "current+previous", action, before[0][0])] += 1
        roles = [(r + i) % 3 for i in range(3)]  # which node deletes, deletes, writes: rotates
        barrier = threading.Barrier(3)
        answers: dict[str, object] = {}

        def delete(node: int, vid: str, slot: str) -> None:
            barrier.wait(30)
            try:
                answers[slot] = clients[node].delete_object(Bucket=bucket, Key=key, VersionId=vid)
            except Exception as exc:  # noqa: BLE001 - asserted below
                answers[slot] = exc

        def write(node: int) -> None:
            barrier.wait(30)
            try:
                if action == "put":
                    answers["write"] = ("Version", put(clients[node], key, f"round{r}"))
                elif action == "marker":
                    resp = clients[node].delete_object(Bucket=bucket, Key=key)
                    answers["write"] = ("DeleteMarker", resp["VersionId"]) if resp.get("DeleteMarker") else resp
                else:
                    answers["write"] = ("sibling", put(clients[node], sibling, f"round{r}"))
            except Exception as exc:  # noqa: BLE001
                answers["write"] = exc

        threads = [threading.Thread(target=delete, args=(roles[0], targets[0], "d0")),
                   threading.Thread(target=delete, args=(roles[1], targets[1], "d1")),
                   threading.Thread(target=write, args=(roles[2],))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        what = (f"{_rerun()}, round {r}: node{roles[0]} and node{roles[1]} DELETE "
                f"{'the current version' if targets[0] == targets[1] else 'the current and the previous version'}"
                f" ({before[0][0]} {current}, {before[1][0]} {previous}) while node{roles[2]} does {action}")
        for slot in ("d0", "d1", "write"):
            assert not isinstance(answers.get(slot), Exception), f"{what}: {slot} failed: {answers.get(slot)!r}"
        assert isinstance(answers["write"], tuple), f"{what}: the write answered {answers['write']}"
        for slot, vid in (("d0", targets[0]), ("d1", targets[1])):
            assert answers[slot]["ResponseMetadata"]["HTTPStatusCode"] == 204, f"{what}: {slot} {answers[slot]}"
            assert answers[slot].get("VersionId") == vid, f"{what}: {slot} answered {answers[slot]}"
        if before[0][0] == "DeleteMarker":
            assert any(answers[s].get("DeleteMarker") for s in ("d0", "d1")), (
                f"{what}: neither delete of the delete marker {current} said x-amz-delete-marker")

        gone = set(targets)
        expected = [v for v in before if v[1] not in gone]
        new_kind, new_vid = answers["write"]
        if new_kind != "sibling":
            expected.insert(0, (new_kind, new_vid))
        for node, s3 in enumerate(clients):
            after = [e for e in list_versions(nodes[node], bucket, prefix=key) if e.key == key]
            got = [(e.kind, e.version_id) for e in after]
            assert got == expected, (f"{what}: node{node} lists {got[:6]}... ({len(got)}), due "
                                     f"{expected[:6]}... ({len(expected)})")
            assert [e.latest for e in after] == [True] + [False] * (len(after) - 1), (
                f"{what}: node{node}: IsLatest {[e.latest for e in after][:6]}")
            served, marker, body, _ = served_version(s3, bucket, key)
            assert (served, marker) == (expected[0][1], expected[0][0] == "DeleteMarker"), (
                f"{what}: node{node} serves {served} (marker {marker}) as current; due {expected[0]}"
                + (" (the promoted version)" if new_kind == "sibling" else ""))
            if body is not None:
                assert body == bodies[served]
        for vid in gone:
            with pytest.raises(ClientError) as exc:
                clients[r % 3].head_object(Bucket=bucket, Key=key, VersionId=vid)
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, f"{what}: {vid} answers"
        if len(expected) < 3:  # keep enough history for the next rounds
            for i in range(3):
                put(clients[i], key, f"refill{r}.{i}")
    # Every surviving version's bytes.
    final = [e for e in list_versions(nodes[1], bucket) if e.kind == "Version"]
    for i, e in enumerate(final):
        got = clients[i % 3].get_object(Bucket=bucket, Key=e.key, VersionId=e.version_id)["Body"].read()
        assert got == bodies[e.version_id] and hashlib.md5(got).hexdigest() == e.etag
    with capsys.disabled():
        print(f"[versions cluster promote] rounds by (targets, action, current kind): {dict(kinds)}")


# -- 3: three deletes down the promotion chain ---------------------------------------------------

def test_three_nodes_deleting_the_newest_three_versions_at_once_delete_all_three(cluster, capsys):
    """Node 0 deletes the current version, node 1 the one it promotes, node 2 the one
    that promotes in turn, at the same moment: each waits for the current row's lock,
    and the row it waited for is replaced (deleted, the next one inserted) by the
    delete before it, twice for the last one. All three are deleted whatever the
    order; the fourth newest becomes current."""
    bucket = new_versioned_bucket(cluster)
    nodes, clients = cluster.nodes, cluster.clients
    key = "chain"
    rounds = CHAIN_ROUNDS
    for i in range(3 * rounds + 2):
        clients[i % 3].put_object(Bucket=bucket, Key=key, Body=f"<chain {i}>".encode() * 10)
    failures: list[str] = []
    for r in range(rounds):
        before = [e.version_id for e in list_versions(nodes[0], bucket, prefix=key)]
        targets = before[:3]
        barrier = threading.Barrier(3)
        answers: dict[int, object] = {}

        def delete(node: int, vid: str) -> None:
            barrier.wait(30)
            try:
                answers[node] = clients[node].delete_object(Bucket=bucket, Key=key, VersionId=vid)
            except Exception as exc:  # noqa: BLE001 - asserted below
                answers[node] = exc

        threads = [threading.Thread(target=delete, args=(n, targets[(n + r) % 3])) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for node in range(3):
            answer = answers[node]
            assert not isinstance(answer, Exception), f"round {r}: node{node}: {answer!r}"
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204 and \
                answer.get("VersionId") == targets[(node + r) % 3], f"round {r}: node{node}: {answer}"
        after = [e.version_id for e in list_versions(nodes[1], bucket, prefix=key)]
        survivors = [v for v in targets if v in after]
        if survivors or after != [v for v in before if v not in targets]:
            failures.append(f"round {r}: the newest three {targets} each DELETEd by VersionId on its own node "
                            f"(all answered 204 with their id), yet {survivors} still listed (current now "
                            f"{after[:1]}, due {before[3:4]})")
        for vid in survivors:  # what the next round starts from: as if the delete had worked
            clients[0].delete_object(Bucket=bucket, Key=key, VersionId=vid)
    with capsys.disabled():
        print(f"\n[versions cluster chain] {rounds} rounds of three deletes down the promotion chain, "
              f"{len(failures)} lost a delete")
    assert not failures, f"{_rerun()}: {len(failures)} of {rounds} rounds:\n  " + "\n  ".join(failures[:10])


# -- 4: reading and re-ACLing the version being promoted -------------------------------------------

def test_the_version_being_promoted_stays_readable_and_keeps_its_acl(cluster, capsys):
    """While node 0 deletes the current version (promoting the previous one, P),
    node 1 reads P by VersionId in a loop (GetObject, GetObjectAcl) and node 2 sets
    P's ACL (PutObjectAcl public-read). P exists the whole time: no read may answer
    NoSuchVersion, and an ACL the server acknowledged must be P's ACL afterwards."""
    bucket = new_versioned_bucket(cluster)
    nodes, clients = cluster.nodes, cluster.clients
    key = "promoted"
    rounds = PROMOTION_ROUNDS
    bodies = {}
    for i in range(rounds + 2):
        body = f"<promoted {i}>".encode() * 20
        bodies[clients[i % 3].put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]] = body
    failures: list[str] = []
    counts: Counter = Counter()
    for r in range(rounds):
        versions = [e.version_id for e in list_versions(nodes[0], bucket, prefix=key)]
        current, promoted = versions[0], versions[1]
        stop = threading.Event()
        acked_acl = threading.Event()
        errors: list[str] = []

        def reader() -> None:
            while not stop.is_set():
                for op in ("GetObject", "GetObjectAcl"):
                    counts[op] += 1
                    try:
                        if op == "GetObject":
                            got = clients[1].get_object(Bucket=bucket, Key=key, VersionId=promoted)["Body"].read()
                            if got != bodies[promoted]:
                                errors.append(f"GetObject {promoted}: other bytes")
                        else:
                            clients[1].get_object_acl(Bucket=bucket, Key=key, VersionId=promoted)
                    except ClientError as exc:
                        errors.append(f"{op} {promoted}: {exc.response['Error']['Code']}")

        def acl_writer() -> None:
            while not stop.is_set():
                counts["PutObjectAcl"] += 1
                try:
                    clients[2].put_object_acl(Bucket=bucket, Key=key, VersionId=promoted, ACL="public-read")
                    acked_acl.set()
                except ClientError as exc:
                    errors.append(f"PutObjectAcl {promoted}: {exc.response['Error']['Code']}")

        threads = [threading.Thread(target=reader), threading.Thread(target=acl_writer)]
        for t in threads:
            t.start()
        clients[0].delete_object(Bucket=bucket, Key=key, VersionId=current)
        stop.set()
        for t in threads:
            t.join(60)
        if acked_acl.is_set():
            grants = clients[0].get_object_acl(Bucket=bucket, Key=key, VersionId=promoted)["Grants"]
            if not any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants):
                errors.append(f"PutObjectAcl public-read of {promoted} was acknowledged, yet its ACL is "
                              f"{[(g['Grantee'].get('URI') or g['Grantee'].get('ID'), g['Permission']) for g in grants]}")
            clients[0].put_object_acl(Bucket=bucket, Key=key, VersionId=promoted, ACL="private")
        if errors:
            failures.append(f"round {r} (node0 deletes {current}, promoting {promoted}): "
                            + "; ".join(sorted(set(errors))) + f" ({len(errors)} times)")
    with capsys.disabled():
        print(f"\n[versions cluster promotion reads] {rounds} rounds, {dict(counts)}, {len(failures)} went wrong")
    assert not failures, f"{_rerun()}: {len(failures)} of {rounds} rounds:\n  " + "\n  ".join(failures[:12])
