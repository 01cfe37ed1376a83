"""Crash-only: kill -9 at awkward moments, restart, and nothing half-done is visible."""
from __future__ import annotations

import http.client
import os
import threading
import time
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("crash_server", ENGINES, indirect=True)]

MiB = 1024 * 1024


@pytest.fixture
def crash_server(tmp_path, pg_databases, request):
    url = pg_databases.create() if getattr(request, "param", "sqlite") == "postgresql" else None
    config = write_config(tmp_path, url)
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config))).start()
    yield srv
    srv.stop()


def _temp_files(srv: Server) -> list[str]:
    return os.listdir(srv.workdir / "data" / "objects" / "tmp")


def _data_files(srv: Server) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(srv.workdir / "data" / "objects" / "data"):
        found.extend(files)
    return found


def _slow_body(total: int, sent_event: threading.Event, hold: threading.Event):
    """Send half the body, signal, then stall until the server is gone."""
    chunk = b"z" * MiB
    for i in range(total // MiB):
        if i == total // MiB // 2:
            sent_event.set()
            hold.wait(30)
        yield chunk


def _presigned_put(srv: Server, bucket: str, key: str) -> str:
    return make_client(srv.endpoint).generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)


def test_put_object_kill_9_mid_upload_leaves_no_object_and_no_temp_file(crash_server):
    srv = crash_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="crash")
    s3.put_object(Bucket="crash", Key="kept", Body=b"old version" * 10_000)
    size = 64 * MiB
    half_sent, hold = threading.Event(), threading.Event()
    url = _presigned_put(srv, "crash", "partial")
    overwrite_url = _presigned_put(srv, "crash", "kept")

    def upload(target):
        parts = urlsplit(target)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            conn.putrequest("PUT", f"{parts.path}?{parts.query}")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            for chunk in _slow_body(size, half_sent, hold):
                conn.send(chunk)
            conn.getresponse()
        except OSError:
            pass
        finally:
            conn.close()

    threads = [threading.Thread(target=upload, args=(u,)) for u in (url, overwrite_url)]
    for t in threads:
        t.start()
        assert half_sent.wait(30), "upload did not start"
        half_sent.clear()
    # Both uploads are mid-body: their temp files exist.
    deadline = time.monotonic() + 10
    while len(_temp_files(srv)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_temp_files(srv)) == 2
    srv.kill()
    hold.set()
    for t in threads:
        t.join(30)

    srv.start()
    assert _temp_files(srv) == []
    s3 = make_client(srv.endpoint)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="crash", Key="partial")
    assert exc.value.response["Error"]["Code"] == "404"
    assert s3.get_object(Bucket="crash", Key="kept")["Body"].read() == b"old version" * 10_000
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="crash")["Contents"]] == ["kept"]
    srv.sweep()
    assert len(_data_files(srv)) == 1  # only the kept version's blob


def test_recovery_removes_orphan_blobs_and_dead_temp_files(crash_server):
    srv = crash_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="orphans")
    s3.put_object(Bucket="orphans", Key="real", Body=os.urandom(100_000))
    srv.kill()

    objects = srv.workdir / "data" / "objects"
    orphan = objects / "data" / "ab" / "cd" / ("abcd" + "0" * 28)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"nobody points at me")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    young_orphan = objects / "data" / "ab" / "cd" / ("abcd" + "1" * 28)
    young_orphan.write_bytes(b"maybe a write between rename and commit on another node")
    dead_temp = objects / "tmp" / ("f" * 32)
    dead_temp.write_bytes(b"half a write")

    srv.start()
    assert not orphan.exists()
    assert young_orphan.exists()  # too young to judge: a live write may own it
    assert not dead_temp.exists()
    assert make_client(srv.endpoint).get_object(Bucket="orphans", Key="real")["ContentLength"] == 100_000
