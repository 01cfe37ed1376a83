"""Gateway backends (aws on moto, gcp on fake-gcs-server, azure on Azurite) through
a real gunicorn server: large objects with flat worker memory, kill -9 mid-upload,
readiness when the backing store goes away, and --preload (SDK clients in forked
gevent workers).

Every server gets its own key prefix in the (shared, session-wide) backing bucket,
so one test never sees another's blobs.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from ..conftest import GATEWAY_EMULATORS, make_client
from ..servers import Server, write_config

pytestmark = pytest.mark.slow

GATEWAYS = ["aws-moto", "gcp", "azure"]
each_gateway = pytest.mark.parametrize("gateway", GATEWAYS)

MiB = 1024 * 1024
KiB = 1024
LARGE = 256 * MiB
VMHWM_LIMIT = 150 * MiB


# -- helpers -------------------------------------------------------------------

def _with_prefix(yaml: str, prefix: str) -> str:
    """The emulator's storage: section with our own key prefix."""
    out = yaml.replace('prefix: "bleepstore/"', f'prefix: "{prefix}"').replace(
        "prefix: bleepstore/\n", f"prefix: {prefix}\n")
    assert out != yaml, "emulator yaml has no prefix to replace"
    return out


def _start_server(workdir, emulator, extra_env: dict | None = None) -> tuple[Server, str]:
    prefix = f"bleepstore-{uuid.uuid4().hex[:12]}/"
    config = write_config(workdir, None, storage=_with_prefix(emulator.yaml, prefix))
    env = dict(os.environ, **emulator.env, BLEEPSTORE_CONFIG=str(config), **(extra_env or {}))
    return Server(workdir, env).start(timeout=60), prefix


@pytest.fixture
def emulator(gateway, emulators):
    return emulators.get(GATEWAY_EMULATORS[gateway])


@pytest.fixture
def gw_server(tmp_path, emulator):
    srv, prefix = _start_server(tmp_path, emulator)
    srv.prefix = prefix
    yield srv
    srv.stop()


def _vmhwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class Backing:
    """The backing bucket/container, listed with the SDK directly (not through BleepStore)."""

    def __init__(self, emulator, prefix: str) -> None:
        self.emulator, self.prefix = emulator, prefix
        self.kind = emulator.name

    def names(self) -> set[str]:
        """Committed, visible objects under our prefix (prefix stripped)."""
        p, s = self.prefix, self.emulator.settings
        if self.kind in ("moto", "seaweedfs"):
            client = self._s3()
            names = set()
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=s.bucket, Prefix=p):
                names |= {o["Key"][len(p):] for o in page.get("Contents", [])}
            return names
        if self.kind == "fake-gcs-server":
            return {b.name[len(p):] for b in self._gcs().list_blobs(s.bucket, prefix=p)}
        with self._azure() as container:
            return {b.name[len(p):] for b in container.list_blobs(name_starts_with=p)}

    def in_flight(self) -> int | None:
        """Uploads begun but not finished, where the store lets us see them
        (S3 multipart uploads, Azure uncommitted blobs); None for GCS (sessions
        are not listable)."""
        p, s = self.prefix, self.emulator.settings
        if self.kind in ("moto", "seaweedfs"):
            return len(self._s3().list_multipart_uploads(Bucket=s.bucket, Prefix=p).get("Uploads", []))
        if self.kind == "fake-gcs-server":
            return None
        with self._azure() as container:
            every = {b.name for b in container.list_blobs(name_starts_with=p, include=["uncommittedblobs"])}
            committed = {b.name for b in container.list_blobs(name_starts_with=p)}
            return len(every - committed)

    def _s3(self):
        import boto3

        from ..emulators.s3 import ACCESS_KEY, SECRET_KEY
        return boto3.client("s3", endpoint_url=self.emulator.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def _gcs(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.emulator.settings.endpoint})

    def _azure(self):
        from azure.storage.blob import ContainerClient
        s = self.emulator.settings
        return ContainerClient.from_connection_string(s.connection_string, s.container)


