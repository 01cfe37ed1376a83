"""Master key rotation without rewriting objects: `bleepstore encryption rewrap`.

Objects are written under master key m1 (SSE-S3, managed SSE-KMS, a named KMS key,
SSE-C, a multipart upload still open). The server restarts with a second key m2
active; `rewrap` moves every data key that a master key wraps to m2 and leaves the
rest alone; then m1 is removed from the configuration, and every object still reads
back byte-exact and the open upload still completes. Without the rewrap, removing
m1 makes the old SSE-S3 object a 500 InternalError, never its ciphertext.
"""
from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ..conftest import make_client
from ..servers import Server, write_config

BLEEPSTORE = str(Path(sys.executable).parent / "bleepstore")
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "c" * 32}
PART = 5 * 1024 * 1024


def _config(workdir: Path, master: dict[str, Path], active: str) -> Path:
    keys = "".join(f"    {name}: file:{path}\n" for name, path in master.items())
    kms = workdir / "kms.key"
    extra = (f"encryption:\n  master_keys:\n{keys}  active_master_key: {active}\n"
             f"  kms_keys:\n    test-key: file:{kms}\n")
    return write_config(workdir, None, extra=extra)


def _new_key(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    return path


def _serve(workdir: Path, config: Path) -> tuple[Server, object]:
    server = Server(workdir, dict(os.environ, BLEEPSTORE_CONFIG=str(config))).start()
    s3 = make_client(server.endpoint)
    s3.meta.events.register("before-sign.s3", lambda request, **kw: request.headers.__setitem__(
        "X-Forwarded-Proto", "https"))
    return server, s3


def _wrapping_keys(workdir: Path) -> list[str]:
    db = sqlite3.connect(workdir / "data" / "metadata.db")
    try:
        rows = [json.loads(r[0]) for table in ("objects", "object_versions", "multipart_uploads")
                for r in db.execute(f"SELECT encryption FROM {table} WHERE encryption IS NOT NULL")]
    finally:
        db.close()
    return sorted(r["key"]["key"] for r in rows if "key" in r)


def test_rewrap_moves_data_keys_to_the_new_master_key(tmp_path):
    m1, m2 = _new_key(tmp_path / "m1.key"), _new_key(tmp_path / "m2.key")
    _new_key(tmp_path / "kms.key")
    bodies = {"s3": b"sse-s3 " * 5000, "managed": b"managed kms " * 3000, "named": b"named kms " * 3000,
              "customer": b"sse-c " * 4000, "small": b"tiny inline"}
    server, s3 = _serve(tmp_path, _config(tmp_path, {"m1": m1}, "m1"))
    try:
        s3.create_bucket(Bucket="rotate")
        s3.put_object(Bucket="rotate", Key="s3", Body=bodies["s3"], ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="small", Body=bodies["small"], ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="managed", Body=bodies["managed"], ServerSideEncryption="aws:kms")
        s3.put_object(Bucket="rotate", Key="named", Body=bodies["named"], ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="test-key")
        s3.put_object(Bucket="rotate", Key="customer", Body=bodies["customer"], **SSE_C)
        upload = s3.create_multipart_upload(Bucket="rotate", Key="mp", ServerSideEncryption="AES256")["UploadId"]
        part1 = os.urandom(PART)
        etag1 = s3.upload_part(Bucket="rotate", Key="mp", UploadId=upload, PartNumber=1, Body=part1)["ETag"]
    finally:
        server.stop()
    assert _wrapping_keys(tmp_path) == ["m1", "m1", "m1", "m1", "test-key"]

    # m2 active, m1 still there: old objects read, new ones use m2.
    both = _config(tmp_path, {"m1": m1, "m2": m2}, "m2")
    server, s3 = _serve(tmp_path, both)
    try:
        assert s3.get_object(Bucket="rotate", Key="s3")["Body"].read() == bodies["s3"]
        s3.put_object(Bucket="rotate", Key="new", Body=b"after rotation", ServerSideEncryption="AES256")
    finally:
        server.stop()
    assert _wrapping_keys(tmp_path).count("m2") == 1

    done = subprocess.run([BLEEPSTORE, "encryption", "rewrap", "--config", str(both)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, BLEEPSTORE_CONFIG=str(both)))
    assert done.returncode == 0, done.stderr
    assert "pass 1: re-wrapped 3 in objects, 0 in object_versions, 1 in multipart_uploads" in done.stdout, done.stdout
    assert "pass 2: re-wrapped 0 in objects" in done.stdout, done.stdout
    assert _wrapping_keys(tmp_path) == ["m2", "m2", "m2", "m2", "m2", "test-key"]

    # m1 gone: everything still reads, the upload completes.
    server, s3 = _serve(tmp_path, _config(tmp_path, {"m2": m2}, "m2"))
    try:
        for key, body in bodies.items():
            extra = SSE_C if key == "customer" else {}
            assert s3.get_object(Bucket="rotate", Key=key, **extra)["Body"].read() == body, key
        part2 = b"last part"
        etag2 = s3.upload_part(Bucket="rotate", Key="mp", UploadId=upload, PartNumber=2, Body=part2)["ETag"]
        s3.complete_multipart_upload(Bucket="rotate", Key="mp", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]})
        assert s3.get_object(Bucket="rotate", Key="mp")["Body"].read() == part1 + part2
        assert s3.get_object(Bucket="rotate", Key="new")["Body"].read() == b"after rotation"
    finally:
        server.stop()


def test_a_removed_master_key_makes_its_objects_internal_errors_not_ciphertext(tmp_path):
    m1, m2 = _new_key(tmp_path / "m1.key"), _new_key(tmp_path / "m2.key")
    _new_key(tmp_path / "kms.key")
    server, s3 = _serve(tmp_path, _config(tmp_path, {"m1": m1}, "m1"))
    try:
        s3.create_bucket(Bucket="lost")
        s3.put_object(Bucket="lost", Key="k", Body=b"needs m1 " * 1000, ServerSideEncryption="AES256")
    finally:
        server.stop()
    server, s3 = _serve(tmp_path, _config(tmp_path, {"m2": m2}, "m2"))
    try:
        with pytest.raises(ClientError) as err:
            s3.get_object(Bucket="lost", Key="k")
        assert err.value.response["Error"]["Code"] == "InternalError"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "master key 'm1' is not in encryption.master_keys" in server.log()
    finally:
        server.stop()
