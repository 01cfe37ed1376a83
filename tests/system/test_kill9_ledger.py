"""kill -9 at random moments under a mixed load, with a ledger of what was acknowledged.

Client threads run PutObject (new keys and overwrites, inline-sized and blob-sized),
DeleteObject, DeleteObjects, CopyObject, multipart uploads, and conditional PUTs
(If-None-Match: *, If-Match) while the whole server is killed (SIGKILL to its
process group) at moments the seed chooses, restarted on the same data and
database, checked, and loaded again. Each thread owns its keys, so the ledger knows
each key's state exactly: what the server acknowledged (2xx), or, for a request in
flight when the kill hit, the old state or the new one (never anything else).

After every restart: each key reads back as one state the ledger allows (GET body,
ETag and size; a single-part body hashes to its ETag), ListObjectsV2 lists the same
keys with the same ETags and sizes, every blob the metadata points at exists, and no
temp file is left. At the end, one more restart with the sweep free to delete
everything unlinked (storage.garbage_grace_seconds 0, storage.orphan_min_age_seconds
0): storage then holds exactly the blobs the metadata points at.

The seed (printed, and in every failure message) replays the schedule:
BLEEPSTORE_TEST_SEED=<seed>. BLEEPSTORE_TEST_KILLS sets the number of kills (default 5).
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("engine", ENGINES)]

KiB, MiB = 1024, 1024 * 1024
PART = 5 * MiB
INLINE_MAX = 16 * KiB
SEED = int(os.environ.get("BLEEPSTORE_TEST_SEED") or random.SystemRandom().randrange(10 ** 9))
KILLS = int(os.environ.get("BLEEPSTORE_TEST_KILLS", "5"))
THREADS = 4
KEYS_PER_THREAD = 6
BUCKET = "ledger"
# During the kills: unlinked blobs are deleted by the sweep at each start-up (grace
# 0), the periodic sweeper is off (a sweep killed midway would hold its lease past
# the next start-up), and start-up leaves young unreferenced blobs alone (default).
LOOP_ENV = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "0", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "0"}
# The last start: every unreferenced blob is an orphan, however young.
FINAL_ENV = dict(LOOP_ENV, BLEEPSTORE_STORAGE_ORPHAN_MIN_AGE_SECONDS="0")


@dataclass(frozen=True)
class State:
    """What a key holds (absence is ``None`` in the ledger)."""
    etag: str
    md5: str
    size: int
    label: str  # the write that made it, for messages

    def __str__(self) -> str:
        return f"{self.label} ({self.size} bytes, ETag {self.etag})"


def _describe(state: State | None) -> str:
    return "absent" if state is None else str(state)


class Transport(Exception):
    """A request that got no answer (the connection was cut or refused)."""


class Ledger:
    """Per key, the states a read may find: one once acknowledged, two (old, new)
    after a request that was in flight when the server died."""

    def __init__(self, keys: list[str]) -> None:
        self.possible: dict[str, list[State | None]] = {k: [None] for k in keys}
        self._lock = threading.Lock()

    def known(self, key: str) -> State | None | str:
        """The key's one possible state, or "uncertain"."""
        states = self.possible[key]
        return states[0] if len(states) == 1 else "uncertain"

    def acknowledged(self, key: str, state: State | None) -> None:
        with self._lock:
            self.possible[key] = [state]

    def in_flight(self, key: str, state: State | None) -> None:
        with self._lock:
            if state not in self.possible[key]:
                self.possible[key] = self.possible[key] + [state]


