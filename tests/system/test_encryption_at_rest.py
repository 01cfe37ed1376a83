"""Server-side encryption at rest (issue #18), checked where the bytes land.

(a) SSE-S3, SSE-KMS and SSE-C objects (inline-sized, blob-sized, multipart) never
    leave their plaintext in a blob file, a temp file or the SQLite database (file
    or WAL); an unencrypted control object's plaintext *is* found there, so the scan
    can fail. Every encrypted stored form starts b"BSE1" and is exactly
    20 + size + 16 * max(1, ceil(size / 65536)) bytes. No SSE-C customer key and no
    master or KMS key material is stored anywhere.
(b) Tampering: a byte flipped (or a chunk truncated / swapped) in an encrypted blob
    makes a GET fail (500 InternalError, or the body cut short after the headers; a
    damaged first chunk of the answer is a 500); what was sent is always a prefix
    of the true plaintext, never altered bytes. A ranged GET that covers only
    unaltered chunks still returns them exactly (the format decrypts only the chunks
    a range covers); a range over the altered chunk fails like a whole GET. With the
    byte restored, the object reads back (so the failure was the flip).
(c) Key configuration: a key value written in the YAML (not env:/file:), a key
    file that is missing or not 32 bytes, an unset env: variable: the server
    refuses to start with one line naming the setting. SQLite and no master key:
    sse-master.key (0600) next to the database, SSE-S3 works across restarts.
    Rotation m1 -> m2: old objects stay readable, new ones use m2; m1 removed: the
    old object is 500 InternalError (never ciphertext), the m2 object reads.
(d) Gateway backends (moto, fake-gcs-server, Azurite): the backing cloud object of
    an SSE-S3 PUT, read straight from the emulator, is ciphertext ("BSE1" first).
"""
from __future__ import annotations

import base64
import http.client
import os
import signal
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import ProtocolError

from ..conftest import GATEWAY_EMULATORS, PG_URL, make_client
from ..servers import BLEEPSTORE, Server, free_port, write_config

KiB, MiB = 1024, 1024 * 1024
HEADER, CHUNK, TAG = 20, 64 * KiB, 16
PART = 5 * MiB
INLINE_SIZE, BLOB_SIZE, LAST_PART = 4 * KiB, 300 * KiB, 100 * KiB


def cipher_size(size: int) -> int:
    return HEADER + size + TAG * max(1, -(-size // CHUNK))


def body(marker: bytes, size: int) -> bytes:
    """``size`` bytes of a repeated, distinctive marker: any leak of the plaintext
    into storage contains the marker whole."""
    return (marker * (size // len(marker) + 1))[:size]


def client(srv: Server, **config):
    """A boto3 client that says X-Forwarded-Proto: https (the test servers trust it),
    so SSE-C requests over plain http are allowed."""
    s3 = make_client(srv.endpoint, **config)
    s3.meta.events.register("before-sign.s3", lambda request, **kw: request.headers.__setitem__(
        "X-Forwarded-Proto", "https"))
    return s3


def sse_c(key: bytes) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def put_multipart(s3, bucket: str, key: str, parts: list[bytes], **sse) -> dict:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **sse)["UploadId"]
    part_sse = {k: v for k, v in sse.items() if k.startswith("SSECustomer")}
    done = []
    for number, part in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part,
                              **part_sse)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done})


def start(workdir: Path, extra: str = "", env: dict | None = None) -> Server:
    config = write_config(workdir, None, extra=extra)
    return Server(workdir, dict(os.environ, BLEEPSTORE_CONFIG=str(config), **(env or {}))).start()


def db_path(srv: Server) -> Path:
    return srv.workdir / "data" / "metadata.db"


def db_files(srv: Server) -> list[Path]:
    return [p for p in (db_path(srv), Path(f"{db_path(srv)}-wal"), Path(f"{db_path(srv)}-shm")) if p.exists()]


def storage_files(srv: Server) -> list[Path]:
    root = srv.workdir / "data" / "objects"
    return [p for p in root.rglob("*") if p.is_file()]


def read_db(srv: Server, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path(srv)}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def stored_forms(srv: Server, bucket: str, key: str) -> tuple[list[tuple[str, bytes, int]], str | None]:
    """What storage holds for the current version of ``key``: [(where, stored bytes,
    plaintext size)], one entry (inline row or blob) or one per part; and the row's
    ``encryption`` column."""
    [(size, location, inline, encryption)] = read_db(
        srv, "SELECT size, data_location, data_inline, encryption FROM objects WHERE bucket = ? AND key = ?",
        (bucket, key))
    if inline:
        [(data,)] = read_db(srv, "SELECT data FROM inline_data WHERE id = ?", (location,))
        return [(f"inline_data row {location}", bytes(data), size)], encryption
    if location == "multipart":
        rows = read_db(srv, "SELECT part_number, size, data_location FROM object_parts WHERE bucket = ? AND key = ?"
                            " ORDER BY part_number", (bucket, key))
        return [(f"part {n} blob {loc}", srv.blob_bytes(loc), s) for n, s, loc in rows], encryption
    return [(f"blob {location}", srv.blob_bytes(location), size)], encryption


def blob_path(srv: Server, location: str) -> Path:
    return srv.workdir / "data" / "objects" / "data" / location[:2] / location[2:4] / location


