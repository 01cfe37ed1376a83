"""A response that cannot deliver its announced length is cut (the connection
closed at once), never left hanging until the client's read timeout."""
from __future__ import annotations

import http.client
import os
import sqlite3
import time
from pathlib import Path

import pytest

from ..conftest import make_client
from ..servers import Server, write_config

MiB = 1024 * 1024
BUCKET = "short-reads"


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(tmp_path, None)))).start()
    yield srv
    srv.stop()


def _blob_path(srv: Server, location: str) -> Path:
    return srv.workdir / "data" / "objects" / "data" / location[:2] / location[2:4] / location


def _get_is_cut(srv: Server, s3, key: str, announced: int) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    started = time.monotonic()
    try:
        conn.request("GET", url.split(str(srv.port), 1)[1])
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Length") == str(announced)
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert len(cut.value.partial) < announced
        assert time.monotonic() - started < 10, "the client waited for its timeout"
    finally:
        conn.close()
    # The server goes on serving.
    s3.put_object(Bucket=BUCKET, Key="fine", Body=b"fine")
    assert s3.get_object(Bucket=BUCKET, Key="fine")["Body"].read() == b"fine"


def test_get_of_a_blob_lost_mid_object_closes_the_connection(server):
    """The data file of a stored object is truncated behind the server's back (a
    failing disk, an operator's mistake)."""
    s3 = make_client(server.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    before = server.blobs()
    s3.put_object(Bucket=BUCKET, Key="k", Body=os.urandom(3 * MiB))
    (location,) = server.blobs() - before
    os.truncate(_blob_path(server, location), MiB)
    _get_is_cut(server, s3, "k", 3 * MiB)
    assert "failed after" in server.log()


def test_get_whose_parts_hold_less_than_the_object_row_says_closes_the_connection(server):
    """The row says more bytes than its parts hold (what a torn read of two versions
    used to produce): the parts end early without any error, and the server must
    still not leave the client waiting for the rest."""
    s3 = make_client(server.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key="mp", UploadId=upload, PartNumber=n, Body=os.urandom(size))["ETag"]
             for n, size in ((1, 5 * MiB), (2, MiB))]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
    with sqlite3.connect(server.workdir / "data" / "metadata.db") as db:
        db.execute("UPDATE objects SET size = size + 4096 WHERE key = 'mp'")
    _get_is_cut(server, s3, "mp", 6 * MiB + 4096)
    assert "ended after" in server.log()
