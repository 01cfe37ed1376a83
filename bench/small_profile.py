"""Small requests in-process: the CPU one presigned 1 KiB PUT, GET, HEAD or DELETE costs
the WSGI app (middleware, routing, SigV4, metadata, storage, access log), without
gunicorn and the network.

Every request is signed beforehand with its own presigned URL (as the ``small``
scenario sends them) and handed to the app as a WSGI environ; only the app's CPU
is timed. The server's settings are the embedded defaults on a temporary directory
(SQLite synchronous=FULL, fsync on, access log on unless --no-access-log).

    .venv/bin/python -m bench.small_profile                    # CPU us a request, by operation
    .venv/bin/python -m bench.small_profile --profile 30 --op head   # plus cProfile's top 30
    .venv/bin/python -m bench.small_profile --pyspy head       # run HEADs in a loop for py-spy
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bleepstore_app import create_app
from bleepstore_app.config import load_settings
from bleepstore_app.recovery import recover

BUCKET = "bench-small"
HOST = "127.0.0.1:9000"


def _settings(root: Path, engine_url: str | None):
    overrides = {"metadata.sqlite.path": str(root / "m.db"), "storage.local.root_dir": str(root / "o")}
    if engine_url:
        overrides.update({"metadata.engine": "postgresql", "metadata.postgresql.url": engine_url})
    return load_settings(environ={}, overrides=overrides)


def _environ(method: str, url: str, body: bytes = b"") -> dict:
    parts = urlsplit(url)
    return {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "RAW_URI": parts.path + ("?" + parts.query if parts.query else ""), "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "9000", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": HOST, "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "50000", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0), "HTTP_USER_AGENT": "bench",
            **({"CONTENT_LENGTH": str(len(body))} if method == "PUT" else {})}


class Bench:
    def __init__(self, root: Path, engine_url: str | None, size: int) -> None:
        import boto3
        from botocore.config import Config
        settings = _settings(root, engine_url)
        recover(settings)
        self.app = create_app(settings=settings)
        cred = settings.credentials[0]
        self.s3 = boto3.client("s3", endpoint_url=f"http://{HOST}", region_name="us-east-1",
                               aws_access_key_id=cred.access_key, aws_secret_access_key=cred.secret_key,
                               config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        self.body = os.urandom(size)
        self.status = ""
        status = self.call("PUT", self.s3.generate_presigned_url("create_bucket", Params={"Bucket": BUCKET}), b"")
        assert status.startswith("200"), (status, self.last)

    def _start(self, status, headers, exc_info=None):
        self.status = status

    def call(self, method: str, url: str, body: bytes | None = None) -> str:
        body = (self.body if method == "PUT" else b"") if body is None else body
        response = self.app(_environ(method, url, body), self._start)
        try:
            self.last = b"".join(response)
        finally:
            response.close()  # as a WSGI server does: the access log line and the metrics are written here
        return self.status

    def urls(self, op: str, keys: list[str]) -> list[tuple[str, str]]:
        client_method, method = {"put": ("put_object", "PUT"), "get": ("get_object", "GET"),
                                 "head": ("head_object", "HEAD"), "delete": ("delete_object", "DELETE")}[op]
        return [(method, self.s3.generate_presigned_url(client_method, ExpiresIn=3600,
                                                          Params={"Bucket": BUCKET, "Key": k})) for k in keys]

    def run(self, requests: list[tuple[str, str]], want: str) -> float:
        began = time.process_time()
        for method, url in requests:
            status = self.call(method, url)
            assert status.startswith(want), (method, status)
        return (time.process_time() - began) / len(requests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--database-url", help="PostgreSQL metadata (a database the bench may fill)")
    ap.add_argument("--op", default="head", choices=["put", "get", "head", "delete"], help="what --profile profiles")
    ap.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions")
    ap.add_argument("--sort", default="cumulative")
    ap.add_argument("--no-access-log", action="store_true")
    ap.add_argument("--pyspy", choices=["put", "get", "head", "delete"],
                    help="repeat this operation for a minute (attach py-spy to the pid printed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), args.database_url, args.size)
        logging.getLogger("bleepstore.access").disabled = args.no_access_log
        logging.getLogger().handlers[:] = [logging.NullHandler()]  # the log line is built, not printed
        keys = [f"obj-{i:06d}" for i in range(args.requests)]
        plan = {op: bench.urls(op, keys) for op in ("put", "get", "head", "delete")}
        want = {"put": "200", "get": "200", "head": "200", "delete": "204"}
        warm = bench.urls("put", ["warm"]) + bench.urls("get", ["warm"]) * 50 + bench.urls("head", ["warm"]) * 50
        bench.run(warm, "2")
        if args.pyspy:
            bench.run(plan["put"], "200")
            print(f"pid {os.getpid()}: {args.pyspy} in a loop for a minute", flush=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                bench.run(plan[args.pyspy], want[args.pyspy])
                if args.pyspy == "delete":
                    bench.run(plan["put"], "200")
            return
        profiled = None
        for op in ("put", "get", "head", "delete"):  # in this order: the deletes remove what the puts stored
            prof = cProfile.Profile() if args.profile and op == args.op else None
            if prof is not None:
                prof.enable()
            cpu = bench.run(plan[op], want[op])
            if prof is not None:
                prof.disable()
                profiled = prof
            note = " (under cProfile, which inflates it)" if prof is not None else ""
            print(f"{op:6s} {cpu * 1e6:7.0f} us CPU a request{note}")
        if profiled is not None:
            pstats.Stats(profiled).sort_stats(args.sort).print_stats(args.profile)


if __name__ == "__main__":
    main()
