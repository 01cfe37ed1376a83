"""Readers racing writers on the same keys: every answer is one committed version.

Writers replace a few hot keys again and again (CompleteMultipartUpload of two parts
of different sizes, PutObject inline and as a blob, CopyObject onto the key) while
readers GET them whole, by Range (across the part boundary too), by partNumber, HEAD
them, CopyObject them elsewhere and UploadPartCopy them into new uploads. Every
version the test writes has distinct bytes (each 4 KiB block starts with
``<v{version}.{part}@{offset}>``), so an answer maps back, by its ETag, to the one
version it must be: its Content-Length, Content-Range and every byte must be that
version's. A reader that takes the row of one version and the parts of another
shows up here as a body that is not its ETag's, or as a response shorter than its
Content-Length (the client waits for the rest until its read timeout).

Then the deferred-deletion rule, deterministically: a slow reader keeps a GET open
while the key is overwritten and deleted, and must still get every byte (the blobs
it reads stay until their grace has passed); and the sweeper, with a grace of 1 s,
leaves storage holding exactly the blobs the metadata points at.

Each run prints its seed; BLEEPSTORE_TEST_SEED=<seed> replays the same schedule of
choices (thread timing still varies). BLEEPSTORE_TEST_RACE_SECONDS (default 10) and
BLEEPSTORE_TEST_RACE_GATEWAY_SECONDS (default 5) bound each race.
"""
from __future__ import annotations

import gc
import hashlib
import http.client
import os
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError

from ..conftest import ENGINES, GATEWAY_EMULATORS, GATEWAYS, make_client
from ..servers import Server, write_config

pytestmark = pytest.mark.slow

KiB, MiB = 1024, 1024 * 1024
PART = 5 * MiB                      # S3's (and the server's) smallest non-last part
INLINE_MAX = 16 * KiB               # storage.inline_max_size on local storage
READ_TIMEOUT = 6                    # seconds without a byte: the server hung the response
LOCAL_SECONDS = float(os.environ.get("BLEEPSTORE_TEST_RACE_SECONDS", "10"))
GATEWAY_SECONDS = float(os.environ.get("BLEEPSTORE_TEST_RACE_GATEWAY_SECONDS", "5"))
SEED = int(os.environ.get("BLEEPSTORE_TEST_SEED") or random.SystemRandom().randrange(10 ** 9))
PARAMS = ENGINES + [f"sqlite+{g}" for g in GATEWAYS]
# The race runs with the sweeper on: every second, deleting what was unlinked more
# than 8 s before (far longer than any read here takes), so deletions meet reads.
# Durability is not what the race is about: without fsync a replacement commits
# sooner, and more of them meet the readers.
RACE_SWEEP = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "8", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "1",
              "BLEEPSTORE_STORAGE_LOCAL_FSYNC": "false", "BLEEPSTORE_METADATA_SQLITE_SYNCHRONOUS": "NORMAL"}
# The deferred-deletion tests: the production grace (an hour), the sweeper running
# every second all the same; a reader's blobs must outlast an overwrite and a delete.
HOUR_GRACE = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "3600", "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "1"}
HOT = ("hot/0", "hot/1")
# UploadPartCopy's ranged variant copies this span (end exclusive): it always crosses
# a multipart version's part boundary (part 1 is PART + 0..4095 bytes).
UPC_SPAN = (PART - 4096, PART + 8192)


def _rerun(seed: int) -> str:
    return f"seed {seed} (rerun: BLEEPSTORE_TEST_SEED={seed})"


# -- versions: distinguishable bytes, and the answers they allow -------------------------

BLOCK = 4096
HEADER = re.compile(rb"<v(\d{6})\.(\d)@(\d{10})>")
HEADER_LEN = 22


@lru_cache(maxsize=24)
def content(vid: int, part: int, size: int) -> bytes:
    """Part ``part`` of version ``vid``: 4 KiB blocks, each led by its own label."""
    pad = bytes([97 + (vid * 7 + part) % 26]) * (BLOCK - HEADER_LEN)
    labels = [b"<v%06d.%d@%010d>" % (vid, part, offset) for offset in range(0, size, BLOCK)]
    return (pad.join(labels) + pad)[:size]


@dataclass(frozen=True)
class Version:
    vid: int
    sizes: tuple[int, ...]   # its parts' sizes (one entry: a single-part object)
    multipart: bool
    etag: str
    md5: str                 # of the whole body
    span_md5: str | None     # of body[UPC_SPAN], when the body is that long

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def part(self, number: int) -> bytes:
        return content(self.vid, number, self.sizes[number - 1])

    def body(self) -> bytes:
        return _body(self.vid, self.sizes)

    def offset(self, number: int) -> int:
        return sum(self.sizes[:number - 1])

    def __str__(self) -> str:
        shape = "+".join(map(str, self.sizes)) if self.multipart else str(self.size)
        return f"v{self.vid} ({'multipart ' if self.multipart else ''}{shape} bytes, ETag {self.etag})"


@lru_cache(maxsize=8)
def _body(vid: int, sizes: tuple[int, ...]) -> bytes:
    return b"".join(content(vid, n, size) for n, size in enumerate(sizes, 1))