def _referenced_locations(srv: Server) -> set[str]:
    """Every blob location the server's SQLite metadata points at."""
    with sqlite3.connect(srv.workdir / "data" / "metadata.db") as db:
        rows = []
        for table in ("objects", "object_parts", "multipart_parts"):
            rows += db.execute(f"SELECT data_location FROM {table}").fetchall()
    return {r[0] for r in rows}


def _presigned(srv: Server, method: str, bucket: str, key: str) -> str:
    client = make_client(srv.endpoint)
    try:
        return client.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
    finally:
        client.close()


def _single_attempt_client(endpoint: str, read_timeout: float):
    """make_client's retries={"max_attempts": 1} still allows one retry (legacy
    mode counts retries): here exactly one attempt, so a timing is one request."""
    import boto3
    from botocore.config import Config

    from ..servers import ACCESS_KEY, SECRET_KEY
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        region_name="us-east-1", config=Config(
                            signature_version="s3v4", s3={"addressing_style": "path"},
                            retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout))

def _error(call) -> dict:
    """The error response of a call that must fail with an S3 error (the exception
    itself is not kept: its traceback would pin the client's connection)."""
    try:
        call()
    except ClientError as exc:
        return exc.response
    raise AssertionError("the call succeeded")


# Close every client before stopping a server (gunicorn's own gevent worker waited
# for idle keep-alive connections on SIGTERM until graceful_timeout, and Server.stop
# kills after 15 s; BleepStore's worker now closes them, see test_graceful_stop.py).


# -- 1. a 256 MiB object through a real worker ---------------------------------

