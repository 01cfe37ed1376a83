"""Bad input at every layer, over raw sockets (boto3 always sends valid UTF-8 and
well-formed HTTP): names whose bytes are not UTF-8 are refused with InvalidURI,
never decoded lossily; requests the HTTP layer cannot parse get an S3 XML error,
one log line and no traceback, and the connection closes."""
from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from ..conformance.helpers import raw_request_head, read_http_response, sign_headers
from ..conftest import make_client
from ..servers import Server, write_config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bad-input")
    srv = Server(workdir, dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server):
    client = make_client(server.endpoint)
    yield client
    client._endpoint.http_session.close()


@pytest.fixture
def bucket(s3, request):
    name = "bad-" + request.node.name.split("[")[0][-20:].replace("_", "-").strip("-") + os.urandom(3).hex()
    s3.create_bucket(Bucket=name)
    return name


def exchange(server, data: bytes, until_close: bool = False) -> tuple[int, dict, bytes, bytes]:
    """Send raw bytes, read one response (and, ``until_close``, whatever follows
    until the server closes): (status, headers, body, after)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        status, headers, body, rest = read_http_response(sock)
        try:
            while until_close and (chunk := sock.recv(65536)):
                rest += chunk
        except (socket.timeout, ConnectionResetError):
            rest += b"<still open>"
    return status, headers, body, rest


def s3_error(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    fields = {child.tag: child.text or "" for child in root}
    for name in ("Code", "Message", "Resource", "RequestId"):
        assert fields.get(name), (name, body)
    return fields


def signed_head(server, method: str, target: str, raw_target: str | None = None, body: bytes = b"") -> bytes:
    headers = sign_headers(method, f"{server.endpoint}{target}", body=body,
                           headers={"Content-Length": str(len(body))})
    return raw_request_head(method, raw_target or target, headers) + body


# -- names that are not UTF-8 -------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["percent", "raw"])
def test_key_not_utf8_is_invalid_uri_and_nothing_stored(server, s3, bucket, spelling):
    for byte in (b"\xff", b"\xfe"):  # lossy decoding made both k + U+FFFD: one overwrote the other
        target = f"/{bucket}/k%{byte.hex().upper()}"
        raw = target if spelling == "percent" else f"/{bucket}/k" + byte.decode("latin-1")
        status, headers, body, _ = exchange(server, signed_head(server, "PUT", target, raw, body=b"data"))
        assert status == 400, body
        fields = s3_error(body)
        assert fields["Code"] == "InvalidURI"
        assert fields["Message"] == "Couldn't parse the specified URI."
        assert headers["x-amz-request-id"] == fields["RequestId"]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_bucket_not_utf8_is_invalid_uri(server):
    status, _, body, _ = exchange(server, signed_head(server, "GET", "/b%C3%28cket"))
    assert status == 400, body
    assert s3_error(body)["Code"] == "InvalidURI"


def test_raw_utf8_in_the_request_line_is_the_key_it_spells(server, s3, bucket):
    """Raw (not percent-encoded) UTF-8 bytes name the same key as their percent-encoding."""
    target = f"/{bucket}/caf%C3%A9"
    raw = f"/{bucket}/caf" + "é".encode().decode("latin-1")
    status, _, body, _ = exchange(server, signed_head(server, "PUT", target, raw, body=b"raw utf-8"))
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="café")["Body"].read() == b"raw utf-8"


@pytest.mark.parametrize("query", [
    "list-type=2&prefix=%FF", "list-type=2&delimiter=%FE", "list-type=2&start-after=a%80",
    "list-type=2&continuation-token=%C3%28", "prefix=%FF", "marker=%FF", "uploads&key-marker=%FF",
    "uploads&prefix=%FF", "uploads&key-marker=a&upload-id-marker=%FF",
])
def test_query_name_not_utf8_is_invalid_uri(server, s3, bucket, query):
    s3.put_object(Bucket=bucket, Key="a\ufffd", Body=b"x")  # what a lossy decoding would have matched
    status, _, body, _ = exchange(server, signed_head(server, "GET", f"/{bucket}?{query}"))
    assert status == 400, body
    assert s3_error(body)["Code"] == "InvalidURI"


# -- requests the HTTP layer refuses ---------------------------------------------------------------------

def _many_headers() -> bytes:
    return b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n"


HTTP_REFUSALS = [
    ("request line over 64 KiB", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "InvalidURI"),
    ("header line over 64 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 400,
     "RequestHeaderSectionTooLarge"),
    ("too many headers", _many_headers(), 400, "RequestHeaderSectionTooLarge"),
    ("no method and path", b"GARBAGE\r\nHost: x\r\n\r\n", 400, "InvalidRequest"),
    # The headers after such a line were once parsed as a body and dropped in silence.
    ("header line without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\nX-Amz-Date: 1\r\n\r\n", 400,
     "InvalidRequest"),
    ("space before the colon", b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization : AWS4\r\n\r\n", 400, "InvalidRequest"),
    ("obs-fold continuation line", b"GET / HTTP/1.1\r\nHost: x\r\nX-Amz-Meta-A: one\r\n two\r\n\r\n", 400,
     "InvalidRequest"),
    ("unknown HTTP version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, "InvalidRequest"),
    ("HTTP version without minor", b"GET / HTTP/1\r\nHost: x\r\n\r\n", 400, "InvalidRequest"),
    ("Content-Length -1", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "InvalidArgument"),
    ("Content-Length abc", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "InvalidArgument"),
    ("Content-Length +3", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400, "InvalidArgument"),
    ("conflicting Content-Length", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\n"
     b"abcde", 400, "InvalidArgument"),
    ("Transfer-Encoding gzip", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501,
     "NotImplemented"),
    ("Transfer-Encoding gzip, chunked", b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"3\r\nabc\r\n0\r\n\r\n", 501, "NotImplemented"),
]


@pytest.mark.parametrize("name,data,status,code", HTTP_REFUSALS, ids=[r[0] for r in HTTP_REFUSALS])
def test_http_layer_refusal_is_s3_xml_and_no_traceback(server, name, data, status, code):
    logged = server.log_path.stat().st_size
    got, headers, body, after = exchange(server, data, until_close=True)
    assert got == status, (name, headers, body)
    assert headers["content-type"] == "application/xml"
    fields = s3_error(body)
    assert fields["Code"] == code
    assert fields["RequestId"] == headers["x-amz-request-id"]
    assert headers.get("connection") == "close" and after == b"", "the connection closes after a refusal"
    with open(server.log_path, "rb") as log:
        log.seek(logged)
        new = log.read().decode("utf-8", "replace")
    assert "Traceback" not in new, new
    assert f"refused a request from 127.0.0.1: {code}" in new or got == 414, new


def test_server_still_answers_after_refusals(server, s3, bucket):
    for _, data, _, _ in HTTP_REFUSALS:
        exchange(server, data)
    s3.put_object(Bucket=bucket, Key="after", Body=b"fine")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"fine"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")
