"""HTTP-level protocol: common headers, error documents, routing, Expect: 100-continue,
virtual-hosted-style addressing, body framing."""
from __future__ import annotations

import base64
import email.utils
import hashlib
import socket
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from .helpers import (S3_NS, UNSIGNED_PAYLOAD, VHOST_DOMAIN, assert_error, error_of, key_path, presign,
                      raw_request_head, read_http_response, sign_headers, signed_request)

COMMON_HEADERS = ("x-amz-request-id", "x-amz-id-2", "Date", "Server")


def _requests(server, bucket):
    """(name, method, path, query, headers, body, sign, expected status) of a spread of requests."""
    missing = "missing-" + uuid.uuid4().hex[:12]
    return [
        ("ListBuckets", "GET", "/", "", {}, b"", True, 200),
        ("HeadBucket", "HEAD", f"/{bucket}", "", {}, b"", True, 200),
        ("ListObjectsV2", "GET", f"/{bucket}", "list-type=2", {}, b"", True, 200),
        ("PutObject", "PUT", f"/{bucket}/obj", "", {}, b"hello", True, 200),
        ("GetObject", "GET", f"/{bucket}/obj", "", {}, b"", True, 200),
        ("GetObject range", "GET", f"/{bucket}/obj", "", {"Range": "bytes=0-1"}, b"", True, 206),
        ("HeadObject", "HEAD", f"/{bucket}/obj", "", {}, b"", True, 200),
        ("DeleteObject", "DELETE", f"/{bucket}/gone", "", {}, b"", True, 204),
        ("NoSuchKey", "GET", f"/{bucket}/nope", "", {}, b"", True, 404),
        ("HEAD 404", "HEAD", f"/{bucket}/nope", "", {}, b"", True, 404),
        ("NoSuchBucket", "GET", f"/{missing}", "", {}, b"", True, 404),
        ("anonymous", "GET", f"/{bucket}", "", {}, b"", False, 403),
        ("anonymous HEAD", "HEAD", f"/{bucket}", "", {}, b"", False, 403),
        ("bad signature", "GET", "/", "", {}, b"", "bad", 403),
        ("InvalidRange", "GET", f"/{bucket}/obj", "", {"Range": "bytes=50-"}, b"", True, 416),
        ("MethodNotAllowed", "POST", f"/{bucket}/obj", "", {}, b"", True, 405),
        ("NotImplemented", "GET", f"/{bucket}", "inventory", {}, b"", True, 501),
        ("InvalidBucketName", "PUT", "/Bad_Bucket", "", {}, b"", True, 400),
    ]


def _send(server, method, path, query, headers, body, sign):
    if sign == "bad":
        return signed_request(server, method, path, query=query, headers=headers, body=body,
                              secret_key="wrong")
    return signed_request(server, method, path, query=query, headers=headers, body=body, sign=bool(sign))


def test_every_response_has_common_headers(server, bucket):
    for name, method, path, query, headers, body, sign, status in _requests(server, bucket):
        resp = _send(server, method, path, query, headers, body, sign)
        assert resp.status_code == status, (name, resp.status_code, resp.content[:300])
        for header in COMMON_HEADERS:
            assert resp.headers.get(header), f"{name}: missing {header}"
        assert email.utils.parsedate_to_datetime(resp.headers["Date"]).tzinfo is not None, name
        assert resp.headers["Date"].endswith("GMT"), name
        assert len(resp.headers["x-amz-request-id"]) >= 8


