"""The AWS CLI (v1) against the server: `aws s3` high-level commands and `aws s3api`."""
from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ..servers import ACCESS_KEY, SECRET_KEY
from .helpers import md5_hex

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def aws(server):
    """Run `aws <args>` against the server; returns the CompletedProcess."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        env.pop(name, None)

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([AWS, "--endpoint-url", server.endpoint, *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"aws {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc
    return run


@pytest.fixture
def cli_bucket(aws, s3):
    """A bucket made with `aws s3 mb`; emptied and removed afterwards whatever the test did."""
    name = "cli-" + uuid.uuid4().hex[:16]
    out = aws("s3", "mb", f"s3://{name}").stdout
    assert f"make_bucket: {name}" in out
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
        s3.delete_bucket(Bucket=name)
    except s3.exceptions.NoSuchBucket:
        pass


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _random_file(path: Path, size: int) -> Path:
    return _write(path, os.urandom(size))


def test_awscli_s3_mb_ls_rb(aws, s3):
    name = "cli-" + uuid.uuid4().hex[:16]
    assert f"make_bucket: {name}" in aws("s3", "mb", f"s3://{name}").stdout
    s3.head_bucket(Bucket=name)
    listed = aws("s3", "ls").stdout.split("\n")
    assert any(line.split()[-1:] == [name] for line in listed if line.strip())
    assert f"remove_bucket: {name}" in aws("s3", "rb", f"s3://{name}").stdout
    assert name not in aws("s3", "ls").stdout


def test_awscli_s3_mb_existing_other_owner_fails(aws, s3_other):
    name = "cli-" + uuid.uuid4().hex[:16]
    s3_other.create_bucket(Bucket=name)
    try:
        proc = aws("s3", "mb", f"s3://{name}", check=False)
        assert proc.returncode != 0
        assert "BucketAlreadyExists" in proc.stderr
    finally:
        s3_other.delete_bucket(Bucket=name)


def test_awscli_s3_cp_small_file_up_and_down(aws, s3, cli_bucket, tmp_path):
    src = _write(tmp_path / "small.txt", b"hello from the aws cli\n" * 10)
    out = aws("s3", "cp", str(src), f"s3://{cli_bucket}/docs/small.txt").stdout
    assert "upload:" in out
    assert s3.get_object(Bucket=cli_bucket, Key="docs/small.txt")["Body"].read() == src.read_bytes()
    dst = tmp_path / "down" / "small.txt"
    assert "download:" in aws("s3", "cp", f"s3://{cli_bucket}/docs/small.txt", str(dst)).stdout
    assert dst.read_bytes() == src.read_bytes()


def test_awscli_s3_cp_7mb_file_up_and_down(aws, s3, cli_bucket, tmp_path):
    """Below the CLI's 8 MB multipart threshold: one PutObject, one GetObject."""
    src = _random_file(tmp_path / "seven.bin", 7 * 1024 * 1024)
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/seven.bin")
    head = s3.head_object(Bucket=cli_bucket, Key="seven.bin")
    assert head["ContentLength"] == 7 * 1024 * 1024
    assert head["ETag"] == f'"{md5_hex(src.read_bytes())}"'
    dst = tmp_path / "seven.down"
    aws("s3", "cp", f"s3://{cli_bucket}/seven.bin", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_awscli_s3_cp_20mb_file_up_and_down(aws, s3, cli_bucket, tmp_path):
    """Above the CLI's 8 MB threshold: a multipart upload (3 parts) and a ranged download."""
    src = _random_file(tmp_path / "twenty.bin", 20 * 1024 * 1024)
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/twenty.bin")
    head = s3.head_object(Bucket=cli_bucket, Key="twenty.bin")
    assert head["ContentLength"] == 20 * 1024 * 1024
    assert head["ETag"].endswith('-3"'), "a multipart ETag names its part count"
    dst = tmp_path / "twenty.down"
    aws("s3", "cp", f"s3://{cli_bucket}/twenty.bin", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_awscli_s3_cp_with_metadata_and_content_type(aws, s3, cli_bucket, tmp_path):
    src = _write(tmp_path / "page.html", b"<html></html>")
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/page.html", "--content-type", "text/html",
        "--cache-control", "max-age=10", "--metadata", "origin=cli,stage=test")
    head = s3.head_object(Bucket=cli_bucket, Key="page.html")
    assert head["ContentType"] == "text/html"
    assert head["CacheControl"] == "max-age=10"
    assert head["Metadata"] == {"origin": "cli", "stage": "test"}


def test_awscli_s3_cp_guesses_content_type(aws, s3, cli_bucket, tmp_path):
    src = _write(tmp_path / "data.json", b"{}")
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/data.json")
    assert s3.head_object(Bucket=cli_bucket, Key="data.json")["ContentType"] == "application/json"


def test_awscli_s3_ls_keys(aws, s3, cli_bucket):
    keys = ["a.txt", "dir/b.txt", "dir/sub/c.txt", "with space.txt", "ü/中.txt"]
    for key in keys:
        s3.put_object(Bucket=cli_bucket, Key=key, Body=key.encode())
    recursive = aws("s3", "ls", f"s3://{cli_bucket}", "--recursive").stdout
    listed = [line.split(None, 3)[3] for line in recursive.splitlines() if line.strip()]
    assert sorted(listed) == sorted(keys)
    sizes = {line.split(None, 3)[3]: int(line.split(None, 3)[2]) for line in recursive.splitlines() if line.strip()}
    assert sizes == {k: len(k.encode()) for k in keys}
    top = aws("s3", "ls", f"s3://{cli_bucket}/").stdout
    assert "PRE dir/" in top and "PRE ü/" in top
    assert "a.txt" in top and "b.txt" not in top
    sub = aws("s3", "ls", f"s3://{cli_bucket}/dir/").stdout
    assert "PRE sub/" in sub and "b.txt" in sub


def _make_tree(root: Path, count: int = 300) -> list[Path]:
    files = []
    for i in range(count):
        depth = i % 4
        parts = [f"level{d}-{(i // (d + 2)) % 3}" for d in range(depth)]
        name = f"file {i:03d}.txt" if i % 10 == 0 else f"file-{i:03d}.bin"
        data = hashlib.sha256(str(i).encode()).digest() * (1 + i % 7) + (b"\n" if i % 2 else b"")
        if i % 50 == 7:
            data = b""  # a few empty files
        if i % 97 == 3:
            data = os.urandom(20_000)  # a few above the inline size
        files.append(_write(root.joinpath(*parts, name), data))
    return files


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_awscli_s3_sync_up_down_rm_rb(aws, s3, tmp_path):
    name = "cli-" + uuid.uuid4().hex[:16]
    aws("s3", "mb", f"s3://{name}")
    up = tmp_path / "up"
    files = _make_tree(up)
    assert len(files) == 300
    aws("s3", "sync", str(up), f"s3://{name}/tree")
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
              for o in p.get("Contents", [])]
    assert sorted(listed) == sorted(f"tree/{k}" for k in _tree(up))

    # A second sync has nothing to do.
    assert aws("s3", "sync", str(up), f"s3://{name}/tree").stdout.strip() == ""

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{name}/tree", str(down))
    comparison = filecmp.dircmp(up, down)
    assert _tree(down) == _tree(up), (comparison.left_only, comparison.right_only, comparison.diff_files)

    # Changing one file locally syncs only that file.
    changed = files[5]
    changed.write_bytes(b"changed contents, different size")
    out = aws("s3", "sync", str(up), f"s3://{name}/tree").stdout
    assert out.count("upload:") == 1
    key = "tree/" + str(changed.relative_to(up))
    assert s3.get_object(Bucket=name, Key=key)["Body"].read() == b"changed contents, different size"

    out = aws("s3", "rm", f"s3://{name}/tree", "--recursive").stdout
    assert out.count("delete:") == 300
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert f"remove_bucket: {name}" in aws("s3", "rb", f"s3://{name}").stdout
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_awscli_s3_rb_non_empty_fails(aws, s3, cli_bucket):
    s3.put_object(Bucket=cli_bucket, Key="k", Body=b"x")
    proc = aws("s3", "rb", f"s3://{cli_bucket}", check=False)
    assert proc.returncode != 0
    assert "BucketNotEmpty" in proc.stderr


