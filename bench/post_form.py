"""Benchmark: one browser-form upload (PostObject) of 1 GiB, and the worker's memory.

Starts ``bleepstore serve`` on a fresh directory (SQLite, local disk, fsync on),
signs a form with boto3's generate_presigned_post, and POSTs a multipart/form-data
body built by a generator (fields, then 1 GiB of file bytes in 1 MiB blocks, then
the closing delimiter) with an explicit Content-Length over ``http.client``. A
thread samples each worker's VmRSS from /proc every 50 ms; the report gives the
largest worker's peak (the goal: under 150 MiB), its RSS before the upload, the
wall time and the rate, and checks the ETag is the MD5 of the bytes sent. Not
part of the test suite.

    .venv/bin/python -m bench.post_form                 # 1 GiB
    .venv/bin/python -m bench.post_form --size-mib 256  # smaller
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import threading
import time
import uuid
from urllib.parse import urlsplit

from .server import EmbeddedServer, _rss_bytes, process_tree

MIB = 1024 * 1024
BOUNDARY = "----BleepStoreBench" + uuid.uuid4().hex


class WorkerRss:
    """The peak VmRSS of each worker (the master's descendants), sampled in a thread."""

    def __init__(self, master: int, interval: float = 0.05) -> None:
        self.master, self.interval = master, interval
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> dict[int, int]:
        now = {}
        for pid in process_tree(self.master):
            if pid != self.master:
                try:
                    now[pid] = _rss_bytes(pid)
                except OSError:
                    pass
        for pid, rss in now.items():
            self.peak[pid] = max(self.peak.get(pid, 0), rss)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "WorkerRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sample()


def _form_parts(fields: dict[str, str], filename: str) -> tuple[bytes, bytes]:
    head = b""
    for name, value in fields.items():
        head += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    head += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n").encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def _body(head: bytes, tail: bytes, size: int, md5):
    yield head
    block = os.urandom(MIB)
    sent = 0
    while sent < size:
        piece = block[:min(MIB, size - sent)]
        md5.update(piece)
        sent += len(piece)
        yield piece
    yield tail


def run(size: int, workers: int) -> int:
    server = EmbeddedServer(workers=workers).start()
    try:
        target = server.target
        s3 = target.client()
        bucket = "bench-post-" + uuid.uuid4().hex[:8]
        s3.create_bucket(Bucket=bucket)
        post = s3.generate_presigned_post(bucket, "big/${filename}", ExpiresIn=3600,
                                          Conditions=[["content-length-range", 0, size]])
        head, tail = _form_parts(post["fields"], "one-gib.bin")
        parts = urlsplit(target.endpoint)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1200, blocksize=MIB)
        md5 = hashlib.md5()
        with WorkerRss(target.pid) as rss:
            before = rss.sample()
            started = time.perf_counter()
            conn.request("POST", f"/{bucket}", body=_body(head, tail, size, md5), headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(len(head) + size + len(tail))})
            resp = conn.getresponse()
            answer = resp.read()
            seconds = time.perf_counter() - started
        conn.close()
        etag = resp.getheader("ETag", "")
        ok = resp.status == 204 and etag == f'"{md5.hexdigest()}"'
        stored = s3.head_object(Bucket=bucket, Key="big/one-gib.bin")["ContentLength"] if ok else None
        busiest = max(rss.peak, key=lambda pid: rss.peak[pid] - before.get(pid, 0))
        print(f"PostObject of {size / MIB:.0f} MiB through a {workers}-worker server (SQLite, local disk, fsync)")
        print(f"  status {resp.status}, ETag {'= MD5 of the bytes sent' if ok else etag + ' ' + answer[:300].decode()}")
        print(f"  stored ContentLength {stored}")
        print(f"  {seconds:.1f} s, {size / MIB / seconds:.0f} MiB/s")
        print(f"  worker peak RSS {rss.peak[busiest] / MIB:.1f} MiB (it was {before.get(busiest, 0) / MIB:.1f} MiB "
              f"before the upload); every worker's peak: "
              + ", ".join(f"{v / MIB:.1f}" for v in sorted(rss.peak.values())) + " MiB")
        return 0 if ok and stored == size and rss.peak[busiest] < 150 * MIB else 1
    finally:
        server.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    return run(args.size_mib * MIB, args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