def test_request_ids_are_unique(server, bucket):
    ids = {signed_request(server, "GET", "/").headers["x-amz-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_error_responses_are_xml_documents(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"hello")
    for name, method, path, query, headers, body, sign, status in _requests(server, bucket):
        if status < 300 or method == "HEAD":
            continue
        resp = _send(server, method, path, query, headers, body, sign)
        assert resp.status_code == status, name
        assert resp.headers["Content-Type"] == "application/xml", name
        assert int(resp.headers["Content-Length"]) == len(resp.content), name
        assert resp.content.startswith(b"<?xml"), name
        fields = error_of(resp)
        for field in ("Code", "Message", "Resource", "RequestId"):
            assert field in fields, f"{name}: no {field} in {resp.content!r}"
        assert fields["RequestId"] == resp.headers["x-amz-request-id"], name
        assert fields["Code"] and fields["Message"], name


def test_error_resource_names_bucket_and_key(server, bucket):
    fields = assert_error(signed_request(server, "GET", f"/{bucket}/a/b%20c"), "NoSuchKey", 404)
    assert fields["Resource"] == f"/{bucket}/a/b c"
    missing = "missing-" + uuid.uuid4().hex[:12]
    fields = assert_error(signed_request(server, "GET", f"/{missing}"), "NoSuchBucket", 404)
    assert fields["Resource"] == f"/{missing}"
    assert fields["BucketName"] == missing


@pytest.mark.parametrize("case", ["missing key", "missing bucket", "anonymous", "bad signature", "invalid range",
                                  "not implemented", "method not allowed"])
def test_head_error_has_no_body(server, s3, bucket, case):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"12345")
    path, query, sign, headers, status = {
        "missing key": (f"/{bucket}/nope", "", True, {}, 404),
        "missing bucket": (f"/missing-{uuid.uuid4().hex[:12]}", "", True, {}, 404),
        "anonymous": (f"/{bucket}/obj", "", False, {}, 403),
        "bad signature": (f"/{bucket}/obj", "", "bad", {}, 403),
        "invalid range": (f"/{bucket}/obj", "", True, {"Range": "bytes=10-"}, 416),
        "not implemented": (f"/{bucket}/obj", "torrent", True, {}, 501),
        "method not allowed": ("/", "", True, {}, 405),
    }[case]
    resp = _send(server, "HEAD", path, query, headers, b"", sign)
    assert resp.status_code == status
    assert resp.content == b""
    for header in COMMON_HEADERS:
        assert resp.headers.get(header)


# (GET of versioning, policy, tagging, website, replication... answers "never
# configured" instead: tests/conformance/test_unsupported.py.)
@pytest.mark.parametrize("method,level,query", [
    ("PUT", "bucket", "notification"),
    ("PUT", "bucket", "logging"),
    ("DELETE", "bucket", "replication"),
    ("DELETE", "bucket", "website"),
    ("PUT", "bucket", "website"),
    ("PUT", "bucket", "replication"),
    ("GET", "bucket", "inventory"),
    ("DELETE", "bucket", "versioning"),
])
def test_unimplemented_subresource_not_implemented(server, s3, bucket, method, level, query):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"untouched")
    path = f"/{bucket}" if level == "bucket" else f"/{bucket}/obj"
    resp = signed_request(server, method, path, query=query)
    assert_error(resp, "NotImplemented", 501)
    assert resp.headers["Content-Type"] == "application/xml"
    # Never falls through to a different operation.
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"untouched"
    s3.head_bucket(Bucket=bucket)


@pytest.mark.parametrize("query", ["uploads", "uploadId=abc"])
def test_multipart_post_not_misreported_as_method_not_allowed(server, bucket, query):
    """POST /bucket/key?uploads is CreateMultipartUpload and ?uploadId= CompleteMultipartUpload:
    S3 operations, so never 405 — 501 until implemented, then a real answer."""
    body = b""
    if query.startswith("uploadId="):
        body = (b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part>'
                b'<PartNumber>1</PartNumber><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag></Part>'
                b"</CompleteMultipartUpload>")
    resp = signed_request(server, "POST", f"/{bucket}/obj", query=query, body=body)
    assert resp.status_code != 405, resp.content
    if resp.status_code == 200:  # implemented meanwhile
        assert b"<UploadId>" in resp.content
    elif resp.status_code == 404:  # implemented meanwhile: the made-up upload id does not exist
        assert_error(resp, "NoSuchUpload", 404)
    else:
        assert_error(resp, "NotImplemented", 501)


