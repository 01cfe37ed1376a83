"""Readers racing writers on one encrypted key: every answer is one whole version.

Writers overwrite one key with SSE-S3 objects (inline-sized, blob-sized, two-part
multipart) and SSE-C copies of them, while readers GET it whole and by Range. Each
version's bytes name the version in every 4 KiB block, so a body maps back to the
version it must be; it must be that version's bytes exactly (a reader that opened one
version's key with another's blob would fail authentication or serve foreign bytes).
"""
from __future__ import annotations

import os
import random
import re
import threading
import time

from ..conftest import make_client
from ..servers import Server, write_config

SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "r" * 32}
PART = 5 * 1024 * 1024
SECONDS = float(os.environ.get("BLEEPSTORE_TEST_RACE_SECONDS", "6"))


def _body(version: int, size: int) -> bytes:
    block = f"<v{version}>".encode().ljust(64, b".")  # any 128 bytes hold a whole marker
    return (block * (size // 64 + 1))[:size]


def _secure(client):
    client.meta.events.register("before-sign.s3", lambda request, **kw: request.headers.__setitem__(
        "X-Forwarded-Proto", "https"))
    return client


def test_readers_see_one_whole_encrypted_version_while_writers_replace_it(tmp_path):
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(tmp_path, None)))
    server = Server(tmp_path, env).start()
    bodies: dict[int, bytes] = {}
    failures: list[str] = []
    stop = time.monotonic() + SECONDS
    try:
        s3 = _secure(make_client(server.endpoint))
        s3.create_bucket(Bucket="race")
        bodies[0] = _body(0, 300_000)
        s3.put_object(Bucket="race", Key="hot", Body=bodies[0], ServerSideEncryption="AES256")
        s3.put_object(Bucket="race", Key="hot-c", Body=bodies[0], **SSE_C)
        counter = iter(range(1, 10 ** 6))
        lock = threading.Lock()

        def writer(seed: int) -> None:
            rng, client = random.Random(seed), _secure(make_client(server.endpoint))
            while time.monotonic() < stop:
                with lock:
                    version = next(counter)
                size = rng.choice([3_000, 300_000, PART + 70_000])
                data = bodies[version] = _body(version, size)
                if size > PART:
                    up = client.create_multipart_upload(Bucket="race", Key="hot", ServerSideEncryption="AES256")
                    parts = [{"PartNumber": n, "ETag": client.upload_part(
                        Bucket="race", Key="hot", UploadId=up["UploadId"], PartNumber=n, Body=chunk)["ETag"]}
                        for n, chunk in ((1, data[:PART]), (2, data[PART:]))]
                    client.complete_multipart_upload(Bucket="race", Key="hot", UploadId=up["UploadId"],
                                                     MultipartUpload={"Parts": parts})
                else:
                    client.put_object(Bucket="race", Key="hot", Body=data, ServerSideEncryption="AES256")
                client.copy_object(Bucket="race", Key="hot-c", CopySource={"Bucket": "race", "Key": "hot"}, **SSE_C)

        def reader(seed: int, key: str, extra: dict) -> None:
            rng, client = random.Random(seed), _secure(make_client(server.endpoint))
            while time.monotonic() < stop:
                ranged = rng.random() < 0.5
                start = rng.randrange(2_900)  # inside every version, the smallest is 3,000 bytes
                args = {"Range": f"bytes={start}-{start + rng.randrange(128, 150_000)}"} if ranged else {}
                got = client.get_object(Bucket="race", Key=key, **extra, **args)["Body"].read()
                marker = re.search(rb"<v(\d+)>", got)
                whole = bodies.get(int(marker.group(1))) if marker else None
                version = marker.group(1).decode() if marker else None
                if whole is None:
                    failures.append(f"{key}: a body naming no version written: {got[:40]!r}")
                    continue
                expected = whole[start:start + len(got)] if ranged else whole
                if got != expected:
                    failures.append(f"{key}: version {version} served wrong bytes (ranged={ranged})")

        def recorded(work):
            def run(*args) -> None:
                try:
                    work(*args)
                except Exception as exc:  # a failed request is a failure, not a thread's warning
                    failures.append(f"{work.__name__}: {exc!r}")
            return run

        threads = [threading.Thread(target=recorded(writer), args=(i,)) for i in range(2)]
        threads += [threading.Thread(target=recorded(reader), args=(10 + i, key, extra))
                    for i, (key, extra) in enumerate([("hot", {}), ("hot", {}), ("hot-c", SSE_C)])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 120)
        assert not failures, failures[:5]
        assert len(bodies) > 3, "the writers wrote too few versions to race"
    finally:
        server.stop()
