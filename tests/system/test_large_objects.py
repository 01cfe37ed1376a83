"""Large objects stream: a 2 GiB PUT and GET keep every worker's memory flat."""
from __future__ import annotations

import hashlib
import http.client
import os
from urllib.parse import urlsplit

import pytest

from ..conftest import make_client
from ..servers import Server, write_config

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
SIZE = 2 * 1024 * MiB
# Generous: a worker that buffered the body would need > 2 GiB. Flat streaming
# measured well under 100 MiB; the figure is printed for the record.
RSS_LIMIT = 200 * MiB


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def one_worker_server(tmp_path):
    config = write_config(tmp_path, None)
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_SERVER_WORKERS="1")
    srv = Server(tmp_path, env).start()
    yield srv
    srv.stop()


def test_put_and_get_object_2gib_streams_with_flat_memory(one_worker_server, capsys):
    srv = one_worker_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="large")
    [worker] = srv.worker_pids()

    block = os.urandom(MiB)
    expected = hashlib.md5()
    for _ in range(SIZE // MiB):
        expected.update(block)

    put_url = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": "large", "Key": "big"}))
    conn = http.client.HTTPConnection(put_url.hostname, put_url.port, timeout=300)
    conn.putrequest("PUT", f"{put_url.path}?{put_url.query}")
    conn.putheader("Content-Length", str(SIZE))
    conn.endheaders()
    for _ in range(SIZE // MiB):
        conn.send(block)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    assert resp.getheader("ETag") == f'"{expected.hexdigest()}"'
    resp.read()
    rss_after_put = _peak_rss(worker)

    get_url = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": "large", "Key": "big"}))
    conn.request("GET", f"{get_url.path}?{get_url.query}")
    resp = conn.getresponse()
    assert resp.status == 200
    got, total = hashlib.md5(), 0
    while chunk := resp.read(MiB):
        got.update(chunk)
        total += len(chunk)
    conn.close()
    assert total == SIZE
    assert got.hexdigest() == expected.hexdigest()
    rss_after_get = _peak_rss(worker)
    with capsys.disabled():
        print(f"\n2 GiB PUT+GET: worker peak RSS after PUT {rss_after_put / MiB:.0f} MiB, "
              f"after GET {rss_after_get / MiB:.0f} MiB")
    assert rss_after_get < RSS_LIMIT
