"""SIGTERM is a graceful stop: requests in flight finish, connections that are only
waiting for their next request are closed, so the stop does not sit out
gunicorn's graceful_timeout (30 s) for idle keep-alive clients."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import time

from ..conformance.helpers import raw_request_head, read_http_response, sign_headers
from ..conftest import make_client
from ..servers import Server, write_config


def test_sigterm_finishes_an_upload_in_flight_and_closes_idle_connections(tmp_path):
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(tmp_path, None)))
    srv = Server(tmp_path, env).start()
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="graceful")
        s3.list_buckets()  # boto3 keeps this connection open, idle
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # connected, never sends

        body = os.urandom(256 * 1024)
        path = "/graceful/slow"
        headers = sign_headers("PUT", f"{srv.endpoint}{path}", body=body,
                               headers={"Content-Length": str(len(body))})
        upload = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        upload.sendall(raw_request_head("PUT", path, headers) + body[:1000])
        time.sleep(0.5)  # the request is being read when the stop comes

        stopping = time.monotonic()
        os.killpg(srv.proc.pid, signal.SIGTERM)
        time.sleep(1.0)
        upload.sendall(body[1000:])
        status, resp_headers, resp_body, _ = read_http_response(upload)
        assert status == 200, resp_body
        assert resp_headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'

        srv.proc.wait(25)
        took = time.monotonic() - stopping
        print(f"\n[graceful stop] SIGTERM to exit with an upload in flight and idle connections open: {took:.1f}s")
        assert took < 10, "the stop waited on idle keep-alive connections (graceful_timeout is 30 s)"
        assert idle.recv(1) == b""  # closed by the server, not left hanging
        idle.close()
        upload.close()
    finally:
        srv.kill()
