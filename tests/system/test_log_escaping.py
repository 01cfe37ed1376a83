"""Client text in the server log (bucket, key, method, User-Agent) has its control
characters escaped, in the text and the JSON log formats: a %0A in a path cannot
write a forged line, an ESC cannot reach the terminal of whoever reads the log."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from ..conformance.helpers import raw_request_head, read_http_response, sign_headers
from ..conftest import make_client
from ..servers import Server, write_config

KEY = "line\nforged request_id=FAKE\rstatus=200\x1b[2J end"
USER_AGENT = "agent\x1b]0;title\x07 with\ttab"


@pytest.fixture(scope="module", params=["text", "json"])
def server(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"log-{request.param}")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)),
               BLEEPSTORE_SERVER_LOG_FORMAT=request.param)
    srv = Server(workdir, env).start()
    srv.log_format = request.param
    yield srv
    srv.stop()


def _send(server, method: str, target: str, headers: dict, body: bytes = b"") -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw_request_head(method, target, headers) + body)
        status, resp_headers, _, _ = read_http_response(sock)
    return status, resp_headers


def _lines_with(server, text: str) -> list[str]:
    """The log lines holding ``text``, once there are some (the access log is
    written after the response's last byte)."""
    deadline = time.monotonic() + 5
    while True:
        raw = server.log_path.read_bytes().decode("utf-8")
        lines = [line for line in raw.split("\n") if text in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _assert_no_raw_controls(server) -> None:
    raw = server.log_path.read_bytes().decode("utf-8")
    assert not any(ch in raw for ch in "\r\x1b\x07"), "a control character reached the log"
    assert not any(line.startswith("forged") for line in raw.split("\n"))


def test_key_and_user_agent_are_escaped_in_the_access_log(server):
    s3 = make_client(server.endpoint)
    s3.create_bucket(Bucket="logged")
    s3._endpoint.http_session.close()
    target = "/logged/line%0Aforged%20request_id%3DFAKE%0Dstatus%3D200%1B%5B2J%20end"
    body = b"logged body"
    headers = sign_headers("PUT", f"{server.endpoint}{target}", body=body,
                           headers={"Content-Length": str(len(body)), "User-Agent": USER_AGENT})
    status, resp_headers = _send(server, "PUT", target, headers, body)
    assert status == 200
    lines = _lines_with(server, resp_headers["x-amz-request-id"])
    assert len(lines) == 1, lines  # one request, one line
    line = lines[0]
    if server.log_format == "json":
        entry = json.loads(line)
        assert entry["key"] == KEY and entry["user_agent"] == USER_AGENT and entry["bucket"] == "logged"
    else:
        assert r'key="line\nforged request_id=FAKE\rstatus=200\x1b[2J end"' in line
        assert r'user_agent="agent\x1b]0;title\x07 with\ttab"' in line
    _assert_no_raw_controls(server)


def test_a_newline_in_the_bucket_name_writes_no_forged_line(server):
    """The bucket is logged before it is validated (InvalidBucketName, AccessDenied)."""
    status, resp_headers = _send(server, "GET", "/bucket%0Aforged%20status=200%1B/key",
                                 {"Host": f"127.0.0.1:{server.port}", "User-Agent": "plain"})
    assert 400 <= status < 500
    lines = _lines_with(server, resp_headers["x-amz-request-id"])
    assert len(lines) == 1, lines
    if server.log_format == "json":
        assert json.loads(lines[0])["bucket"] == "bucket\nforged status=200\x1b"
    else:
        assert r'bucket="bucket\nforged status=200\x1b"' in lines[0]
    _assert_no_raw_controls(server)


def test_a_control_character_in_the_method_is_escaped(server):
    status, resp_headers = _send(server, "GET\x1b[31m", "/", {"Host": f"127.0.0.1:{server.port}"})
    assert status == 405
    lines = _lines_with(server, resp_headers["x-amz-request-id"])
    assert len(lines) == 1, lines
    if server.log_format == "text":
        assert r'method="GET\x1b[31m"' in lines[0]
    _assert_no_raw_controls(server)