def location_of(srv: Server, bucket: str, key: str) -> tuple[str, bool]:
    [(location, inline)] = read_db(srv, "SELECT data_location, data_inline FROM objects WHERE bucket = ? AND key = ?",
                                   (bucket, key))
    return location, bool(inline)


@dataclass
class Fetched:
    status: int        # 0: the connection closed before a response
    code: str          # the S3 error code of an error response, else ""
    body: bytes        # the bytes that arrived
    complete: bool     # the whole body arrived (not cut short)


def fetch(srv: Server, bucket: str, key: str, range_: str | None = None, sse: dict | None = None,
          **params) -> Fetched:
    """GetObject, read chunk by chunk: a body cut short by the server (the
    connection closed mid-body) is reported, not raised."""
    s3 = client(srv, response_checksum_validation="when_required")
    try:
        args = dict(Bucket=bucket, Key=key, **(sse or {}), **params, **({"Range": range_} if range_ else {}))
        try:
            resp = s3.get_object(**args)
        except ClientError as exc:
            return Fetched(exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"],
                           b"", True)
        except (BotoCoreError, ProtocolError, OSError, http.client.HTTPException) as exc:
            return Fetched(0, f"no response: {type(exc).__name__}", b"", False)  # closed before the headers
        got, complete = bytearray(), True
        stream = resp["Body"]
        try:
            while chunk := stream.read(64 * KiB):
                got += chunk
        except (BotoCoreError, ProtocolError, OSError, http.client.HTTPException):
            complete = False
        if len(got) != resp["ContentLength"]:
            complete = False
        return Fetched(resp["ResponseMetadata"]["HTTPStatusCode"], "", bytes(got), complete)
    finally:
        s3.close()


def assert_fails_without_altered_bytes(srv: Server, bucket: str, key: str, plain: bytes, what: str,
                                       range_: str | None = None, offset: int = 0, sse: dict | None = None) -> str:
    """A GET (of ``range_``, starting at ``offset``) must be a 500 InternalError or
    a body cut short; the bytes that did arrive must be the true plaintext's."""
    got = fetch(srv, bucket, key, range_, sse)
    if got.status == 500:
        assert got.code == "InternalError", f"{what}: 500 with code {got.code!r}"
        return "500 InternalError"
    # The spec allows a 500 or a cut mid-body: a connection closed with no answer
    # at all (clients retry it, then report a network error) is neither.
    assert got.status != 0, f"{what}: the connection closed before any response ({got.code}), not a 500"
    assert got.status in (200, 206), f"{what}: GET answered {got.status} {got.code}"
    assert got.body == plain[offset:offset + len(got.body)], (
        f"{what}: GET served bytes that are not the object's plaintext")
    assert not got.complete, f"{what}: GET served the whole answer ({len(got.body)} bytes) despite the damage"
    return f"{got.status}, body cut after {len(got.body)} bytes"


def error_code(call) -> tuple[int, str]:
    try:
        call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


# -- a server shared by (a) and (b) -------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("sse-at-rest"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(srv):
    s3 = client(srv)
    yield s3
    s3.close()


@pytest.fixture
def bucket(s3):
    name = "sse-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name


CUSTOMER_KEY = os.urandom(32)
MODES = {
    "sse-s3": {"ServerSideEncryption": "AES256"},
    "sse-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "test-key"},
    "sse-kms-managed": {"ServerSideEncryption": "aws:kms"},
    "sse-c": sse_c(CUSTOMER_KEY),
}
SHAPES = ("inline", "blob", "multipart")


def write_shape(s3, bucket: str, key: str, marker: bytes, shape: str, sse: dict) -> bytes:
    if shape == "multipart":
        parts = [body(marker, PART), body(marker[::-1], LAST_PART)]
        put_multipart(s3, bucket, key, parts, **sse)
        return b"".join(parts)
    data = body(marker, INLINE_SIZE if shape == "inline" else BLOB_SIZE)
    s3.put_object(Bucket=bucket, Key=key, Body=data, **sse)
    return data


def read_sse(sse: dict) -> dict:
    return {k: v for k, v in sse.items() if k.startswith("SSECustomer")}


# -- (a) no plaintext at rest ---------------------------------------------------------------------