class Versions:
    """Every version the test wrote (registered before its write is sent, so a reader
    may see it at once), found by ETag, by whole-body MD5 or by the MD5 of UPC_SPAN."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1
        self.by_etag: dict[str, Version] = {}
        self.by_md5: dict[str, Version] = {}
        self.by_span_md5: dict[str, Version] = {}

    def new(self, sizes: tuple[int, ...], multipart: bool) -> Version:
        with self._lock:
            vid, self._next = self._next, self._next + 1
        parts = [content(vid, n, size) for n, size in enumerate(sizes, 1)]
        body = b"".join(parts)
        md5 = hashlib.md5(body).hexdigest()
        etag = (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"
                if multipart else md5)
        span = hashlib.md5(body[UPC_SPAN[0]:UPC_SPAN[1]]).hexdigest() if len(body) >= UPC_SPAN[1] else None
        version = Version(vid, tuple(sizes), multipart, etag, md5, span)
        with self._lock:
            self.by_etag[etag] = version
            self.by_md5[md5] = version
            if span is not None:
                self.by_span_md5[span] = version
        return version


def _label_at(body: bytes, offset: int) -> str:
    """Which version's block the bytes around ``offset`` came from."""
    at = body.rfind(b"<v", max(0, offset - BLOCK), offset + 1)
    match = HEADER.match(body, at) if at >= 0 else None
    if match is None:
        match = HEADER.search(body, offset)  # a body that starts mid-block: the next label
    if match is None:
        return "no block label there"
    vid, part, off = (int(g) for g in match.groups())
    return f"the block at offset {match.start()} of the body is v{vid} part {part} offset {off}"


def _difference(got: bytes, want: bytes) -> str:
    n = min(len(got), len(want))
    first = next((i for i in range(0, n, BLOCK) if got[i:i + BLOCK] != want[i:i + BLOCK]), None)
    if first is not None:
        first += next(i for i in range(BLOCK) if got[first + i] != want[first + i])
        return f"bytes differ from offset {first} ({_label_at(got, first)})"
    return f"{len(got)} bytes where {len(want)} were due (equal as far as both go)"


# -- servers ------------------------------------------------------------------------------

def _with_prefix(yaml: str, prefix: str) -> str:
    """The emulator's storage: section with a key prefix of this server's own."""
    out = yaml.replace('prefix: "bleepstore/"', f'prefix: "{prefix}"').replace(
        "prefix: bleepstore/\n", f"prefix: {prefix}\n")
    assert out != yaml, "emulator yaml has no prefix to replace"
    return out


@pytest.fixture
def start_server(tmp_path_factory, pg_databases, emulators):
    """start_server(param, **env): a running server (2 gevent workers) on the engine
    (and gateway backend: sqlite+<gateway>) of ``param``, with extra environment."""
    started: list[Server] = []

    def start(param: str, **extra_env: str) -> Server:
        engine, _, gateway = param.partition("+")
        workdir = tmp_path_factory.mktemp(f"race-{engine}-{gateway or 'local'}")
        url = pg_databases.create() if engine == "postgresql" else None
        env = dict(os.environ)
        storage = None
        if gateway:
            emulator = emulators.get(GATEWAY_EMULATORS[gateway])
            storage = _with_prefix(emulator.yaml, f"race-{uuid.uuid4().hex[:12]}/")
            env.update(emulator.env)
        env.update(extra_env, BLEEPSTORE_CONFIG=str(write_config(workdir, url, storage=storage)))
        srv = Server(workdir, env).start(timeout=60)
        srv.gateway, srv.clients = gateway, []
        started.append(srv)
        return srv

    yield start
    for srv in started:
        for client in srv.clients:
            client._endpoint.http_session.close()
        gc.collect()
        srv.kill()  # crash-only: a graceful stop would only cost time here


def _client(srv: Server, pool: int = 4):
    client = make_client(srv.endpoint, max_pool_connections=pool, connect_timeout=5, read_timeout=READ_TIMEOUT,
                         request_checksum_calculation="when_required",
                         response_checksum_validation="when_required")
    srv.clients.append(client)
    return client


# -- the race -----------------------------------------------------------------------------

class BodyFailed(Exception):
    def __init__(self, received: int, expected: int, cause: BaseException) -> None:
        super().__init__(received, expected, cause)
        self.received, self.expected, self.cause = received, expected, cause

    def __str__(self) -> str:
        how = (f"no byte for {READ_TIMEOUT}s: the response hung" if isinstance(self.cause, ReadTimeoutError)
               else f"the body broke off ({type(self.cause).__name__}: {self.cause})")
        return f"{how} after {self.received} of the {self.expected} bytes its Content-Length announced"


class Allowed(Exception):
    """An error answer a reader may legitimately get (e.g. a range beyond a small version)."""


