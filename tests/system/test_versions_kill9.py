"""kill -9 under versioned writes, with a ledger of every version the server acknowledged.

Client threads write a versioned bucket (each thread owns its keys, so the ledger
knows each key's history exactly): PutObject inline-sized and blob-sized, DeleteObject
without a version id (a delete marker), DeleteObject of an old version by VersionId
(gone for good), CopyObject of one of its keys onto another, and one-part and
two-part multipart uploads. The whole server (its process group: master and workers)
is killed with SIGKILL at moments the seed chooses, restarted on the same data and
database, checked, and loaded again.

After every restart, per key, the raw ListObjectVersions (versions and delete markers
in document order) must be the acknowledged history exactly, except for the one
request per thread that was in flight when the kill hit: its new version or marker
may be there (as the newest, with the bytes that request sent) or not; the version it
was deleting may be gone or not. Nothing else: no version nobody was told of, no
acknowledged version or marker missing, one IsLatest (the newest). Every listed
version is read back by VersionId: its bytes are the bytes written (and hash to its
ETag); a plain GET serves the newest (a marker: 404 with x-amz-delete-marker). Every
blob the metadata points at (current and noncurrent versions, parts) exists, and no
temp file is left.

At the end, one more start with the sweep free to delete everything unlinked
(garbage grace 0, orphan min age 0), then Server.sweep(): storage then holds exactly
the blobs the metadata points at (objects and object_versions rows, part rows), no
garbage record is left, every inline_data row belongs to a version, and every part
row to a version that exists.

The seed (printed, and in every failure message) replays the schedule:
BLEEPSTORE_TEST_SEED=<seed>. BLEEPSTORE_TEST_VERSION_KILLS sets the number of kills
(default 4).
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from ..conformance.support_issue4 import NS, describe, raw
from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("engine", ENGINES)]

KiB, MiB = 1024, 1024 * 1024
PART = 5 * MiB
INLINE_MAX = 16 * KiB
SEED = int(os.environ.get("BLEEPSTORE_TEST_SEED") or random.SystemRandom().randrange(10 ** 9))
KILLS = int(os.environ.get("BLEEPSTORE_TEST_VERSION_KILLS", "4"))
THREADS = 3
KEYS_PER_THREAD = 3
BUCKET = "versions-ledger"
# As in test_kill9_ledger: unlinked blobs go at each start (grace 0), no periodic
# sweeper, young unreferenced blobs left alone at start-up; at the last start every
# unreferenced blob is an orphan.
LOOP_ENV = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "0", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "0"}
FINAL_ENV = dict(LOOP_ENV, BLEEPSTORE_STORAGE_ORPHAN_MIN_AGE_SECONDS="0")


@dataclass
class Version:
    """One entry of a key's history: a version (its body's MD5, ETag, size) or a marker."""
    label: str
    marker: bool
    version_id: str | None = None   # None until the server names it (in flight at a kill)
    md5: str | None = None
    etag: str | None = None
    size: int = 0

    def __str__(self) -> str:
        what = "delete marker" if self.marker else f"{self.size} bytes, ETag {self.etag}"
        return f"{self.label} ({what}, {self.version_id or 'id unknown'})"


@dataclass
class Pending:
    """The request of a key in flight when the server died: a new entry, or the
    deletion of a version; and, for a CompleteMultipartUpload, its upload id."""
    new: Version | None = None
    deleting: str | None = None
    upload_id: str | None = None


class Transport(Exception):
    """A request that got no answer (the connection was cut or refused)."""


@dataclass
class Listed:
    kind: str
    key: str
    version_id: str
    latest: bool
    etag: str | None
    size: int | None


def list_versions(srv: Server, bucket: str) -> list[Listed]:
    """The whole raw ListObjectVersions, following the markers (small pages)."""
    out: list[Listed] = []
    params = {"max-keys": "50"}
    while True:
        query = "versions" + "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
        resp = raw(srv, "GET", f"/{bucket}", query=query)
        assert resp.status_code == 200, describe(resp)
        root = ET.fromstring(resp.content)
        for child in root:
            kind = child.tag.replace(NS, "")
            if kind in ("Version", "DeleteMarker"):
                etag, size = child.findtext(f"{NS}ETag"), child.findtext(f"{NS}Size")
                out.append(Listed(kind, child.findtext(f"{NS}Key"), child.findtext(f"{NS}VersionId"),
                                  child.findtext(f"{NS}IsLatest") == "true", etag.strip('"') if etag else None,
                                  int(size) if size is not None else None))
        if root.findtext(f"{NS}IsTruncated") != "true":
            return out
        params["key-marker"] = root.findtext(f"{NS}NextKeyMarker")
        params["version-id-marker"] = root.findtext(f"{NS}NextVersionIdMarker") or ""


def database_state(srv: Server) -> dict[str, set]:
    """What the metadata points at and holds, straight from the database."""
    import sqlalchemy as sa
    from bleepstore_app.config import load_settings
    url = load_settings(srv.env["BLEEPSTORE_CONFIG"], environ=srv.env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    queries = {
        "version blobs": "SELECT data_location FROM objects WHERE NOT data_inline AND data_location <> 'multipart'"
                         " AND NOT delete_marker UNION SELECT data_location FROM object_versions"
                         " WHERE NOT data_inline AND data_location <> 'multipart' AND NOT delete_marker",
        "part blobs": "SELECT data_location FROM object_parts",
        "upload part blobs": "SELECT data_location FROM multipart_parts",
        "inline ids in versions": "SELECT data_location FROM objects WHERE data_inline"
                                  " UNION SELECT data_location FROM object_versions WHERE data_inline",
        "inline rows": "SELECT id FROM inline_data",
        "garbage": "SELECT location FROM blob_garbage",
        "versions": "SELECT bucket, key, version_id FROM objects UNION SELECT bucket, key, version_id"
                    " FROM object_versions",
        "part owners": "SELECT DISTINCT bucket, key, version_id FROM object_parts",
    }
    try:
        with engine.connect() as conn:
            return {name: {tuple(r) if len(r) > 1 else r[0] for r in conn.execute(sa.text(sql))}
                    for name, sql in queries.items()}
    finally:
        engine.dispose()


class Run:
    def __init__(self, srv: Server, engine: str, seed: int) -> None:
        self.srv, self.engine, self.seed = srv, engine, seed
        self.keys = {t: [f"t{t}/k{i}" for i in range(KEYS_PER_THREAD)] for t in range(THREADS)}
        self.history: dict[str, list[Version]] = {k: [] for ks in self.keys.values() for k in ks}  # oldest first
        self.pending: dict[str, Pending] = {}
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self.killed = threading.Event()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.clients: list = []

    def tag(self) -> str:
        return f"[{self.engine}] seed {self.seed} (rerun: BLEEPSTORE_TEST_SEED={self.seed})"

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def client(self):
        client = make_client(self.srv.endpoint, max_pool_connections=4, connect_timeout=5, read_timeout=30,
                             request_checksum_calculation="when_required",
                             response_checksum_validation="when_required")
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client._endpoint.http_session.close()
        self.clients.clear()
        gc.collect()

    def call(self, what: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except ClientError:
            raise
        except (BotoCoreError, OSError) as exc:
            if not self.killed.is_set():
                self.problem(f"{what}: no answer while the server was up: {type(exc).__name__}: {exc}")
            raise Transport(str(exc)) from None

    # -- the load -------------------------------------------------------------------------

    @staticmethod
    def body(rng: random.Random, label: str, size: int) -> bytes:
        head = f"<{label}>".encode()
        return head + rng.randbytes(max(0, size - len(head)))

    def worker(self, t: int, phase: int) -> None:
        s3 = self.client()
        rng = random.Random(f"{self.seed}-{phase}-{t}")
        n = 0
        while not self.stop.is_set() and not self.killed.is_set():
            n += 1
            label = f"p{phase}t{t}w{n}"
            op = rng.choices(("put inline", "put blob", "marker", "delete version", "copy", "multipart"),
                             (3, 3, 1.5, 1.5, 1, 1))[0]
            try:
                getattr(self, "op_" + op.replace(" ", "_"))(s3, rng, self.keys[t], label)
                self.count(op)
            except Transport:
                self.count(op + " (cut by the kill)")
                return
            except Exception as exc:  # noqa: BLE001 - reported with the seed
                self.problem(f"{label} {op}: {type(exc).__name__}: {exc}")
                return

    def _created(self, key: str, entry: Version, send, what: str, etag_field: str | None = "ETag"):
        """Send a request that makes a new version or marker of ``key``; the ledger
        learns it once acknowledged, or holds it as pending if the kill cut it."""
        self.pending[key] = Pending(new=entry)
        try:
            resp = send()
        except Transport:
            raise
        except BaseException:
            del self.pending[key]
            raise
        del self.pending[key]
        vid = resp.get("VersionId")
        if not vid or vid == "null":
            self.problem(f"{what}: answered version id {vid!r} in a versioned bucket")
            return
        if entry.marker and not resp.get("DeleteMarker"):
            self.problem(f"{what}: no x-amz-delete-marker in the answer")
        if etag_field is not None:
            got = (resp.get("CopyObjectResult") or resp)["ETag"].strip('"')
            if got != entry.etag:
                self.problem(f"{what}: answered ETag {got}, due {entry.etag}")
        entry.version_id = vid
        self.history[key].append(entry)

    def _put(self, s3, rng, keys, label, size: int) -> None:
        key = rng.choice(keys)
        body = self.body(rng, label, size)
        md5 = hashlib.md5(body).hexdigest()
        entry = Version(label, False, md5=md5, etag=md5, size=len(body))
        what = f"{label} PutObject {key}"
        self._created(key, entry, lambda: self.call(what, s3.put_object, Bucket=BUCKET, Key=key, Body=body), what)

    def op_put_inline(self, s3, rng, keys, label) -> None:
        self._put(s3, rng, keys, label, rng.randrange(1, INLINE_MAX + 1))

    def op_put_blob(self, s3, rng, keys, label) -> None:
        self._put(s3, rng, keys, label, rng.randrange(INLINE_MAX + 1, 256 * KiB))

    def op_marker(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        what = f"{label} DeleteObject {key} (a delete marker)"
        self._created(key, Version(label, True), lambda: self.call(what, s3.delete_object, Bucket=BUCKET, Key=key),
                      what, etag_field=None)

    def op_delete_version(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        if not self.history[key]:
            return
        victim = rng.choice(self.history[key])
        what = f"{label} DeleteObject {key} VersionId {victim}"
        self.pending[key] = Pending(deleting=victim.version_id)
        try:
            resp = self.call(what, s3.delete_object, Bucket=BUCKET, Key=key, VersionId=victim.version_id)
        except Transport:
            raise
        except BaseException:
            del self.pending[key]
            raise
        del self.pending[key]
        if resp.get("VersionId") != victim.version_id or bool(resp.get("DeleteMarker")) != victim.marker:
            self.problem(f"{what}: answered VersionId {resp.get('VersionId')}, DeleteMarker "
                         f"{resp.get('DeleteMarker')}")
        self.history[key].remove(victim)

    def op_copy(self, s3, rng, keys, label) -> None:
        sources = [k for k in keys if self.history[k] and not self.history[k][-1].marker]
        if not sources:
            return
        source = rng.choice(sources)
        target = rng.choice(keys)  # onto itself too: a new version of the same bytes
        state = self.history[source][-1]
        entry = Version(label, False, md5=state.md5, etag=state.etag, size=state.size)
        what = f"{label} CopyObject {source} ({state}) -> {target}"
        self._created(target, entry, lambda: self.call(
            what, s3.copy_object, Bucket=BUCKET, Key=target,
            CopySource={"Bucket": BUCKET, "Key": source, "VersionId": state.version_id}), what)

    def op_multipart(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        if rng.random() < 0.25:
            parts = [self.body(rng, label + ".1", PART), self.body(rng, label + ".2", rng.randrange(1, 64 * KiB))]
        else:
            parts = [self.body(rng, label + ".1", rng.randrange(1, 200 * KiB))]
        etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
        whole = b"".join(parts)
        entry = Version(label, False, md5=hashlib.md5(whole).hexdigest(), etag=etag, size=len(whole))
        what = f"{label} multipart upload of {key}"
        upload_id = self.call(what, s3.create_multipart_upload, Bucket=BUCKET, Key=key)["UploadId"]
        done = []
        for number, part in enumerate(parts, 1):
            resp = self.call(what, s3.upload_part, Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                             Body=part)
            done.append({"PartNumber": number, "ETag": resp["ETag"]})
        self._created(key, entry, lambda: self.call(
            what, s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": done}), what)

    # -- the checks -------------------------------------------------------------------------

    def verify(self, s3, when: str) -> None:
        listing = list_versions(self.srv, BUCKET)
        per_key: dict[str, list[Listed]] = {}
        for e in listing:
            per_key.setdefault(e.key, []).append(e)
        strangers = sorted(set(per_key) - set(self.history))
        if strangers:
            self.problem(f"{when}: keys nobody wrote are listed: {strangers}")
        ids = [e.version_id for e in listing]
        if len(set(ids)) != len(ids):
            self.problem(f"{when}: a version id is listed twice")
        for key, history in self.history.items():
            listed = list(reversed(per_key.get(key, [])))  # oldest first, as the ledger
            self.check_key(key, history, listed, self.pending.pop(key, None), when)
            for e in listed:
                self.read_version(s3, key, e, when)
            self.read_current(s3, key, when)
        self.check_storage(when)

    def check_key(self, key: str, history: list[Version], listed: list[Listed], pending: Pending | None,
                  when: str) -> None:
        got = [(e.kind == "DeleteMarker", e.version_id) for e in listed]
        due = [(v.marker, v.version_id) for v in history]
        allowed = [due]
        if pending and pending.deleting:
            allowed.append([d for d in due if d[1] != pending.deleting])
        new = pending.new if pending else None  # may be there too, as the newest: checked below
        if got in allowed:
            if pending and pending.deleting and got != due:
                history[:] = [v for v in history if v.version_id != pending.deleting]
            if pending:
                self.count("cut, then found " + ("done" if got != due else "not done"))
        elif new is not None and got[:-1] == due and listed and got[-1][1] not in {d[1] for d in due} \
                and got[-1][0] == new.marker:
            last = listed[-1]
            if not new.marker and (last.etag, last.size) != (new.etag, new.size):
                self.problem(f"{when}: {key}: the newest version {last.version_id} ({last.size} bytes, ETag "
                             f"{last.etag}) is not what the request cut by the kill sent ({new})")
            new.version_id = last.version_id
            history.append(new)
            self.count("cut, then found done")
        else:
            self.problem(f"{when}: {key} lists (oldest first) {got}; the ledger allows {due}"
                         + (f", or also {new} newest" if new else "")
                         + (f", or without {pending.deleting}" if pending and pending.deleting else ""))
            return
        latest = [e.version_id for e in listed if e.latest]
        if listed and latest != [listed[-1].version_id]:
            self.problem(f"{when}: {key}: IsLatest on {latest}, the newest is {listed[-1].version_id}")

    def read_version(self, s3, key: str, e: Listed, when: str) -> None:
        entry = next((v for v in self.history[key] if v.version_id == e.version_id), None)
        if entry is None:
            return  # reported by check_key
        if e.kind == "DeleteMarker":
            try:
                s3.head_object(Bucket=BUCKET, Key=key, VersionId=e.version_id)
                self.problem(f"{when}: HEAD of the delete marker {key} {e.version_id} answered 200")
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 405:
                    self.problem(f"{when}: HEAD of the delete marker {key} {e.version_id}: {exc}")
            return
        try:
            resp = s3.get_object(Bucket=BUCKET, Key=key, VersionId=e.version_id)
            body = resp["Body"].read()
        except ClientError as exc:
            self.problem(f"{when}: GET {key} VersionId {e.version_id} ({entry}): {exc}")
            return
        md5 = hashlib.md5(body).hexdigest()
        etag = resp["ETag"].strip('"')
        if (md5, etag, len(body)) != (entry.md5, entry.etag, entry.size) or e.etag != etag or e.size != len(body):
            self.problem(f"{when}: GET {key} VersionId {e.version_id}: {len(body)} bytes hashing to {md5}, ETag "
                         f"{etag} (listed {e.etag}, {e.size} bytes); written: {entry}")
        if "-" not in etag and md5 != etag:
            self.problem(f"{when}: GET {key} VersionId {e.version_id}: torn, the body does not hash to its ETag")

    def read_current(self, s3, key: str, when: str) -> None:
        history = self.history[key]
        newest = history[-1] if history else None
        try:
            resp = s3.get_object(Bucket=BUCKET, Key=key)
            resp["Body"].read()
            served = (resp.get("VersionId"), False)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchKey":
                self.problem(f"{when}: GET {key}: {exc}")
                return
            headers = exc.response["ResponseMetadata"]["HTTPHeaders"]
            served = (headers.get("x-amz-version-id"), headers.get("x-amz-delete-marker") == "true")
        due = (newest.version_id, newest.marker) if newest else (None, False)
        if served != due:
            self.problem(f"{when}: GET {key} serves {served}, the newest version is {newest}")

    def check_storage(self, when: str) -> None:
        state = database_state(self.srv)
        referenced = state["version blobs"] | state["part blobs"] | state["upload part blobs"]
        missing = referenced - self.srv.blobs()
        if missing:
            self.problem(f"{when}: {len(missing)} blobs the metadata points at are gone: {sorted(missing)[:5]}")
        temp = os.listdir(self.srv.workdir / "data" / "objects" / "tmp")
        if temp:
            self.problem(f"{when}: temp files left after the restart: {temp[:5]}")

    def abort_uploads(self, s3) -> None:
        """Uploads whose Complete was cut and did not commit, or cut before it."""
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])

    def check(self, when: str) -> None:
        assert not self.problems, f"{self.tag()}, {when}:\n  " + "\n  ".join(self.problems[:30]) + (
            f"\nserver log tail:\n{self.srv.log()[-3000:]}")

    def phase(self, phase: int, seconds: float | None) -> None:
        self.killed.clear()
        self.stop.clear()
        threads = [threading.Thread(target=self.worker, args=(t, phase), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(seconds if seconds is not None else 1.5)
        if seconds is not None:
            self.killed.set()
            self.srv.kill()
        else:
            self.stop.set()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), f"{self.tag()}: a client thread never finished"
        self.close_clients()


@pytest.fixture
def versions_server(engine, tmp_path, pg_databases):
    url = pg_databases.create() if engine == "postgresql" else None
    env = dict(os.environ, **LOOP_ENV, BLEEPSTORE_CONFIG=str(write_config(tmp_path, url)))
    srv = Server(tmp_path, env).start()
    yield srv
    srv.kill()


def test_kill_9_under_versioned_writes_loses_no_acknowledged_version(engine, versions_server, capsys):
    srv, seed = versions_server, SEED
    run = Run(srv, engine, seed)
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\n[kill -9 versions {engine}] {run.tag()}: {KILLS} kills")
    s3 = run.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    run.close_clients()
    for phase in range(1, KILLS + 1):
        seconds = rng.uniform(0.5, 3.0)
        run.phase(phase, seconds)
        srv.start()
        s3 = run.client()
        when = f"after kill {phase} ({seconds:.1f}s into phase {phase})"
        run.verify(s3, when)
        run.abort_uploads(s3)
        run.check(when)
        run.close_clients()
    run.phase(KILLS + 1, None)  # a last load, no kill
    s3 = run.client()
    run.verify(s3, "after the last load")
    run.abort_uploads(s3)
    run.close_clients()
    run.check("after the last load")

    # One more start, the sweep free to remove every unlinked or unreferenced blob.
    srv.kill()
    srv.env = dict(srv.env, **FINAL_ENV)
    srv.start()
    srv.sweep()
    s3 = run.client()
    run.verify(s3, "after the final restart")
    run.close_clients()
    run.check("after the final restart")
    state = database_state(srv)
    stored = srv.blobs()
    referenced = state["version blobs"] | state["part blobs"] | state["upload part blobs"]
    orphans, missing = stored - referenced, referenced - stored
    versions = sum(len(h) for h in run.history.values())
    markers = sum(v.marker for h in run.history.values() for v in h)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    with capsys.disabled():
        print(f"[kill -9 versions {engine}] {summary}; {versions} versions ({markers} markers) kept, "
              f"{len(stored)} blobs, {len(orphans)} orphans")
    assert versions > 0, f"{run.tag()}: no write was acknowledged"
    assert not missing, f"{run.tag()}: blobs the metadata points at are gone: {sorted(missing)[:10]}"
    assert not orphans, (f"{run.tag()}: {len(orphans)} blobs no version or part row points at survived a start-up "
                         f"with orphan_min_age_seconds 0 and a sweep: {sorted(orphans)[:10]}")
    assert state["garbage"] == set(), f"{run.tag()}: garbage records left: {sorted(state['garbage'])[:10]}"
    assert state["upload part blobs"] == set(), f"{run.tag()}: parts of aborted uploads remain"
    assert state["inline rows"] == state["inline ids in versions"], (
        f"{run.tag()}: inline_data rows no version owns: "
        f"{sorted(state['inline rows'] - state['inline ids in versions'])[:10]}; versions whose inline row is "
        f"missing: {sorted(state['inline ids in versions'] - state['inline rows'])[:10]}")
    stray_parts = state["part owners"] - state["versions"]
    assert not stray_parts, f"{run.tag()}: part rows of versions that do not exist: {sorted(stray_parts)[:10]}"
    due = {(BUCKET, k, v.version_id) for k, h in run.history.items() for v in h}
    assert state["versions"] == due, (f"{run.tag()}: version rows differ from the ledger: extra "
                                      f"{sorted(state['versions'] - due)[:5]}, missing {sorted(due - state['versions'])[:5]}")