def test_no_plaintext_of_encrypted_objects_in_blobs_or_database(srv, s3, bucket):
    written = {}  # key -> (mode, shape, marker, plaintext)
    for mode, sse in MODES.items():
        for shape in SHAPES:
            key = f"{mode}/{shape}"
            marker = f"<<{mode} {shape} plaintext marker {uuid.uuid4().hex[:8]}>>".encode()
            written[key] = (mode, shape, marker, write_shape(s3, bucket, key, marker, shape, sse))
    controls = {}
    for shape in SHAPES:
        key = f"clear/{shape}"
        marker = f"<<clear {shape} control marker {uuid.uuid4().hex[:8]}>>".encode()
        controls[key] = (shape, marker, write_shape(s3, bucket, key, marker, shape, {}))

    # Every object reads back exactly, and says how it is encrypted.
    for key, (mode, shape, marker, plain) in written.items():
        got = s3.get_object(Bucket=bucket, Key=key, **read_sse(MODES[mode]))
        assert got["Body"].read() == plain, f"{key}: GET differs from what was written"
        if mode == "sse-c":
            assert got["SSECustomerAlgorithm"] == "AES256"
        else:
            assert got["ServerSideEncryption"] == MODES[mode]["ServerSideEncryption"], got
    for key, (shape, marker, plain) in controls.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == plain and "ServerSideEncryption" not in got

    # Where each object's bytes are stored, and in what form.
    for key, (mode, shape, marker, plain) in written.items():
        forms, encryption = stored_forms(srv, bucket, key)
        assert encryption, f"{key}: its row has no encryption record"
        assert len(forms) == (2 if shape == "multipart" else 1), (key, [f[0] for f in forms])
        assert sum(size for _, _, size in forms) == len(plain)
        for where, data, size in forms:
            assert data[:4] == b"BSE1", f"{key}: {where} does not start with the BSE1 header: {data[:8]!r}"
            assert len(data) == cipher_size(size), (
                f"{key}: {where} holds {len(data)} bytes for {size} plaintext bytes; the format says "
                f"{cipher_size(size)}")
            assert marker not in data and marker[::-1] not in data, f"{key}: plaintext in {where}"
    for key, (shape, marker, plain) in controls.items():
        forms, encryption = stored_forms(srv, bucket, key)
        assert encryption is None, f"{key}: a clear object has an encryption record {encryption!r}"
        assert b"".join(data for _, data, _ in forms) == plain, f"{key}: the control is not stored as written"
    # Inline-sized objects are inline here (the scan below then covers the database).
    assert location_of(srv, bucket, "clear/inline")[1], "the inline-sized control is not stored inline"

    # Scan every file of storage (blobs, temp files) and the database (file, WAL, shm).
    files = storage_files(srv) + db_files(srv)
    contents = {p: p.read_bytes() for p in files}
    for key, (mode, shape, marker, plain) in written.items():
        for path, data in contents.items():
            assert marker not in data and marker[::-1] not in data, f"{key}'s plaintext found in {path}"
    found = {key: [p for p, data in contents.items() if marker in data] for key, (_, marker, _) in controls.items()}
    assert any(p.name.startswith("metadata.db") for p in found["clear/inline"]), (
        f"the inline control's plaintext is not in the database files: the scan cannot see inline data ({found})")
    for key in ("clear/blob", "clear/multipart"):
        assert any(p.is_relative_to(srv.workdir / "data" / "objects") for p in found[key]), (
            f"{key}'s plaintext is in no blob file: the scan cannot see blobs ({found})")

    # No key is kept: not the SSE-C key (raw, base64, hex), not the master or KMS keys.
    secrets = {"the SSE-C customer key": CUSTOMER_KEY}
    for name in ("m1", "test-key"):
        raw = base64.b64decode((srv.workdir / "keys" / f"{name}.key").read_bytes().strip())
        secrets[f"key {name}"] = raw
    contents[srv.log_path] = srv.log_path.read_bytes()
    for what, raw in secrets.items():
        for form in (raw, base64.b64encode(raw), raw.hex().encode()):
            for path, data in contents.items():
                assert form not in data, f"{what} is stored in {path}"


def test_copy_and_upload_part_copy_keep_ciphertext_at_rest(srv, s3, bucket):
    """Copies into an encrypted destination (CopyObject, UploadPartCopy) write
    ciphertext too, from clear and from encrypted sources."""
    marker = f"<<copy source marker {uuid.uuid4().hex[:8]}>>".encode()
    plain = body(marker, BLOB_SIZE)
    s3.put_object(Bucket=bucket, Key="src-clear", Body=plain)
    s3.copy_object(Bucket=bucket, Key="to-s3", CopySource={"Bucket": bucket, "Key": "src-clear"},
                   ServerSideEncryption="AES256")
    s3.copy_object(Bucket=bucket, Key="to-c", CopySource={"Bucket": bucket, "Key": "to-s3"}, **sse_c(CUSTOMER_KEY))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="to-kms-mpu", ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId="test-key")["UploadId"]
    part = s3.upload_part_copy(Bucket=bucket, Key="to-kms-mpu", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "to-c"},
                               CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=CUSTOMER_KEY)
    s3.complete_multipart_upload(Bucket=bucket, Key="to-kms-mpu", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    for key, sse in (("to-s3", {}), ("to-c", sse_c(CUSTOMER_KEY)), ("to-kms-mpu", {})):
        assert s3.get_object(Bucket=bucket, Key=key, **sse)["Body"].read() == plain, key
        forms, encryption = stored_forms(srv, bucket, key)
        assert encryption, key
        for where, data, size in forms:
            assert data[:4] == b"BSE1" and len(data) == cipher_size(size), (key, where, len(data), size)
            assert marker not in data, f"{key}: plaintext in {where}"
    assert marker in stored_forms(srv, bucket, "src-clear")[0][0][1]


# -- (b) tampering ------------------------------------------------------------------------------

def _flip(path: Path, offset: int) -> int:
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([old ^ 0x01]))
    return old


