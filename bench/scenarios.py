"""The scenarios. Each method of ``Bench`` runs one and returns a report ``Section``.

Every request is authenticated with a presigned URL (SigV4 query auth, made by
boto3's ``generate_presigned_url``, ExpiresIn=3600). Request files live in a
temporary work directory; buckets are named ``bench-*``.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from .large import Transfer, parallel_requests, stream_get, stream_put
from .report import MIB, Row, Section
from .server import EmbeddedServer, ProcessSampler, Target, Window, process_tree, tree_rss_bytes
from .wrk import WrkResult, run_head, run_wrk, write_paths

EXPIRES = 3600
OPS = {"PUT": "put_object", "GET": "get_object", "HEAD": "head_object", "DELETE": "delete_object"}
READ_KEYS = 2000          # distinct keys cycled through by GET and HEAD runs
DEFAULT_RATE = 1000.0     # ops/s guess before anything was measured


def parse_size(text: str) -> int:
    """'1K', '64KiB', '256M', '1G', '4096' -> bytes."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def size_label(n: int) -> str:
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} B"


@dataclass
class Options:
    duration: float = 10.0
    repeat: int = 3
    small_sizes: list[int] = field(default_factory=lambda: [1024, 64 * 1024])
    concurrency: list[int] = field(default_factory=lambda: [1, 16])
    ops: list[str] = field(default_factory=lambda: ["PUT", "GET", "HEAD", "DELETE"])
    large_sizes: list[int] = field(default_factory=lambda: [256 << 20, 1 << 30])
    list_keys: int = 10_000
    list_page: int = 1000
    max_urls: int = 60_000
    workers: int = 2
    data_parent: str | None = None
    sse_size: int = 1 << 30
    sse_modes: list[str] = field(default_factory=lambda: ["none", "SSE-S3", "SSE-C"])


def wrk_threads(conc: int) -> int:
    """wrk threads for a concurrency: one, or two (this is sized for small machines)."""
    return 1 if conc <= 1 else 2


