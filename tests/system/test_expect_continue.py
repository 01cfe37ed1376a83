"""``Expect: 100-continue`` is answered after authentication and the permission
check: an upload that will be refused gets its final answer (403, 404, 400) before
the client sends any of its body, with ``Connection: close``, and the connection
then closes; an accepted one gets ``100 Continue`` and keeps its connection."""
from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ..conformance.helpers import error_of, raw_request_head, read_http_response, sign_headers
from ..conftest import make_client
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY, Server, write_config

WAIT = 3.0  # how long the client waits for an answer before it would send its body anyway


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("expect")
    srv = Server(workdir, dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3(server):
    client = make_client(server.endpoint)
    yield client
    client._endpoint.http_session.close()


@pytest.fixture(scope="module")
def s3_other(server):
    client = make_client(server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    yield client
    client._endpoint.http_session.close()


@pytest.fixture
def bucket(s3):
    """A bucket of the main user: the other user may not write in it."""
    name = "expect-" + os.urandom(6).hex()
    s3.create_bucket(Bucket=name)
    return name


class Exchange:
    """A request sent head first, the way an Expect: 100-continue client does."""

    def __init__(self, server, method: str, target: str, body: bytes, expect: str = "100-continue",
                 headers: dict | None = None, **sign) -> None:
        self.server, self.body = server, body
        head = dict(headers or {}, Expect=expect, **{"Content-Length": str(len(body))})
        signed = sign_headers(method, f"{server.endpoint}{target}", body=body, headers=head, **sign)
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        self.sock.sendall(raw_request_head(method, target, signed))
        self.rest = b""

    def first_answer(self) -> tuple[int, dict, bytes]:
        """The first response, read before any body byte is sent."""
        status, headers, body, self.rest = read_http_response(self.sock)
        return status, headers, body

    def send_body(self) -> tuple[int, dict, bytes]:
        self.sock.sendall(self.body)
        status, headers, body, self.rest = read_http_response(self.sock, self.rest)
        return status, headers, body

    def closed_by_server(self) -> bool:
        started = time.monotonic()
        closed = self.rest == b"" and self.sock.recv(1) == b""
        return closed and time.monotonic() - started < 1.0

    def close(self) -> None:
        self.sock.close()


def _missing(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


@pytest.mark.parametrize("expect", ["100-continue", "100-Continue", "100-CONTINUE"])
def test_accepted_put_gets_100_then_200_and_keeps_its_connection(server, s3, bucket, expect):
    body = os.urandom(200_000)
    exchange = Exchange(server, "PUT", f"/{bucket}/accepted", body, expect=expect)
    try:
        status, _, _ = exchange.first_answer()
        assert status == 100
        status, headers, resp = exchange.send_body()
        assert status == 200, resp
        assert headers.get("connection") != "close"
        # The same connection serves the next request.
        get = sign_headers("GET", f"{server.endpoint}/{bucket}/accepted")
        exchange.sock.sendall(raw_request_head("GET", f"/{bucket}/accepted", get))
        status, _, got, _ = read_http_response(exchange.sock, exchange.rest)
        assert status == 200 and got == body
    finally:
        exchange.close()


def test_put_of_an_empty_body_gets_100_at_once_and_keeps_its_connection(server, s3, bucket):
    """Nothing to hold back: the 100 goes out with no body read. Without it, the AWS
    CLI (botocore) left part of the 200 unread on its kept-alive connection and its
    next request on it hung until the read timeout (60 s per empty file in a sync)."""
    exchange = Exchange(server, "PUT", f"/{bucket}/empty", b"")
    try:
        status, _, _ = exchange.first_answer()
        assert status == 100
        status, headers, resp = exchange.send_body()
        assert status == 200, resp
        assert headers.get("connection") != "close"
        get = sign_headers("GET", f"{server.endpoint}/{bucket}/empty")
        exchange.sock.sendall(raw_request_head("GET", f"/{bucket}/empty", get))
        status, _, got, _ = read_http_response(exchange.sock, exchange.rest)
        assert status == 200 and got == b""
    finally:
        exchange.close()


def test_aws_cli_sync_of_empty_files_does_not_stall(server, s3, bucket, tmp_path):
    """The AWS CLI sends Expect: 100-continue with every file, empty ones too, over
    kept-alive connections; no upload may wait for its read timeout (here WAIT
    seconds, one attempt: a stall fails the command)."""
    for i in range(40):
        (tmp_path / f"f{i:02d}").write_bytes(b"" if i % 3 == 0 else os.urandom(50 + i))
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
    aws = str(Path(sys.executable).parent / "aws")
    done = subprocess.run([aws, "--endpoint-url", server.endpoint, "--cli-read-timeout", str(int(WAIT)),
                           "s3", "sync", str(tmp_path), f"s3://{bucket}/sync"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="sync/")["Contents"]
    assert len(listed) == 40


REFUSALS = [  # (name, who signs, target of the main user's bucket (or none), headers, code, status)
    ("no WRITE permission", "other", "/{bucket}/refused", {}, "AccessDenied", 403),
    ("wrong signature", "wrong", "/{bucket}/refused", {}, "SignatureDoesNotMatch", 403),
    ("missing bucket", "main", "/no-such-bucket-{suffix}/refused", {}, "NoSuchBucket", 404),
    ("bad header", "main", "/{bucket}/refused", {"x-amz-acl": "not-a-canned-acl"}, "InvalidArgument", 400),
    ("anonymous", "nobody", "/{bucket}/refused", {}, "AccessDenied", 403),
]


def _sign_as(who: str) -> dict:
    return {"other": {"access_key": OTHER_ACCESS_KEY, "secret_key": OTHER_SECRET_KEY},
            "wrong": {"secret_key": "not-the-secret"}, "main": {}}[who]


def _refused_exchange(server, who: str, method: str, target: str, body: bytes, headers: dict) -> Exchange:
    if who != "nobody":
        return Exchange(server, method, target, body, headers=headers, **_sign_as(who))
    exchange = Exchange.__new__(Exchange)
    exchange.server, exchange.body, exchange.rest = server, body, b""
    exchange.sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    head = dict(headers, Host=f"127.0.0.1:{server.port}", Expect="100-continue",
                **{"Content-Length": str(len(body))})
    exchange.sock.sendall(raw_request_head(method, target, head))
    return exchange


@pytest.mark.parametrize("name,who,target,headers,code,status", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_put_answers_before_the_body_and_closes(server, s3, bucket, name, who, target, headers, code,
                                                        status):
    target = target.format(bucket=bucket, suffix=os.urandom(4).hex())
    exchange = _refused_exchange(server, who, "PUT", target, os.urandom(100_000), headers)
    try:
        got, resp_headers, resp = exchange.first_answer()  # no body byte sent yet
        assert got == status, (got, resp)  # never a 100 Continue first
        assert error_of(resp)["Code"] == code
        assert resp_headers.get("connection") == "close"
        assert exchange.closed_by_server()
    finally:
        exchange.close()
    assert _missing(s3, bucket, "refused")


def _create_upload(s3, bucket: str) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]


def _operations(s3, bucket: str) -> list[tuple[str, str, str, bytes, dict]]:
    """(name, method, target, body, headers) of each operation with a request body."""
    s3.put_object(Bucket=bucket, Key="existing", Body=b"x")
    upload = _create_upload(s3, bucket)
    complete = (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part>"
                b"</CompleteMultipartUpload>")
    delete = b"<Delete><Object><Key>existing</Key></Object></Delete>"
    policy = (b'<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>x</ID></Owner>'
              b"<AccessControlList></AccessControlList></AccessControlPolicy>")
    return [
        ("PutObject", "PUT", f"/{bucket}/existing", b"y" * 10_000, {}),
        ("UploadPart", "PUT", f"/{bucket}/mp?partNumber=1&uploadId={upload}", b"p" * 10_000, {}),
        ("CompleteMultipartUpload", "POST", f"/{bucket}/mp?uploadId={upload}", complete, {}),
        ("DeleteObjects", "POST", f"/{bucket}?delete", delete, {"Content-MD5": _md5(delete)}),
        ("PutObjectAcl", "PUT", f"/{bucket}/existing?acl", policy, {}),
        ("PutBucketAcl", "PUT", f"/{bucket}?acl", policy, {}),
    ]


def _md5(data: bytes) -> str:
    import base64
    import hashlib
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_every_operation_with_a_body_refuses_before_reading_it(server, s3, bucket):
    """The other user may not write in the main user's bucket: each operation
    answers 403 before its body is sent, and nothing changes."""
    for name, method, target, body, headers in _operations(s3, bucket):
        exchange = Exchange(server, method, target, body, headers=headers, **_sign_as("other"))
        try:
            status, resp_headers, resp = exchange.first_answer()
            assert status == 403, (name, status, resp)
            assert error_of(resp)["Code"] == "AccessDenied", name
            assert resp_headers.get("connection") == "close", name
        finally:
            exchange.close()
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"x"
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=s3.list_multipart_uploads(
        Bucket=bucket)["Uploads"][0]["UploadId"]).get("Parts", []) == []


def test_create_bucket_with_a_body_anonymous_is_refused_before_it(server):
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>")
    exchange = _refused_exchange(server, "nobody", "PUT", "/anonymous-bucket-" + os.urandom(4).hex(), body, {})
    try:
        status, _, resp = exchange.first_answer()
        assert status == 403, resp
        assert exchange.closed_by_server()
    finally:
        exchange.close()


def test_boto3_upload_refused_without_sending_the_body(server, s3, s3_other, bucket, caplog):
    """botocore sends Expect: 100-continue with a file body and waits up to a second
    for the answer: a refusal arrives first, so the body is never sent."""
    caplog.set_level(logging.DEBUG, logger="botocore.awsrequest")
    with pytest.raises(ClientError) as refused:
        s3_other.put_object(Bucket=bucket, Key="boto3", Body=io.BytesIO(os.urandom(1 << 20)))
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "NOT sending request body" in caplog.text
    assert _missing(s3, bucket, "boto3")
    # The owner's upload, with the same Expect header, goes through (on a fresh connection).
    s3.put_object(Bucket=bucket, Key="boto3", Body=io.BytesIO(b"owner's body"))
    assert "100 Continue response seen" in caplog.text
    assert s3.get_object(Bucket=bucket, Key="boto3")["Body"].read() == b"owner's body"
