"""Multipart uploads are crash-only too: kill -9 during CompleteMultipartUpload or an
UploadPart body, restart, and every upload is either its finished, byte-exact object
or still open and completable; no part blob is orphaned and no temp file is left.
And the reaper removes abandoned uploads, periodically and at start-up."""
from __future__ import annotations

import gc
import http.client
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from ..conformance.support_multipart import (MiB, PART, blob_files, complete, swept_blob_files, data, multipart_etag,
                                             open_uploads, temp_files, upload_parts, wait_until)
from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("crash_server", ENGINES, indirect=True)]

UPLOADS = 24      # uploads completed while the server is killed
LEFT_OPEN = 3     # uploads never completed: aborted after the restart


@pytest.fixture
def crash_server(tmp_path, pg_databases, request):
    url = pg_databases.create() if getattr(request, "param", "sqlite") == "postgresql" else None
    config = write_config(tmp_path, url)
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config))).start()
    srv.clients = []
    yield srv
    _stop(srv)


def _client(srv: Server):
    client = make_client(srv.endpoint, max_pool_connections=64, connect_timeout=5, read_timeout=60)
    srv.clients.append(client)
    return client


def _stop(srv: Server) -> None:
    """A graceful stop, after closing the clients' idle keep-alive connections (gunicorn's
    own worker waited on them for its whole graceful timeout; BleepStore's closes them)."""
    for client in srv.clients:
        client._endpoint.http_session.close()
    srv.clients.clear()
    gc.collect()  # and the sockets of fully read responses no longer referenced
    srv.stop()


def _parts_of(i: int) -> list[bytes]:
    """Upload i's three parts: two of 5 MiB and a small last one, all distinct."""
    return [data(PART, f"{i}-1"), data(PART, f"{i}-2"), data(1000 + i, f"{i}-3")]


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return False