@each_gateway
def test_large_object_streams_through_gateway_with_flat_worker_memory(gateway, gw_server, capsys):
    srv = gw_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="large")
    workers = srv.worker_pids()
    assert workers
    s3.put_object(Bucket="large", Key="warm", Body=b"w" * 100_000)  # every SDK loaded: a fair baseline
    hwm_before = max(_vmhwm(pid) for pid in workers)

    block = os.urandom(MiB)
    expected = hashlib.md5()
    for _ in range(LARGE // MiB):
        expected.update(block)

    put = urlsplit(_presigned(srv, "put_object", "large", "big"))
    conn = http.client.HTTPConnection(put.hostname, put.port, timeout=300)
    started = time.monotonic()
    conn.putrequest("PUT", f"{put.path}?{put.query}")
    conn.putheader("Content-Length", str(LARGE))
    conn.endheaders()
    for _ in range(LARGE // MiB):
        conn.send(block)
    resp = conn.getresponse()
    body = resp.read()
    put_seconds = time.monotonic() - started
    conn.close()
    assert resp.status == 200, body
    assert resp.getheader("ETag") == f'"{expected.hexdigest()}"'
    hwm_put = max(_vmhwm(pid) for pid in workers)

    get = urlsplit(_presigned(srv, "get_object", "large", "big"))
    conn = http.client.HTTPConnection(get.hostname, get.port, timeout=300)
    started = time.monotonic()
    conn.request("GET", f"{get.path}?{get.query}")
    resp = conn.getresponse()
    assert resp.status == 200, resp.read(2000)
    assert resp.getheader("ETag") == f'"{expected.hexdigest()}"'
    got, total = hashlib.md5(), 0
    while chunk := resp.read(MiB):
        got.update(chunk)
        total += len(chunk)
    get_seconds = time.monotonic() - started
    conn.close()
    assert total == LARGE
    assert got.hexdigest() == expected.hexdigest()

    hwms = {pid: _vmhwm(pid) for pid in workers}
    assert srv.worker_pids() == workers, "a worker was replaced during the transfer"
    with capsys.disabled():
        print(f"\n[gateway large {gateway}] {LARGE // MiB} MiB PUT {LARGE / MiB / put_seconds:.0f} MiB/s, "
              f"GET {LARGE / MiB / get_seconds:.0f} MiB/s, worker VmHWM "
              f"{max(hwms.values()) / MiB:.0f} MiB (before {hwm_before / MiB:.0f}, after PUT {hwm_put / MiB:.0f}; per worker "
              f"{', '.join(f'{v / MiB:.0f}' for v in hwms.values())} MiB)")
    s3.delete_object(Bucket="large", Key="big")
    s3.close()
    assert max(hwms.values()) < VMHWM_LIMIT


# -- 2. kill -9 mid-upload -------------------------------------------------------

CRASH_SIZE = 48 * MiB  # half of it (24 MiB) is three 8 MiB chunks: the backend upload is under way
OLD = b"old version " * 10_000


def _slow_body(total: int, half_sent: threading.Event, hold: threading.Event):
    chunk = b"z" * MiB
    for i in range(total // MiB):
        if i == total // MiB // 2:
            half_sent.set()
            hold.wait(60)
        yield chunk


@each_gateway
def test_kill_9_mid_upload_leaves_no_object_and_no_unreferenced_blob(gateway, tmp_path, emulator, capsys):
    """The orphan sweep only removes blobs older than storage.orphan_min_age_seconds
    (300 s; this server keeps the default), so a young orphan would survive this restart: what
    we check is that the crash leaves no committed blob at all, only what metadata
    references. Unfinished uploads (S3 multipart uploads, Azure uncommitted blocks,
    GCS resumable sessions) are invisible to reads and listings. On moto they are
    gone after the restart only because moto reports every upload as initiated in
    2010, so recover()'s "older than a day" rule aborts them."""
    srv, prefix = _start_server(tmp_path, emulator)
    backing = Backing(emulator, prefix)
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="crash")
        s3.put_object(Bucket="crash", Key="kept", Body=OLD)
        assert len(backing.names()) == 1
        half_sent, hold = threading.Event(), threading.Event()
        s3.close()
        urls = [_presigned(srv, "put_object", "crash", key) for key in ("partial", "kept")]

        def upload(target: str) -> None:
            parts = urlsplit(target)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            try:
                conn.putrequest("PUT", f"{parts.path}?{parts.query}")
                conn.putheader("Content-Length", str(CRASH_SIZE))
                conn.endheaders()
                for chunk in _slow_body(CRASH_SIZE, half_sent, hold):
                    conn.send(chunk)
                conn.getresponse()
            except OSError:
                pass
            finally:
                conn.close()

        threads = [threading.Thread(target=upload, args=(u,), daemon=True) for u in urls]
        for t in threads:
            t.start()
            assert half_sent.wait(30), "upload did not start"
            half_sent.clear()
        # Wait until both writes are under way in the backing store, where it shows.
        in_flight, deadline = backing.in_flight(), time.monotonic() + 15
        while in_flight is not None and in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            in_flight = backing.in_flight()
        if in_flight is None:
            time.sleep(1.5)  # GCS resumable sessions are not listable: give the chunks time to go out
        else:
            assert in_flight >= 2, f"backend uploads not under way ({in_flight})"
        assert len(backing.names()) == 1, "an unfinished write is already visible in the backing store"

        srv.kill()
        hold.set()
        for t in threads:
            t.join(30)

        srv.start(timeout=60)
        s3 = make_client(srv.endpoint)
        assert _error(lambda: s3.get_object(Bucket="crash", Key="partial"))["Error"]["Code"] == "NoSuchKey"
        assert s3.get_object(Bucket="crash", Key="kept")["Body"].read() == OLD
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="crash")["Contents"]] == ["kept"]
        s3.close()

        log = srv.log_path.read_text(errors="replace")
        assert log.count("recovery done") == 2, log[-3000:]
        assert "storage recovery skipped" not in log
        referenced = _referenced_locations(srv)
        in_bucket = backing.names()
        assert in_bucket <= referenced, f"unreferenced blobs in the backing store: {in_bucket - referenced}"
        assert len(in_bucket) == 1  # only the kept version's blob
        left = backing.in_flight()
        with capsys.disabled():
            print(f"\n[gateway kill-9 {gateway}] backing objects after restart: {len(in_bucket)} (all referenced); "
                  f"unfinished uploads left in the store: {'not listable' if left is None else left}")
    finally:
        srv.stop()


# -- 3. readiness when the backing store goes away -------------------------------

def _start_dedicated(kind: str, workdir):
    from ..emulators.azure import start_azurite
    from ..emulators.gcs import start_gcs
    from ..emulators.s3 import start_moto
    return {"moto": start_moto, "gcs": start_gcs, "azurite": start_azurite}[kind](workdir)