def median_index(values: list[float]) -> int:
    order = sorted(range(len(values)), key=values.__getitem__)
    return order[len(order) // 2]


class Bench:
    """Runs scenarios against one ``Target``, sampling the server with ``sampler``."""

    def __init__(self, target: Target, sampler: ProcessSampler, opts: Options, workdir: Path,
                 data_dir: str | None = None) -> None:
        self.target, self.sampler, self.opts, self.workdir = target, sampler, opts, workdir
        self.data_dir = data_dir
        self.s3 = target.client()
        self.rates: dict[tuple, float] = {}
        self._files = 0

    # ------------------------------------------------------------------ helpers
    def presign(self, op: str, bucket: str, keys, **params) -> list[str]:
        return [self.s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": k, **params},
                                               ExpiresIn=EXPIRES) for k in keys]

    def bucket(self, name: str) -> str:
        try:
            self.s3.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [o["Key"] for o in page.get("Contents", [])]
        return found

    def put_many(self, bucket: str, keys: list[str], size: int) -> None:
        """Create objects with presigned PUTs on a thread pool; raise on any failure."""
        errors = parallel_requests("PUT", self.presign("put_object", bucket, keys), body=b"b" * size)
        if errors:
            raise RuntimeError(f"populating {bucket}: {len(errors)} PUTs failed; first:\n{errors[0]}")

    def paths_file(self, name: str, urls: list[str]) -> Path:
        self._files += 1
        path = self.workdir / f"{self._files:03d}-{name}.paths"
        write_paths(path, urls)
        return path

    def count(self, rate: float | None) -> int:
        """URLs for one run at ``rate`` ops/s: 1.5x what the run should use, capped."""
        rate = rate or DEFAULT_RATE
        return int(min(self.opts.max_urls, max(200, rate * self.opts.duration * 1.5 + 100)))

    def load(self, method: str, paths: Path, body: int, conc: int) -> tuple[WrkResult, Window]:
        self.sampler.begin()
        if method == "HEAD":
            result = run_head(self.target.endpoint, paths, conc, self.opts.duration)
        else:
            result = run_wrk(self.target.endpoint, paths, method, body, wrk_threads(conc), conc,
                             self.opts.duration)
        return result, self.sampler.end()

    @staticmethod
    def row(op: str, size: str, conc: int, runs: list[tuple[WrkResult, Window]], distinct: bool) -> Row:
        """A table row from repeats: the median by ops/s, errors summed over all repeats."""
        ops = [r.ops for r, _ in runs]
        res, win = runs[median_index(ops)]
        row = Row(op, size, str(conc), ops, p50_ms=res.percentile_ms("50"), p99_ms=res.percentile_ms("99"),
                  server_cpu_s=win.cpu_seconds, server_peak_rss=win.peak_rss,
                  client_cpu_s=res.client_cpu_s, errors=sum(r.errors for r, _ in runs),
                  command=res.command, first_error=next((r.first_error for r, _ in runs if r.first_error), ""))
        wraps = sum(r.wraps for r, _ in runs)
        if distinct and wraps:
            what = "overwrote keys" if op == "PUT" else "deleted already-deleted keys"
            row.notes.append(f"ran out of distinct keys ({wraps} wrap-arounds): some requests {what}; "
                             "raise --max-urls")
        return row

    # ------------------------------------------------------------------ small objects
    def small(self) -> Section:
        sec = Section("Small objects: PUT, GET, HEAD, DELETE")
        sec.text.append(
            "Each PUT and DELETE request uses its own key; GET and HEAD cycle over up to "
            f"{READ_KEYS} existing keys. PUT/GET/DELETE are driven by wrk; HEAD by "
            "`bench.headload`, because wrk cannot parse HEAD responses (wg/wrk#198).")
        for size in self.opts.small_sizes:
            bucket = self.bucket(f"bench-small-{size}")
            label = size_label(size)
            for conc in self.opts.concurrency:
                prefix = f"c{conc}/"
                for op in ("PUT", "GET", "HEAD", "DELETE"):
                    if op not in self.opts.ops:
                        continue
                    runs = []
                    for rep in range(1, self.opts.repeat + 1):
                        paths = self._small_paths(op, bucket, prefix, size, conc, rep)
                        runs.append(self.load(op, paths, size if op == "PUT" else 0, conc))
                        self.rates[(op, size, conc)] = runs[-1][0].ops
                    sec.rows.append(self.row(op, label, conc, runs, distinct=op in ("PUT", "DELETE")))
        return sec

    def _small_paths(self, op: str, bucket: str, prefix: str, size: int, conc: int, rep: int) -> Path:
        tag = f"{op.lower()}-{size}-c{conc}-r{rep}"
        if op == "PUT":
            rate = self.rates.get(("PUT", size, conc))
            if rate is None:  # borrow another PUT's rate, with room for a faster run (c=16 ran 2.7x c=1)
                rate = 4 * max((v for (o, _, _), v in self.rates.items() if o == "PUT"), default=DEFAULT_RATE)
            keys = [f"{prefix}r{rep}/{i:07d}" for i in range(self.count(rate))]
            return self.paths_file(tag, self.presign("put_object", bucket, keys))
        existing = self.keys(bucket, prefix)
        if op in ("GET", "HEAD"):
            if len(existing) < min(READ_KEYS, 200):
                missing = min(READ_KEYS, 200) - len(existing)
                fill = [f"{prefix}fill-{op}-{i:07d}" for i in range(missing)]
                self.put_many(bucket, fill, size)
                existing += fill
            return self.paths_file(tag, self.presign(OPS[op], bucket, existing[:READ_KEYS]))
        # DELETE: delete existing objects; top up with at most ~2 runs' worth of PUT work.
        put_rate = self.rates.get(("PUT", size, conc))
        want = self.count(self.rates.get(("DELETE", size, conc)) or (put_rate or DEFAULT_RATE) * 2)
        if len(existing) < want:
            budget = int((put_rate or DEFAULT_RATE) * self.opts.duration * 2)
            extra = [f"{prefix}del-r{rep}/{i:07d}" for i in range(min(want - len(existing), budget))]
            self.put_many(bucket, extra, size)
            existing += extra
        return self.paths_file(tag, self.presign("delete_object", bucket, existing[:want]))

    # ------------------------------------------------------------------ large objects
    def large(self) -> Section:
        sec = Section("Large objects: single-stream PUT and GET", unit="MiB/s", conc_header="streams")
        sec.text.append(
            "One request at a time over Python `http.client`: PUT sends the body from a generator "
            "of 1 MiB chunks with Content-Length; GET reads the body 1 MiB at a time into one "
            "buffer and discards it. p50/p99 are not applicable (one request per run).")
        bucket = self.bucket("bench-large")
        for size in self.opts.large_sizes:
            label = size_label(size)
            if self.data_dir:
                free = shutil.disk_usage(self.data_dir).free
                if free < size * 1.2:
                    sec.text.append(f"- {label}: skipped, only {free / MIB:,.0f} MiB free in the data dir")
                    continue
            puts, gets = [], []
            for rep in range(1, self.opts.repeat + 1):
                key = f"large/{label.replace(' ', '')}/r{rep}"
                url = self.presign("put_object", bucket, [key])[0]
                puts.append(self._transfer(lambda: stream_put(url, size)))
                url = self.presign("get_object", bucket, [key])[0]
                gets.append(self._transfer(lambda: stream_get(url)))
                if gets[-1][0].nbytes != size and not gets[-1][0].error:
                    gets[-1][0].error = f"GET returned {gets[-1][0].nbytes} bytes, expected {size}"
                parallel_requests("DELETE", self.presign("delete_object", bucket, [key]))
            key = f"large/{label.replace(' ', '')}/r<N>"
            sec.rows.append(self._transfer_row("PUT", label, puts,
                            f"python -c \"from bench.large import stream_put; stream_put(URL, {size})\""
                            f"  # URL = presigned put_object bench-large/{key}"))
            sec.rows.append(self._transfer_row("GET", label, gets,
                            "python -c \"from bench.large import stream_get; stream_get(URL)\""
                            f"  # URL = presigned get_object bench-large/{key}"))
        return sec

    def _transfer(self, fn, sampler: ProcessSampler | None = None) -> tuple[Transfer, Window]:
        sampler = sampler or self.sampler
        sampler.begin()
        t = fn()
        return t, sampler.end()

    @staticmethod
    def _transfer_row(op: str, label: str, runs: list[tuple[Transfer, Window]], command: str) -> Row:
        rates = [t.mib_s for t, _ in runs]
        t, w = runs[median_index(rates)]
        row = Row(op, label, "1", rates, server_cpu_s=w.cpu_seconds, server_peak_rss=w.peak_rss,
                  client_cpu_s=t.client_cpu_s, errors=sum(1 for x, _ in runs if x.error),
                  command=command, first_error=next((x.error for x, _ in runs if x.error), ""))
        row.notes.append("seconds per run: " + ", ".join(f"{x.seconds:.2f}" for x, _ in runs))
        return row

    # ------------------------------------------------------------------ server-side encryption
    def sse(self, own_server: bool = True) -> Section:
        """Single-stream PUT and GET of one large object (``sse_size``) in each of
        ``sse_modes``: unencrypted, SSE-S3, SSE-KMS (the managed key), SSE-C. On a
        server of its own with one gevent worker (``own_server``), else on the
        target; worker CPU and peak RSS are the workers' (the master excluded)."""
        size, label = self.opts.sse_size, size_label(self.opts.sse_size)
        sec = Section(f"Server-side encryption: single-stream PUT and GET of {label}, one worker",
                      unit="MiB/s", conc_header="streams")
        server = None
        if own_server:
            # SSE-C is refused over plain HTTP unless a TLS proxy in front says https:
            # the harness sends X-Forwarded-Proto: https, which the worker believes from
            # 127.0.0.1 (gunicorn's default FORWARDED_ALLOW_IPS), as from a proxy on this host.
            server = EmbeddedServer(workers=1, parent_dir=self.opts.data_parent)
            server.start()
            target, data_dir = server.target, str(server.data_dir)
            sec.text.append(
                f"A `bleepstore serve` of its own with **1 gevent worker** (one worker runs Python on one "
                "core at a time), SQLite, local disk with fsync on; "
                "SSE-S3 and SSE-KMS data keys wrapped by the server's own master key (sse-master.key, made "
                f"on first start). Started in {server.startup_seconds:.2f} s.")
        else:
            target, data_dir = self.target, self.data_dir
            sec.text.append("On the `--endpoint` server as it runs (its worker count is its own); worker RSS and "
                            "CPU need `--server-pid`.")
        sampler = ProcessSampler(target.pid, workers_only=True)
        try:
            self._sse_runs(sec, target, data_dir, sampler, size, label)
        finally:
            sampler.close()
            if server:
                server.cleanup()
        return sec

    def _sse_runs(self, sec: Section, target: Target, data_dir: str | None, sampler: ProcessSampler,
                  size: int, label: str) -> None:
        s3 = target.client()
        bucket = "bench-sse"
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if data_dir:
            free = shutil.disk_usage(data_dir).free
            if free < size * 1.2:
                sec.text.append(f"Skipped: only {free / MIB:,.0f} MiB free in the data dir, {label} needed.")
                return
        sec.text += [""]
        sec.text.append(
            "PUT streams the body from a generator of 1 MiB chunks with Content-Length, GET reads it 1 MiB at a "
            "time and discards it (as the large scenario), through presigned URLs that sign the SSE headers, "
            "which the harness then sends. Each run checks the answer names the mode (else it counts as an "
            "error: the object was not stored as asked). \"worker\" CPU s and peak RSS are the worker "
            "process's only (sampled every 100 ms), not the master's; cores = worker CPU s / wall s.")
        customer = os.urandom(32)
        summary: dict[str, dict[str, tuple[Transfer, Window]]] = {}
        for mode in self.opts.sse_modes:
            put_params, put_headers, get_params, get_headers, echo = _sse_request(mode, customer)
            puts, gets = [], []
            for rep in range(1, self.opts.repeat + 1):
                key = f"sse/{mode}/{label.replace(' ', '')}/r{rep}"
                url = s3.generate_presigned_url("put_object", ExpiresIn=EXPIRES,
                                                Params={"Bucket": bucket, "Key": key, **put_params})
                puts.append(self._transfer(lambda: stream_put(url, size, headers=put_headers), sampler))
                _check_echo(puts[-1][0], echo, "PUT")
                url = s3.generate_presigned_url("get_object", ExpiresIn=EXPIRES,
                                                Params={"Bucket": bucket, "Key": key, **get_params})
                gets.append(self._transfer(lambda: stream_get(url, headers=get_headers), sampler))
                got = gets[-1][0]
                if not got.error and got.nbytes != size:
                    got.error = f"GET returned {got.nbytes} bytes, expected {size}"
                _check_echo(got, echo, "GET")
                if not puts[-1][0].error and puts[-1][0].etag != got.etag:
                    got.error = got.error or f"GET ETag {got.etag} differs from the PUT's {puts[-1][0].etag}"
                parallel_requests("DELETE", [s3.generate_presigned_url(
                    "delete_object", ExpiresIn=EXPIRES, Params={"Bucket": bucket, "Key": key})])
            what = {"none": "unencrypted", "SSE-S3": "x-amz-server-side-encryption: AES256",
                    "SSE-KMS": "x-amz-server-side-encryption: aws:kms (managed key)",
                    "SSE-C": "x-amz-server-side-encryption-customer-* (a random 32-byte key)"}[mode]
            for op, runs, fn in (("PUT", puts, f"stream_put(URL, {size}, headers=H)"),
                                 ("GET", gets, "stream_get(URL, headers=H)")):
                row = self._transfer_row(f"{op} {mode}", label, runs,
                                         f"python -c \"from bench.large import {fn.split('(')[0]}; {fn}\""
                                         f"  # URL = presigned {op.lower()}_object bench-sse/sse/{mode}/..., "
                                         f"H = {what}")
                sec.rows.append(row)
            summary[mode] = {"PUT": _median_run(puts), "GET": _median_run(gets)}
        sec.text += ["", *_sse_table(summary), ""]

    # ------------------------------------------------------------------ listing
    def listing(self) -> Section:
        n, page = self.opts.list_keys, self.opts.list_page
        sec = Section(f"ListObjectsV2: {page} keys a page over a {n:,}-key bucket", unit="pages/s")
        bucket = self.bucket(f"bench-list-{n}")
        keys = [f"key-{i:07d}" for i in range(n)]
        have = set(self.keys(bucket))
        missing = [k for k in keys if k not in have]
        began = time.monotonic()
        if missing:
            self.put_many(bucket, missing, 16)
        sec.text.append(f"Populated {len(missing):,} keys (16-byte objects) with presigned PUTs on 8 "
                        f"threads in {time.monotonic() - began:.1f} s. Each request asks for MaxKeys={page} "
                        "with StartAfter at a different key, so the pages differ.")
        starts = sorted({int(i * max(0, n - page) / 999) for i in range(1000)}) if n > page else [0]
        urls = [self.s3.generate_presigned_url(
            "list_objects_v2", ExpiresIn=EXPIRES,
            Params={"Bucket": bucket, "MaxKeys": page, **({"StartAfter": keys[s - 1]} if s else {})})
            for s in starts]
        sec.text.append(self._check_page(urls[len(urls) // 2], min(page, n)))
        paths = self.paths_file(f"list-{n}", urls)
        for conc in self.opts.concurrency:
            runs = [self.load("GET", paths, 0, conc) for _ in range(self.opts.repeat)]
            sec.rows.append(self.row("LIST", f"{page} keys", conc, runs, distinct=False))
        return sec

    # ------------------------------------------------------------------ versions
    def versions(self, versions_per_key: int = 3) -> Section:
        """ListObjectVersions and ListObjectsV2 over a versioned bucket of
        list_keys keys x 3 versions (compare ListObjectsV2 with the `list` scenario)."""
        n, page = self.opts.list_keys, self.opts.list_page
        sec = Section(f"Versioned bucket: {n:,} keys x {versions_per_key} versions, {page} entries a page",
                      unit="pages/s")
        bucket = self.bucket(f"bench-versions-{n}")
        self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        keys = [f"key-{i:07d}" for i in range(n)]
        have = sum(len(p.get("Versions", [])) for p in
                   self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket))
        began = time.monotonic()
        if have < n * versions_per_key:
            for _ in range(versions_per_key):
                self.put_many(bucket, keys, 16)
        sec.text.append(f"Populated {n * versions_per_key:,} versions (16-byte objects) with presigned PUTs on 8 "
                        f"threads in {time.monotonic() - began:.1f} s. Each request starts at a different key.")
        starts = sorted({int(i * max(0, n - page) / 999) for i in range(1000)}) if n > page else [0]
        version_urls = [self.s3.generate_presigned_url(
            "list_object_versions", ExpiresIn=EXPIRES,
            Params={"Bucket": bucket, "MaxKeys": page, **({"KeyMarker": keys[s - 1]} if s else {})})
            for s in starts]
        list_urls = [self.s3.generate_presigned_url(
            "list_objects_v2", ExpiresIn=EXPIRES,
            Params={"Bucket": bucket, "MaxKeys": page, **({"StartAfter": keys[s - 1]} if s else {})})
            for s in starts]
        sec.text.append(self._check_page(version_urls[len(version_urls) // 2], min(page, n * versions_per_key)))
        sec.text.append(self._check_page(list_urls[len(list_urls) // 2], min(page, n)))
        for label, urls in (("LISTVERSIONS", version_urls), ("LIST", list_urls)):
            paths = self.paths_file(f"versions-{label}-{n}", urls)
            for conc in self.opts.concurrency:
                runs = [self.load("GET", paths, 0, conc) for _ in range(self.opts.repeat)]
                sec.rows.append(self.row(label, f"{page} entries", conc, runs, distinct=False))
        return sec

    def _check_page(self, url: str, expect: int) -> str:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            conn.request("GET", f"{parts.path}?{parts.query}")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        got = body.count(b"<Key>")  # Contents, Version and DeleteMarker entries alike
        if resp.status != 200 or got != expect:
            return (f"**Page check failed**: HTTP {resp.status}, {got} keys (expected {expect}):\n\n```\n"
                    f"{body[:600].decode(errors='replace')}\n```")
        return f"Page check: a sample page returned HTTP 200 with {got} keys ({len(body):,} bytes of XML)."

    # ------------------------------------------------------------------ start-up
    def startup(self) -> Section:
        sec = Section("Start-up")
        times, rss, procs = [], [], []
        cmd = ""
        for _ in range(self.opts.repeat):
            srv = EmbeddedServer(workers=self.opts.workers, parent_dir=self.opts.data_parent)
            try:
                srv.start()
                times.append(srv.startup_seconds)
                time.sleep(2.0)  # let every worker finish booting
                rss.append(tree_rss_bytes(srv.proc.pid))
                procs.append(len(process_tree(srv.proc.pid)))
                cmd = " ".join(srv.command)
            finally:
                srv.cleanup()
        mid = median_index(times)
        sec.text += [
            "| metric | median | runs |", "|---|--:|---|",
            f"| process start → first successful signed request (s) | {times[mid]:.3f} | "
            + ", ".join(f"{t:.3f}" for t in times) + " |",
            f"| idle RSS 2 s after start-up, master + workers (MiB) | {sorted(rss)[len(rss) // 2] / MIB:,.0f} | "
            + ", ".join(f"{r / MIB:,.0f}" for r in rss) + " |",
            "",
            f"Fresh empty data directory each time, {self.opts.workers} workers, {procs[mid]} processes. "
            "The signed request is a presigned ListBuckets (GET /), polled every 10 ms; the first "
            "success means one worker is serving. Command (environment as in the header):",
            "", "```", f"{cmd.replace(str(Path(cmd.split()[0]).parent) + '/', '.venv/bin/')}", "```"]
        return sec

    # ------------------------------------------------------------------ multipart
    def multipart(self, size: int = 1 << 30, part: int = 8 << 20, conc: int = 8) -> Section:
        """1 GiB multipart upload of 8 MiB parts, 8 part uploads at once.

        Creates the upload with boto3, PUTs the parts through presigned
        upload_part URLs on ``conc`` threads (each streamed like ``stream_put``),
        completes with boto3, and reports MiB/s for the whole (create to complete).
        Any failure is reported with the server's answer.
        """
        sec = Section("Multipart upload", unit="MiB/s", conc_header="parts in flight")
        bucket, key = self.bucket("bench-multipart"), "multipart/object"
        label = f"{size_label(size)} in {size_label(part)} parts"
        self.sampler.begin()
        t0 = time.perf_counter()
        error = ""
        try:
            upload = self.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            nparts = -(-size // part)
            urls = [self.s3.generate_presigned_url(
                "upload_part", ExpiresIn=EXPIRES,
                Params={"Bucket": bucket, "Key": key, "UploadId": upload, "PartNumber": i + 1})
                for i in range(nparts)]
            with ThreadPoolExecutor(conc) as pool:
                parts = list(pool.map(lambda i: stream_put(urls[i], min(part, size - i * part)), range(nparts)))
            error = next((p.error for p in parts if p.error), "")
            if not error:
                self.s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload,
                    MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": p.etag} for i, p in enumerate(parts)]})
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            error = f"HTTP {meta.get('HTTPStatusCode')}: {exc}"
        seconds = time.perf_counter() - t0
        win = self.sampler.end()
        sec.rows.append(Row("multipart PUT", label, str(conc), [0.0 if error else size / MIB / seconds],
                            server_cpu_s=win.cpu_seconds, server_peak_rss=win.peak_rss,
                            errors=1 if error else 0, first_error=error,
                            command="bench.scenarios.Bench.multipart (boto3 create/complete, presigned "
                                    "upload_part PUTs on a thread pool)"))
        return sec


# --------------------------------------------------------------------------- SSE helpers

SSE_MODES = ("none", "SSE-S3", "SSE-KMS", "SSE-C")


def _sse_request(mode: str, customer: bytes) -> tuple[dict, dict, dict, dict, dict]:
    """(PUT presign params, PUT headers, GET params, GET headers, response headers
    expected on both) for one mode. The headers are those boto3 signs for the params."""
    if mode == "none":
        return {}, {}, {}, {}, {}
    if mode == "SSE-S3":
        h = {"x-amz-server-side-encryption": "AES256"}
        return {"ServerSideEncryption": "AES256"}, h, {}, {}, h
    if mode == "SSE-KMS":
        h = {"x-amz-server-side-encryption": "aws:kms"}
        return {"ServerSideEncryption": "aws:kms"}, h, {}, {}, {"x-amz-server-side-encryption": "aws:kms"}
    if mode == "SSE-C":
        md5 = base64.b64encode(hashlib.md5(customer).digest()).decode()
        params = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": customer}
        h = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
             "x-amz-server-side-encryption-customer-key": base64.b64encode(customer).decode(),
             "x-amz-server-side-encryption-customer-key-MD5": md5,
             "X-Forwarded-Proto": "https"}  # as a TLS-terminating proxy would say (not signed)
        echo = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                "x-amz-server-side-encryption-customer-key-md5": md5}
        return params, h, params, h, echo
    raise ValueError(f"unknown SSE mode {mode!r}; known: {', '.join(SSE_MODES)}")


def _check_echo(t: Transfer, echo: dict, op: str) -> None:
    """An error unless the answer carries the SSE headers of its mode (and, for
    the unencrypted mode, none)."""
    if t.error:
        return
    for name, value in echo.items():
        if t.headers.get(name.lower()) != value:
            t.error = f"{op} answered {name}: {t.headers.get(name.lower())!r}, expected {value!r}"
            return
    if not echo and any(h.startswith("x-amz-server-side-encryption") for h in t.headers):
        t.error = f"{op} of an unencrypted object answered SSE headers: {t.headers}"


def _median_run(runs: list[tuple[Transfer, Window]]) -> tuple[Transfer, Window]:
    return runs[median_index([t.mib_s for t, _ in runs])]


def _sse_table(summary: dict[str, dict[str, tuple[Transfer, Window]]]) -> list[str]:
    """The comparison: each mode's median MiB/s, against unencrypted, with the worker's CPU and peak RSS."""
    def rss(w: Window) -> str:
        return "n/a" if w.peak_rss is None else f"{w.peak_rss / MIB:,.0f}"

    def cores(t: Transfer, w: Window) -> str:
        return "n/a" if w.cpu_seconds is None or not t.seconds else f"{w.cpu_seconds / t.seconds:.2f}"

    out = ["| mode | PUT MiB/s | vs none | GET MiB/s | vs none | PUT worker CPU s (cores) | GET worker CPU s (cores) "
           "| PUT worker peak RSS MiB | GET worker peak RSS MiB |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    base = summary.get("none")
    for mode, ops in summary.items():
        cells = [mode]
        for op in ("PUT", "GET"):
            t, _ = ops[op]
            ref = base[op][0].mib_s if base else 0.0
            cells += [f"{t.mib_s:,.0f}" if not t.error else "failed",
                      f"{t.mib_s / ref:.2f}x" if ref and not t.error else "–"]
        for op in ("PUT", "GET"):
            t, w = ops[op]
            cells.append("n/a" if w.cpu_seconds is None else f"{w.cpu_seconds:.2f} ({cores(t, w)})")
        cells += [rss(ops["PUT"][1]), rss(ops["GET"][1])]
        out.append("| " + " | ".join(cells) + " |")
    return out
