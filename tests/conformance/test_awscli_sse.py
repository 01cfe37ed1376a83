"""Server-side encryption through the AWS CLI (v1): `aws s3 cp --sse AES256`,
`--sse aws:kms --sse-kms-key-id ...` and `--sse-c AES256 --sse-c-key fileb://...`,
up and down, single PutObject and multipart (the CLI goes multipart at 8 MiB and
downloads large objects with ranged GETs), `aws s3api head-object` showing the
encryption, and `aws s3 cp` server-side copies that change it.

SSE-C goes over TLS: the tls_endpoint fixture (nginx in front, X-Forwarded-Proto
https, which the test servers trust) and `--ca-bundle`. The CLI itself sends no
X-Forwarded-Proto, so SSE-C to the plain-http endpoint must be refused.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ..servers import ACCESS_KEY, SECRET_KEY

AWS = str(Path(sys.executable).parent / "aws")
MiB = 1024 * 1024
# Above the CLI's 8 MiB multipart threshold and chunk size: two parts (8 MiB + 1 MiB).
MULTIPART_SIZE = 9 * MiB
REGION = "us-east-1"
KMS_ARN = f"arn:aws:kms:{REGION}:000000000000:key/test-key"


@pytest.fixture(scope="module")
def cli():
    """``cli(endpoint, *args, ca_bundle=None, check=True)``: run the AWS CLI."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        env.pop(name, None)

    def run(endpoint: str, *args: str, ca_bundle: str | None = None, check: bool = True,
            timeout: float = 180) -> subprocess.CompletedProcess:
        argv = [AWS, "--endpoint-url", endpoint, *(["--ca-bundle", ca_bundle] if ca_bundle else []), *args]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, f"aws {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc
    return run


@pytest.fixture
def aws(cli, server):
    """The CLI against the server directly (plain http)."""
    return lambda *args, **kw: cli(server.endpoint, *args, **kw)


@pytest.fixture
def aws_tls(request, cli, server):
    """The CLI through nginx (https, X-Forwarded-Proto: https): a test nginx in front
    of a node, or the cluster's own nginx on its HTTPS port."""
    nginx = getattr(server, "nginx", None)
    if nginx is not None:
        url, ca_bundle = f"https://127.0.0.1:{nginx.https_port}", str(nginx.cert)
    else:
        url, ca_bundle = request.getfixturevalue("tls_endpoint")
    return lambda *args, **kw: cli(url, *args, ca_bundle=ca_bundle, **kw)


@pytest.fixture
def sse_bucket(s3):
    name = "cli-sse-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def key_file(tmp_path) -> Path:
    """An SSE-C customer key: 32 raw bytes in a file (fileb://)."""
    path = tmp_path / "customer.key"
    path.write_bytes(os.urandom(32))
    return path