def _restore(path: Path, offset: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(bytes([value]))


@pytest.mark.parametrize("mode", ["sse-s3", "sse-c"])
def test_flipped_byte_in_a_blob_fails_the_get_and_never_serves_altered_bytes(srv, s3, bucket, mode, capsys):
    sse = MODES[mode]
    marker = f"<<tamper {mode} {uuid.uuid4().hex[:8]}>>".encode()
    plain = body(marker, BLOB_SIZE)  # 5 chunks: 4 of 64 KiB and one of 44 KiB
    s3.put_object(Bucket=bucket, Key="victim", Body=plain, **sse)
    location, inline = location_of(srv, bucket, "victim")
    assert not inline
    path = blob_path(srv, location)
    assert path.stat().st_size == cipher_size(BLOB_SIZE)
    rsse = read_sse(sse)

    def exact(got: Fetched, status: int, want: bytes) -> bool:
        return (got.status, got.complete, got.body == want) == (status, True, True)

    assert exact(fetch(srv, bucket, "victim", sse=rsse), 200, plain)

    # One byte in the middle of chunk 2's ciphertext (plaintext 131072..196607).
    offset = HEADER + 2 * (CHUNK + TAG) + 1000
    old = _flip(path, offset)
    outcomes = {"whole GET": assert_fails_without_altered_bytes(srv, bucket, "victim", plain, "whole GET", sse=rsse)}
    for rng, start in (("bytes=140000-140100", 140000), ("bytes=100000-150000", 100000), ("bytes=131072-", 131072)):
        outcomes[rng] = assert_fails_without_altered_bytes(srv, bucket, "victim", plain, f"GET Range {rng}",
                                                           rng, offset=start, sse=rsse)
    # Ranges of unaltered chunks only (0, 0-1, 4, a suffix in chunk 4) still read exactly.
    for rng, (lo, hi) in (("bytes=0-65535", (0, 65536)), ("bytes=1000-131071", (1000, 131072)),
                          ("bytes=262144-307199", (262144, 307200)), ("bytes=-5000", (BLOB_SIZE - 5000, BLOB_SIZE))):
        got = fetch(srv, bucket, "victim", rng, rsse)
        assert exact(got, 206, plain[lo:hi]), (
            f"GET Range {rng} (chunks the flip did not touch): {got.status} {got.code}, {len(got.body)} bytes, "
            f"{'exact' if got.body == plain[lo:hi] else 'different'}, complete {got.complete}")
    with capsys.disabled():
        print(f"\n[tamper {mode}] " + "; ".join(f"{k}: {v}" for k, v in outcomes.items())
              + "; ranges of unaltered chunks: 206 exact")
    # The server still serves other objects, and the object itself once the byte is back.
    s3.put_object(Bucket=bucket, Key="bystander", Body=b"fine", **sse)
    assert s3.get_object(Bucket=bucket, Key="bystander", **rsse)["Body"].read() == b"fine"
    _restore(path, offset, old)
    assert exact(fetch(srv, bucket, "victim", sse=rsse), 200, plain)


def test_flipped_byte_deep_in_a_large_blob_cuts_the_body_at_a_true_prefix(srv, s3, bucket, capsys):
    """A 3 MiB object altered at 2.5 MiB: the response may have started (a cut
    body), but every byte that arrives is the object's own, none from the altered
    chunk on; ranges before the damage read exactly."""
    plain = body(f"<<deep tamper {uuid.uuid4().hex[:8]}>>".encode(), 3 * MiB)
    s3.put_object(Bucket=bucket, Key="large", Body=plain, ServerSideEncryption="AES256")
    path = blob_path(srv, location_of(srv, bucket, "large")[0])
    chunk = (5 * MiB // 2) // CHUNK
    _flip(path, HEADER + chunk * (CHUNK + TAG) + 77)
    outcome = assert_fails_without_altered_bytes(srv, bucket, "large", plain, "whole GET")
    got = fetch(srv, bucket, "large")
    assert len(got.body) <= chunk * CHUNK, f"{len(got.body)} bytes arrived: beyond the altered chunk's start"
    ok = fetch(srv, bucket, "large", f"bytes=0-{chunk * CHUNK - 1}")
    assert (ok.status, ok.complete, ok.body == plain[:chunk * CHUNK]) == (206, True, True), (ok.status, ok.code)
    with capsys.disabled():
        print(f"\n[tamper 3 MiB at chunk {chunk}] whole GET: {outcome}")


@pytest.mark.parametrize("damage", ["header salt", "first chunk", "last tag", "truncated last chunk",
                                    "swapped chunks", "appended chunk"])
def test_damaged_blob_fails_the_get(srv, s3, bucket, damage):
    marker = f"<<damage {damage} {uuid.uuid4().hex[:8]}>>".encode()
    plain = body(marker, 3 * CHUNK)  # exactly three full chunks
    s3.put_object(Bucket=bucket, Key="victim", Body=plain, ServerSideEncryption="AES256")
    path = blob_path(srv, location_of(srv, bucket, "victim")[0])
    data = bytearray(path.read_bytes())
    assert len(data) == cipher_size(len(plain))
    sealed = CHUNK + TAG
    chunks = [bytes(data[HEADER + i * sealed:HEADER + (i + 1) * sealed]) for i in range(3)]
    if damage == "header salt":
        data[10] ^= 0x80
    elif damage == "first chunk":
        data[HEADER] ^= 0x01
    elif damage == "last tag":
        data[-1] ^= 0x01
    elif damage == "truncated last chunk":
        data = data[:HEADER + 2 * sealed]  # two whole chunks: the new last lacks the "last" flag
    elif damage == "swapped chunks":
        data = data[:HEADER] + chunks[1] + chunks[0] + chunks[2]
    elif damage == "appended chunk":
        data = data + chunks[1]
    path.write_bytes(bytes(data))
    if damage == "appended chunk":
        # The object's own chunks are intact (the last still carries its flag):
        # serving exactly them is right; the extra chunk must never be served.
        got = fetch(srv, bucket, "victim")
        if got.status == 200 and got.complete:
            assert got.body == plain, "GET after an appended chunk served more or other bytes than the object's"
            return
    outcome = assert_fails_without_altered_bytes(srv, bucket, "victim", plain, f"GET after {damage}")
    if damage in ("header salt", "first chunk", "swapped chunks"):
        assert outcome == "500 InternalError", f"GET after {damage} (its first chunk fails): {outcome}, not a 500"


def _swap(a: Path, b: Path) -> None:
    data_a, data_b = a.read_bytes(), b.read_bytes()
    assert len(data_a) == len(data_b)
    a.write_bytes(data_b)
    b.write_bytes(data_a)


def test_swapped_part_blobs_of_one_upload_fail_the_get(srv, s3, bucket):
    """Two equal-size parts of one multipart object, their blob files swapped on
    disk: the GET must fail, not serve part 2's bytes as part 1's."""
    parts = [body(b"<<swap part one>>", PART), body(b"<<swap part two>>", PART), body(b"<<swap tail>>", 1000)]
    put_multipart(s3, bucket, "mpu", parts, ServerSideEncryption="AES256")
    rows = read_db(srv, "SELECT data_location FROM object_parts WHERE bucket = ? AND key = ? ORDER BY part_number",
                   (bucket, "mpu"))
    assert len(rows) == 3
    _swap(blob_path(srv, rows[0][0]), blob_path(srv, rows[1][0]))
    plain = b"".join(parts)
    assert_fails_without_altered_bytes(srv, bucket, "mpu", plain, "GET with parts 1 and 2 swapped")
    got = fetch(srv, bucket, "mpu", PartNumber=1)
    assert got.body != parts[1], "GET partNumber=1 served part 2's bytes"
    assert_fails_without_altered_bytes(srv, bucket, "mpu", plain, "GET partNumber=1 (holds part 2's blob)",
                                       f"bytes=0-{PART - 1}")


@pytest.mark.parametrize("mode", ["sse-c", "sse-s3"])
def test_blobs_of_two_objects_swapped_fail_the_get(srv, s3, bucket, mode):
    """Two objects of one size (SSE-C: under the same customer key), blob files
    swapped: neither GET may serve the other object's plaintext as its own."""
    sse = MODES[mode]
    one, two = body(b"<<object one>>", BLOB_SIZE), body(b"<<object two>>", BLOB_SIZE)
    s3.put_object(Bucket=bucket, Key="one", Body=one, **sse)
    s3.put_object(Bucket=bucket, Key="two", Body=two, **sse)
    _swap(blob_path(srv, location_of(srv, bucket, "one")[0]), blob_path(srv, location_of(srv, bucket, "two")[0]))
    for key, plain in (("one", one), ("two", two)):
        assert_fails_without_altered_bytes(srv, bucket, key, plain, f"GET {key} (holding the other's blob)",
                                           sse=read_sse(sse))


def test_flipped_byte_in_an_encrypted_inline_row_fails_the_get(srv, s3, bucket):
    marker = f"<<inline tamper {uuid.uuid4().hex[:8]}>>".encode()
    plain = body(marker, INLINE_SIZE)
    s3.put_object(Bucket=bucket, Key="small", Body=plain, ServerSideEncryption="AES256")
    location, inline = location_of(srv, bucket, "small")
    if not inline:
        pytest.fail("an inline-sized SSE-S3 object is not stored inline (inline_max_size 16 KiB)")
    conn = sqlite3.connect(db_path(srv), timeout=30)
    try:
        [(data,)] = conn.execute("SELECT data FROM inline_data WHERE id = ?", (location,)).fetchall()
        altered = bytearray(data)
        altered[HEADER + 100] ^= 0x01
        with conn:
            conn.execute("UPDATE inline_data SET data = ? WHERE id = ?", (bytes(altered), location))
    finally:
        conn.close()
    assert assert_fails_without_altered_bytes(srv, bucket, "small", plain, "GET of the altered inline object") \
        == "500 InternalError"


def test_flipped_byte_in_one_part_fails_only_reads_of_that_part(srv, s3, bucket):
    parts = [body(b"<<part one>>", PART), body(b"<<part two>>", LAST_PART)]
    put_multipart(s3, bucket, "mpu", parts, ServerSideEncryption="AES256")
    [(location,)] = read_db(srv, "SELECT data_location FROM object_parts WHERE bucket = ? AND key = ? AND"
                                 " part_number = 2", (bucket, "mpu"))
    _flip(blob_path(srv, location), HEADER + 10)
    plain = b"".join(parts)
    assert_fails_without_altered_bytes(srv, bucket, "mpu", plain, "whole GET")
    for got in (fetch(srv, bucket, "mpu", PartNumber=1), fetch(srv, bucket, "mpu", f"bytes=0-{PART - 1}")):
        assert (got.status, got.complete, got.body == parts[0]) == (206, True, True), (
            got.status, got.code, len(got.body))
    assert_fails_without_altered_bytes(srv, bucket, "mpu", plain, "GET of part 2's range (altered)",
                                       f"bytes={PART}-", offset=PART)


# -- (c) key configuration ------------------------------------------------------------------------

def _refused(workdir: Path, extra: str, env: dict | None = None) -> str:
    """Run `bleepstore serve` on a config that must be refused: its output."""
    config = write_config(workdir, None, extra=extra)
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_SERVER_PORT=str(free_port()), **(env or {}))
    proc = subprocess.Popen([BLEEPSTORE, "serve"], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"the server started (still running after 30 s) on a config it must refuse:\n"
                             f"{out.decode(errors='replace')[-3000:]}")
    text = out.decode(errors="replace")
    assert proc.returncode != 0, f"exit code 0 on a config that must be refused:\n{text}"
    return text


KEY_B64 = base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize("case", ["inline master key", "inline kms key", "missing key file", "short key file",
                                  "unset env variable"])
def test_bad_key_configuration_refuses_to_start_with_one_line(tmp_path, case):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ok.key").write_bytes(os.urandom(32))
    (keys / "short.key").write_bytes(base64.b64encode(os.urandom(16)))
    master, kms, setting = f"file:{keys}/ok.key", f"file:{keys}/ok.key", "encryption.master_keys.m1"
    if case == "inline master key":
        master = KEY_B64
    elif case == "inline kms key":
        kms, setting = KEY_B64, "encryption.kms_keys.test-key"
    elif case == "missing key file":
        master = f"file:{keys}/nope.key"
    elif case == "short key file":
        master = f"file:{keys}/short.key"
    else:
        master = "env:BLEEPSTORE_TEST_NO_SUCH_KEY_VARIABLE"
    extra = f'encryption:\n  master_keys:\n    m1: "{master}"\n  kms_keys:\n    test-key: "{kms}"\n'
    out = _refused(tmp_path, extra)
    lines = [line for line in out.splitlines() if line.strip()]
    naming = [line for line in lines if setting in line]
    assert naming, f"{case}: no line names {setting}:\n{out}"
    assert "Traceback" not in out, f"{case}: a traceback instead of a message:\n{out}"
    assert len(lines) <= 3, f"{case}: {len(lines)} lines of output instead of one message:\n{out}"
    assert KEY_B64 not in out, f"{case}: the key value is echoed in the message"


def test_key_sources_env_base64_and_raw_file_work(tmp_path):
    """A master key in an environment variable (base64), a KMS key as a file of 32
    raw bytes: the server starts, and both modes write ciphertext that reads back."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "raw.key").write_bytes(os.urandom(32))
    extra = (f"encryption:\n  master_keys:\n    from-env: env:BLEEPSTORE_TEST_SSE_MASTER\n"
             f"  kms_keys:\n    test-key: file:{keys}/raw.key\n")
    srv = start(tmp_path, extra=extra, env={"BLEEPSTORE_TEST_SSE_MASTER": base64.b64encode(os.urandom(32)).decode()})
    try:
        s3 = client(srv)
        s3.create_bucket(Bucket="sources")
        for key, sse in (("s3", MODES["sse-s3"]), ("kms", MODES["sse-kms"])):
            plain = body(f"<<key source {key}>>".encode(), BLOB_SIZE)
            s3.put_object(Bucket="sources", Key=key, Body=plain, **sse)
            assert s3.get_object(Bucket="sources", Key=key)["Body"].read() == plain
            [(_, data, _)], _ = stored_forms(srv, "sources", key)
            assert data[:4] == b"BSE1" and b"<<key source" not in data
        s3.close()
    finally:
        srv.stop()


def test_sqlite_without_master_keys_makes_sse_master_key_0600_and_survives_restarts(tmp_path):
    srv = start(tmp_path, extra="encryption:\n  master_keys: {}\n")
    key_file = tmp_path / "data" / "sse-master.key"
    try:
        assert key_file.exists(), f"no sse-master.key next to the database: {sorted(os.listdir(tmp_path / 'data'))}"
        assert key_file.stat().st_mode & 0o777 == 0o600, oct(key_file.stat().st_mode)
        raw = key_file.read_bytes()
        assert len(raw) == 32 or len(base64.b64decode(raw.strip())) == 32
        s3 = client(srv)
        s3.create_bucket(Bucket="local-key")
        marker = b"<<local master key marker>>"
        blob, small = body(marker, BLOB_SIZE), body(marker, INLINE_SIZE)
        assert s3.put_object(Bucket="local-key", Key="blob", Body=blob,
                             ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"
        s3.put_object(Bucket="local-key", Key="small", Body=small, ServerSideEncryption="AES256")
        s3.put_object(Bucket="local-key", Key="managed-kms", Body=blob, ServerSideEncryption="aws:kms")
        for key, plain in (("blob", blob), ("small", small), ("managed-kms", blob)):
            forms, _ = stored_forms(srv, "local-key", key)
            assert all(d[:4] == b"BSE1" and marker not in d for _, d, _ in forms), key
        s3.close()
        srv.stop()

        srv.start()
        assert key_file.read_bytes() == raw, "the restart replaced sse-master.key"
        s3 = client(srv)
        for key, plain in (("blob", blob), ("small", small), ("managed-kms", blob)):
            got = s3.get_object(Bucket="local-key", Key=key)
            assert got["Body"].read() == plain, f"{key} after a restart"
        s3.close()
        srv.stop()

        # The key file lost: a new key is made, and the old objects are 500, never ciphertext.
        key_file.unlink()
        srv.start()
        assert key_file.exists() and key_file.read_bytes() != raw
        s3 = client(srv)
        for key in ("blob", "small"):
            got = fetch(srv, "local-key", key)
            assert (got.status, got.code) == (500, "InternalError"), (key, got.status, got.code, got.body[:100])
        s3.put_object(Bucket="local-key", Key="new", Body=blob, ServerSideEncryption="AES256")
        assert s3.get_object(Bucket="local-key", Key="new")["Body"].read() == blob
        s3.close()
    finally:
        srv.stop()


def _keys_yaml(workdir: Path, masters: list[str], active: str | None) -> str:
    keys = workdir / "keys"
    lines = ["encryption:", "  master_keys:"]
    for name in masters:
        path = keys / f"{name}.key"
        if not path.exists():
            path.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
            path.chmod(0o600)
        lines.append(f"    {name}: file:{path}")
    if active:
        lines.append(f"  active_master_key: {active}")
    lines += ["  kms_keys:", f"    test-key: file:{keys}/test-key.key", ""]
    return "\n".join(lines)


def test_master_key_rotation_and_removal(tmp_path):
    srv = start(tmp_path)  # m1 (tests/servers.py)
    env = srv.env
    try:
        s3 = client(srv)
        s3.create_bucket(Bucket="rotate")
        old_blob, old_small = body(b"<<written under m1>>", BLOB_SIZE), body(b"<<small under m1>>", INLINE_SIZE)
        s3.put_object(Bucket="rotate", Key="old", Body=old_blob, ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="old-small", Body=old_small, ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="old-kms", Body=old_small, ServerSideEncryption="aws:kms")
        put_multipart(s3, "rotate", "old-mpu", [old_blob * 18, old_small], ServerSideEncryption="AES256")
        s3.close()
        srv.stop()

        def restart(masters, active):
            config = write_config(tmp_path, None, extra=_keys_yaml(tmp_path, masters, active))
            srv.env = dict(env, BLEEPSTORE_CONFIG=str(config))
            srv.start()
            return client(srv)

        # m2 added and active: the old objects read, new objects are written (under m2).
        s3 = restart(["m1", "m2"], "m2")
        for key, plain in (("old", old_blob), ("old-small", old_small), ("old-kms", old_small),
                           ("old-mpu", old_blob * 18 + old_small)):
            assert s3.get_object(Bucket="rotate", Key=key)["Body"].read() == plain, f"{key} after adding m2"
        new_blob, new_small = body(b"<<written under m2>>", BLOB_SIZE), body(b"<<small under m2>>", INLINE_SIZE)
        s3.put_object(Bucket="rotate", Key="new", Body=new_blob, ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="new-small", Body=new_small, ServerSideEncryption="AES256")
        s3.put_object(Bucket="rotate", Key="new-kms", Body=new_small, ServerSideEncryption="aws:kms")
        put_multipart(s3, "rotate", "new-mpu", [new_blob * 18, new_small], ServerSideEncryption="AES256")
        s3.close()
        srv.stop()

        # m1 removed: what m1 wrapped is 500 InternalError (never its ciphertext); m2's reads.
        s3 = restart(["m2"], None)
        for key in ("old", "old-small", "old-kms", "old-mpu"):
            for rng in (None, "bytes=0-99"):
                got = fetch(srv, "rotate", key, rng)
                assert (got.status, got.code) == (500, "InternalError"), (
                    f"GET {key} {rng or ''} (wrapped by the removed m1): {got.status} {got.code} "
                    f"{got.body[:100]!r}")
        for key, plain in (("new", new_blob), ("new-small", new_small), ("new-kms", new_small),
                           ("new-mpu", new_blob * 18 + new_small)):
            assert s3.get_object(Bucket="rotate", Key=key)["Body"].read() == plain, f"{key} without m1"
        s3.close()
        srv.stop()

        # m1 back (not active): the old objects read again; removing a key destroyed nothing.
        s3 = restart(["m1", "m2"], "m2")
        assert s3.get_object(Bucket="rotate", Key="old")["Body"].read() == old_blob
        assert s3.get_object(Bucket="rotate", Key="old-mpu")["Body"].read() == old_blob * 18 + old_small
        s3.close()
    finally:
        srv.stop()


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (BLEEPSTORE_TEST_DATABASE_URL)")
def test_postgresql_without_master_key_answers_sse_s3_with_501(tmp_path, pg_databases):
    """No sse-master.key is made for PostgreSQL (several nodes would each make their
    own): SSE-S3 is 501 NotImplemented; a named SSE-KMS key still works."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "test-key.key").write_bytes(base64.b64encode(os.urandom(32)))
    extra = f"encryption:\n  master_keys: {{}}\n  kms_keys:\n    test-key: file:{keys}/test-key.key\n"
    config = write_config(tmp_path, pg_databases.create(), extra=extra)
    srv = Server(tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config))).start()
    try:
        s3 = client(srv)
        s3.create_bucket(Bucket="pg-bucket")
        assert error_code(lambda: s3.put_object(Bucket="pg-bucket", Key="k", Body=b"x",
                                                ServerSideEncryption="AES256")) == (501, "NotImplemented")
        assert not list(tmp_path.rglob("sse-master.key"))
        s3.put_object(Bucket="pg-bucket", Key="kms", Body=b"named kms key", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="test-key")
        assert s3.get_object(Bucket="pg-bucket", Key="kms")["Body"].read() == b"named kms key"
        s3.put_object(Bucket="pg-bucket", Key="clear", Body=b"x")
        s3.close()
    finally:
        srv.stop()