class Race:
    BUCKET = "race"

    def __init__(self, srv: Server, seed: int, seconds: float) -> None:
        self.srv, self.seed, self.seconds = srv, seed, seconds
        self.versions = Versions()
        self.seeds: dict[str, Version] = {}
        self.problems: list[str] = []
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self.stop = threading.Event()

    # bookkeeping

    def problem(self, text: str) -> None:
        with self._lock:
            self.counts["problems"] += 1
            if len(self.problems) < 40:
                self.problems.append(text)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def run_op(self, name: str, fn, *args) -> None:
        try:
            fn(*args)
            self.count(name)
        except Allowed:
            self.count(name + " (allowed error)")
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
            self.problem(f"{name}: HTTP {meta.get('HTTPStatusCode')} {exc.response.get('Error', {}).get('Code')}: "
                         f"{exc}")
        except BodyFailed as exc:
            self.problem(f"{name}: {exc}")
        except ReadTimeoutError as exc:
            self.problem(f"{name}: no answer within {READ_TIMEOUT}s: {exc}")
        except Exception as exc:  # noqa: BLE001 - every other failure is a finding too
            self.problem(f"{name}: {type(exc).__name__}: {exc}")

    def read(self, resp) -> bytes:
        """The whole body, or BodyFailed naming how far it got."""
        body, chunks, have = resp["Body"], [], 0
        try:
            for chunk in body.iter_chunks(256 * KiB):
                chunks.append(chunk)
                have += len(chunk)
        except (ReadTimeoutError, ResponseStreamingError, IncompleteReadError, OSError) as exc:
            raise BodyFailed(have, resp["ContentLength"], exc) from None
        finally:
            body.close()
        return b"".join(chunks)

    def lookup(self, what: str, etag: str) -> Version | None:
        version = self.versions.by_etag.get(etag)
        if version is None:
            self.problem(f"{what}: ETag {etag} belongs to no version the test wrote")
        return version

    def check_whole(self, what: str, etag: str, length: int, body: bytes) -> Version | None:
        version = self.lookup(what, etag)
        if version is None:
            return None
        if length != version.size:
            self.problem(f"{what}: ETag of {version} but Content-Length {length}")
        if len(body) != length:
            self.problem(f"{what}: Content-Length {length} but {len(body)} bytes of body")
        if body != version.body():
            self.problem(f"{what}: ETag of {version} but not its bytes: {_difference(body, version.body())}")
        elif not version.multipart and hashlib.md5(body).hexdigest() != etag:
            self.problem(f"{what}: the body does not hash to its ETag {etag}")
        return version

    # setup

    def prepare(self, s3) -> None:
        s3.create_bucket(Bucket=self.BUCKET)
        rng = random.Random(self.seed)
        self.seeds["seed/multipart"] = self.write_multipart(s3, "seed/multipart", rng)
        self.seeds["seed/small"] = self.write_put(s3, "seed/small", rng.randrange(64, INLINE_MAX + 1))
        self.seeds["seed/big"] = self.write_put(s3, "seed/big", rng.randrange(INLINE_MAX + 1, 300 * KiB))
        self.write_multipart(s3, HOT[0], rng)
        self.write_put(s3, HOT[1], rng.randrange(INLINE_MAX + 1, 300 * KiB))

    # writers

    def write_multipart(self, s3, key: str, rng: random.Random) -> Version:
        version = self.versions.new((PART + rng.randrange(4096), rng.randrange(1, 300 * KiB)), True)
        upload_id = s3.create_multipart_upload(Bucket=self.BUCKET, Key=key)["UploadId"]
        done = []
        for number in (1, 2):
            part = version.part(number)
            etag = s3.upload_part(Bucket=self.BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                  Body=part)["ETag"]
            if etag.strip('"') != hashlib.md5(part).hexdigest():
                self.problem(f"UploadPart {key} #{number} of {version}: ETag {etag}")
            done.append({"PartNumber": number, "ETag": etag})
        got = s3.complete_multipart_upload(Bucket=self.BUCKET, Key=key, UploadId=upload_id,
                                           MultipartUpload={"Parts": done})["ETag"].strip('"')
        if got != version.etag:
            self.problem(f"CompleteMultipartUpload {key} of {version}: ETag {got}")
        return version

    def write_put(self, s3, key: str, size: int) -> Version:
        version = self.versions.new((size,), False)
        got = s3.put_object(Bucket=self.BUCKET, Key=key, Body=version.body())["ETag"].strip('"')
        if got != version.etag:
            self.problem(f"PutObject {key} of {version}: ETag {got}")
        return version

    def write_copy(self, s3, key: str, source: str) -> None:
        result = s3.copy_object(Bucket=self.BUCKET, Key=key, CopySource={"Bucket": self.BUCKET, "Key": source})
        etag = result["CopyObjectResult"]["ETag"].strip('"')
        version = self.lookup(f"CopyObject {source} -> {key}", etag)
        if source in self.seeds and version is not None and version != self.seeds[source]:
            self.problem(f"CopyObject {source} -> {key}: ETag of {version}, the source is {self.seeds[source]}")

    def writer(self, index: int) -> None:
        s3 = _client(self.srv)
        rng = random.Random(f"{self.seed}-writer-{index}")
        while not self.stop.is_set():
            key = rng.choice(HOT)
            other = HOT[1 - HOT.index(key)]
            op = rng.choices(("multipart", "put inline", "put blob", "copy hot", "copy seed"), (8, 1, 1, 2, 1))[0]
            if op == "multipart":
                self.run_op("CompleteMultipartUpload", self.write_multipart, s3, key, rng)
            elif op == "put inline":
                self.run_op("PutObject (inline size)", self.write_put, s3, key, rng.randrange(64, INLINE_MAX + 1))
            elif op == "put blob":
                self.run_op("PutObject (blob size)", self.write_put, s3, key,
                            rng.randrange(INLINE_MAX + 1, 400 * KiB))
            elif op == "copy hot":
                self.run_op(f"CopyObject {other} -> {key}", self.write_copy, s3, key, other)
            else:
                self.run_op(f"CopyObject seed -> {key}", self.write_copy, s3, key, rng.choice(sorted(self.seeds)))

    # readers

    def get_whole(self, s3, key: str) -> None:
        resp = s3.get_object(Bucket=self.BUCKET, Key=key)
        self.check_whole(f"GET {key}", resp["ETag"].strip('"'), resp["ContentLength"], self.read(resp))

    @staticmethod
    def pick_range(rng: random.Random) -> tuple[int, int]:
        pick = rng.random()
        if pick < 0.5:    # across a multipart version's part boundary
            first = PART - rng.randrange(1, 64 * KiB)
            return first, PART + rng.randrange(0, 128 * KiB)
        if pick < 0.75:   # the head: inside every version
            first = rng.randrange(0, 4 * KiB)
            return first, first + rng.randrange(0, 64 * KiB)
        first = rng.randrange(0, PART + 300 * KiB)
        return first, first + rng.randrange(0, MiB)

    def get_range(self, s3, key: str, rng: random.Random) -> None:
        first, last = self.pick_range(rng)
        try:
            resp = s3.get_object(Bucket=self.BUCKET, Key=key, Range=f"bytes={first}-{last}")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidRange":
                raise Allowed() from None  # the version current then was shorter than `first`
            raise
        self.check_range(f"GET {key} Range bytes={first}-{last}", first, last, resp["ETag"].strip('"'),
                         resp["ContentLength"], resp.get("ContentRange"), self.read(resp))

    def check_range(self, what: str, first: int, last: int, etag: str, length: int, content_range: str | None,
                    body: bytes) -> None:
        version = self.lookup(what, etag)
        if version is None:
            return
        if first >= version.size:
            self.problem(f"{what}: 206 with ETag of {version}, which has no byte {first}")
            return
        end = min(last + 1, version.size)
        want = f"bytes {first}-{end - 1}/{version.size}"
        if content_range != want:
            self.problem(f"{what}: ETag of {version} but Content-Range {content_range!r} (due: {want!r})")
        if length != len(body) or length != end - first:
            self.problem(f"{what}: ETag of {version}: Content-Length {length}, {len(body)} bytes of body, "
                         f"{end - first} due")
        expected = version.body()[first:end]
        if body != expected:
            self.problem(f"{what}: ETag of {version} but not its bytes: {_difference(body, expected)}")

    def head(self, s3, key: str, rng: random.Random) -> None:
        by_part = rng.random() < 0.5
        resp = s3.head_object(Bucket=self.BUCKET, Key=key, **({"PartNumber": 1} if by_part else {}))
        self.check_head(f"HEAD {key}" + (" partNumber=1" if by_part else ""), by_part, resp["ETag"].strip('"'),
                        resp["ContentLength"], resp.get("PartsCount"))

    def check_head(self, what: str, by_part: bool, etag: str, length: int, parts_count: int | None) -> None:
        version = self.lookup(what, etag)
        if version is None:
            return
        due = version.sizes[0] if by_part else version.size
        if length != due:
            self.problem(f"{what}: ETag of {version} but Content-Length {length} (due: {due})")
        if by_part and version.multipart and parts_count != len(version.sizes):
            self.problem(f"{what}: ETag of {version} but x-amz-mp-parts-count {parts_count}")

    def get_part(self, s3, key: str, rng: random.Random) -> None:
        number = rng.choice((1, 2))
        try:
            resp = s3.get_object(Bucket=self.BUCKET, Key=key, PartNumber=number)
        except ClientError as exc:
            if number == 2 and exc.response["Error"]["Code"] == "InvalidPartNumber":
                raise Allowed() from None  # a single-part version was current then
            raise
        self.check_part(f"GET {key} partNumber={number}", number, resp["ETag"].strip('"'), resp["ContentLength"],
                        resp.get("ContentRange"), resp.get("PartsCount"), self.read(resp))

    def check_part(self, what: str, number: int, etag: str, length: int, content_range: str | None,
                   parts_count: int | None, body: bytes) -> None:
        version = self.lookup(what, etag)
        if version is None:
            return
        if version.multipart:
            expected, offset = version.part(number), version.offset(number)
            if parts_count != len(version.sizes):
                self.problem(f"{what}: ETag of {version} but x-amz-mp-parts-count {parts_count}")
        elif number == 2:
            self.problem(f"{what}: ETag of single-part {version}: InvalidPartNumber was due")
            return
        else:
            expected, offset = version.body(), 0
        want = f"bytes {offset}-{offset + len(expected) - 1}/{version.size}"
        if content_range != want:
            self.problem(f"{what}: ETag of {version} but Content-Range {content_range!r} (due: {want!r})")
        if length != len(body) or length != len(expected):
            self.problem(f"{what}: ETag of {version}: Content-Length {length}, {len(body)} bytes of body, "
                         f"{len(expected)} due")
        if body != expected:
            self.problem(f"{what}: ETag of {version} but not its part {number}: {_difference(body, expected)}")

    def fast_reader(self, index: int) -> None:
        """HEAD partNumber=1, GET partNumber=2 and small ranged GETs through one
        kept-alive connection and presigned URLs made once: cheap for this process,
        so many more reads meet a replacement than boto3 alone could make."""
        s3 = _client(self.srv)
        rng = random.Random(f"{self.seed}-fast-{index}")
        urls = {}
        for key in HOT:
            for kind, method, params in (("head1", "head_object", {"PartNumber": 1}),
                                         ("part2", "get_object", {"PartNumber": 2}), ("range", "get_object", {})):
                url = urlsplit(s3.generate_presigned_url(method, ExpiresIn=3600, Params={
                    "Bucket": self.BUCKET, "Key": key, **params}))
                urls[key, kind] = f"{url.path}?{url.query}"
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=READ_TIMEOUT)
        try:
            while not self.stop.is_set():
                key, kind = rng.choice(HOT), rng.choice(("head1", "part2", "range", "range"))
                self.run_op(f"fast {kind}", self.fast_read, conn, key, kind, urls[key, kind], rng)
        finally:
            conn.close()

    def fast_read(self, conn: http.client.HTTPConnection, key: str, kind: str, path: str,
                  rng: random.Random) -> None:
        first, last = self.pick_range(rng) if kind == "range" else (0, 0)
        headers = {"Range": f"bytes={first}-{last}"} if kind == "range" else {}
        what = {"head1": f"HEAD {key} partNumber=1", "part2": f"GET {key} partNumber=2",
                "range": f"GET {key} Range bytes={first}-{last}"}[kind]
        length = None
        try:
            conn.request("HEAD" if kind == "head1" else "GET", path, headers=headers)
            resp = conn.getresponse()
            length = int(resp.getheader("Content-Length", "0"))
            body = resp.read()
        except http.client.IncompleteRead as exc:
            conn.close()
            raise BodyFailed(len(exc.partial), length, exc) from None
        except (TimeoutError, socket.timeout) as exc:
            conn.close()
            if length is None:
                raise ReadTimeoutError(endpoint_url=path) from None
            raise BodyFailed(0, length, ReadTimeoutError(endpoint_url=path)) from exc
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if resp.status >= 300:
            code = re.search(rb"<Code>(\w+)</Code>", body)
            code = code.group(1).decode() if code else str(resp.status)
            if (resp.status == 416 and (kind, code) in (("part2", "InvalidPartNumber"), ("range", "InvalidRange"))):
                raise Allowed()
            self.problem(f"{what}: HTTP {resp.status} {code}: {body[:300]!r}")
            return
        etag = (resp.getheader("ETag") or "").strip('"')
        content_range = resp.getheader("Content-Range")
        parts_count = resp.getheader("x-amz-mp-parts-count")
        parts_count = int(parts_count) if parts_count else None
        if kind == "head1":
            self.check_head(what, True, etag, length, parts_count)
        elif kind == "part2":
            self.check_part(what, 2, etag, length, content_range, parts_count, body)
        else:
            self.check_range(what, first, last, etag, length, content_range, body)

    def copy_out(self, s3, key: str, target: str) -> None:
        what = f"CopyObject {key} -> {target}"
        result = s3.copy_object(Bucket=self.BUCKET, Key=target, CopySource={"Bucket": self.BUCKET, "Key": key})
        etag = result["CopyObjectResult"]["ETag"].strip('"')
        if self.lookup(what, etag) is None:
            return
        resp = s3.get_object(Bucket=self.BUCKET, Key=target)  # nobody else writes `target`
        if resp["ETag"].strip('"') != etag:
            self.problem(f"{what}: answered ETag {etag}, the copy reads back with {resp['ETag']}")
        self.check_whole(f"GET of the copy {target} (from {key})", resp["ETag"].strip('"'), resp["ContentLength"],
                         self.read(resp))
        s3.delete_object(Bucket=self.BUCKET, Key=target)

    def upload_part_copy(self, s3, key: str, target: str, rng: random.Random) -> None:
        ranged = rng.random() < 0.5
        what = f"UploadPartCopy {key}" + (f" bytes={UPC_SPAN[0]}-{UPC_SPAN[1] - 1}" if ranged else "") + f" -> {target}"
        upload_id = s3.create_multipart_upload(Bucket=self.BUCKET, Key=target)["UploadId"]
        completed = False
        try:
            extra = {"CopySourceRange": f"bytes={UPC_SPAN[0]}-{UPC_SPAN[1] - 1}"} if ranged else {}
            try:
                result = s3.upload_part_copy(Bucket=self.BUCKET, Key=target, UploadId=upload_id, PartNumber=1,
                                             CopySource={"Bucket": self.BUCKET, "Key": key}, **extra)
            except ClientError as exc:
                if ranged and exc.response["Error"]["Code"] == "InvalidRange":
                    raise Allowed() from None  # a version shorter than the span was current then
                raise
            part_etag = result["CopyPartResult"]["ETag"].strip('"')
            version = (self.versions.by_span_md5 if ranged else self.versions.by_md5).get(part_etag)
            if version is None:
                self.problem(f"{what}: the part's ETag {part_etag} is the MD5 of no version's "
                             f"{'span' if ranged else 'bytes'}")
                return
            expected = version.body()[UPC_SPAN[0]:UPC_SPAN[1]] if ranged else version.body()
            s3.complete_multipart_upload(Bucket=self.BUCKET, Key=target, UploadId=upload_id, MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": result["CopyPartResult"]["ETag"]}]})
            completed = True
            resp = s3.get_object(Bucket=self.BUCKET, Key=target)
            etag, length, body = resp["ETag"].strip('"'), resp["ContentLength"], self.read(resp)
            due = hashlib.md5(bytes.fromhex(part_etag)).hexdigest() + "-1"
            if etag != due:
                self.problem(f"GET of {target} (made by {what}): ETag {etag}, due {due}")
            if length != len(body) or length != len(expected):
                self.problem(f"GET of {target} (made by {what}): Content-Length {length}, {len(body)} bytes of "
                             f"body, {len(expected)} due")
            if body != expected:
                self.problem(f"GET of {target} (made by {what} of {version}): {_difference(body, expected)}")
            s3.delete_object(Bucket=self.BUCKET, Key=target)
        finally:
            if not completed:
                try:
                    s3.abort_multipart_upload(Bucket=self.BUCKET, Key=target, UploadId=upload_id)
                except Exception:  # noqa: BLE001 - the failure itself is what gets reported
                    pass

    def reader(self, index: int) -> None:
        s3 = _client(self.srv)
        rng = random.Random(f"{self.seed}-reader-{index}")
        n = 0
        while not self.stop.is_set():
            n += 1
            key = rng.choice(HOT)
            # Mostly the cheap reads (HEAD, small ranges, parts): more of them meet a replacement.
            op = rng.choices(("get", "range", "head", "part", "copy", "upc"), (1, 5, 4, 3, 1, 1))[0]
            if op == "get":
                self.run_op("GetObject", self.get_whole, s3, key)
            elif op == "range":
                self.run_op("GetObject Range", self.get_range, s3, key, rng)
            elif op == "head":
                self.run_op("HeadObject", self.head, s3, key, rng)
            elif op == "part":
                self.run_op("GetObject partNumber", self.get_part, s3, key, rng)
            elif op == "copy":
                self.run_op("CopyObject (reader)", self.copy_out, s3, key, f"copies/{index}/{n}")
            else:
                self.run_op("UploadPartCopy", self.upload_part_copy, s3, key, f"upc/{index}/{n}", rng)

    def run(self, writers: int = 3, readers: int = 4, fast_readers: int = 2) -> None:
        threads = ([threading.Thread(target=self.writer, args=(i,), daemon=True) for i in range(writers)]
                   + [threading.Thread(target=self.reader, args=(i,), daemon=True) for i in range(readers)]
                   + [threading.Thread(target=self.fast_reader, args=(i,), daemon=True) for i in range(fast_readers)])
        for t in threads:
            t.start()
        started = time.monotonic()
        # The time bound, but at least a few replacements and reads (a slow machine
        # still races), and never past three times the bound.
        while time.monotonic() - started < self.seconds * 3:
            time.sleep(0.2)
            with self._lock:
                busy_enough = self.counts["CompleteMultipartUpload"] >= 4 and sum(
                    v for k, v in self.counts.items() if k.startswith(("Get", "Head", "Upload", "CopyObject ("))) >= 40
            if time.monotonic() - started >= self.seconds and busy_enough:
                break
        self.stop.set()
        for t in threads:
            t.join(READ_TIMEOUT * 4 + 60)
        assert not any(t.is_alive() for t in threads), f"a client thread never finished; {_rerun(self.seed)}"


@pytest.mark.parametrize("param", PARAMS)
def test_readers_see_one_whole_version_while_writers_replace_the_key(param, start_server, capsys):
    srv = start_server(param, **RACE_SWEEP)
    seed = SEED
    race = Race(srv, seed, GATEWAY_SECONDS if srv.gateway else LOCAL_SECONDS)
    race.prepare(_client(srv))
    race.run()
    # Quiet now: the hot keys and the seeds read back whole as some written version.
    s3 = _client(srv)
    for key in (*HOT, *race.seeds):
        race.run_op(f"final GET {key}", race.get_whole, s3, key)
    for key, version in race.seeds.items():
        resp = s3.head_object(Bucket=race.BUCKET, Key=key)
        if resp["ETag"].strip('"') != version.etag:
            race.problem(f"{key} (never written after the start) now has ETag {resp['ETag']}, not {version}")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(race.counts.items()))
    with capsys.disabled():
        print(f"\n[race {param}] {_rerun(seed)}: {summary}")
    log = srv.log_path.read_text(errors="replace")
    assert not race.problems, (f"[{param}] {race.counts['problems']} wrong answers, {_rerun(seed)}:\n  "
                               + "\n  ".join(race.problems) + f"\nserver log tail:\n{log[-3000:]}")


