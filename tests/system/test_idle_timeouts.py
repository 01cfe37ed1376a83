"""Idle connections: a client that stops sending in the middle of a body gets S3's
RequestTimeout (400) and nothing is stored; one that sends nothing between requests
is closed. Both after gunicorn's ``keepalive`` seconds (75 by default, 2 here through
GUNICORN_CMD_ARGS, which overrides the configuration file)."""
from __future__ import annotations

import os
import socket
import time

import pytest
from botocore.exceptions import ClientError

from ..conformance.helpers import error_of, raw_request_head, read_http_response, sign_headers
from ..conftest import make_client
from ..servers import Server, write_config

KEEPALIVE = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("timeouts")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)),
               GUNICORN_CMD_ARGS=f"--keep-alive {KEEPALIVE}")
    srv = Server(workdir, env).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("size", [10_000, 1_000_000])  # inline in the database / a file on disk
def test_body_stalled_midway_is_request_timeout_and_nothing_stored(server, size):
    s3 = make_client(server.endpoint)
    bucket = f"stall-{size}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(size)
    path = f"/{bucket}/stalled"
    headers = sign_headers("PUT", f"{server.endpoint}{path}", body=body, headers={"Content-Length": str(size)})
    blobs_before = server.blobs()
    with socket.create_connection(("127.0.0.1", server.port), timeout=KEEPALIVE * 5) as sock:
        sock.sendall(raw_request_head("PUT", path, headers) + body[: size // 2])
        started = time.monotonic()
        status, _, resp_body, _ = read_http_response(sock)  # the client sends nothing more
        waited = time.monotonic() - started
    assert status == 400, resp_body
    fields = error_of(resp_body)
    assert fields["Code"] == "RequestTimeout" and fields["RequestId"]
    assert KEEPALIVE - 0.5 <= waited < KEEPALIVE * 3
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="stalled")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert server.blobs() == blobs_before  # the half-written body was discarded
    s3.put_object(Bucket=bucket, Key="stalled", Body=body)  # the server is fine for the next client
    assert s3.get_object(Bucket=bucket, Key="stalled")["Body"].read() == body


def test_connection_idle_between_requests_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=KEEPALIVE * 5) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _, rest = read_http_response(sock)
        assert status == 200 and rest == b""
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server after keepalive seconds
        assert KEEPALIVE - 0.5 <= time.monotonic() - started < KEEPALIVE * 3