def _file(path: Path, size: int) -> Path:
    """A file whose content the test can tell apart from any other: random bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _head(aws, bucket: str, key: str, *extra: str) -> dict:
    return json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", key, *extra).stdout)


def _roundtrip(aws, bucket: str, key: str, src: Path, dst: Path, up: tuple[str, ...], down: tuple[str, ...] = ()):
    out = aws("s3", "cp", str(src), f"s3://{bucket}/{key}", *up).stdout
    assert "upload:" in out, out
    out = aws("s3", "cp", f"s3://{bucket}/{key}", str(dst), *down).stdout
    assert "download:" in out, out
    assert dst.stat().st_size == src.stat().st_size
    assert _sha(dst) == _sha(src), "the downloaded file differs from the uploaded one"


# -- SSE-S3 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [100 * 1024, MULTIPART_SIZE], ids=["single", "multipart"])
def test_awscli_sse_s3_cp_up_and_down(aws, s3, sse_bucket, tmp_path, size):
    src = _file(tmp_path / "up.bin", size)
    _roundtrip(aws, sse_bucket, "sse-s3.bin", src, tmp_path / "down.bin", ("--sse", "AES256"))

    head = _head(aws, sse_bucket, "sse-s3.bin")
    assert head["ServerSideEncryption"] == "AES256", head
    assert head["ContentLength"] == size
    assert "SSEKMSKeyId" not in head and "SSECustomerAlgorithm" not in head, head
    if size < 8 * MiB:
        assert head["ETag"] == f'"{hashlib.md5(src.read_bytes()).hexdigest()}"', "SSE-S3 ETag is the plaintext MD5"
    else:
        assert head["ETag"].endswith('-2"'), f"the CLI did not upload in two parts: {head['ETag']}"
    got = s3.get_object(Bucket=sse_bucket, Key="sse-s3.bin")
    assert got["ServerSideEncryption"] == "AES256"
    assert hashlib.sha256(got["Body"].read()).hexdigest() == _sha(src)


def test_awscli_s3api_put_object_sse_s3_and_ranged_get(aws, sse_bucket, tmp_path):
    src = _file(tmp_path / "body.bin", 200 * 1024)
    put = json.loads(aws("s3api", "put-object", "--bucket", sse_bucket, "--key", "api.bin", "--body", str(src),
                         "--server-side-encryption", "AES256").stdout)
    assert put["ServerSideEncryption"] == "AES256", put
    assert put["ETag"] == f'"{hashlib.md5(src.read_bytes()).hexdigest()}"'
    ranged = tmp_path / "range.bin"
    # Across the 64 KiB chunk boundary of the stored format.
    got = json.loads(aws("s3api", "get-object", "--bucket", sse_bucket, "--key", "api.bin",
                         "--range", "bytes=65000-140000", str(ranged)).stdout)
    assert got["ContentRange"] == f"bytes 65000-140000/{200 * 1024}"
    assert got["ServerSideEncryption"] == "AES256"
    assert ranged.read_bytes() == src.read_bytes()[65000:140001]


# -- SSE-KMS -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [100 * 1024, MULTIPART_SIZE], ids=["single", "multipart"])
def test_awscli_sse_kms_cp_up_and_down(aws, s3, sse_bucket, tmp_path, size):
    src = _file(tmp_path / "up.bin", size)
    _roundtrip(aws, sse_bucket, "kms.bin", src, tmp_path / "down.bin",
               ("--sse", "aws:kms", "--sse-kms-key-id", "test-key"))
    head = _head(aws, sse_bucket, "kms.bin")
    assert head["ServerSideEncryption"] == "aws:kms", head
    assert head["SSEKMSKeyId"] == KMS_ARN, head
    assert head["ContentLength"] == size
    if size < 8 * MiB:
        assert head["ETag"] != f'"{hashlib.md5(src.read_bytes()).hexdigest()}"', \
            "an SSE-KMS ETag must not be the plaintext MD5"
    got = s3.get_object(Bucket=sse_bucket, Key="kms.bin")
    assert (got["ServerSideEncryption"], got["SSEKMSKeyId"]) == ("aws:kms", KMS_ARN)
    assert hashlib.sha256(got["Body"].read()).hexdigest() == _sha(src)


def test_awscli_sse_kms_managed_key_and_unknown_key(aws, sse_bucket, tmp_path):
    src = _file(tmp_path / "up.bin", 5000)
    _roundtrip(aws, sse_bucket, "managed.bin", src, tmp_path / "down.bin", ("--sse", "aws:kms"))
    head = _head(aws, sse_bucket, "managed.bin")
    assert head["ServerSideEncryption"] == "aws:kms", head
    assert head["SSEKMSKeyId"] == f"arn:aws:kms:{REGION}:000000000000:alias/aws/s3", head

    proc = aws("s3", "cp", str(src), f"s3://{sse_bucket}/unknown.bin", "--sse", "aws:kms",
               "--sse-kms-key-id", "no-such-key", check=False)
    assert proc.returncode != 0
    assert "KMS.NotFoundException" in proc.stderr, proc.stderr
    assert aws("s3api", "head-object", "--bucket", sse_bucket, "--key", "unknown.bin", check=False).returncode != 0


# -- SSE-C (over TLS) --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [100 * 1024, MULTIPART_SIZE], ids=["single", "multipart"])
def test_awscli_sse_c_cp_up_and_down_over_tls(aws_tls, sse_bucket, tmp_path, key_file, size):
    src = _file(tmp_path / "up.bin", size)
    sse_c = ("--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}")
    _roundtrip(aws_tls, sse_bucket, "ssec.bin", src, tmp_path / "down.bin", sse_c, sse_c)

    head = _head(aws_tls, sse_bucket, "ssec.bin", "--sse-customer-algorithm", "AES256",
                 "--sse-customer-key", f"fileb://{key_file}")
    assert head["SSECustomerAlgorithm"] == "AES256", head
    assert head["SSECustomerKeyMD5"] == _md5_b64(key_file.read_bytes()), head
    assert head["ContentLength"] == size
    assert "ServerSideEncryption" not in head, head
    if size < 8 * MiB:
        assert head["ETag"] != f'"{hashlib.md5(src.read_bytes()).hexdigest()}"', \
            "an SSE-C ETag must not be the plaintext MD5"

    # No key: HeadObject/GetObject refused (400); the wrong key: 403. No file is written.
    nokey = tmp_path / "nokey.bin"
    proc = aws_tls("s3", "cp", f"s3://{sse_bucket}/ssec.bin", str(nokey), check=False)
    assert proc.returncode != 0 and not nokey.exists(), proc.stdout + proc.stderr
    assert "400" in proc.stderr or "Bad Request" in proc.stderr, proc.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    bad = tmp_path / "bad.bin"
    proc = aws_tls("s3", "cp", f"s3://{sse_bucket}/ssec.bin", str(bad), "--sse-c", "AES256",
                   "--sse-c-key", f"fileb://{wrong}", check=False)
    assert proc.returncode != 0 and not bad.exists(), proc.stdout + proc.stderr
    assert "403" in proc.stderr or "Forbidden" in proc.stderr, proc.stderr


def test_awscli_s3api_sse_c_get_range_over_tls(aws_tls, sse_bucket, tmp_path, key_file):
    src = _file(tmp_path / "body.bin", 150 * 1024)
    args = ("--sse-customer-algorithm", "AES256", "--sse-customer-key", f"fileb://{key_file}")
    put = json.loads(aws_tls("s3api", "put-object", "--bucket", sse_bucket, "--key", "api-c.bin",
                             "--body", str(src), *args).stdout)
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == _md5_b64(key_file.read_bytes())
    ranged = tmp_path / "range.bin"
    got = json.loads(aws_tls("s3api", "get-object", "--bucket", sse_bucket, "--key", "api-c.bin",
                             "--range", "bytes=-70000", *args, str(ranged)).stdout)
    assert got["ContentRange"] == f"bytes {150 * 1024 - 70000}-{150 * 1024 - 1}/{150 * 1024}"
    assert ranged.read_bytes() == src.read_bytes()[-70000:]


def test_awscli_sse_c_over_plain_http_is_refused(aws, sse_bucket, tmp_path, key_file):
    """The CLI sends no X-Forwarded-Proto: plain http, so SSE-C must be 400 InvalidRequest."""
    src = _file(tmp_path / "up.bin", 1000)
    proc = aws("s3", "cp", str(src), f"s3://{sse_bucket}/plain.bin", "--sse-c", "AES256",
               "--sse-c-key", f"fileb://{key_file}", check=False)
    assert proc.returncode != 0
    assert "InvalidRequest" in proc.stderr, proc.stderr
    assert aws("s3api", "head-object", "--bucket", sse_bucket, "--key", "plain.bin", check=False).returncode != 0


# -- server-side copies that change the encryption ------------------------------------------------

@pytest.mark.parametrize("size", [100 * 1024, MULTIPART_SIZE], ids=["copy", "multipart-copy"])
def test_awscli_s3_cp_copy_sse_c_source_to_sse_s3_and_kms(aws_tls, s3, sse_bucket, tmp_path, key_file, size):
    """`aws s3 cp s3:// s3://` with --sse-c-copy-source: CopyObject (or, from 8 MiB,
    CreateMultipartUpload + UploadPartCopy with the source's SSE-C headers)."""
    src = _file(tmp_path / "up.bin", size)
    aws_tls("s3", "cp", str(src), f"s3://{sse_bucket}/ssec-src.bin", "--sse-c", "AES256",
            "--sse-c-key", f"fileb://{key_file}")
    copy_source = ("--sse-c-copy-source", "AES256", "--sse-c-copy-source-key", f"fileb://{key_file}")
    for dest, sse in (("to-s3.bin", ("--sse", "AES256")),
                      ("to-kms.bin", ("--sse", "aws:kms", "--sse-kms-key-id", "test-key"))):
        aws_tls("s3", "cp", f"s3://{sse_bucket}/ssec-src.bin", f"s3://{sse_bucket}/{dest}", *copy_source, *sse)
        head = _head(aws_tls, sse_bucket, dest)
        assert head["ServerSideEncryption"] == sse[1], head
        assert head["ContentLength"] == size
        assert "SSECustomerAlgorithm" not in head, head
        dst = tmp_path / dest
        aws_tls("s3", "cp", f"s3://{sse_bucket}/{dest}", str(dst))
        assert _sha(dst) == _sha(src), f"{dest}: the copy's plaintext differs from the source's"
        assert hashlib.sha256(s3.get_object(Bucket=sse_bucket, Key=dest)["Body"].read()).hexdigest() == _sha(src)


def test_awscli_s3_cp_copy_sse_s3_to_sse_c_and_clear(aws_tls, s3, sse_bucket, tmp_path, key_file):
    src = _file(tmp_path / "up.bin", 300 * 1024)
    aws_tls("s3", "cp", str(src), f"s3://{sse_bucket}/s3-src.bin", "--sse", "AES256")
    aws_tls("s3", "cp", f"s3://{sse_bucket}/s3-src.bin", f"s3://{sse_bucket}/to-c.bin", "--sse-c", "AES256",
            "--sse-c-key", f"fileb://{key_file}")
    dst = tmp_path / "to-c.bin"
    aws_tls("s3", "cp", f"s3://{sse_bucket}/to-c.bin", str(dst), "--sse-c", "AES256",
            "--sse-c-key", f"fileb://{key_file}")
    assert _sha(dst) == _sha(src)
    # A copy with no encryption asked for, into a bucket with no default: stored in clear.
    aws_tls("s3", "cp", f"s3://{sse_bucket}/s3-src.bin", f"s3://{sse_bucket}/clear.bin")
    head = _head(aws_tls, sse_bucket, "clear.bin")
    assert "ServerSideEncryption" not in head, f"the copy took the source's encryption: {head}"
    assert hashlib.sha256(s3.get_object(Bucket=sse_bucket, Key="clear.bin")["Body"].read()).hexdigest() == _sha(src)