class Run:
    def __init__(self, srv: Server, engine: str, seed: int) -> None:
        self.srv, self.engine, self.seed = srv, engine, seed
        self.keys = {t: [f"t{t}/k{i:02d}" for i in range(KEYS_PER_THREAD)] for t in range(THREADS)}
        self.ledger = Ledger([k for keys in self.keys.values() for k in keys])
        self.problems: list[str] = []
        self.killed = threading.Event()
        self.stop = threading.Event()
        self.writes = 0
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        # upload id -> (key, parts for Complete, the state it makes), for uploads
        # whose Complete was in flight at a kill: completed again after the restart.
        self.pending_completes: dict[str, tuple[str, list[dict], State]] = {}
        self.clients: list = []

    # bookkeeping

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

    def new_state(self, body: bytes, label: str, etag: str | None = None) -> State:
        md5 = hashlib.md5(body).hexdigest()
        return State(etag or md5, md5, len(body), label)

    def call(self, what: str, fn, **kwargs):
        """One request: its answer, ClientError for an error answer, Transport for none."""
        try:
            return fn(**kwargs)
        except ClientError:
            raise
        except (BotoCoreError, OSError) as exc:
            if not self.killed.is_set():
                self.problem(f"{what}: no answer while the server was up: {type(exc).__name__}: {exc}")
            raise Transport(str(exc)) from None

    def unexpected(self, what: str, exc: ClientError) -> None:
        meta = exc.response.get("ResponseMetadata", {})
        self.problem(f"{what}: HTTP {meta.get('HTTPStatusCode')} {exc.response.get('Error', {}).get('Code')}: {exc}")

    @staticmethod
    def status(exc: ClientError) -> int:
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)

    # the load: each thread on its own keys, so the ledger is exact

    def body(self, rng: random.Random, label: str, size: int) -> bytes:
        head = f"<{label}>".encode()
        return (head + rng.randbytes(max(0, size - len(head))))[:max(size, len(head))]

    def worker(self, t: int, phase: int) -> None:
        s3 = self.client()
        rng = random.Random(f"{self.seed}-{phase}-{t}")
        keys = self.keys[t]
        n = 0
        while not self.stop.is_set() and not self.killed.is_set():
            n += 1
            label = f"p{phase}t{t}w{n}"
            op = rng.choices(("put inline", "put blob", "delete", "delete batch", "copy", "multipart",
                              "if-none-match", "if-match"), (3, 3, 1.5, 1, 1.5, 1.5, 1, 1))[0]
            try:
                getattr(self, "op_" + op.replace(" ", "_").replace("-", "_"))(s3, rng, keys, label)
                self.count(op)
            except Transport:
                self.count(op + " (cut by the kill)")
                return
            except Exception as exc:  # noqa: BLE001 - reported with the seed
                self.problem(f"{label} {op}: {type(exc).__name__}: {exc}")
                return

    def _put(self, s3, key: str, state: State, body: bytes, what: str, **conditions) -> bool:
        """PutObject; True when acknowledged. The ledger learns the outcome."""
        try:
            resp = self.call(what, s3.put_object, Bucket=BUCKET, Key=key, Body=body, **conditions)
        except Transport:
            self.ledger.in_flight(key, state)
            raise
        if resp["ETag"].strip('"') != state.etag:
            self.problem(f"{what}: answered ETag {resp['ETag']}, the body's MD5 is {state.etag}")
        self.ledger.acknowledged(key, state)
        return True

    def op_put_inline(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        body = self.body(rng, label, rng.randrange(1, INLINE_MAX + 1))
        self._put(s3, key, self.new_state(body, label), body, f"{label} PutObject {key}")

    def op_put_blob(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        body = self.body(rng, label, rng.randrange(INLINE_MAX + 1, 256 * KiB))
        self._put(s3, key, self.new_state(body, label), body, f"{label} PutObject {key}")

    def op_delete(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        try:
            self.call(f"{label} DeleteObject {key}", s3.delete_object, Bucket=BUCKET, Key=key)
        except Transport:
            self.ledger.in_flight(key, None)
            raise
        self.ledger.acknowledged(key, None)

    def op_delete_batch(self, s3, rng, keys, label) -> None:
        chosen = rng.sample(keys, rng.randrange(2, 5))
        what = f"{label} DeleteObjects {chosen}"
        try:
            resp = self.call(what, s3.delete_objects, Bucket=BUCKET,
                             Delete={"Objects": [{"Key": k} for k in chosen]})
        except Transport:
            for key in chosen:
                self.ledger.in_flight(key, None)
            raise
        deleted = {d["Key"] for d in resp.get("Deleted", [])}
        if resp.get("Errors") or deleted != set(chosen):
            self.problem(f"{what}: deleted {sorted(deleted)}, errors {resp.get('Errors')}")
        for key in chosen:
            self.ledger.acknowledged(key, None)

    def op_copy(self, s3, rng, keys, label) -> None:
        present = [k for k in keys if isinstance(self.ledger.known(k), State)]
        if not present:
            return
        source = rng.choice(present)
        target = rng.choice([k for k in keys if k != source])
        state = self.ledger.known(source)
        what = f"{label} CopyObject {source} -> {target}"
        try:
            resp = self.call(what, s3.copy_object, Bucket=BUCKET, Key=target,
                             CopySource={"Bucket": BUCKET, "Key": source})
        except Transport:
            self.ledger.in_flight(target, state)
            raise
        if resp["CopyObjectResult"]["ETag"].strip('"') != state.etag:
            self.problem(f"{what}: answered ETag {resp['CopyObjectResult']['ETag']}, the source is {state}")
        self.ledger.acknowledged(target, state)

    def op_multipart(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        if rng.random() < 0.3:  # two parts: the first of the smallest allowed size
            parts = [self.body(rng, label + ".1", PART), self.body(rng, label + ".2", rng.randrange(1, 100 * KiB))]
        else:                   # one part (a last part may be any size)
            parts = [self.body(rng, label + ".1", rng.randrange(1, 200 * KiB))]
        etag = (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}")
        state = self.new_state(b"".join(parts), label, etag)
        what = f"{label} multipart upload of {key}"
        upload_id = self.call(what, s3.create_multipart_upload, Bucket=BUCKET, Key=key)["UploadId"]
        done = []
        for number, part in enumerate(parts, 1):
            resp = self.call(what, s3.upload_part, Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                             Body=part)
            done.append({"PartNumber": number, "ETag": resp["ETag"]})
        try:
            resp = self.call(what, s3.complete_multipart_upload, Bucket=BUCKET, Key=key, UploadId=upload_id,
                             MultipartUpload={"Parts": done})
        except Transport:
            self.ledger.in_flight(key, state)
            with self._lock:
                self.pending_completes[upload_id] = (key, done, state)
            raise
        if resp["ETag"].strip('"') != etag:
            self.problem(f"{what}: answered ETag {resp['ETag']}, due {etag}")
        self.ledger.acknowledged(key, state)

    def op_if_none_match(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        before = self.ledger.known(key)
        body = self.body(rng, label, rng.choice((rng.randrange(1, INLINE_MAX), rng.randrange(INLINE_MAX, 64 * KiB))))
        state = self.new_state(body, label)
        what = f"{label} PutObject {key} If-None-Match: * (the key is {_describe(before)})"
        try:
            resp = self.call(what, s3.put_object, Bucket=BUCKET, Key=key, Body=body, IfNoneMatch="*")
        except Transport:
            if before is None:
                self.ledger.in_flight(key, state)
            raise
        except ClientError as exc:
            if self.status(exc) == 412 and before is not None:
                return
            self.unexpected(what, exc)
            return
        if before is not None:
            self.problem(f"{what}: answered {resp['ResponseMetadata']['HTTPStatusCode']}, 412 was due")
        self.ledger.acknowledged(key, state)

    def op_if_match(self, s3, rng, keys, label) -> None:
        key = rng.choice(keys)
        before = self.ledger.known(key)
        matching = isinstance(before, State) and rng.random() < 0.7
        expected_etag = before.etag if matching else "0" * 32
        body = self.body(rng, label, rng.randrange(1, 64 * KiB))
        state = self.new_state(body, label)
        what = f"{label} PutObject {key} If-Match: {expected_etag} (the key is {_describe(before)})"
        try:
            self.call(what, s3.put_object, Bucket=BUCKET, Key=key, Body=body, IfMatch=f'"{expected_etag}"')
        except Transport:
            if matching:
                self.ledger.in_flight(key, state)
            raise
        except ClientError as exc:
            if not matching and self.status(exc) in (404, 412):
                return
            self.unexpected(what, exc)
            return
        if not matching:
            self.problem(f"{what}: acknowledged; 412 (or 404 for a missing key) was due")
        self.ledger.acknowledged(key, state)

    # checks after each restart

    def read_key(self, s3, key: str) -> tuple[State | None, bytes | None]:
        try:
            resp = s3.get_object(Bucket=BUCKET, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchKey":
                return None, None
            raise
        body = resp["Body"].read()
        etag = resp["ETag"].strip('"')
        if resp["ContentLength"] != len(body):
            self.problem(f"GET {key}: Content-Length {resp['ContentLength']}, {len(body)} bytes of body")
        md5 = hashlib.md5(body).hexdigest()
        if "-" not in etag and etag != md5:
            self.problem(f"GET {key}: torn, the body does not hash to its ETag {etag}")
        return State(etag, md5, len(body), "?"), body

    def verify(self, s3, when: str) -> None:
        found: dict[str, State | None] = {}
        for key, possible in sorted(self.ledger.possible.items()):
            try:
                seen, _body = self.read_key(s3, key)
            except ClientError as exc:
                self.unexpected(f"{when}: GET {key} (the ledger allows: {', '.join(map(_describe, possible))})", exc)
                continue
            match = next((p for p in possible if (p is None and seen is None) or (
                p is not None and seen is not None and (p.etag, p.md5, p.size) == (seen.etag, seen.md5, seen.size))),
                "no match")
            if match == "no match":
                self.problem(f"{when}: {key} reads back as "
                             f"{'absent' if seen is None else f'{seen.size} bytes with ETag {seen.etag}'}; "
                             f"the ledger allows only: {', '.join(map(_describe, possible))}")
                match = seen
            found[key] = match
            self.ledger.acknowledged(key, match)
        listed = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            listed.update({o["Key"]: (o["ETag"].strip('"'), o["Size"]) for o in page.get("Contents", [])})
        unread = set(self.ledger.possible) - set(found)  # their GET failed: reported above
        listed = {k: v for k, v in listed.items() if k not in unread}
        read = {k: (s.etag, s.size) for k, s in found.items() if s is not None}
        if listed != read:
            differ = sorted(k for k in set(listed) | set(read) if listed.get(k) != read.get(k))
            self.problem(f"{when}: ListObjectsV2 disagrees with GET on {differ}: "
                         + "; ".join(f"{k}: listed {listed.get(k)}, read {read.get(k)}" for k in differ[:10]))
        referenced = set().union(*self.srv.metadata_blobs().values())
        missing = referenced - self.srv.blobs()
        if missing:
            self.problem(f"{when}: {len(missing)} blobs the metadata points at are gone: {sorted(missing)[:5]}")
        temp = os.listdir(self.srv.workdir / "data" / "objects" / "tmp")
        if temp:
            self.problem(f"{when}: temp files left after the restart: {temp[:5]}")

    def settle_uploads(self, s3, when: str) -> None:
        """Complete again the uploads whose Complete a kill cut (it answers the same
        if it had committed, completes now if not); abort every other open upload."""
        for upload_id, (key, done, state) in sorted(self.pending_completes.items()):
            try:
                resp = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                                    MultipartUpload={"Parts": done})
            except ClientError as exc:
                self.unexpected(f"{when}: CompleteMultipartUpload of {key} again (cut by the kill)", exc)
                continue
            if resp["ETag"].strip('"') != state.etag:
                self.problem(f"{when}: CompleteMultipartUpload of {key} again answered {resp['ETag']}, due {state}")
            seen, _ = self.read_key(s3, key)
            if seen is None or (seen.etag, seen.md5) != (state.etag, state.md5):
                self.problem(f"{when}: {key} after completing again reads as {_describe(seen)}, due {state}")
            self.ledger.acknowledged(key, state)
        self.pending_completes.clear()
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])

    def check(self, when: str) -> None:
        assert not self.problems, f"{self.tag()}, {when}:\n  " + "\n  ".join(self.problems[:30]) + (
            f"\nserver log tail:\n{self.srv.log()[-3000:]}")

    # the loop

    def phase(self, phase: int, seconds: float | None) -> None:
        """Load for ``seconds`` then kill -9 (None: load, then stop the threads)."""
        self.killed.clear()
        self.stop.clear()
        threads = [threading.Thread(target=self.worker, args=(t, phase), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(seconds if seconds is not None else 2.0)
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
def ledger_server(engine, tmp_path, pg_databases):
    url = pg_databases.create() if engine == "postgresql" else None
    env = dict(os.environ, **LOOP_ENV, BLEEPSTORE_CONFIG=str(write_config(tmp_path, url)))
    srv = Server(tmp_path, env).start()
    yield srv
    srv.kill()


def test_kill_9_under_mixed_load_loses_no_acknowledged_write(engine, ledger_server, capsys):
    srv = ledger_server
    seed = SEED
    run = Run(srv, engine, seed)
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\n[kill -9 ledger {engine}] {run.tag()}: {KILLS} kills")
    s3 = run.client()
    s3.create_bucket(Bucket=BUCKET)
    run.close_clients()
    for phase in range(1, KILLS + 1):
        seconds = rng.uniform(0.5, 4.0)
        run.phase(phase, seconds)
        srv.start()
        s3 = run.client()
        when = f"after kill {phase} ({seconds:.1f}s into phase {phase})"
        run.verify(s3, when)
        run.settle_uploads(s3, when)
        run.check(when)
        run.close_clients()
    run.phase(KILLS + 1, None)  # a last load, no kill
    s3 = run.client()
    run.verify(s3, "after the last load")
    run.settle_uploads(s3, "after the last load")
    run.close_clients()
    run.check("after the last load")

    # One more start, the sweep free to remove every unlinked or unreferenced blob.
    srv.kill()
    srv.env = dict(srv.env, **FINAL_ENV)
    srv.start()
    s3 = run.client()
    run.verify(s3, "after the final restart")
    run.check("after the final restart")
    referenced = srv.metadata_blobs()
    stored = srv.blobs()
    every = set().union(*referenced.values())
    orphans, missing = stored - every, every - stored
    summary = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    with capsys.disabled():
        print(f"[kill -9 ledger {engine}] {summary}; {len(stored)} blobs in storage, {len(orphans)} orphans")
    assert not missing, f"{run.tag()}: blobs the metadata points at are gone: {sorted(missing)[:10]}"
    assert not orphans, (f"{run.tag()}: {len(orphans)} blobs no row points at survived a start-up with "
                         f"orphan_min_age_seconds 0 and garbage_grace_seconds 0: {sorted(orphans)[:10]}")
    assert referenced["multipart_parts"] == set(), f"{run.tag()}: parts of uploads completed or aborted remain"
    run.close_clients()
