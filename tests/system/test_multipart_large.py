"""Large multipart uploads: 1 GiB in 128 parts of 8 MiB with 8 concurrent part
uploads (boto3), and `aws s3 cp` of a 1 GiB file up and down. Byte-exactness is
checked by MD5; the throughput and CompleteMultipartUpload's duration are printed
for the CI log (not asserted)."""
from __future__ import annotations

import gc
import hashlib
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..conformance.support_multipart import (MiB, aws_cli, blob_files, check_ok, swept_blob_files, etag_of_part_md5s, file_md5,
                                             open_uploads)
from ..conftest import ENGINES, make_client
from ..servers import Server, write_config

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("large_server", ENGINES, indirect=True)]

PART_SIZE = 8 * MiB
PARTS = 128
TOTAL = PART_SIZE * PARTS  # 1 GiB
CONCURRENCY = 8


@pytest.fixture
def large_server(tmp_path, pg_databases, request):
    url = pg_databases.create() if getattr(request, "param", "sqlite") == "postgresql" else None
    config = write_config(tmp_path, url)
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config))).start()
    srv.engine = getattr(request, "param", "sqlite")
    srv.client = make_client(srv.endpoint, max_pool_connections=CONCURRENCY * 2, read_timeout=600)
    yield srv
    srv.client._endpoint.http_session.close()
    del srv.client
    gc.collect()  # closes the sockets of read responses, so the graceful stop need not wait on them
    srv.stop()


def _part(number: int) -> bytes:
    """Part ``number``'s 8 MiB, generated from its number (no file involved)."""
    return random.Random(f"part-{number}").randbytes(PART_SIZE)


def _report(capsys, srv: Server, text: str) -> None:
    with capsys.disabled():
        print(f"\n[multipart-large {srv.engine}] {text}", flush=True)


def test_complete_multipart_upload_1gib_128_parts_concurrent(large_server, capsys):
    srv, s3 = large_server, large_server.client
    s3.create_bucket(Bucket="large")
    upload_id = s3.create_multipart_upload(Bucket="large", Key="one-gib")["UploadId"]

    def send(number: int) -> dict:
        body = _part(number)
        md5 = hashlib.md5(body).hexdigest()
        etag = s3.upload_part(Bucket="large", Key="one-gib", UploadId=upload_id, PartNumber=number,
                              Body=body)["ETag"]
        assert etag == f'"{md5}"', number
        return {"PartNumber": number, "ETag": etag}

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        done = list(pool.map(send, range(1, PARTS + 1)))
    upload_seconds = time.monotonic() - started
    assert len(blob_files(srv.workdir)) == PARTS

    started = time.monotonic()
    resp = s3.complete_multipart_upload(Bucket="large", Key="one-gib", UploadId=upload_id,
                                        MultipartUpload={"Parts": done})
    complete_seconds = time.monotonic() - started
    expected_etag = etag_of_part_md5s([d["ETag"].strip('"') for d in done])
    assert resp["ETag"] == f'"{expected_etag}"'
    assert open_uploads(s3, "large") == []

    expected = hashlib.md5()
    for number in range(1, PARTS + 1):
        expected.update(_part(number))

    started = time.monotonic()
    got = s3.get_object(Bucket="large", Key="one-gib")
    assert got["ContentLength"] == TOTAL
    assert got["ETag"] == f'"{expected_etag}"'
    digest, size = hashlib.md5(), 0
    for chunk in got["Body"].iter_chunks(MiB):
        digest.update(chunk)
        size += len(chunk)
    download_seconds = time.monotonic() - started
    assert size == TOTAL
    assert digest.hexdigest() == expected.hexdigest()

    _report(capsys, srv, f"boto3 {PARTS} x 8 MiB parts, {CONCURRENCY} concurrent: upload "
                         f"{TOTAL / MiB / upload_seconds:.1f} MiB/s ({upload_seconds:.1f} s); "
                         f"CompleteMultipartUpload {complete_seconds:.3f} s; download "
                         f"{TOTAL / MiB / download_seconds:.1f} MiB/s ({download_seconds:.1f} s)")
    s3.delete_object(Bucket="large", Key="one-gib")
    assert swept_blob_files(srv) == set()


def test_aws_cli_s3_cp_1gib_up_and_down(large_server, tmp_path, capsys):
    srv, s3 = large_server, large_server.client
    s3.create_bucket(Bucket="large")
    src, dst = tmp_path / "up.bin", tmp_path / "down.bin"
    expected = hashlib.md5()
    with open(src, "wb") as f:
        for _ in range(TOTAL // PART_SIZE):
            block = os.urandom(PART_SIZE)
            expected.update(block)
            f.write(block)

    started = time.monotonic()
    check_ok(aws_cli(srv.endpoint, "s3", "cp", str(src), "s3://large/cli-one-gib", timeout=1200))
    upload_seconds = time.monotonic() - started
    head = s3.head_object(Bucket="large", Key="cli-one-gib")
    assert head["ContentLength"] == TOTAL
    assert head["ETag"].strip('"').endswith(f"-{TOTAL // (8 * MiB)}")  # the CLI's 8 MiB chunks
    assert open_uploads(s3, "large") == []

    started = time.monotonic()
    check_ok(aws_cli(srv.endpoint, "s3", "cp", "s3://large/cli-one-gib", str(dst), timeout=1200))
    download_seconds = time.monotonic() - started
    assert os.path.getsize(dst) == TOTAL
    assert file_md5(dst) == expected.hexdigest()

    _report(capsys, srv, f"aws s3 cp 1 GiB: upload {TOTAL / MiB / upload_seconds:.1f} MiB/s "
                         f"({upload_seconds:.1f} s); download {TOTAL / MiB / download_seconds:.1f} MiB/s "
                         f"({download_seconds:.1f} s)")
    src.unlink()
    dst.unlink()
    s3.delete_object(Bucket="large", Key="cli-one-gib")
    assert swept_blob_files(srv) == set()
