"""A lean HEAD load generator, because wrk cannot do HEAD (wg/wrk#198).

wrk's HTTP parser is never told that a response answers a HEAD request, so it
waits for the Content-Length bytes of a body that never comes and the
connection stalls. This driver does only what wrk does for us elsewhere: keep
``-c`` keep-alive connections busy with pre-built requests for ``-d`` seconds,
one request in flight per connection, in a single thread on ``selectors``,
and print the same ``BENCH_JSON`` line as ``wrk_script.lua``'s done(), so
``bench.wrk`` parses both alike.

    python -m bench.headload http://127.0.0.1:9010 PATHS_FILE -c 16 -d 10

Responses are read up to the blank line that ends the headers; a HEAD response
has no body whatever its Content-Length says. A connection the server closes
(``Connection: close``) is reopened, as wrk does; a request unanswered for 30 s
counts as a timeout.
"""
from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit

TIMEOUT = 30.0  # seconds, like the harness's wrk --timeout


def percentile(sorted_values: list[int], p: float) -> int:
    if not sorted_values:
        return 0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Conn:
    """One keep-alive connection and the request it has in flight."""

    def __init__(self, addr, requests: list[bytes], start: int, step: int) -> None:
        self.addr, self.requests, self.idx, self.step = addr, requests, start, step
        self.sock: socket.socket | None = None
        self.buf = b""
        self.sent_at = 0.0
        self.current = b""

    def connect(self) -> None:
        self.sock = socket.create_connection(self.addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buf = b""

    def next_request(self) -> tuple[bytes, bool]:
        """The next request line for this connection and whether the list wrapped."""
        req = self.requests[self.idx]
        self.idx += self.step
        wrapped = self.idx >= len(self.requests)
        if wrapped:
            self.idx %= self.step
        return req, wrapped


def run(endpoint: str, paths_file: str, connections: int, duration: float) -> dict:
    parts = urlsplit(endpoint)
    addr = (parts.hostname, parts.port or 80)
    host = parts.netloc
    with open(paths_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    requests = [f"HEAD {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    conns = [Conn(addr, requests, i % len(requests), max(1, connections)) for i in range(connections)]
    sel = selectors.DefaultSelector()
    latencies: list[int] = []
    stats = {"requests": 0, "responses": 0, "non2xx": 0, "wraps": 0, "connect": 0, "read": 0,
             "write": 0, "timeout": 0}
    first_error = ""

    def send(c: Conn) -> None:
        req, wrapped = c.next_request()
        stats["wraps"] += wrapped
        c.current = req
        c.sent_at = time.perf_counter()
        c.sock.sendall(req)  # tiny request: fits the socket buffer
        stats["requests"] += 1

    def reconnect(c: Conn, kind: str | None) -> None:
        if kind:
            stats[kind] += 1
        try:
            sel.unregister(c.sock)
            c.sock.close()
        except (KeyError, ValueError, OSError):
            pass
        c.connect()
        sel.register(c.sock, selectors.EVENT_READ, c)
        send(c)

    began = time.perf_counter()
    deadline = began + duration
    for c in conns:
        c.connect()
        sel.register(c.sock, selectors.EVENT_READ, c)
        send(c)
    while True:
        now = time.perf_counter()
        if now >= deadline:
            break
        for key, _ in sel.select(min(deadline - now, 1.0)):
            c: Conn = key.data
            try:
                chunk = c.sock.recv(65536)
            except OSError:
                reconnect(c, "read")
                continue
            if not chunk:
                reconnect(c, "read")
                continue
            c.buf += chunk
            end = c.buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head, c.buf = c.buf[:end], c.buf[end + 4:]
            latencies.append(int((time.perf_counter() - c.sent_at) * 1e6))
            stats["responses"] += 1
            status = int(head.split(b" ", 2)[1])
            if not 200 <= status <= 299:
                stats["non2xx"] += 1
                if not first_error:
                    first_error = (f"HTTP {status} for {c.current.split(b' ')[0].decode()} "
                                   f"{c.current.split(b' ')[1].decode()}\n{head.decode(errors='replace')}")
            lower = head.lower()
            closing = b"\r\nconnection: close" in lower or (
                lower.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in lower)
            if time.perf_counter() >= deadline:
                continue
            if closing:  # the server ends the connection after this answer: reconnect, as wrk does
                reconnect(c, None)
                continue
            try:
                send(c)
            except OSError:
                reconnect(c, "write")
        now = time.perf_counter()
        for c in conns:  # a request unanswered for TIMEOUT seconds counts as a timeout, as in wrk
            if now - c.sent_at > TIMEOUT:
                reconnect(c, "timeout")
    elapsed = time.perf_counter() - began
    for c in conns:
        c.sock.close()
    latencies.sort()
    n = len(latencies)
    mean = sum(latencies) / n if n else 0.0
    stdev = (sum((x - mean) ** 2 for x in latencies) / n) ** 0.5 if n else 0.0
    return {
        "duration_us": int(elapsed * 1e6), "requests": stats["responses"], "bytes": 0,
        "errors": {"connect": stats["connect"], "read": stats["read"], "write": stats["write"],
                   "status": stats["non2xx"], "timeout": stats["timeout"]},
        "lua": {k: stats[k] for k in ("requests", "responses", "non2xx", "wraps")},
        "threads": [],
        "latency_us": {"min": latencies[0] if n else 0, "max": latencies[-1] if n else 0,
                       "mean": mean, "stdev": stdev,
                       "percentiles": {p: percentile(latencies, float(p)) for p in ("50", "90", "99", "99.9")}},
        "first_error": first_error,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.headload", description=__doc__.split("\n")[0])
    ap.add_argument("endpoint")
    ap.add_argument("paths_file")
    ap.add_argument("-c", "--connections", type=int, default=1)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    args = ap.parse_args(argv)
    result = run(args.endpoint, args.paths_file, args.connections, args.duration)
    sys.stdout.write("BENCH_JSON " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