def test_awscli_s3api_put_get_head_list(aws, cli_bucket, tmp_path):
    src = _write(tmp_path / "body.bin", os.urandom(3000))
    put = json.loads(aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "api/obj.bin", "--body", str(src),
                         "--content-type", "application/x-test", "--metadata", "k1=v1",
                         "--storage-class", "REDUCED_REDUNDANCY").stdout)
    assert put["ETag"] == f'"{md5_hex(src.read_bytes())}"'

    head = json.loads(aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "api/obj.bin").stdout)
    assert head["ContentLength"] == 3000
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"k1": "v1"}
    assert head["StorageClass"] == "REDUCED_REDUNDANCY"
    assert head["ETag"] == put["ETag"]

    dst = tmp_path / "out.bin"
    got = json.loads(aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "api/obj.bin", str(dst)).stdout)
    assert dst.read_bytes() == src.read_bytes()
    assert got["ContentLength"] == 3000

    ranged = tmp_path / "range.bin"
    got = json.loads(aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "api/obj.bin",
                         "--range", "bytes=100-199", str(ranged)).stdout)
    assert got["ContentRange"] == "bytes 100-199/3000"
    assert ranged.read_bytes() == src.read_bytes()[100:200]

    aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "api/other", "--body", str(src))
    aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "top")
    listing = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "api/").stdout)
    assert [o["Key"] for o in listing["Contents"]] == ["api/obj.bin", "api/other"]
    grouped = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket, "--delimiter", "/").stdout)
    assert [o["Key"] for o in grouped["Contents"]] == ["top"]
    assert grouped["CommonPrefixes"] == [{"Prefix": "api/"}]
    # The CLI paginates itself with --page-size.
    paged = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket, "--page-size", "1").stdout)
    assert [o["Key"] for o in paged["Contents"]] == ["api/obj.bin", "api/other", "top"]


def test_awscli_s3api_get_object_missing_key(aws, cli_bucket, tmp_path):
    proc = aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "missing", str(tmp_path / "x"), check=False)
    assert proc.returncode != 0
    assert "NoSuchKey" in proc.stderr
    proc = aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "missing", check=False)
    assert proc.returncode != 0
    assert "404" in proc.stderr