def test_complete_multipart_upload_kill_9_midway(crash_server, capsys):
    srv = crash_server
    s3 = _client(srv)
    s3.create_bucket(Bucket="crash")
    keys = [f"obj/{i:02d}" for i in range(UPLOADS)]

    def prepare(i: int):
        return upload_parts(s3, "crash", keys[i], _parts_of(i))

    with ThreadPoolExecutor(4) as pool:
        prepared = list(pool.map(prepare, range(UPLOADS)))
    left_open = [upload_parts(s3, "crash", f"open/{i}", [data(PART, f"open-{i}"), b"tail"])
                 for i in range(LEFT_OPEN)]
    assert len(swept_blob_files(srv)) == 3 * UPLOADS + 2 * LEFT_OPEN

    # Fire every Complete at once; kill the whole server once some have answered.
    outcome: dict[int, object] = {}
    answered = threading.Semaphore(0)
    start = threading.Barrier(UPLOADS + 1)

    def finish(i: int) -> None:
        upload_id, done = prepared[i]
        start.wait()
        try:
            outcome[i] = complete(s3, "crash", keys[i], upload_id, done)["ETag"]
        except Exception as exc:  # noqa: BLE001 - a connection cut by the kill, or an error
            outcome[i] = exc
        answered.release()

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(UPLOADS)]
    for t in threads:
        t.start()
    start.wait()
    for _ in range(UPLOADS // 8):  # a few answered: the rest are in flight
        answered.acquire(timeout=30)
    srv.kill()
    for t in threads:
        t.join(60)
    succeeded = {i for i, v in outcome.items() if isinstance(v, str)}
    with capsys.disabled():
        print(f"\n[{srv.workdir.name}] Complete answered 200 for {len(succeeded)} of {UPLOADS} uploads before kill -9")
    for i in succeeded:
        assert outcome[i] == f'"{multipart_etag(_parts_of(i))}"'

    srv.start()
    assert temp_files(srv.workdir) == []
    s3 = _client(srv)
    listed = dict((u, k) for k, u in open_uploads(s3, "crash"))
    finished_now = 0
    for i, key in enumerate(keys):
        upload_id, done = prepared[i]
        parts = _parts_of(i)
        expected_etag = f'"{multipart_etag(parts)}"'
        if _exists(s3, "crash", key):
            assert upload_id not in listed, f"{key}: object exists but its upload is still listed"
        else:
            assert i not in succeeded, f"{key}: Complete answered 200 but the object is gone"
            assert listed.get(upload_id) == key, f"{key}: neither the object nor the upload survived"
            assert complete(s3, "crash", key, upload_id, done)["ETag"] == expected_etag
            finished_now += 1
        got = s3.get_object(Bucket="crash", Key=key)
        assert got["ETag"] == expected_etag
        assert got["ContentLength"] == sum(map(len, parts))
        assert got["Body"].read() == b"".join(parts), f"{key}: not byte-exact"
        # A retried Complete answers the same, whichever side of the crash it finished on.
        assert complete(s3, "crash", key, upload_id, done)["ETag"] == expected_etag
    with capsys.disabled():
        print(f"[{srv.workdir.name}] {finished_now} uploads were still open after the restart and completed then")

    assert sorted(k for _u, k in listed.items() if k.startswith("open/")) == [f"open/{i}" for i in range(LEFT_OPEN)]
    for i, (upload_id, _done) in enumerate(left_open):
        s3.abort_multipart_upload(Bucket="crash", Key=f"open/{i}", UploadId=upload_id)
    assert open_uploads(s3, "crash") == []
    # Exactly the blobs of the objects' parts remain: none orphaned, none lost.
    assert len(swept_blob_files(srv)) == 3 * UPLOADS
    assert temp_files(srv.workdir) == []


def _stalled_part(srv: Server, url: str, size: int, half_sent: threading.Event, hold: threading.Event) -> None:
    """PUT ``size`` bytes to a presigned UploadPart URL, stalling after half of them."""
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    try:
        conn.putrequest("PUT", f"{target.path}?{target.query}")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        chunk = b"q" * MiB
        for i in range(size // MiB):
            if i == size // MiB // 2:
                half_sent.set()
                hold.wait(30)
            conn.send(chunk)
        conn.getresponse()
    except OSError:
        pass
    finally:
        conn.close()


def test_upload_part_kill_9_mid_body_leaves_no_temp_file(crash_server):
    srv = crash_server
    s3 = _client(srv)
    s3.create_bucket(Bucket="crash")
    first = data(PART, "first")
    upload_id, done = upload_parts(s3, "crash", "k", [first])
    assert len(swept_blob_files(srv)) == 1

    size = 64 * MiB
    threads, holds = [], []
    for number in (1, 2):  # a replacement of part 1 and a new part 2, both cut mid-body
        url = s3.generate_presigned_url("upload_part", ExpiresIn=600, Params={
            "Bucket": "crash", "Key": "k", "UploadId": upload_id, "PartNumber": number})
        half_sent, hold = threading.Event(), threading.Event()
        t = threading.Thread(target=_stalled_part, args=(srv, url, size, half_sent, hold))
        t.start()
        assert half_sent.wait(30), "the part upload did not start"
        threads.append(t)
        holds.append(hold)
    assert wait_until(lambda: len(temp_files(srv.workdir)) == 2, 10), temp_files(srv.workdir)
    srv.kill()
    for hold in holds:
        hold.set()
    for t in threads:
        t.join(30)

    srv.start()
    assert temp_files(srv.workdir) == []
    assert len(swept_blob_files(srv)) == 1
    s3 = _client(srv)
    assert open_uploads(s3, "crash") == [("k", upload_id)]
    parts = s3.list_parts(Bucket="crash", Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, done[0]["ETag"], PART)]
    tail = data(777, "tail")
    etag2 = s3.upload_part(Bucket="crash", Key="k", UploadId=upload_id, PartNumber=2, Body=tail)["ETag"]
    complete(s3, "crash", "k", upload_id, done + [{"PartNumber": 2, "ETag": etag2}])
    assert s3.get_object(Bucket="crash", Key="k")["Body"].read() == first + tail
    assert len(swept_blob_files(srv)) == 2


def _restart_with(srv: Server, **env) -> None:
    _stop(srv)
    srv.env = dict(srv.env, **env)
    srv.start()


def test_reaper_removes_abandoned_upload_periodically(crash_server):
    srv = crash_server
    _restart_with(srv, BLEEPSTORE_MULTIPART_UPLOAD_LIFETIME_SECONDS="1",
                  BLEEPSTORE_MULTIPART_REAP_INTERVAL_SECONDS="1",
                  BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS="1")  # the reaped parts' blobs: the sweeper's
    s3 = _client(srv)
    s3.create_bucket(Bucket="reap")
    # A finished object: its (completed) upload is reaped too, but not its parts.
    kept_id, kept_done = upload_parts(s3, "reap", "kept", [b"kept bytes"])
    complete(s3, "reap", "kept", kept_id, kept_done)
    upload_id, _done = upload_parts(s3, "reap", "abandoned", [b"one" * 1000, b"two" * 1000])
    assert open_uploads(s3, "reap") == [("abandoned", upload_id)]
    assert len(blob_files(srv.workdir)) == 3

    assert wait_until(lambda: open_uploads(s3, "reap") == [], 10), "the abandoned upload was not reaped"
    assert wait_until(lambda: len(blob_files(srv.workdir)) == 1, 10), blob_files(srv.workdir)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="reap", Key="abandoned", UploadId=upload_id)
    assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket="reap", Key="abandoned", UploadId=upload_id, PartNumber=3, Body=b"late")
    assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
    assert s3.get_object(Bucket="reap", Key="kept")["Body"].read() == b"kept bytes"
    assert len(blob_files(srv.workdir)) == 1


def test_reaper_removes_abandoned_upload_at_start_up(crash_server):
    srv = crash_server
    s3 = _client(srv)
    s3.create_bucket(Bucket="reap")
    kept_id, kept_done = upload_parts(s3, "reap", "kept", [data(PART, "kept"), b"end"])
    complete(s3, "reap", "kept", kept_id, kept_done)
    upload_id, _done = upload_parts(s3, "reap", "abandoned", [data(PART, "gone"), b"gone too"])
    assert len(swept_blob_files(srv)) == 4
    _stop(srv)
    time.sleep(1.5)
    # Periodic reaping off (0): only the start-up recovery can remove it.
    srv.env = dict(srv.env, BLEEPSTORE_MULTIPART_UPLOAD_LIFETIME_SECONDS="1",
                   BLEEPSTORE_MULTIPART_REAP_INTERVAL_SECONDS="0")
    srv.start()
    s3 = _client(srv)
    assert open_uploads(s3, "reap") == []
    assert len(swept_blob_files(srv)) == 2
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket="reap", Key="abandoned", UploadId=upload_id)
    assert exc.value.response["Error"]["Code"] == "NoSuchUpload"
    assert s3.get_object(Bucket="reap", Key="kept")["Body"].read() == data(PART, "kept") + b"end"
