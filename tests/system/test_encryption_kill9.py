"""kill -9 during a stream of encrypted PUTs of one key, with a ledger of what the
server acknowledged.

Client threads overwrite one key of a versioned bucket (so every acknowledged write
stays readable by its VersionId) with SSE-S3, SSE-KMS (a named key and the managed
key) and SSE-C writes: inline-sized and blob-sized PutObjects, and now and then a
two-part multipart upload. The whole server (master and workers) is killed with
SIGKILL at a moment the seed picks, restarted on the same data, and checked:

- every acknowledged version is listed and reads back (with its mode's headers)
  hashing to what was sent, with the ETag and the encryption the PUT answered;
- a listed version nobody was told of must be the one write per thread that the
  kill cut, and must read back whole, exactly as sent; nothing else is listed;
- a plain GET serves the newest listed version;
- no temp file is left; every blob the metadata points at exists; every file of
  storage (referenced, orphaned or half-written) is ciphertext (b"BSE1" first), and
  no plaintext is in storage or in the SQLite database (file or WAL).

At the end, one more start with every unreferenced blob free to go and a sweep:
storage then holds exactly what the metadata points at.

The seed (printed, and in every failure message) replays the schedule:
BLEEPSTORE_TEST_SEED=<seed>; BLEEPSTORE_TEST_SSE_KILLS sets the number of kills (default 3).
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from ..conftest import make_client
from ..servers import Server, write_config

pytestmark = pytest.mark.slow

KiB, MiB = 1024, 1024 * 1024
PART = 5 * MiB
SEED = int(os.environ.get("BLEEPSTORE_TEST_SEED") or random.SystemRandom().randrange(10 ** 9))
KILLS = int(os.environ.get("BLEEPSTORE_TEST_SSE_KILLS", "3"))
THREADS = 3
BUCKET, KEY = "sse-kill9", "the-one-key"
PLAIN_MARK = b"<<KILL9-SSE-PLAINTEXT "
CUSTOMER_KEY = hashlib.sha256(b"kill9 customer key").digest()
LOOP_ENV = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "0", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "0"}
FINAL_ENV = dict(LOOP_ENV, BLEEPSTORE_STORAGE_ORPHAN_MIN_AGE_SECONDS="0")
MODES = {
    "sse-s3": {"ServerSideEncryption": "AES256"},
    "sse-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "test-key"},
    "sse-kms-managed": {"ServerSideEncryption": "aws:kms"},
    "sse-c": {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CUSTOMER_KEY},
}


def read_args(mode: str) -> dict:
    return {k: v for k, v in MODES[mode].items() if k.startswith("SSECustomer")}


@dataclass
class Entry:
    label: str
    mode: str
    md5: str
    size: int
    version_id: str | None = None
    etag: str | None = None

    def __str__(self) -> str:
        return f"{self.label} ({self.mode}, {self.size} bytes, md5 {self.md5}, {self.version_id or 'id unknown'})"


class Transport(Exception):
    """A request that got no answer (the kill cut it)."""


class Run:
    def __init__(self, srv: Server, seed: int) -> None:
        self.srv, self.seed = srv, seed
        self.acked: dict[str, Entry] = {}          # version id -> entry
        self.pending: dict[int, Entry] = {}         # thread -> its write in flight
        self.problems: list[str] = []
        self.counts: dict[str, int] = {}
        self.killed = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.clients: list = []

    def tag(self) -> str:
        return f"seed {self.seed} (rerun: BLEEPSTORE_TEST_SEED={self.seed})"

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def client(self):
        s3 = make_client(self.srv.endpoint, max_pool_connections=4, connect_timeout=5, read_timeout=30,
                         request_checksum_calculation="when_required",
                         response_checksum_validation="when_required")
        s3.meta.events.register("before-sign.s3", lambda request, **kw: request.headers.__setitem__(
            "X-Forwarded-Proto", "https"))
        self.clients.append(s3)
        return s3

    def close_clients(self) -> None:
        for s3 in self.clients:
            s3._endpoint.http_session.close()
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

    # -- the load -------------------------------------------------------------------------------

    @staticmethod
    def body(label: str, size: int) -> bytes:
        unit = PLAIN_MARK + label.encode() + b">>"
        return (unit * (size // len(unit) + 1))[:size]

    def worker(self, t: int, phase: int) -> None:
        s3 = self.client()
        rng = random.Random(f"{self.seed}-{phase}-{t}")
        n = 0
        while not self.stop.is_set() and not self.killed.is_set():
            n += 1
            label = f"p{phase}t{t}w{n}"
            mode = rng.choice(list(MODES))
            shape = rng.choices(("inline", "blob", "multipart"), (4, 5, 1))[0]
            try:
                self.write(s3, t, label, mode, shape, rng)
                self.count(f"{mode} {shape}")
            except Transport:
                self.count("cut by the kill")
                return
            except Exception as exc:  # noqa: BLE001 - reported with the seed
                self.problem(f"{label} {mode} {shape}: {type(exc).__name__}: {exc}")
                return

    def write(self, s3, t: int, label: str, mode: str, shape: str, rng: random.Random) -> None:
        sse = MODES[mode]
        what = f"{label} {mode} {shape} PUT"
        if shape == "multipart":
            parts = [self.body(label + ".1", PART), self.body(label + ".2", rng.randrange(1, 64 * KiB))]
            data = b"".join(parts)
        else:
            data = self.body(label, rng.randrange(1, 16 * KiB) if shape == "inline" else rng.randrange(17 * KiB,
                                                                                                    300 * KiB))
        entry = Entry(label, mode, hashlib.md5(data).hexdigest(), len(data))
        self.pending[t] = entry
        if shape == "multipart":
            upload = self.call(what, s3.create_multipart_upload, Bucket=BUCKET, Key=KEY, **sse)["UploadId"]
            done = []
            for number, part in enumerate(parts, 1):
                etag = self.call(what, s3.upload_part, Bucket=BUCKET, Key=KEY, UploadId=upload, PartNumber=number,
                                 Body=part, **read_args(mode))["ETag"]
                done.append({"PartNumber": number, "ETag": etag})
            resp = self.call(what, s3.complete_multipart_upload, Bucket=BUCKET, Key=KEY, UploadId=upload,
                             MultipartUpload={"Parts": done})
        else:
            resp = self.call(what, s3.put_object, Bucket=BUCKET, Key=KEY, Body=data, **sse)
        del self.pending[t]
        entry.version_id, entry.etag = resp.get("VersionId"), resp["ETag"]
        if not entry.version_id:
            self.problem(f"{what}: no VersionId in the answer")
            return
        if not (mode == "sse-c" and shape == "multipart"):  # botocore parses no SSE-C members of Complete
            self.check_encryption_headers(resp, mode, what)
        if mode == "sse-s3" and shape != "multipart" and entry.etag.strip('"') != entry.md5:
            self.problem(f"{what}: SSE-S3 ETag {entry.etag} is not the MD5 of the body {entry.md5}")
        with self.lock:
            self.acked[entry.version_id] = entry

    def check_encryption_headers(self, resp: dict, mode: str, what: str) -> None:
        if mode == "sse-c":
            ok = resp.get("SSECustomerAlgorithm") == "AES256"
        else:
            ok = resp.get("ServerSideEncryption") == MODES[mode]["ServerSideEncryption"]
        if not ok:
            self.problem(f"{what}: the answer does not say {mode}: ServerSideEncryption "
                         f"{resp.get('ServerSideEncryption')!r}, SSECustomerAlgorithm {resp.get('SSECustomerAlgorithm')!r}")

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

    # -- the checks -------------------------------------------------------------------------------

    def read(self, s3, version_id: str, mode: str | None) -> tuple[dict, bytes]:
        """GetObject of a version; ``mode`` None: not known (a cut write), so
        without SSE-C headers first and with them if the server asks for them."""
        args = read_args(mode) if mode else {}
        try:
            resp = s3.get_object(Bucket=BUCKET, Key=KEY, VersionId=version_id, **args)
        except ClientError as exc:
            if mode is not None or exc.response["Error"]["Code"] != "InvalidRequest":
                raise
            resp = s3.get_object(Bucket=BUCKET, Key=KEY, VersionId=version_id, **read_args("sse-c"))
        return resp, resp["Body"].read()

    def verify(self, s3, when: str) -> None:
        listed = [v for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
                  for v in page.get("Versions", [])]
        markers = [m for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
                   for m in page.get("DeleteMarkers", [])]
        if markers:
            self.problem(f"{when}: delete markers nobody made: {markers[:3]}")
        by_id = {v["VersionId"]: v for v in listed}
        if len(by_id) != len(listed):
            self.problem(f"{when}: a version id is listed twice")
        if any(v["Key"] != KEY for v in listed):
            self.problem(f"{when}: keys nobody wrote: {sorted({v['Key'] for v in listed} - {KEY})}")
        lost = [e for vid, e in self.acked.items() if vid not in by_id]
        for e in lost:
            self.problem(f"{when}: acknowledged version lost: {e}")
        pending = list(self.pending.values())
        self.pending.clear()
        for vid in by_id.keys() - self.acked.keys():
            try:
                resp, data = self.read(s3, vid, None)
            except ClientError as exc:
                self.problem(f"{when}: version {vid} nobody was told of does not read: {exc}")
                continue
            md5 = hashlib.md5(data).hexdigest()
            match = next((e for e in pending if (e.md5, e.size) == (md5, len(data))), None)
            if match is None:
                self.problem(f"{when}: version {vid} ({len(data)} bytes, md5 {md5}) is neither acknowledged nor "
                             f"what a write cut by the kill sent ({', '.join(map(str, pending)) or 'none in flight'})")
                continue
            pending.remove(match)
            match.version_id, match.etag = vid, resp["ETag"]
            self.acked[vid] = match
            self.count("cut, then found done")
        self.count_n("cut, then found not done", len(pending))
        for vid, e in self.acked.items():
            if vid not in by_id:
                continue
            what = f"{when}: GET VersionId {vid} ({e})"
            try:
                resp, data = self.read(s3, vid, e.mode)
            except ClientError as exc:
                self.problem(f"{what}: {exc}")
                continue
            md5 = hashlib.md5(data).hexdigest()
            if (md5, len(data), resp["ETag"]) != (e.md5, e.size, e.etag):
                self.problem(f"{what}: {len(data)} bytes hashing to {md5}, ETag {resp['ETag']}: not what was written")
            if by_id[vid]["Size"] != e.size or by_id[vid]["ETag"] != e.etag:
                self.problem(f"{what}: listed as {by_id[vid]['Size']} bytes, ETag {by_id[vid]['ETag']}")
            self.check_encryption_headers(resp, e.mode, what)
        latest = [v["VersionId"] for v in listed if v["IsLatest"]]
        if listed and len(latest) != 1:
            self.problem(f"{when}: IsLatest on {latest}")
        if latest and latest[0] in self.acked:
            e = self.acked[latest[0]]
            try:
                resp = s3.get_object(Bucket=BUCKET, Key=KEY, **read_args(e.mode))
                data = resp["Body"].read()
                if (resp.get("VersionId"), hashlib.md5(data).hexdigest()) != (latest[0], e.md5):
                    self.problem(f"{when}: plain GET served {resp.get('VersionId')}, not the newest {e}")
            except ClientError as exc:
                self.problem(f"{when}: plain GET of the newest {e}: {exc}")
        self.check_storage(when)

    def count_n(self, name: str, n: int) -> None:
        for _ in range(n):
            self.count(name)

    def check_storage(self, when: str) -> None:
        objects = self.srv.workdir / "data" / "objects"
        temp = os.listdir(objects / "tmp")
        if temp:
            self.problem(f"{when}: temp files left after the restart: {temp[:5]}")
        referenced = set().union(*self.srv.metadata_blobs().values())
        missing = referenced - self.srv.blobs()
        if missing:
            self.problem(f"{when}: blobs the metadata points at are gone: {sorted(missing)[:5]}")
        db = self.srv.workdir / "data" / "metadata.db"
        files = [p for p in objects.rglob("*") if p.is_file()]
        for path in files + [p for p in (db, Path(f"{db}-wal")) if p.exists()]:
            data = path.read_bytes()
            if path.is_relative_to(objects) and data[:4] != b"BSE1":
                self.problem(f"{when}: {path.relative_to(self.srv.workdir)} ({len(data)} bytes) is not an encrypted "
                             f"blob: starts {data[:8]!r}")
            if PLAIN_MARK in data:
                self.problem(f"{when}: plaintext in {path.relative_to(self.srv.workdir)}")

    def abort_uploads(self, s3) -> None:
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
            for upload in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])

    def check(self, when: str) -> None:
        assert not self.problems, f"{self.tag()}, {when}:\n  " + "\n  ".join(self.problems[:30]) + (
            f"\nserver log tail:\n{self.srv.log()[-3000:]}")


@pytest.fixture
def sse_server(tmp_path):
    env = dict(os.environ, **LOOP_ENV, BLEEPSTORE_CONFIG=str(write_config(tmp_path, None)))
    srv = Server(tmp_path, env).start()
    yield srv
    srv.kill()


def test_kill_9_during_encrypted_puts_of_one_key_loses_nothing_acknowledged(sse_server, capsys):
    srv, seed = sse_server, SEED
    run = Run(srv, seed)
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\n[kill -9 sse] {run.tag()}: {KILLS} kills")
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

    srv.kill()
    srv.env = dict(srv.env, **FINAL_ENV)
    srv.start()
    srv.sweep()
    s3 = run.client()
    run.verify(s3, "after the final restart")
    run.close_clients()
    run.check("after the final restart")
    referenced = set().union(*srv.metadata_blobs().values())
    stored = srv.blobs()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    with capsys.disabled():
        print(f"[kill -9 sse] {summary}; {len(run.acked)} versions kept, {len(stored)} blobs")
    assert len(run.acked) > 0, f"{run.tag()}: no write was acknowledged"
    assert {e.mode for e in run.acked.values()} == set(MODES), f"{run.tag()}: not every mode was written"
    assert stored == referenced, (f"{run.tag()}: after a sweep, storage differs from the metadata: orphans "
                                  f"{sorted(stored - referenced)[:5]}, missing {sorted(referenced - stored)[:5]}")