def test_delete_objects_not_misreported_as_method_not_allowed(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>obj</Key></Object>'
            b"</Delete>")
    resp = signed_request(server, "POST", f"/{bucket}", query="delete",
                          headers={"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()},
                          body=body)
    if resp.status_code == 200:  # implemented meanwhile
        assert b"DeleteResult" in resp.content
        return
    assert_error(resp, "NotImplemented", 501)


def test_copy_object_request_not_handled_as_put_object(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source bytes")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"previous destination")
    resp = signed_request(server, "PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": f"/{bucket}/src"})
    dst = s3.get_object(Bucket=bucket, Key="dst")["Body"].read()
    if resp.status_code == 200:
        assert b"CopyObjectResult" in resp.content, "a 200 CopyObject answer carries a CopyObjectResult"
        assert dst == b"source bytes"
    else:
        assert_error(resp, "NotImplemented", 501)
        assert dst == b"previous destination"


@pytest.mark.parametrize("method,path_kind", [("POST", "object"), ("PATCH", "object"), ("POST", "service"),
                                              ("PUT", "service"), ("DELETE", "service")])
def test_method_not_allowed(server, s3, bucket, method, path_kind):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"untouched")
    path = {"object": f"/{bucket}/obj", "service": "/"}[path_kind]
    resp = signed_request(server, method, path)
    assert_error(resp, "MethodNotAllowed", 405)
    assert resp.headers["Content-Type"] == "application/xml"
    assert not resp.content.lower().startswith(b"<!doctype")
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"untouched"


# -- Expect: 100-continue and body framing -----------------------------------------------------------

def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


@pytest.mark.parametrize("size", [1000, 100_000])
@pytest.mark.parametrize("expect", ["100-continue", "100-Continue"])  # the value is case-insensitive
def test_put_object_expect_100_continue(server, s3, bucket, size, expect):
    """The interim 100 Continue, in either spelling, comes once the request has passed
    authentication and the permission check (the server's first body read)."""
    body = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
    path = f"/{bucket}/continued"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", body=body,
                           headers={"Expect": expect, "Content-Length": str(len(body))})
    with _connect(server) as sock:
        sock.sendall(raw_request_head("PUT", path, headers))
        status, _, _, rest = read_http_response(sock)
        assert status == 100, "the interim 100 Continue comes before the body is sent"
        sock.sendall(body)
        status, resp_headers, resp_body, _ = read_http_response(sock, rest)
        assert status == 200, resp_body
        assert resp_headers["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert resp_headers.get("x-amz-request-id")
        assert resp_headers.get("connection") != "close"  # an accepted upload keeps its connection
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == body


@pytest.mark.direct_only  # nginx answers 100 Continue itself and buffers the body before a node sees it
@pytest.mark.parametrize("expect", ["100-continue", "100-Continue"])
def test_put_object_expect_100_continue_refused_before_the_body(server, s3, bucket, expect):
    """A request that will be refused gets its final answer instead of the 100, in
    either spelling, and the connection closes (more: tests/system/test_expect_continue.py)."""
    body = b"never sent" * 1000
    path = f"/{bucket}/refused"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", body=body, secret_key="wrong",
                           headers={"Expect": expect, "Content-Length": str(len(body))})
    with _connect(server) as sock:
        sock.sendall(raw_request_head("PUT", path, headers))
        status, resp_headers, resp_body, rest = read_http_response(sock)
        assert status == 403, resp_body
        assert error_of(resp_body)["Code"] == "SignatureDoesNotMatch"
        assert resp_headers.get("connection") == "close"
        assert rest == b"" and sock.recv(1) == b""
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="refused")


def test_put_object_keep_alive_two_requests_one_connection(server, s3, bucket):
    with _connect(server) as sock:
        rest = b""
        for i in range(2):
            body = f"body {i}".encode()
            path = f"/{bucket}/ka{i}"
            headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", body=body,
                                   headers={"Content-Length": str(len(body))})
            sock.sendall(raw_request_head("PUT", path, headers) + body)
            status, _, _, rest = read_http_response(sock, rest)
            assert status == 200
    assert s3.get_object(Bucket=bucket, Key="ka1")["Body"].read() == b"body 1"


@pytest.mark.parametrize("size", [100, 100_000])
def test_put_object_incomplete_body(server, s3, bucket, size):
    path = f"/{bucket}/short"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", payload_hash=UNSIGNED_PAYLOAD,
                           headers={"Content-Length": str(size)})
    with _connect(server) as sock:
        sock.sendall(raw_request_head("PUT", path, headers) + b"x" * (size // 2))
        sock.shutdown(socket.SHUT_WR)
        try:
            status, _, body, _ = read_http_response(sock)
        except (ConnectionError, OSError):
            status, body = None, b""
    if status is not None:  # a server may also just drop the connection
        assert status == 400, body
        assert error_of(body)["Code"] == "IncompleteBody"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="short")


def test_put_object_chunked_without_content_length(server, s3, bucket):
    path = f"/{bucket}/chunked"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", payload_hash=UNSIGNED_PAYLOAD,
                           headers={"Transfer-Encoding": "chunked"})
    with _connect(server) as sock:
        sock.sendall(raw_request_head("PUT", path, headers) + b"5\r\nhello\r\n0\r\n\r\n")
        status, _, body, _ = read_http_response(sock)
    if getattr(server, "proxied", False):
        # nginx in front reads the chunked body and forwards it with a Content-Length:
        # the server sees an ordinary PUT (as AWS behind a proxy would).
        assert status == 200, body
        assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"hello"
        return
    assert status == 411, body
    assert error_of(body)["Code"] == "MissingContentLength"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="chunked")


