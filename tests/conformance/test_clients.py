"""Independent S3 clients against the server, each through an everyday workflow:
create a bucket, upload (small and multipart), list, download and compare bytes,
server-side copy, delete objects, delete the bucket.

* the MinIO Python SDK (PyPI ``minio``): its own SigV4 signer and multipart logic
  (unknown-length streams, parallel part uploads), over http and over TLS (nginx);
* s3cmd (PyPI ``s3cmd``, run as a subprocess with a generated config file), with
  SigV4 and with SigV2 (``signature_v2 = True``).

rclone is covered in test_rclone.py. Install: pip install minio s3cmd.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from ..servers import ACCESS_KEY, SECRET_KEY

KiB, MiB = 1024, 1024 * 1024


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    return md5_hex(b"".join(hashlib.md5(p).digest() for p in parts)) + f"-{len(parts)}"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def purge_bucket(s3, name: str) -> None:
    """Remove ``name`` and everything in it, if it still exists (test clean-up)."""
    try:
        s3.head_bucket(Bucket=name)
    except Exception:  # noqa: BLE001 - gone already (the test removed it)
        return
    for up in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def bucket_name(s3):
    name = "cl-" + uuid.uuid4().hex[:16]
    yield name
    purge_bucket(s3, name)


# -- MinIO Python SDK -----------------------------------------------------------------------------

try:
    import minio
    import urllib3
    from minio.commonconfig import CopySource
    from minio.deleteobjects import DeleteObject
except ImportError:  # pragma: no cover - the dev extras install it
    minio = None

needs_minio = pytest.mark.skipif(minio is None, reason="MinIO SDK not installed (pip install minio)")


@pytest.fixture
def minio_client(server):
    """A Minio client over plain http; its connection pool is closed afterwards."""
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=60), retries=False)
    client = minio.Minio(f"127.0.0.1:{server.port}", access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False,
                         region="us-east-1", http_client=pool)
    yield client
    pool.clear()


@pytest.fixture
def minio_tls_client(tls_endpoint):
    """A Minio client over TLS through nginx, trusting the test CA."""
    url, ca_bundle = tls_endpoint
    pool = urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=60), retries=False,
                               cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle)
    client = minio.Minio(urlsplit(url).netloc, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=True,
                         region="us-east-1", http_client=pool)
    yield client
    pool.clear()


def minio_read(client, bucket: str, key: str, **kwargs) -> bytes:
    resp = client.get_object(bucket, key, **kwargs)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


@needs_minio
def test_minio_sdk_workflow(minio_client, s3, bucket_name, tmp_path):
    c = minio_client
    assert not c.bucket_exists(bucket_name)
    c.make_bucket(bucket_name)
    assert c.bucket_exists(bucket_name)
    assert bucket_name in [b.name for b in c.list_buckets()]

    # small, known length: one PutObject
    small = b"hello from minio-py\n" * 50
    res = c.put_object(bucket_name, "docs/small.txt", io.BytesIO(small), len(small), content_type="text/plain",
                       metadata={"x-amz-meta-color": "blue"})
    assert res.etag == md5_hex(small)

    # large stream of unknown length: the SDK's multipart path (5 MiB parts: 5 + 5 + 2)
    big = os.urandom(12 * MiB)
    res = c.put_object(bucket_name, "data/stream.bin", io.BytesIO(big), -1, part_size=5 * MiB)
    assert res.etag == multipart_etag(big, 5 * MiB)

    # fput (file, multipart: 5 + 2 MiB) / fget
    src = tmp_path / "src.bin"
    file_data = os.urandom(7 * MiB + 99)
    src.write_bytes(file_data)
    res = c.fput_object(bucket_name, "data/file.bin", str(src), part_size=5 * MiB)
    assert res.etag == multipart_etag(file_data, 5 * MiB)
    dst = tmp_path / "dst.bin"
    c.fget_object(bucket_name, "data/file.bin", str(dst))
    assert sha256(dst.read_bytes()) == sha256(file_data)

    # stat / get / ranged get
    st = c.stat_object(bucket_name, "docs/small.txt")
    assert st.size == len(small) and st.etag == md5_hex(small)
    assert st.content_type == "text/plain"
    assert st.metadata.get("x-amz-meta-color") == "blue"
    assert minio_read(c, bucket_name, "docs/small.txt") == small
    assert sha256(minio_read(c, bucket_name, "data/stream.bin")) == sha256(big)
    assert minio_read(c, bucket_name, "data/stream.bin", offset=5 * MiB - 10, length=20) == big[5 * MiB - 10:5 * MiB + 10]

    # list
    assert sorted(o.object_name for o in c.list_objects(bucket_name, recursive=True)) == [
        "data/file.bin", "data/stream.bin", "docs/small.txt"]
    top = list(c.list_objects(bucket_name))
    assert sorted(o.object_name for o in top) == ["data/", "docs/"] and all(o.is_dir for o in top)
    sizes = {o.object_name: o.size for o in c.list_objects(bucket_name, prefix="data/", recursive=True)}
    assert sizes == {"data/file.bin": len(file_data), "data/stream.bin": len(big)}

    # server-side copy (of a multipart source: test_minio_sdk_copy_multipart_source)
    res = c.copy_object(bucket_name, "copies/small.txt", CopySource(bucket_name, "docs/small.txt"))
    assert res.etag == md5_hex(small)
    assert minio_read(c, bucket_name, "copies/small.txt") == small
    assert s3.head_object(Bucket=bucket_name, Key="copies/small.txt")["Metadata"] == {"color": "blue"}

    # presigned GET made by the SDK
    url = c.presigned_get_object(bucket_name, "docs/small.txt", expires=_dt.timedelta(minutes=5))
    assert requests.get(url, timeout=30).content == small

    # delete: one, then a batch (DeleteObjects), then the bucket
    c.remove_object(bucket_name, "copies/small.txt")
    errors = list(c.remove_objects(bucket_name, [DeleteObject(o.object_name)
                                                 for o in c.list_objects(bucket_name, recursive=True)]))
    assert errors == []
    assert list(c.list_objects(bucket_name, recursive=True)) == []
    c.remove_bucket(bucket_name)
    assert not c.bucket_exists(bucket_name)


@needs_minio
def test_minio_sdk_copy_multipart_source(minio_client, s3, bucket_name):
    # CopyObject of an object that was uploaded in parts: the copy has the source's bytes.
    # Its ETag: S3 keeps the multipart "-N" ETag in practice; the documentation says an MD5.
    c = minio_client
    c.make_bucket(bucket_name)
    data = os.urandom(7 * MiB + 99)
    c.put_object(bucket_name, "mp.bin", io.BytesIO(data), len(data), part_size=5 * MiB)
    res = c.copy_object(bucket_name, "mp-copy.bin", CopySource(bucket_name, "mp.bin"))
    assert res.etag in (multipart_etag(data, 5 * MiB), md5_hex(data))
    assert sha256(minio_read(c, bucket_name, "mp-copy.bin")) == sha256(data)
    assert c.stat_object(bucket_name, "mp-copy.bin").size == len(data)


@needs_minio
def test_minio_sdk_errors(minio_client, bucket_name):
    c = minio_client
    c.make_bucket(bucket_name)
    with pytest.raises(minio.error.S3Error) as exc:
        c.stat_object(bucket_name, "missing")
    assert exc.value.code in ("NoSuchKey", "ResponseError")  # HEAD: no body, the SDK names it from the status
    with pytest.raises(minio.error.S3Error) as exc:
        minio_read(c, bucket_name, "missing")
    assert exc.value.code == "NoSuchKey"
    c.put_object(bucket_name, "k", io.BytesIO(b"x"), 1)
    with pytest.raises(minio.error.S3Error) as exc:
        c.remove_bucket(bucket_name)
    assert exc.value.code == "BucketNotEmpty"
    # Re-creating a bucket you own in us-east-1 is a no-op that answers 200 (AWS CreateBucket docs).
    c.make_bucket(bucket_name)
    assert minio_read(c, bucket_name, "k") == b"x"


@needs_minio
def test_minio_sdk_over_tls(minio_tls_client, s3, bucket_name):
    # Over https the SDK signs UNSIGNED-PAYLOAD; a multipart stream and a copy through nginx.
    c = minio_tls_client
    c.make_bucket(bucket_name)
    big = os.urandom(11 * MiB + 5)
    res = c.put_object(bucket_name, "tls/stream.bin", io.BytesIO(big), -1, part_size=5 * MiB)
    assert res.etag == multipart_etag(big, 5 * MiB)
    small = os.urandom(3 * KiB)
    c.put_object(bucket_name, "tls/small.bin", io.BytesIO(small), len(small))
    c.copy_object(bucket_name, "tls/copy.bin", CopySource(bucket_name, "tls/small.bin"))
    assert sha256(minio_read(c, bucket_name, "tls/stream.bin")) == sha256(big)
    assert minio_read(c, bucket_name, "tls/copy.bin") == small
    assert s3.get_object(Bucket=bucket_name, Key="tls/copy.bin")["Body"].read() == small
    assert list(c.remove_objects(bucket_name, [DeleteObject(k) for k in
                                               ("tls/stream.bin", "tls/small.bin", "tls/copy.bin")])) == []
    c.remove_bucket(bucket_name)


# -- s3cmd --------------------------------------------------------------------------------------------

S3CMD = str(Path(sys.executable).parent / "s3cmd")
if not os.path.exists(S3CMD):
    S3CMD = shutil.which("s3cmd") or S3CMD


@pytest.fixture(params=[False, True], ids=["sigv4", "sigv2"])
def s3cmd(request, server, tmp_path):
    """Run `s3cmd -c <generated config> <args>` against the server (path-style, http)."""
    if not os.path.exists(S3CMD):
        pytest.skip("s3cmd not installed (pip install s3cmd)")
    host = f"127.0.0.1:{server.port}"
    config = tmp_path / "s3cfg"
    config.write_text(f"""[default]
