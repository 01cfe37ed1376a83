"""Helpers for the multipart-upload tests (conformance, rclone and system suites).

Self-contained: deterministic data, the expected multipart ETag and checksums
(computed here, independently of the server), blob-file counting on the server's
data directory, and runners for the AWS CLI and rclone.
"""
from __future__ import annotations

import base64
import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from awscrt import checksums as crt

from ..servers import ACCESS_KEY, SECRET_KEY

KiB = 1024
MiB = 1024 * 1024
PART = 5 * MiB                # the smallest allowed non-last part
REGION = "us-east-1"
BIN = Path(sys.executable).parent
AWS = str(BIN / "aws")
RCLONE = str(BIN / "rclone")


# -- data ---------------------------------------------------------------------------------

def data(size: int, seed: int | str = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


def md5_hex(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of a multipart object: md5 of the concatenated binary part md5s, "-N"."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def etag_of_part_md5s(md5s: list[str]) -> str:
    """The same from the parts' hex md5s (when the parts were streamed, not kept)."""
    return f"{hashlib.md5(b''.join(bytes.fromhex(m) for m in md5s)).hexdigest()}-{len(md5s)}"


# -- checksums ----------------------------------------------------------------------------

def checksum_raw(algorithm: str, raw: bytes) -> bytes:
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return crt.crc32(raw).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return crt.crc32c(raw).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return crt.crc64nvme(raw).to_bytes(8, "big")
    if algorithm == "SHA1":
        return hashlib.sha1(raw).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(raw).digest()
    raise ValueError(algorithm)


def checksum_b64(algorithm: str, raw: bytes) -> str:
    return base64.b64encode(checksum_raw(algorithm, raw)).decode()


def composite_checksum(algorithm: str, parts: list[bytes]) -> str:
    """COMPOSITE: the checksum of the concatenated binary part checksums, "-N"."""
    joined = b"".join(checksum_raw(algorithm, p) for p in parts)
    return f"{checksum_b64(algorithm, joined)}-{len(parts)}"


# -- multipart driving ---------------------------------------------------------------------

def upload_parts(s3, bucket: str, key: str, parts: list[bytes], *, numbers: list[int] | None = None,
                 **create_kwargs) -> tuple[str, list[dict]]:
    """CreateMultipartUpload then UploadPart each part; (upload id, [{PartNumber, ETag}])."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_kwargs)["UploadId"]
    done = []
    for number, body in zip(numbers or range(1, len(parts) + 1), parts):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, done


def complete(s3, bucket: str, key: str, upload_id: str, parts: list[dict], **kwargs) -> dict:
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": parts}, **kwargs)


def open_uploads(s3, bucket: str, **kwargs) -> list[tuple[str, str]]:
    """Every (key, upload id) ListMultipartUploads shows, following the markers."""
    found, params = [], dict(kwargs)
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, **params)
        found += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page.get("IsTruncated"):
            return found
        params.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page.get("NextUploadIdMarker", ""))


def abort_all(s3, bucket: str) -> None:
    for key, upload_id in open_uploads(s3, bucket):
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


# -- the server's files ---------------------------------------------------------------------

def blob_files(workdir: Path) -> set[str]:
    """Names of the finished blob files under <workdir>/data/objects/data (local disk)."""
    found: set[str] = set()
    for _root, _dirs, files in os.walk(Path(workdir) / "data" / "objects" / "data"):
        found.update(files)
    return found


def swept_blob_files(srv) -> set[str]:
    """blob_files once the sweeper has deleted what writes unlinked (test servers
    sweep only when asked: Server.sweep())."""
    srv.sweep()
    return blob_files(srv.workdir)


def temp_files(workdir: Path) -> list[str]:
    return os.listdir(Path(workdir) / "data" / "objects" / "tmp")


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; that value (or the last falsy one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- command-line clients -------------------------------------------------------------------

def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(extra)
    return env


def aws_cli(endpoint: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``aws <args> --endpoint-url <endpoint>`` (AWS CLI v1) with only the test credentials."""
    env = _clean_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
                     AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="",
                     AWS_MAX_ATTEMPTS="1")
    return subprocess.run([AWS, *args, "--endpoint-url", endpoint], env=env, capture_output=True, text=True,
                          timeout=timeout)


def rclone(endpoint: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``rclone <args>`` with remote ``bs:`` configured from the environment only."""
    env = _clean_env(RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_BS_TYPE="s3", RCLONE_CONFIG_BS_PROVIDER="Other",
                     RCLONE_CONFIG_BS_ACCESS_KEY_ID=ACCESS_KEY, RCLONE_CONFIG_BS_SECRET_ACCESS_KEY=SECRET_KEY,
                     RCLONE_CONFIG_BS_ENDPOINT=endpoint, RCLONE_CONFIG_BS_REGION=REGION,
                     RCLONE_CONFIG_BS_FORCE_PATH_STYLE="true", RCLONE_RETRIES="1",
                     RCLONE_LOW_LEVEL_RETRIES="1")
    return subprocess.run([RCLONE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def check_ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.args, result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


def file_md5(path: Path, chunk: int = 8 * MiB) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