@each_gateway
def test_readyz_turns_503_and_requests_fail_fast_when_the_backing_store_stops(gateway, tmp_path, capsys):
    emulator = _start_dedicated(GATEWAY_EMULATORS[gateway], tmp_path / "emulator")
    srv = None
    try:
        srv, _ = _start_server(tmp_path, emulator)
        s3 = _single_attempt_client(srv.endpoint, read_timeout=180)
        s3.create_bucket(Bucket="ready")
        s3.put_object(Bucket="ready", Key="before", Body=os.urandom(100 * KiB))
        assert requests.get(srv.endpoint + "/readyz", timeout=30).status_code == 200

        emulator.stop()
        started = time.monotonic()
        status = None
        while time.monotonic() - started < 30:
            status = requests.get(srv.endpoint + "/readyz", timeout=30).status_code
            if status == 503:
                break
            time.sleep(0.2)
        readyz_seconds = time.monotonic() - started
        assert status == 503, f"/readyz still {status} {readyz_seconds:.1f}s after the emulator stopped"
        assert srv.proc.poll() is None

        started = time.monotonic()
        error = _error(lambda: s3.put_object(Bucket="ready", Key="after", Body=os.urandom(100 * KiB)))
        put_seconds = time.monotonic() - started

        with capsys.disabled():
            print(f"\n[gateway readyz {gateway}] /readyz 503 after {readyz_seconds:.1f}s; PutObject -> "
                  f"{error['ResponseMetadata']['HTTPStatusCode']} {error['Error']['Code']} in {put_seconds:.1f}s")
        assert readyz_seconds < 10
        # botocore found an S3 error code in an XML body (else Code would be the bare status).
        assert (error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]) in {
            (503, "ServiceUnavailable"), (500, "InternalError")}, error
        s3.close()
        assert srv.proc.poll() is None
        assert requests.get(srv.endpoint + "/healthz", timeout=10).status_code == 200
        assert requests.get(srv.endpoint + "/readyz", timeout=30).status_code == 503
    finally:
        if srv is not None:
            srv.stop()
        emulator.stop()


# -- 4. --preload: SDK clients in forked gevent workers ---------------------------

@each_gateway
def test_preload_serves_concurrent_requests_on_gateway(gateway, tmp_path, emulator, capsys):
    srv, prefix = _start_server(tmp_path, emulator, {"GUNICORN_CMD_ARGS": "--preload",
                                                     "BLEEPSTORE_SERVER_LOG_LEVEL": "debug"})
    try:
        log = srv.log_path.read_text(errors="replace")
        assert "preload_app: True" in log, "gunicorn did not take --preload from GUNICORN_CMD_ARGS"
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="preload")
        local, made = threading.local(), [s3]

        def client():
            if not hasattr(local, "s3"):
                local.s3 = make_client(srv.endpoint, read_timeout=120)
                made.append(local.s3)
            return local.s3

        def roundtrip(i: int) -> None:
            body = os.urandom(100 * KiB)
            key = f"obj-{i:03d}"
            etag = client().put_object(Bucket="preload", Key=key, Body=body)["ETag"]
            assert etag == f'"{hashlib.md5(body).hexdigest()}"'
            got = client().get_object(Bucket="preload", Key=key)["Body"].read()
            assert got == body, f"{key}: {len(got)} bytes back, different from what was put"

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(roundtrip, range(50)))
        seconds = time.monotonic() - started
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="preload")["Contents"]]
        for c in made:
            c.close()
        assert len(keys) == 50
        assert len(Backing(emulator, prefix).names()) == 50
        assert srv.proc.poll() is None
        log = srv.log_path.read_text(errors="replace")
        # Every S3 request answered 200 and nothing failed inside a worker. (SQLite
        # "database is locked" tracebacks that gevent's threadpool prints are the
        # two workers' group commits meeting; the writer retries them by design.)
        failed = [line for line in log.splitlines() if "bleepstore.access" in line and "bucket=preload" in line
                  and "status=200" not in line]
        assert not failed, failed[:5]
        assert "internal error" not in log and "storage backend failed" not in log, log[-3000:]
        with capsys.disabled():
            print(f"\n[gateway preload {gateway}] 50 concurrent 100 KiB PUT+GET in {seconds:.1f}s")
    finally:
        srv.stop()