# -- deferred deletion: a reader keeps its blobs however slowly it reads ---------------------

class _SmallWindow(http.client.HTTPConnection):
    """A connection with a small receive buffer, so a reader that stops reading
    stops the server's sending at once (the server cannot run ahead into later parts)."""

    def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KiB)
        sock.settimeout(self.timeout)
        sock.connect((self.host, self.port))
        self.sock = sock


def _slow_ranged_get(s3, bucket: str, key: str, first: int, last: int):
    url = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600))
    conn = _SmallWindow(url.hostname, url.port, timeout=15)
    conn.request("GET", f"{url.path}?{url.query}", headers={"Range": f"bytes={first}-{last}"})
    return conn, conn.getresponse()


def _read_rest(resp, length: int, received: bytes) -> tuple[bytes, str | None]:
    try:
        return received + resp.read(), None
    except http.client.IncompleteRead as exc:
        got = len(received) + len(exc.partial)
        return received + exc.partial, f"the body broke off after {got} of {length} bytes"
    except (socket.timeout, TimeoutError):
        return received, f"the body stalled (no byte for 15 s) after at least {len(received)} of {length} bytes"
    except OSError as exc:
        return received, f"the connection failed ({exc}) after at least {len(received)} of {length} bytes"


@pytest.mark.parametrize("param", ENGINES)
def test_get_beyond_the_eagerly_opened_parts_survives_overwrite_and_delete(param, start_server):
    """A 65-part object (parts beyond the 64th are opened when the stream reaches
    them): a slow ranged GET over parts 60-65 stays open while the key is overwritten
    and then deleted; it must still deliver every byte, and the replaced part blobs
    stay in storage (their grace is an hour), the sweeper running all the while."""
    srv = start_server(param, **HOUR_GRACE)
    s3 = _client(srv)
    s3.create_bucket(Bucket="defer")
    sources = {"src/a": content(900001, 1, PART), "src/b": content(900002, 1, PART)}
    for key, body in sources.items():
        s3.put_object(Bucket="defer", Key=key, Body=body)
    tail = content(900003, 1, 300 * KiB)
    upload_id = s3.create_multipart_upload(Bucket="defer", Key="big")["UploadId"]
    done = []
    for number in range(1, 65):  # copied inside the server: cheap
        source = "src/a" if number % 2 else "src/b"
        etag = s3.upload_part_copy(Bucket="defer", Key="big", UploadId=upload_id, PartNumber=number,
                                   CopySource={"Bucket": "defer", "Key": source})["CopyPartResult"]["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    etag = s3.upload_part(Bucket="defer", Key="big", UploadId=upload_id, PartNumber=65, Body=tail)["ETag"]
    done.append({"PartNumber": 65, "ETag": etag})
    s3.complete_multipart_upload(Bucket="defer", Key="big", UploadId=upload_id, MultipartUpload={"Parts": done})
    total = 64 * PART + len(tail)
    old_parts = srv.metadata_blobs()["object_parts"]
    assert len(old_parts) == 65

    first = 59 * PART + 12345   # inside part 60: five parts before the lazily opened 65th
    expected = b"".join(sources["src/a" if n % 2 else "src/b"] for n in range(60, 65))[12345:] + tail
    conn, resp = _slow_ranged_get(s3, "defer", "big", first, total - 1)
    try:
        assert resp.status == 206, (resp.status, resp.read()[:500])
        length = int(resp.getheader("Content-Length"))
        assert length == len(expected)
        received = resp.read(64 * KiB)
        # The server is now blocked in part 60 or 61: the socket buffers between us
        # hold a few MiB (net.ipv4.tcp_wmem's maximum, 4 MiB by default, and our
        # small window), far less than the 25 MiB before the 65th part.
        s3.put_object(Bucket="defer", Key="big", Body=b"the replacement")
        s3.delete_object(Bucket="defer", Key="big")
        body, broke = _read_rest(resp, length, received)
    finally:
        conn.close()
    assert broke is None, f"[{param}] a GET begun before the overwrite and delete: {broke}"
    assert body == expected, f"[{param}] {_difference(body, expected)}"
    missing = old_parts - srv.blobs()
    assert not missing, (f"[{param}] {len(missing)} of the replaced object's 65 part blobs were deleted at once, "
                         "not after storage.garbage_grace_seconds")


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_gateway_ranged_get_survives_overwrite_and_delete(gateway, start_server):
    """On a gateway a ranged read is its own request to the backing store, made as
    the stream goes (Azure even fetches in chunks): a slow ranged GET stays open while
    the key is overwritten and deleted, and must still deliver every byte."""
    srv = start_server(f"sqlite+{gateway}", **HOUR_GRACE)
    s3 = _client(srv)
    s3.create_bucket(Bucket="defer")
    parts = [content(910001, 1, PART), content(910001, 2, PART), content(910001, 3, PART)]
    upload_id = s3.create_multipart_upload(Bucket="defer", Key="big")["UploadId"]
    done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket="defer", Key="big", UploadId=upload_id, PartNumber=n,
                                                   Body=body)["ETag"]} for n, body in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket="defer", Key="big", UploadId=upload_id, MultipartUpload={"Parts": done})
    whole = b"".join(parts)
    old = srv.metadata_blobs()["objects"]
    first = 1000
    conn, resp = _slow_ranged_get(s3, "defer", "big", first, len(whole) - 1)
    try:
        assert resp.status == 206, (resp.status, resp.read()[:500])
        length = int(resp.getheader("Content-Length"))
        received = resp.read(64 * KiB)
        s3.put_object(Bucket="defer", Key="big", Body=b"the replacement")
        s3.delete_object(Bucket="defer", Key="big")
        body, broke = _read_rest(resp, length, received)
    finally:
        conn.close()
    assert broke is None, f"[{gateway}] a GET begun before the overwrite and delete: {broke}"
    assert body == whole[first:], f"[{gateway}] {_difference(body, whole[first:])}"
    assert old and old <= srv.blobs(), f"[{gateway}] the replaced blob was deleted at once, not after its grace"