# -- virtual-hosted-style addressing -----------------------------------------------------------------------------

def _vhost(server, bucket):
    return f"{bucket}.{VHOST_DOMAIN}:{server.port}"


def test_put_object_virtual_host_style(server, s3, bucket):
    host = _vhost(server, bucket)
    resp = signed_request(server, "PUT", "/dir/v%20host.txt", host=host, body=b"vhost body",
                          headers={"Content-Type": "text/x-vhost"})
    assert resp.status_code == 200, resp.content
    got = s3.get_object(Bucket=bucket, Key="dir/v host.txt")
    assert got["Body"].read() == b"vhost body"
    assert got["ContentType"] == "text/x-vhost"


def test_get_object_virtual_host_style(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"from path style")
    host = _vhost(server, bucket)
    resp = signed_request(server, "GET", "/a/b.txt", host=host)
    assert resp.status_code == 200
    assert resp.content == b"from path style"
    # The first path segment is part of the key, not a bucket name.
    resp = signed_request(server, "GET", f"/{bucket}/a/b.txt", host=host)
    fields = assert_error(resp, "NoSuchKey", 404)
    assert fields["Key"] == f"{bucket}/a/b.txt"


def test_list_objects_virtual_host_style(server, s3, bucket):
    for key in ("x/1", "x/2", "y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b".")
    resp = signed_request(server, "GET", "/", query="list-type=2&delimiter=%2F", host=_vhost(server, bucket))
    assert resp.status_code == 200, resp.content
    root = ET.fromstring(resp.content)
    assert root.findtext(f"{S3_NS}Name") == bucket
    assert [e.text for e in root.findall(f"{S3_NS}Contents/{S3_NS}Key")] == ["y"]
    assert [e.text for e in root.findall(f"{S3_NS}CommonPrefixes/{S3_NS}Prefix")] == ["x/"]


def test_head_bucket_virtual_host_style(server, bucket):
    resp = signed_request(server, "HEAD", "/", host=_vhost(server, bucket))
    assert resp.status_code == 200
    assert resp.headers["x-amz-bucket-region"] == "us-east-1"


def test_create_bucket_virtual_host_style(server, s3):
    name = "vhost-" + uuid.uuid4().hex[:16]
    resp = signed_request(server, "PUT", "/", host=_vhost(server, name))
    assert resp.status_code == 200, resp.content
    try:
        s3.head_bucket(Bucket=name)
    finally:
        s3.delete_bucket(Bucket=name)


def test_delete_object_virtual_host_style(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b".")
    resp = signed_request(server, "DELETE", "/gone", host=_vhost(server, bucket))
    assert resp.status_code == 204
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_get_object_virtual_host_style_missing_bucket(server):
    name = "missing-" + uuid.uuid4().hex[:12]
    fields = assert_error(signed_request(server, "GET", "/k", host=_vhost(server, name)), "NoSuchBucket", 404)
    assert fields["BucketName"] == name


def test_get_object_virtual_host_style_presigned(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned vhost")
    host = _vhost(server, bucket)
    url = presign("GET", f"http://{host}/p")
    target = url.split(host, 1)[1]
    resp = requests.get(f"{server.endpoint}{target}", headers={"Host": host}, timeout=30)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"presigned vhost"


def test_list_buckets_bare_virtual_host_domain_is_path_style(server, s3, bucket):
    resp = signed_request(server, "GET", "/", host=f"{VHOST_DOMAIN}:{server.port}")
    assert resp.status_code == 200
    names = [e.text for e in ET.fromstring(resp.content).iter(f"{S3_NS}Name")]
    assert bucket in names
    resp = signed_request(server, "GET", key_path(bucket, "nope"), host=f"{VHOST_DOMAIN}:{server.port}")
    assert_error(resp, "NoSuchKey", 404)
