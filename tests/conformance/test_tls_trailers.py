"""Real clients over TLS (nginx in front of the server, see tests/nginx.py).

boto3 >= 1.36 and the AWS CLI, with their default settings, send PutObject and
UploadPart bodies as aws-chunked with the checksum in a *trailer*
(x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER, x-amz-trailer:
x-amz-checksum-crc32) only over HTTPS; over plain http they send the checksum as a
header. These tests reach the server through a TLS-terminating nginx, check with
botocore's event system that the trailer path really was taken, and check what was
stored. A hand-built signed-trailer request (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)
with a wrong trailer checksum must be refused with 400 BadDigest over TLS too.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import ssl
import subprocess
import sys
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from ..conftest import make_client
from ..servers import ACCESS_KEY, SECRET_KEY
from .support_issue4 import (SIGNED_TRAILER, UNSIGNED_TRAILER, ChunkSigner, checksum_b64, encode_aws_chunked,
                             sign_headers, xml_error)

AWS = str(Path(sys.executable).parent / "aws")
KiB, MiB = 1024, 1024 * 1024
ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


# -- clients ------------------------------------------------------------------------------------

def tls_client(tls_endpoint, **config):
    """boto3 with botocore's defaults (checksums, retries, payload signing) except the
    path-style addressing an IP endpoint needs; the CA bundle of the test nginx."""
    url, ca_bundle = tls_endpoint
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        region_name="us-east-1", verify=ca_bundle,
                        config=Config(s3={"addressing_style": "path"}, **config))


class Recorder:
    """The headers of every request the client sends for ``operations`` (botocore's
    before-send event fires with the final, signed request just before it goes out)."""

    def __init__(self, client, *operations: str) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        for op in operations:
            client.meta.events.register(f"before-send.s3.{op}", self._hook(op))

    def _hook(self, op):
        def record(request, **_):
            headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
            self.sent.append((op, headers))  # (returning a response would replace the HTTP exchange)
        return record

    def of(self, op: str) -> list[dict[str, str]]:
        return [h for o, h in self.sent if o == op]


def assert_trailer_request(headers: dict[str, str], algorithm: str) -> None:
    """The request carried its body as aws-chunked with the checksum in a trailer."""
    assert headers["x-amz-content-sha256"].startswith("STREAMING-"), headers
    assert headers["x-amz-content-sha256"].endswith("-TRAILER"), headers
    assert headers["x-amz-trailer"] == f"x-amz-checksum-{algorithm.lower()}", headers
    assert "aws-chunked" in headers["content-encoding"], headers
    assert f"x-amz-checksum-{algorithm.lower()}" not in headers, headers  # not (also) a header


def sent_algorithm(headers: dict[str, str]) -> str:
    """The checksum algorithm botocore chose (CRC32 today; CRC64NVME in some versions)."""
    return headers["x-amz-trailer"].removeprefix("x-amz-checksum-").upper()


def composite_checksum(algorithm: str, parts: list[bytes]) -> str:
    """A multipart upload's COMPOSITE checksum: the checksum of the concatenated raw
    part checksums, then "-<number of parts>"."""
    raw = b"".join(base64.b64decode(checksum_b64(algorithm, p)) for p in parts)
    return f"{checksum_b64(algorithm, raw)}-{len(parts)}"


@pytest.fixture
def clients(tls_endpoint):
    """Make TLS clients; their keep-alive connections are closed after the test."""
    made = []

    def make(**config):
        client = tls_client(tls_endpoint, **config)
        made.append(client)
        return client
    yield make
    for client in made:
        client._endpoint.http_session.close()


@pytest.fixture
def tls_bucket(s3):
    """A fresh bucket (made and emptied over plain http with the session client)."""
    name = "tls-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    s3.delete_bucket(Bucket=name)


# -- the premise ---------------------------------------------------------------------------------

def test_default_boto3_over_plain_http_sends_no_trailer(server, tls_bucket):
    # The reason for the TLS front end: over http botocore sends the checksum as a header.
    client = make_client(server.endpoint)
    rec = Recorder(client, "PutObject")
    try:
        client.put_object(Bucket=tls_bucket, Key="plain", Body=b"p" * KiB)
    finally:
        client._endpoint.http_session.close()
    (headers,) = rec.of("PutObject")
    assert "x-amz-trailer" not in headers
    assert not headers["x-amz-content-sha256"].startswith("STREAMING-")
    assert any(name.startswith("x-amz-checksum-") for name in headers), headers


# -- boto3 defaults over TLS: PutObject -----------------------------------------------------------

@pytest.mark.parametrize("size", [KiB, 3 * MiB + 5], ids=["1KiB", "3MiB"])
def test_put_object_default_client_sends_trailer(clients, s3, tls_bucket, size):
    client = clients()
    rec = Recorder(client, "PutObject")
    data = os.urandom(size)
    resp = client.put_object(Bucket=tls_bucket, Key="obj", Body=data)

    (headers,) = rec.of("PutObject")
    algorithm = sent_algorithm(headers)
    assert_trailer_request(headers, algorithm)
    assert headers["x-amz-decoded-content-length"] == str(size)
    expected = checksum_b64(algorithm, data)
    assert resp["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert resp.get(f"Checksum{algorithm}") == expected

    got = client.get_object(Bucket=tls_bucket, Key="obj", ChecksumMode="ENABLED")
    assert got["Body"].read() == data  # botocore also validates the returned checksum
    assert got[f"Checksum{algorithm}"] == expected
    assert got.get("ChecksumType") == "FULL_OBJECT"
    assert got["ContentLength"] == size
    assert "aws-chunked" not in got.get("ContentEncoding", "")

    # Stored bytes, read back over plain http: the aws-chunked framing is gone.
    head = s3.head_object(Bucket=tls_bucket, Key="obj", ChecksumMode="ENABLED")
    assert head["ContentLength"] == size
    assert head[f"Checksum{algorithm}"] == expected
    assert "aws-chunked" not in head.get("ContentEncoding", "")


def test_put_object_default_client_keeps_user_content_encoding(clients, tls_bucket):
    # "Content-Encoding: gzip" from the caller becomes "gzip,aws-chunked" on the wire;
    # only aws-chunked is a transfer detail, gzip is stored.
    client = clients()
    rec = Recorder(client, "PutObject")
    data = os.urandom(2 * KiB)
    client.put_object(Bucket=tls_bucket, Key="gz", Body=data, ContentEncoding="gzip")
    (headers,) = rec.of("PutObject")
    assert "aws-chunked" in headers["content-encoding"] and "gzip" in headers["content-encoding"]
    got = client.get_object(Bucket=tls_bucket, Key="gz")
    assert got["Body"].read() == data
    assert got["ContentEncoding"] == "gzip"


# -- boto3 defaults over TLS: the transfer manager (multipart) ----------------------------------

def test_upload_file_multipart_and_download_file(clients, tls_bucket, tmp_path):
    client = clients()
    rec = Recorder(client, "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "PutObject")
    part = 5 * MiB
    data = os.urandom(20 * MiB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)

    client.upload_file(str(src), tls_bucket, "big.bin", Config=config)

    assert rec.of("PutObject") == [] and len(rec.of("CreateMultipartUpload")) == 1
    uploads = rec.of("UploadPart")
    assert len(uploads) == 4
    algorithm = sent_algorithm(uploads[0])
    for headers in uploads:
        assert_trailer_request(headers, algorithm)
        assert headers["x-amz-decoded-content-length"] == str(part)
    assert len(rec.of("CompleteMultipartUpload")) == 1

    parts = [data[i:i + part] for i in range(0, len(data), part)]
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    head = client.head_object(Bucket=tls_bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-4"'
    # The transfer manager asks for a (composite) checksum at CreateMultipartUpload.
    assert head.get("ChecksumType") == "COMPOSITE", head
    assert head[f"Checksum{algorithm}"] == composite_checksum(algorithm, parts)

    dst = tmp_path / "dst.bin"
    client.download_file(tls_bucket, "big.bin", str(dst), Config=config)  # parallel ranged GETs
    assert dst.stat().st_size == len(data)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()


# -- explicitly configured clients over TLS ----------------------------------------------------------

def test_put_object_when_required_sends_no_checksum(clients, tls_bucket):
    client = clients(request_checksum_calculation="when_required")
    rec = Recorder(client, "PutObject")
    data = os.urandom(300 * KiB)
    client.put_object(Bucket=tls_bucket, Key="plain", Body=data)
    (headers,) = rec.of("PutObject")
    assert "x-amz-trailer" not in headers
    assert not any(h.startswith("x-amz-checksum-") for h in headers), headers
    assert not headers["x-amz-content-sha256"].startswith("STREAMING-")
    got = client.get_object(Bucket=tls_bucket, Key="plain")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_object_checksum_algorithm_trailer(clients, tls_bucket, algorithm):
    client = clients()
    rec = Recorder(client, "PutObject")
    data = os.urandom(MiB + MiB // 2 + 7)  # botocore's aws-chunked chunks are 1 MiB: two data chunks
    resp = client.put_object(Bucket=tls_bucket, Key="alg", Body=data, ChecksumAlgorithm=algorithm)
    (headers,) = rec.of("PutObject")
    assert_trailer_request(headers, algorithm)
    expected = checksum_b64(algorithm, data)
    assert resp[f"Checksum{algorithm}"] == expected
    got = client.get_object(Bucket=tls_bucket, Key="alg", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got[f"Checksum{algorithm}"] == expected
    assert got.get("ChecksumType") == "FULL_OBJECT"


@pytest.mark.parametrize("algorithm", ["CRC32C", "SHA256"])
def test_upload_part_checksum_algorithm_trailer(clients, tls_bucket, algorithm):
    # Low-level multipart with an explicit algorithm: each UploadPart carries its
    # checksum in a trailer; CompleteMultipartUpload gets the part checksums back.
    client = clients()
    rec = Recorder(client, "UploadPart")
    parts = [os.urandom(5 * MiB), os.urandom(1 * MiB + 3)]
    upload_id = client.create_multipart_upload(Bucket=tls_bucket, Key="mpu", ChecksumAlgorithm=algorithm)["UploadId"]
    done = []
    for number, body in enumerate(parts, 1):
        resp = client.upload_part(Bucket=tls_bucket, Key="mpu", UploadId=upload_id, PartNumber=number, Body=body,
                                  ChecksumAlgorithm=algorithm)
        assert resp[f"Checksum{algorithm}"] == checksum_b64(algorithm, body)
        done.append({"PartNumber": number, "ETag": resp["ETag"], f"Checksum{algorithm}": resp[f"Checksum{algorithm}"]})
    for headers in rec.of("UploadPart"):
        assert_trailer_request(headers, algorithm)
    listed = client.list_parts(Bucket=tls_bucket, Key="mpu", UploadId=upload_id)["Parts"]
    assert [p[f"Checksum{algorithm}"] for p in listed] == [checksum_b64(algorithm, p) for p in parts]
    client.complete_multipart_upload(Bucket=tls_bucket, Key="mpu", UploadId=upload_id,
                                     MultipartUpload={"Parts": done})
    got = client.get_object(Bucket=tls_bucket, Key="mpu", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)
    assert got[f"Checksum{algorithm}"] == composite_checksum(algorithm, parts)


# -- hand-built signed-trailer requests over TLS -------------------------------------------------------

def tls_streaming_put(tls_endpoint, bucket: str, key: str, data: bytes, mode: str, *,
                      algorithm: str = "CRC32", trailer_value: str | None = None,
                      chunk_size: int = 64 * KiB, transfer_encoding_chunked: bool = False):
    """PUT ``data`` as aws-chunked in ``mode`` (signed or unsigned trailer) to nginx over TLS;
    returns (status, body). The Host header and the signature use nginx's address."""
    url, ca_bundle = tls_endpoint
    netloc = urlsplit(url).netloc
    trailer_name = f"x-amz-checksum-{algorithm.lower()}"
    trailer = [(trailer_name, checksum_b64(algorithm, data) if trailer_value is None else trailer_value)]
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": trailer_name}
    dummy = ChunkSigner("0" * 64, "20000101T000000Z")
    encoded_len = len(encode_aws_chunked(data, mode, chunk_size, signer=dummy, trailer=trailer))
    if not transfer_encoding_chunked:
        headers["Content-Length"] = str(encoded_len)
    path = f"/{bucket}/{key}"
    signed = sign_headers("PUT", f"https://{netloc}{path}", headers=headers, payload_hash=mode)
    signed["Host"] = netloc
    seed = signed["Authorization"].rsplit("Signature=", 1)[1].strip()
    body = encode_aws_chunked(data, mode, chunk_size, signer=ChunkSigner(seed, signed["X-Amz-Date"]),
                              trailer=trailer)
    assert len(body) == encoded_len

    host, port = netloc.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), timeout=60,
                                       context=ssl.create_default_context(cafile=ca_bundle))
    try:
        if transfer_encoding_chunked:
            pieces = (body[i:i + 10000] for i in range(0, len(body), 10000))
            conn.request("PUT", path, body=pieces, headers=signed, encode_chunked=True)
        else:
            conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
            for name, value in signed.items():
                conn.putheader(name, value)
            conn.endheaders()
            try:
                for i in range(0, len(body), 65536):
                    conn.send(body[i:i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass  # answered early: read the answer
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("transfer_encoding_chunked", [False, True], ids=["content-length", "te-chunked"])
@pytest.mark.parametrize("mode", [SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_hand_built_trailer_over_tls_accepted(tls_endpoint, s3, tls_bucket, mode,
                                              transfer_encoding_chunked):
    data = os.urandom(200 * KiB + 11)
    status, body = tls_streaming_put(tls_endpoint, tls_bucket, "ok", data, mode, algorithm="SHA256",
                                     transfer_encoding_chunked=transfer_encoding_chunked)
    assert status == 200, body[:500]
    got = s3.get_object(Bucket=tls_bucket, Key="ok", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumSHA256"] == checksum_b64("SHA256", data)


@pytest.mark.parametrize("mode", [SIGNED_TRAILER, UNSIGNED_TRAILER])
@pytest.mark.parametrize("existing", [False, True], ids=["new-key", "existing-key"])
def test_hand_built_trailer_wrong_checksum_over_tls_bad_digest(tls_endpoint, s3, tls_bucket, mode,
                                                               existing):
    # Well-formed and correctly signed, but the trailer's checksum is not that of the data.
    old = b"previous version"
    if existing:
        s3.put_object(Bucket=tls_bucket, Key="bad", Body=old)
    data = os.urandom(150 * KiB)
    wrong = checksum_b64("CRC32", data + b"x")
    status, body = tls_streaming_put(tls_endpoint, tls_bucket, "bad", data, mode, algorithm="CRC32",
                                     trailer_value=wrong)
    assert status == 400, body[:500]
    assert xml_error(body)["Code"] == "BadDigest", body[:500]
    if existing:
        assert s3.get_object(Bucket=tls_bucket, Key="bad")["Body"].read() == old
    else:
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=tls_bucket, Key="bad")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=tls_bucket).get("Contents", [])] == (
        ["bad"] if existing else [])


# -- presigned URLs over TLS ----------------------------------------------------------------------------

@pytest.mark.parametrize("signature_version", [None, "s3v4"], ids=["default", "s3v4"])
def test_presigned_get_over_tls(clients, tls_endpoint, tls_bucket, signature_version):
    client = clients(**({"signature_version": signature_version} if signature_version else {}))
    data = os.urandom(70 * KiB)
    client.put_object(Bucket=tls_bucket, Key="dir/pre signed+key.bin", Body=data)
    url = client.generate_presigned_url("get_object", Params={"Bucket": tls_bucket, "Key": "dir/pre signed+key.bin"},
                                        ExpiresIn=300)
    assert url.startswith(tls_endpoint[0] + "/")
    if signature_version == "s3v4":
        assert "X-Amz-Signature=" in url
    resp = requests.get(url, verify=tls_endpoint[1], timeout=30)
    assert resp.status_code == 200, resp.content[:500]
    assert resp.content == data
    # and tampering with it is refused
    bad = requests.get(url.replace("pre%20signed", "pre%20signet"), verify=tls_endpoint[1], timeout=30)
    assert bad.status_code == 403


def test_presigned_put_over_tls(clients, tls_endpoint, s3, tls_bucket):
    client = clients(signature_version="s3v4")
    data = os.urandom(40 * KiB)
    url = client.generate_presigned_url("put_object", Params={"Bucket": tls_bucket, "Key": "up"}, ExpiresIn=300)
    resp = requests.put(url, data=data, verify=tls_endpoint[1], timeout=30)
    assert resp.status_code == 200, resp.content[:500]
    assert s3.get_object(Bucket=tls_bucket, Key="up")["Body"].read() == data


# -- the AWS CLI over TLS -------------------------------------------------------------------------------

@pytest.fixture
def aws_tls(tls_endpoint):
    """Run `aws --endpoint-url https://... <args>` trusting the test CA (AWS_CA_BUNDLE)."""
    url, ca_bundle = tls_endpoint
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="", AWS_CA_BUNDLE=ca_bundle)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([AWS, "--endpoint-url", url, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"aws {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
        return proc
    return run


def _sent_requests(debug_log: str, operation: str) -> list[str]:
    """botocore's "Sending http request" debug lines that follow a request for ``operation``."""
    lines, current = [], None
    for line in debug_log.splitlines():
        if "Making request for OperationModel(name=" in line:
            current = line.split("OperationModel(name=", 1)[1].split(")", 1)[0]
        elif "Sending http request:" in line and current == operation:
            lines.append(line)
    return lines


def test_awscli_cp_over_tls_uses_trailers(aws_tls, s3, tls_bucket, tmp_path):
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello over TLS\n" * 100)
    big = tmp_path / "big.bin"
    big_data = os.urandom(9 * MiB + 123)  # over the CLI's 8 MiB multipart threshold: 2 parts
    big.write_bytes(big_data)

    up_small = aws_tls("--debug", "s3", "cp", str(small), f"s3://{tls_bucket}/small.txt")
    (put,) = _sent_requests(up_small.stderr, "PutObject")
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in put and "x-amz-checksum-crc32" in put.lower(), put[:2000]

    up_big = aws_tls("--debug", "s3", "cp", str(big), f"s3://{tls_bucket}/big.bin")
    parts = _sent_requests(up_big.stderr, "UploadPart")
    assert len(parts) == 2
    assert all("STREAMING-UNSIGNED-PAYLOAD-TRAILER" in p for p in parts), parts[0][:2000]
    assert _sent_requests(up_big.stderr, "PutObject") == []

    listing = aws_tls("s3", "ls", f"s3://{tls_bucket}/").stdout
    assert "small.txt" in listing and "big.bin" in listing

    down = tmp_path / "down"
    aws_tls("s3", "cp", f"s3://{tls_bucket}/small.txt", str(down / "small.txt"))
    aws_tls("s3", "cp", f"s3://{tls_bucket}/big.bin", str(down / "big.bin"))
    assert (down / "small.txt").read_bytes() == small.read_bytes()
    assert hashlib.sha256((down / "big.bin").read_bytes()).digest() == hashlib.sha256(big_data).digest()

    head = s3.head_object(Bucket=tls_bucket, Key="small.txt", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == base64.b64encode(zlib.crc32(small.read_bytes()).to_bytes(4, "big")).decode()
