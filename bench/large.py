"""Large objects: one stream at a time over ``http.client``, and bulk helpers.

``stream_put`` sends ``size`` bytes from a generator of 1 MiB chunks with an
explicit Content-Length (no file, no chunked encoding); ``stream_get`` reads
the body in 1 MiB chunks into one reused buffer and discards it. Both use a
presigned URL and report wall time and the client thread's own CPU time.

``parallel_requests`` runs many small presigned requests on a thread pool with
one keep-alive connection per thread (used to populate buckets).
"""
from __future__ import annotations

import http.client
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHUNK = 1024 * 1024


@dataclass
class Transfer:
    """One large PUT or GET."""
    nbytes: int
    seconds: float
    client_cpu_s: float
    status: int
    error: str = ""
    etag: str = ""
    headers: dict = field(default_factory=dict)  # the response's, names lower-cased

    @property
    def mib_s(self) -> float:
        return self.nbytes / CHUNK / self.seconds if self.seconds else 0.0


def _thread_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_THREAD)
    return ru.ru_utime + ru.ru_stime


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    return parts.hostname, parts.port or 80, f"{parts.path}?{parts.query}"


def _chunks(size: int):
    block = os.urandom(CHUNK)
    full, rest = divmod(size, CHUNK)
    for _ in range(full):
        yield block
    if rest:
        yield block[:rest]


def _headers(resp) -> dict:
    return {k.lower(): v for k, v in resp.getheaders()}


def stream_put(url: str, size: int, timeout: float = 600.0, headers: dict | None = None) -> Transfer:
    """PUT ``size`` bytes to a presigned URL, streamed in 1 MiB chunks; ``headers``
    are sent too (those the URL signed, e.g. x-amz-server-side-encryption)."""
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout, blocksize=CHUNK)
    cpu0, t0 = _thread_cpu(), time.perf_counter()
    try:
        conn.request("PUT", path, body=_chunks(size), headers={**(headers or {}), "Content-Length": str(size)})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    seconds, cpu = time.perf_counter() - t0, _thread_cpu() - cpu0
    error = "" if resp.status == 200 else f"HTTP {resp.status} for PUT {path}\n{body[:600].decode(errors='replace')}"
    return Transfer(size, seconds, cpu, resp.status, error, resp.getheader("ETag", ""), _headers(resp))


def stream_get(url: str, timeout: float = 600.0, headers: dict | None = None) -> Transfer:
    """GET a presigned URL, reading 1 MiB at a time into one buffer and discarding it."""
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    buf = memoryview(bytearray(CHUNK))
    nbytes = 0
    cpu0, t0 = _thread_cpu(), time.perf_counter()
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read()
            return Transfer(0, time.perf_counter() - t0, _thread_cpu() - cpu0, resp.status,
                            f"HTTP {resp.status} for GET {path}\n{body[:600].decode(errors='replace')}",
                            headers=_headers(resp))
        while True:
            n = resp.readinto(buf)
            if not n:
                break
            nbytes += n
    finally:
        conn.close()
    return Transfer(nbytes, time.perf_counter() - t0, _thread_cpu() - cpu0, resp.status,
                    etag=resp.getheader("ETag", ""), headers=_headers(resp))


def parallel_requests(method: str, urls: list[str], body: bytes = b"", threads: int = 8) -> list[str]:
    """Send one presigned request per URL on ``threads`` keep-alive connections.

    Returns the non-2xx answers as "HTTP <status> for <METHOD> <path>\\n<body>" strings.
    """
    local = threading.local()
    errors: list[str] = []

    def one(url: str) -> None:
        host, port, path = _split(url)
        for attempt in (1, 2):  # one retry on a fresh connection if keep-alive was dropped
            conn = getattr(local, "conn", None) or http.client.HTTPConnection(host, port, timeout=60)
            local.conn = conn
            try:
                conn.request(method, path, body=body if method in ("PUT", "POST") else None)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                local.conn = None
                if attempt == 2:
                    raise
        if not 200 <= resp.status <= 299:
            errors.append(f"HTTP {resp.status} for {method} {path}\n{data[:600].decode(errors='replace')}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, urls))
    return errors