access_key = {ACCESS_KEY}
secret_key = {SECRET_KEY}
host_base = {host}
host_bucket = {host}
bucket_location = us-east-1
use_https = False
signature_v2 = {request.param}
check_ssl_certificate = False
progress_meter = False
multipart_chunk_size_mb = 15
max_retries = 0
""")
    env = dict(os.environ, HOME=str(tmp_path))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, S3CMD, "-c", str(config), *args], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        if check:
            assert proc.returncode == 0, f"s3cmd {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc
    run.signature_v2 = request.param
    return run


def test_s3cmd_workflow(s3cmd, s3, bucket_name, tmp_path):
    b = f"s3://{bucket_name}"
    s3cmd("mb", b)
    s3.head_bucket(Bucket=bucket_name)
    assert b in s3cmd("ls").stdout

    small = tmp_path / "small.txt"
    small.write_bytes(b"hello from s3cmd\n" * 64)
    big = tmp_path / "big.bin"
    big_data = os.urandom(20 * MiB)
    big.write_bytes(big_data)

    s3cmd("put", str(small), f"{b}/docs/small.txt")
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"{b}/data/big.bin")  # 4 parts: see the ETag
    assert s3.head_object(Bucket=bucket_name, Key="docs/small.txt")["ETag"] == f'"{md5_hex(small.read_bytes())}"'
    assert s3.head_object(Bucket=bucket_name, Key="data/big.bin")["ETag"] == f'"{multipart_etag(big_data, 5 * MiB)}"'

    listing = s3cmd("ls", "--recursive", b).stdout
    assert f"{b}/docs/small.txt" in listing and f"{b}/data/big.bin" in listing
    assert str(20 * MiB) in listing
    top = s3cmd("ls", b).stdout  # with the delimiter: common prefixes
    assert f"DIR  {b}/data/" in top and f"DIR  {b}/docs/" in top
    info = s3cmd("info", f"{b}/docs/small.txt").stdout
    assert md5_hex(small.read_bytes()) in info

    down = tmp_path / "down"
    down.mkdir()
    s3cmd("get", f"{b}/docs/small.txt", str(down / "small.txt"))
    s3cmd("get", f"{b}/data/big.bin", str(down / "big.bin"))
    assert (down / "small.txt").read_bytes() == small.read_bytes()
    assert sha256((down / "big.bin").read_bytes()) == sha256(big_data)

    # server-side copy (s3cmd cp = PUT with x-amz-copy-source); of a multipart source:
    # test_s3cmd_cp_multipart_source
    s3cmd("cp", f"{b}/docs/small.txt", f"{b}/copies/small.txt")
    assert s3.get_object(Bucket=bucket_name, Key="copies/small.txt")["Body"].read() == small.read_bytes()

    # delete one, then the rest recursively (s3cmd batches these as DeleteObjects)
    s3cmd("del", f"{b}/docs/small.txt")
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket_name, Key="docs/small.txt")
    s3cmd("del", "--recursive", "--force", b)
    assert s3.list_objects_v2(Bucket=bucket_name)["KeyCount"] == 0
    s3cmd("rb", b)
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket=bucket_name)


def test_s3cmd_cp_multipart_source(s3cmd, s3, bucket_name, tmp_path):
    b = f"s3://{bucket_name}"
    s3cmd("mb", b)
    big = tmp_path / "big.bin"
    big_data = os.urandom(11 * MiB)
    big.write_bytes(big_data)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"{b}/big.bin")
    s3cmd("cp", f"{b}/big.bin", f"{b}/big-copy.bin")
    got = s3.get_object(Bucket=bucket_name, Key="big-copy.bin")
    assert sha256(got["Body"].read()) == sha256(big_data)
    assert got["ETag"].strip('"') in (multipart_etag(big_data, 5 * MiB), md5_hex(big_data))


def test_s3cmd_sync_and_errors(s3cmd, s3, bucket_name, tmp_path):
    b = f"s3://{bucket_name}"
    s3cmd("mb", b)
    tree = {"a.txt": b"A" * 10, "sub/b.txt": b"B" * 2000, "sub/deeper/c.bin": os.urandom(100 * KiB),
            "with space & plus+.txt": b"odd"}
    local = tmp_path / "tree"
    for rel, body in tree.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(body)
    s3cmd("sync", f"{local}/", f"{b}/tree/")
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket_name)["Contents"]}
    assert listed == {f"tree/{rel}": len(body) for rel, body in tree.items()}
    # A second sync transfers nothing (it compares sizes and MD5 ETags from the listing).
    again = s3cmd("sync", f"{local}/", f"{b}/tree/").stdout
    assert "upload:" not in again, again
    back = tmp_path / "back"
    s3cmd("sync", f"{b}/tree/", f"{back}/")
    assert {p.relative_to(back).as_posix(): p.read_bytes() for p in back.rglob("*") if p.is_file()} == tree

    missing = s3cmd("get", f"{b}/nope", str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr or "NoSuchKey" in missing.stderr or "does not exist" in missing.stderr
    not_empty = s3cmd("rb", b, check=False)
    assert not_empty.returncode != 0 and "BucketNotEmpty" in not_empty.stderr, not_empty.stderr