# -- (d) gateway backends -----------------------------------------------------------------------

class BackingReader:
    """The emulator's objects under our prefix, read with the cloud SDK directly."""

    def __init__(self, emulator, prefix: str) -> None:
        self.emulator, self.prefix = emulator, prefix

    def read_all(self) -> dict[str, bytes]:
        p, s, kind = self.prefix, self.emulator.settings, self.emulator.name
        if kind in ("moto", "seaweedfs"):
            import boto3

            from ..emulators.s3 import ACCESS_KEY, SECRET_KEY
            c = boto3.client("s3", endpoint_url=self.emulator.endpoint, aws_access_key_id=ACCESS_KEY,
                             aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
            try:
                keys = [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=s.bucket, Prefix=p)
                        for o in page.get("Contents", [])]
                return {k[len(p):]: c.get_object(Bucket=s.bucket, Key=k)["Body"].read() for k in keys}
            finally:
                c.close()
        if kind == "fake-gcs-server":
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage
            c = storage.Client(project="test", credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": s.endpoint})
            return {b.name[len(p):]: b.download_as_bytes() for b in c.list_blobs(s.bucket, prefix=p)}
        from azure.storage.blob import ContainerClient
        with ContainerClient.from_connection_string(s.connection_string, s.container) as container:
            return {b.name[len(p):]: container.download_blob(b.name).readall()
                    for b in container.list_blobs(name_starts_with=p)}


def _gateway_yaml(yaml: str, prefix: str) -> str:
    out = yaml.replace('prefix: "bleepstore/"', f'prefix: "{prefix}"').replace(
        "prefix: bleepstore/\n", f"prefix: {prefix}\n")
    assert out != yaml, "emulator yaml has no prefix to replace"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("gateway", ["aws-moto", "gcp", "azure"])
def test_gateway_backing_objects_hold_only_ciphertext(gateway, tmp_path, emulators):
    emulator = emulators.get(GATEWAY_EMULATORS[gateway])
    prefix = f"bleepstore-sse-{uuid.uuid4().hex[:12]}/"
    config = write_config(tmp_path, None, storage=_gateway_yaml(emulator.yaml, prefix))
    srv = Server(tmp_path, dict(os.environ, **emulator.env, BLEEPSTORE_CONFIG=str(config))).start(timeout=60)
    try:
        s3 = client(srv)
        s3.create_bucket(Bucket="gateway")
        markers = {key: f"<<gateway {gateway} {key} {uuid.uuid4().hex[:6]}>>".encode()
                   for key in ("sse-s3", "sse-s3-small", "sse-kms", "sse-c", "sse-s3-mpu", "clear")}
        plains = {key: body(markers[key], INLINE_SIZE if key == "sse-s3-small" else BLOB_SIZE) for key in markers}
        s3.put_object(Bucket="gateway", Key="sse-s3", Body=plains["sse-s3"], ServerSideEncryption="AES256")
        s3.put_object(Bucket="gateway", Key="sse-s3-small", Body=plains["sse-s3-small"], ServerSideEncryption="AES256")
        s3.put_object(Bucket="gateway", Key="sse-kms", Body=plains["sse-kms"], ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="test-key")
        s3.put_object(Bucket="gateway", Key="sse-c", Body=plains["sse-c"], **sse_c(CUSTOMER_KEY))
        mpu_parts = [body(markers["sse-s3-mpu"], PART), plains["sse-s3-mpu"]]
        put_multipart(s3, "gateway", "sse-s3-mpu", mpu_parts, ServerSideEncryption="AES256")
        plains["sse-s3-mpu"] = b"".join(mpu_parts)
        s3.put_object(Bucket="gateway", Key="clear", Body=plains["clear"])
        for key, plain in plains.items():
            sse = sse_c(CUSTOMER_KEY) if key == "sse-c" else {}
            assert s3.get_object(Bucket="gateway", Key=key, **sse)["Body"].read() == plain, f"{gateway} {key}"
        s3.close()

        backing = BackingReader(emulator, prefix).read_all()
        # The server's metadata names each object's backing object(s).
        where = {}
        for key in plains:
            [(location, size)] = read_db(srv, "SELECT data_location, size FROM objects WHERE bucket='gateway' AND key=?",
                                         (key,))
            if location == "multipart":
                where[key] = read_db(srv, "SELECT data_location, size FROM object_parts WHERE bucket='gateway' AND key=?"
                                          " ORDER BY part_number", (key,))
            else:
                where[key] = [(location, size)]
        assert backing, f"{gateway}: nothing under {prefix} in the backing store"
        clear_locations = {loc for loc, _ in where["clear"]}
        assert any(markers["clear"] in backing[loc] for loc in clear_locations), (
            f"{gateway}: the clear control's plaintext is not in its backing object: the check cannot see it")
        for key, located in where.items():
            if key == "clear":
                continue
            for location, size in located:
                assert location in backing, f"{gateway} {key}: backing object {location} not found"
                data = backing[location]
                assert data[:4] == b"BSE1", f"{gateway} {key}: backing object starts {data[:8]!r}, not BSE1"
                if key != "sse-s3-mpu":
                    assert len(data) == cipher_size(size), (gateway, key, len(data), size)
        for name, data in backing.items():
            if name in clear_locations:
                continue
            for key, marker in markers.items():
                if key != "clear":
                    assert marker not in data, f"{gateway}: {key}'s plaintext is in backing object {name}"
            assert base64.b64encode(CUSTOMER_KEY) not in data and CUSTOMER_KEY not in data
    finally:
        srv.stop()