# -- the sweeper ------------------------------------------------------------------------------

@pytest.mark.parametrize("param", PARAMS)
def test_sweeper_deletes_replaced_blobs_after_their_grace(param, start_server):
    """storage.garbage_grace_seconds 1 and storage.sweep_interval_seconds 1: after
    overwrites, deletes, re-uploaded and aborted parts, storage soon holds exactly
    the blobs the metadata points at, and every live object still reads back whole."""
    srv = start_server(param, BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS="1",
                       BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS="1")
    s3 = _client(srv)
    bucket = "sweep"
    s3.create_bucket(Bucket=bucket)
    versions = Versions()
    live: dict[str, Version] = {}
    rng = random.Random(SEED)

    def put(key: str, size: int) -> None:
        version = versions.new((size,), False)
        s3.put_object(Bucket=bucket, Key=key, Body=version.body())
        live[key] = version

    def multipart(key: str) -> None:
        version = versions.new((PART + rng.randrange(4096), rng.randrange(1, 100 * KiB)), True)
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"replaced before completion")
        done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n,
                                                       Body=version.part(n))["ETag"]} for n in (1, 2)]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=3, Body=b"never completed")
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
        live[key] = version

    for i in range(6):
        put(f"k{i}", rng.choice((100, 20 * KiB, 200 * KiB)))
    multipart("k0")
    multipart("k1")
    put("k1", 50 * KiB)          # a multipart object replaced by a single blob
    multipart("k2")
    multipart("k2")              # ... and by another multipart object
    put("k3", 300)               # a blob replaced by an inline object (local storage)
    put("k4", 30 * KiB)
    s3.copy_object(Bucket=bucket, Key="k5", CopySource={"Bucket": bucket, "Key": "k2"})
    live["k5"] = live["k2"]
    s3.delete_object(Bucket=bucket, Key="k4")
    del live["k4"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k0"}, {"Key": "k1"}]})
    del live["k0"], live["k1"]
    aborted = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"aborted part")
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    kept = s3.create_multipart_upload(Bucket=bucket, Key="open")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="open", UploadId=kept, PartNumber=1, Body=b"first try")
    s3.upload_part(Bucket=bucket, Key="open", UploadId=kept, PartNumber=1, Body=b"the part that stays")

    def state():
        referenced = set().union(*srv.metadata_blobs().values())
        return referenced, srv.blobs()

    deadline = time.monotonic() + 30
    referenced, stored = state()
    while stored != referenced and time.monotonic() < deadline:
        time.sleep(0.5)
        referenced, stored = state()
    assert referenced <= stored, f"[{param}] blobs the metadata points at are gone: {sorted(referenced - stored)}"
    assert stored == referenced, (f"[{param}] {len(stored - referenced)} unreferenced blobs still in storage 30 s "
                                  f"after their 1 s grace: {sorted(stored - referenced)[:10]}")
    for key, version in sorted(live.items()):
        resp = s3.get_object(Bucket=bucket, Key=key)
        body = resp["Body"].read()
        assert resp["ETag"].strip('"') == version.etag, (key, resp["ETag"], str(version))
        assert body == version.body(), f"[{param}] {key}: {_difference(body, version.body())}"
    listed = {o["Key"]: (o["ETag"].strip('"'), o["Size"]) for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {k: (v.etag, v.size) for k, v in live.items()}
    parts = s3.list_parts(Bucket=bucket, Key="open", UploadId=kept)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(b"the part that stays"))]
    s3.abort_multipart_upload(Bucket=bucket, Key="open", UploadId=kept)
