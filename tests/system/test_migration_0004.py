"""Schema 0004 (server-side encryption) against data written by the release
before it (commit 7b908dc, schema head 0003), on both engines.

As in test_migration_0003.py, the old release runs from its own source tree
(``git archive`` of that commit) on the same interpreter and virtualenv: its
directory is the server's cwd and first on PYTHONPATH, so ``import
bleepstore_app`` is the old code; each test checks that by asking that server
for something only the new code does (an SSE-S3 write, which 7b908dc refuses
with 501). The old release reads a config without the settings it does not
know (the encryption section), on the same database and data directory.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from ..conftest import ENGINES
from ..servers import Server, write_config
from .test_migration_0003 import (HEAD, MIB, NO_AUTOMIGRATE, ROOT, canonical, clients, flask_db, head_view, listing,
                                  read, schema, schema_revision, sha, snapshot, strip)

OLD_RELEASE = "7b908dc"  # the release whose schema head is 0003
# Later revisions (0005...) apply too when the current code migrates to its HEAD; the
# refusal under test is 0004's own, so that test takes the database down to 0004 first.
ENCRYPTED_TABLES = ("buckets", "objects", "object_versions", "multipart_uploads")


def old_config(config: Path) -> Path:
    """The test server's config minus what the 0003 release does not know (it
    refuses unknown settings): same database, same data directory."""
    text = config.read_text()
    text = text.split("\nencryption:\n", 1)[0] + "\n"
    path = config.with_name("bleepstore-0003.yaml")
    path.write_text(text)
    return path


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    assert "\nencryption:\n" in config.read_text(), "tests/servers.py gives test servers encryption keys"
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app")


@pytest.fixture
def old_release(tmp_path) -> Path:
    """The 0003 release's source tree (bleepstore_app, wsgi.py, gunicorn.conf.py)."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not installed: the 0003 release's source cannot be extracted")
    tree = tmp_path / "release-0003"
    tree.mkdir()
    archive = subprocess.run([git, "-C", str(ROOT), "archive", OLD_RELEASE, "bleepstore_app", "wsgi.py",
                              "gunicorn.conf.py"], capture_output=True, timeout=60)
    if archive.returncode != 0:
        pytest.fail(f"cannot extract release {OLD_RELEASE} from the repository at {ROOT} "
                    f"(git archive exited {archive.returncode}): {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
    versions = sorted(p.name for p in (tree / "bleepstore_app/migrations/versions").glob("*.py"))
    assert versions == ["0001_initial_schema.py", "0002_blob_garbage_and_leases.py",
                        "0003_object_versions_and_object_lock.py"], versions
    return tree


def old_server(tree: Path, env: dict) -> Server:
    """A server of the old release: the tree is its cwd (and where its log goes)."""
    config = old_config(Path(env["BLEEPSTORE_CONFIG"]))
    return Server(tree, dict(env, BLEEPSTORE_CONFIG=str(config),
                             PYTHONPATH=os.pathsep.join([str(tree)] + [p for p in [env.get("PYTHONPATH")] if p])))


def assert_old_code(s3, bucket: str) -> None:
    """The server behind ``s3`` is the 0003 release: it has no server-side encryption."""
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="probe-sse", Body=b"x", ServerSideEncryption="AES256")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501, exc.value.response
    assert exc.value.response["Error"]["Code"] == "NotImplemented"


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def put_sse_s3(s3, bucket: str, key: str, body: bytes) -> dict:
    """An SSE-S3 PutObject, checked as S3 answers it: the mode echoed, the ETag the plaintext's MD5."""
    out = s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
    assert out.get("ServerSideEncryption") == "AES256", strip(out)
    assert out["ETag"] == md5_etag(body)
    return out


def encrypted_rows(env: dict) -> dict[str, int]:
    """Rows with the encryption column set, per table, straight from the database."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE encryption IS NOT NULL")).scalar_one()
                    for t in ENCRYPTED_TABLES}
    finally:
        engine.dispose()


def version_view(s3, bucket: str) -> dict:
    out = s3.list_object_versions(Bucket=bucket)
    assert not out["IsTruncated"]
    return strip(out)


def fill(s3, s3_other, other_id: str) -> dict:
    """Objects of every storage kind (inline, blob, multipart), a versioned bucket
    with noncurrent versions and a delete marker, ACLs, uploads left in flight;
    what a reader should find afterwards."""
    for bucket in ("old-data", "old-vers", "old-acl"):
        s3.create_bucket(Bucket=bucket)
    objects = {
        ("old-data", "inline/small.txt"): dict(Body=b"hello, 0003\n" * 8, ContentType="text/plain",
                                               Metadata={"colour": "blue", "n": "1"}),
        ("old-data", "inline/\u00fcnicode k\u00e9y"): dict(Body=os.urandom(15_000),
                                                          ContentType="application/x-small",
                                                          ContentDisposition="attachment; filename=a.bin",
                                                          CacheControl="max-age=60"),
        ("old-data", "inline/empty"): dict(Body=b""),
        ("old-data", "blob.bin"): dict(Body=os.urandom(300_000), ContentType="application/octet-stream",
                                       Metadata={"kind": "blob"}),
        ("old-acl", "granted.bin"): dict(Body=os.urandom(50_000), ContentType="image/png"),
    }
    bodies = {}
    for (bucket, key), kw in objects.items():
        s3.put_object(Bucket=bucket, Key=key, **kw)
        bodies[bucket, key] = kw["Body"]

    big = os.urandom(10 * MIB + 12_345)
    bodies["old-data", "multipart.bin"] = big
    multipart(s3, "old-data", "multipart.bin", big, ContentType="video/mp4", Metadata={"kind": "multipart"})

    # a versioned bucket: three versions of one key (inline, blob, multipart), and a
    # key whose current version is a delete marker over an inline one
    s3.put_bucket_versioning(Bucket="old-vers", VersioningConfiguration={"Status": "Enabled"})
    versions = {}
    doc = [b"first version, inline", os.urandom(120_000), os.urandom(5 * MIB + 777)]
    vid = s3.put_object(Bucket="old-vers", Key="doc", Body=doc[0], Metadata={"v": "1"})["VersionId"]
    versions["old-vers", "doc", vid] = doc[0]
    vid = s3.put_object(Bucket="old-vers", Key="doc", Body=doc[1], ContentType="application/x-v2")["VersionId"]
    versions["old-vers", "doc", vid] = doc[1]
    vid = multipart(s3, "old-vers", "doc", doc[2], Metadata={"v": "3"})["VersionId"]
    versions["old-vers", "doc", vid] = doc[2]
    bodies["old-vers", "doc"] = doc[2]
    gone = b"deleted, but kept as a noncurrent version"
    vid = s3.put_object(Bucket="old-vers", Key="gone", Body=gone)["VersionId"]
    versions["old-vers", "gone", vid] = gone
    marker = s3.delete_object(Bucket="old-vers", Key="gone")
    assert marker["DeleteMarker"] is True

    s3.put_object_acl(Bucket="old-acl", Key="granted.bin", GrantRead=f"id={other_id}",
                      GrantFullControl=f"id={canonical(s3)}")
    s3.put_bucket_acl(Bucket="old-acl", GrantRead=f"id={other_id}", GrantFullControl=f"id={canonical(s3)}")
    assert s3_other.get_object(Bucket="old-acl", Key="granted.bin")["Body"].read() == bodies["old-acl", "granted.bin"]

    inflight_part1 = os.urandom(5 * MIB)
    inflight = s3.create_multipart_upload(Bucket="old-data", Key="inflight.bin", ContentType="text/csv",
                                          Metadata={"kind": "inflight"})["UploadId"]
    inflight_etag1 = s3.upload_part(Bucket="old-data", Key="inflight.bin", UploadId=inflight, PartNumber=1,
                                    Body=inflight_part1)["ETag"]
    # and one in the versioned bucket, over the key with three versions
    over = s3.create_multipart_upload(Bucket="old-vers", Key="doc", Metadata={"v": "4"})["UploadId"]
    over_part = os.urandom(2000)
    over_etag = s3.upload_part(Bucket="old-vers", Key="doc", UploadId=over, PartNumber=1, Body=over_part)["ETag"]

    return {
        "bodies": {k: sha(v) for k, v in bodies.items()},
        "raw": bodies,
        "heads": {k: head_view(s3, *k) for k in bodies},
        "versions": {k: sha(v) for k, v in versions.items()},
        "version_heads": {(b, k, v): head_view(s3, b, k, VersionId=v) for b, k, v in versions},
        "version_listing": version_view(s3, "old-vers"),
        "marker": marker["VersionId"],
        "listings": {b: listing(s3, b) for b in ("old-data", "old-vers", "old-acl")},
        "object_acl": strip(s3.get_object_acl(Bucket="old-acl", Key="granted.bin")),
        "bucket_acl": strip(s3.get_bucket_acl(Bucket="old-acl")),
        "data_bucket_acl": strip(s3.get_bucket_acl(Bucket="old-data")),
        "blob_acl": strip(s3.get_object_acl(Bucket="old-data", Key="blob.bin")),
        "versioning": strip(s3.get_bucket_versioning(Bucket="old-vers")),
        "uploads": {b: strip(s3.list_multipart_uploads(Bucket=b)) for b in ("old-data", "old-vers")},
        "parts": strip(s3.list_parts(Bucket="old-data", Key="inflight.bin", UploadId=inflight)),
        "inflight": (inflight, inflight_etag1, inflight_part1),
        "inflight_over": (over, over_etag, over_part),
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
    }


def multipart(s3, bucket: str, key: str, data: bytes, part_size: int = 5 * MIB, **kw) -> dict:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]
    chunks = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n,
                                                      Body=chunk)["ETag"]}
             for n, chunk in enumerate(chunks, 1)]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts})
    assert done["ETag"].endswith(f'-{len(chunks)}"'), done
    return done


def assert_reads_back(s3, s3_other, recorded: dict, *, new_code: bool) -> None:
    """Every object and version reads back as written: bytes, ETag, Last-Modified,
    headers; the same listings and ACLs. On the new code, nothing old claims to
    be encrypted."""
    for (bucket, key), digest in recorded["bodies"].items():
        body, view = read(s3, bucket, key)
        assert sha(body) == digest, (bucket, key)
        assert view == recorded["heads"][bucket, key], (bucket, key)
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head_view(s3, bucket, key) == recorded["heads"][bucket, key], (bucket, key)
        if new_code:
            assert "ServerSideEncryption" not in head and "SSECustomerAlgorithm" not in head, (bucket, key, head)
    for (bucket, key, vid), digest in recorded["versions"].items():
        body, view = read(s3, bucket, key, VersionId=vid)
        assert sha(body) == digest, (bucket, key, vid)
        assert view == recorded["version_heads"][bucket, key, vid], (bucket, key, vid)
    assert version_view(s3, "old-vers") == recorded["version_listing"]
    assert strip(s3.get_bucket_versioning(Bucket="old-vers")) == recorded["versioning"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="old-vers", Key="gone")
    assert exc.value.response["Error"]["Code"] == "NoSuchKey"
    for bucket, before in recorded["listings"].items():
        assert listing(s3, bucket) == before, bucket
    # ranges and parts of the old multipart and blob objects
    raw = recorded["raw"]
    big, blob = raw["old-data", "multipart.bin"], raw["old-data", "blob.bin"]
    for key, data, (a, b) in (("multipart.bin", big, (5 * MIB - 100, 5 * MIB + 100)),
                              ("multipart.bin", big, (len(big) - 1, len(big) - 1)),
                              ("blob.bin", blob, (65_530, 200_000))):
        got = s3.get_object(Bucket="old-data", Key=key, Range=f"bytes={a}-{b}")
        assert got["Body"].read() == data[a:b + 1], (key, a, b)
    second = s3.get_object(Bucket="old-data", Key="multipart.bin", PartNumber=2)
    assert second["Body"].read() == big[5 * MIB:10 * MIB] and second["PartsCount"] == 3
    assert strip(s3.get_object_acl(Bucket="old-acl", Key="granted.bin")) == recorded["object_acl"]
    assert strip(s3.get_bucket_acl(Bucket="old-acl")) == recorded["bucket_acl"]
    assert strip(s3.get_bucket_acl(Bucket="old-data")) == recorded["data_bucket_acl"]
    assert strip(s3.get_object_acl(Bucket="old-data", Key="blob.bin")) == recorded["blob_acl"]
    assert sha(s3_other.get_object(Bucket="old-acl", Key="granted.bin")["Body"].read()) == \
        recorded["bodies"]["old-acl", "granted.bin"]
    with pytest.raises(ClientError) as exc:  # the grant is READ on the one object, nothing more
        s3_other.get_object(Bucket="old-data", Key="blob.bin")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def complete_inflight(s3, recorded: dict, extra_part: bytes | None) -> None:
    """The uploads left in flight list as before, take a part, complete, read back."""
    assert {b: strip(s3.list_multipart_uploads(Bucket=b)) for b in ("old-data", "old-vers")} == recorded["uploads"]
    upload_id, etag1, part1 = recorded["inflight"]
    assert strip(s3.list_parts(Bucket="old-data", Key="inflight.bin", UploadId=upload_id)) == recorded["parts"]
    parts = [{"PartNumber": 1, "ETag": etag1}]
    if extra_part is not None:
        etag2 = s3.upload_part(Bucket="old-data", Key="inflight.bin", UploadId=upload_id, PartNumber=2,
                               Body=extra_part)["ETag"]
        parts.append({"PartNumber": 2, "ETag": etag2})
    done = s3.complete_multipart_upload(Bucket="old-data", Key="inflight.bin", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket="old-data", Key="inflight.bin")
    assert got["Body"].read() == part1 + (extra_part or b"")
    assert got["ETag"] == done["ETag"] and got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"kind": "inflight"}
    over, over_etag, over_part = recorded["inflight_over"]
    done = s3.complete_multipart_upload(Bucket="old-vers", Key="doc", UploadId=over,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": over_etag}]})
    latest = s3.get_object(Bucket="old-vers", Key="doc")
    assert latest["Body"].read() == over_part and latest["VersionId"] == done["VersionId"]
    assert latest["Metadata"] == {"v": "4"}
    for (bucket, key, vid), digest in recorded["versions"].items():  # the older versions untouched
        assert sha(s3.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read()) == digest
    assert [u for b in ("old-data", "old-vers") for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])] == []


def test_upgrade_from_the_0003_release(tmp_path, db_env, old_release):
    """A database written by the 0003 release migrates to 0004 when the current
    server starts on it, and serves every object, version, ACL and open upload
    as before, in clear (NULL encryption); new encrypted writes go beside them."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        assert_old_code(s3, "old-data")
    finally:
        srv.stop()
    assert schema_revision(db_env) == "0003"

    srv = Server(tmp_path, db_env).start()  # migrates on start
    try:
        current = flask_db(db_env, "current")
        assert f"{HEAD} (head)" in current.stdout, current.stdout + current.stderr
        assert encrypted_rows(db_env) == dict.fromkeys(ENCRYPTED_TABLES, 0)
        s3, s3_other = clients(srv)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == recorded["buckets"]
        assert_reads_back(s3, s3_other, recorded, new_code=True)
        for bucket in ("old-data", "old-vers", "old-acl"):
            with pytest.raises(ClientError) as exc:
                s3.get_bucket_encryption(Bucket=bucket)
            assert exc.value.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError"
        # SSE-C headers on a read of an old (clear) object: refused, as S3 does
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="old-data", Key="blob.bin", SSECustomerAlgorithm="AES256",
                          SSECustomerKey=os.urandom(32))
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

        complete_inflight(s3, recorded, extra_part=os.urandom(1000))
        done = s3.head_object(Bucket="old-data", Key="inflight.bin")
        assert "ServerSideEncryption" not in done  # the upload was begun in clear

        # encrypted writes beside the old data: a new key, a new version over an
        # old versioned key, and copies of old objects into SSE-S3
        fresh = b"encrypted after the upgrade " * 10_000
        put_sse_s3(s3, "old-data", "sse/new.bin", fresh)
        got = s3.get_object(Bucket="old-data", Key="sse/new.bin")
        assert got["Body"].read() == fresh and got["ServerSideEncryption"] == "AES256"
        new_vid = put_sse_s3(s3, "old-vers", "doc", fresh)["VersionId"]
        assert s3.get_object(Bucket="old-vers", Key="doc")["Body"].read() == fresh
        for (bucket, key, vid), digest in recorded["versions"].items():
            body, view = read(s3, bucket, key, VersionId=vid)
            assert sha(body) == digest and view == recorded["version_heads"][bucket, key, vid], (key, vid)
            assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
        assert s3.head_object(Bucket="old-vers", Key="doc", VersionId=new_vid)["ServerSideEncryption"] == "AES256"
        for key in ("multipart.bin", "blob.bin", "inline/small.txt"):
            copied = s3.copy_object(Bucket="old-data", Key=f"sse/copy-of-{key}", ServerSideEncryption="AES256",
                                    CopySource={"Bucket": "old-data", "Key": key})
            assert copied.get("ServerSideEncryption") == "AES256", strip(copied)
            got = s3.get_object(Bucket="old-data", Key=f"sse/copy-of-{key}")
            assert sha(got["Body"].read()) == recorded["bodies"]["old-data", key], key
        raw = recorded["raw"]
        big = raw["old-data", "multipart.bin"]
        a, b = 5 * MIB - 70_000, 5 * MIB + 70_000  # across the old part boundary and 64 KiB chunks
        got = s3.get_object(Bucket="old-data", Key="sse/copy-of-multipart.bin", Range=f"bytes={a}-{b}")
        assert got["Body"].read() == big[a:b + 1]
        # an old multipart object copied under a customer key (SSE-C), read back by range
        customer = os.urandom(32)
        s3.meta.events.register(  # as a TLS-terminating proxy would say (from here on)
            "before-sign.s3", lambda request, **_: request.headers.__setitem__("X-Forwarded-Proto", "https"))
        ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": customer}
        s3.copy_object(Bucket="old-data", Key="sse/ssec-copy",
                       CopySource={"Bucket": "old-data", "Key": "multipart.bin"}, **ssec)
        got = s3.get_object(Bucket="old-data", Key="sse/ssec-copy", Range=f"bytes={a}-{b}", **ssec)
        assert got["Body"].read() == big[a:b + 1] and got["SSECustomerAlgorithm"] == "AES256"
        assert sha(s3.get_object(Bucket="old-data", Key="sse/ssec-copy", **ssec)["Body"].read()) == \
            recorded["bodies"]["old-data", "multipart.bin"]
        # UploadPartCopy from old clear objects into an SSE-S3 upload
        up = s3.create_multipart_upload(Bucket="old-data", Key="sse/assembled", ServerSideEncryption="AES256")
        parts = []
        for n, (key, rng) in enumerate((("multipart.bin", f"bytes=100-{5 * MIB + 99}"), ("blob.bin", None)), 1):
            extra = {"CopySourceRange": rng} if rng else {}
            out = s3.upload_part_copy(Bucket="old-data", Key="sse/assembled", UploadId=up["UploadId"], PartNumber=n,
                                      CopySource={"Bucket": "old-data", "Key": key}, **extra)
            parts.append({"PartNumber": n, "ETag": out["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(Bucket="old-data", Key="sse/assembled", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": parts})
        got = s3.get_object(Bucket="old-data", Key="sse/assembled")
        assert got["Body"].read() == big[100:5 * MIB + 100] + raw["old-data", "blob.bin"]
        assert got["ServerSideEncryption"] == "AES256"
        counts = encrypted_rows(db_env)
        assert counts["objects"] >= 7 and counts["buckets"] == 0, counts
        # and the old objects are still exactly what they were
        for (bucket, key), digest in recorded["bodies"].items():
            if (bucket, key) != ("old-vers", "doc"):
                body, view = read(s3, bucket, key)
                assert sha(body) == digest and view == recorded["heads"][bucket, key], (bucket, key)
    finally:
        srv.stop()


def test_downgrade_refused_while_encrypted_data_exists(tmp_path, db_env, old_release):
    """0003-release data upgraded with `flask db upgrade`; once anything is
    encrypted (an object, a noncurrent version, an open upload, a bucket
    default), `flask db downgrade 0003` refuses, names the counts, and leaves the
    database as it was. With all of it deleted, the downgrade goes through and
    the 0003 release serves what is left."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        s3.create_bucket(Bucket="plain")
        assert_old_code(s3, "plain")
        clear_small, clear_blob = b"from 0003", os.urandom(100_000)
        s3.put_object(Bucket="plain", Key="k", Body=clear_small)
        s3.put_object(Bucket="plain", Key="blob", Body=clear_blob)
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Running upgrade 0003 -> 0004" in up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD

    secret_small, secret_big = b"SSE-S3 inline secret " * 10, b"SSE-S3 blob secret " * 20_000
    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()  # nothing left to migrate
    try:
        s3, _ = clients(srv)
        put_sse_s3(s3, "plain", "enc-inline", secret_small)
        put_sse_s3(s3, "plain", "enc-blob", secret_big)
        s3.create_bucket(Bucket="vers")
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        v1 = put_sse_s3(s3, "vers", "v", b"version one")["VersionId"]
        v2 = put_sse_s3(s3, "vers", "v", b"version two")["VersionId"]
        s3.create_bucket(Bucket="defaulted")
        s3.put_bucket_encryption(Bucket="defaulted", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        upload = s3.create_multipart_upload(Bucket="plain", Key="mpu", ServerSideEncryption="AES256")
        assert upload.get("ServerSideEncryption") == "AES256", strip(upload)
        s3.upload_part(Bucket="plain", Key="mpu", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1000)
    finally:
        srv.stop()
    assert encrypted_rows(db_env) == {"buckets": 1, "objects": 3, "object_versions": 1, "multipart_uploads": 1}

    to_0004 = flask_db(db_env, "downgrade", "0004")  # the later revisions hold nothing here
    assert to_0004.returncode == 0, to_0004.stdout + to_0004.stderr
    before, before_schema = snapshot(db_env), schema(db_env)
    down = flask_db(db_env, "downgrade", "0003")
    assert down.returncode != 0, down.stdout + down.stderr
    message = down.stdout + down.stderr
    assert "cannot downgrade below 0004" in message, message
    for count in ("1 in buckets", "3 in objects", "1 in object_versions", "1 in multipart_uploads"):
        assert count in message, (count, message)
    assert schema_revision(db_env) == "0004"
    assert snapshot(db_env) == before, "a refused downgrade changed the database"
    assert schema(db_env) == before_schema, "a refused downgrade changed the schema"
    back = flask_db(db_env, "upgrade")
    assert back.returncode == 0, back.stdout + back.stderr

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()
    try:
        s3, _ = clients(srv)
        assert s3.get_object(Bucket="plain", Key="enc-inline")["Body"].read() == secret_small
        assert s3.get_object(Bucket="plain", Key="enc-blob")["Body"].read() == secret_big
        assert s3.get_object(Bucket="vers", Key="v", VersionId=v1)["Body"].read() == b"version one"
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == clear_small
        # remove everything encrypted: then the downgrade is possible
        s3.delete_object(Bucket="plain", Key="enc-inline")
        s3.delete_object(Bucket="plain", Key="enc-blob")
        for version in (v1, v2):
            s3.delete_object(Bucket="vers", Key="v", VersionId=version)
        s3.abort_multipart_upload(Bucket="plain", Key="mpu", UploadId=upload["UploadId"])
        s3.delete_bucket_encryption(Bucket="defaulted")
    finally:
        srv.stop()
    assert encrypted_rows(db_env) == dict.fromkeys(ENCRYPTED_TABLES, 0)
    down = flask_db(db_env, "downgrade", "0003")
    assert down.returncode == 0, down.stdout + down.stderr
    assert schema_revision(db_env) == "0003"
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        assert_old_code(s3, "plain")
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == clear_small
        assert s3.get_object(Bucket="plain", Key="blob")["Body"].read() == clear_blob
        assert sorted(c["Key"] for c in s3.list_objects_v2(Bucket="plain")["Contents"]) == ["blob", "k"]
        assert s3.get_bucket_versioning(Bucket="vers")["Status"] == "Enabled"
        assert s3.list_object_versions(Bucket="vers").get("Versions", []) == []
    finally:
        srv.stop()


def test_downgrade_to_0003_without_encrypted_data_keeps_every_object(tmp_path, db_env, old_release, pg_databases):
    """A 0004 database that never held encrypted data downgrades to 0003, to the
    schema 0003 itself makes, and the 0003 release then serves every object,
    version, ACL and open upload written by the current code, and writes again."""
    srv = Server(tmp_path, db_env).start()  # a fresh database, migrated to the head on start
    try:
        assert schema_revision(db_env) == HEAD
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
    finally:
        srv.stop()
    assert encrypted_rows(db_env) == dict.fromkeys(ENCRYPTED_TABLES, 0)
    down = flask_db(db_env, "downgrade", "0003")
    assert down.returncode == 0, down.stdout + down.stderr
    current = flask_db(db_env, "current")
    assert "0003" in current.stdout and "0004" not in current.stdout, current.stdout + current.stderr
    pristine_dir = tmp_path / "pristine-0003"
    (pristine_dir / "data").mkdir(parents=True)
    on_postgresql = "engine: postgresql" in Path(db_env["BLEEPSTORE_CONFIG"]).read_text()
    pristine = dict(db_env, BLEEPSTORE_CONFIG=str(write_config(
        pristine_dir, pg_databases.create() if on_postgresql else None)))
    made = flask_db(pristine, "upgrade", "0003")
    assert made.returncode == 0, made.stdout + made.stderr
    downgraded = schema(db_env)
    assert all("encryption" not in [c[0] for c in downgraded[t]["columns"]] for t in ENCRYPTED_TABLES)
    assert downgraded == schema(pristine), "the downgrade does not give back the 0003 schema"

    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        assert_old_code(s3, "old-data")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == recorded["buckets"]
        assert_reads_back(s3, s3_other, recorded, new_code=False)
        complete_inflight(s3, recorded, extra_part=None)
        # the old schema takes writes again: an overwrite of a multipart object
        # (its part rows), a new object, a new version, a delete
        s3.put_object(Bucket="old-data", Key="multipart.bin", Body=b"replaced")
        assert s3.get_object(Bucket="old-data", Key="multipart.bin")["Body"].read() == b"replaced"
        s3.put_object(Bucket="old-data", Key="after-downgrade", Body=b"0003 again")
        vid = s3.put_object(Bucket="old-vers", Key="doc", Body=b"0003 version")["VersionId"]
        assert s3.get_object(Bucket="old-vers", Key="doc", VersionId=vid)["Body"].read() == b"0003 version"
        s3.delete_object(Bucket="old-data", Key="blob.bin")
        keys = [c["Key"] for c in s3.list_objects_v2(Bucket="old-data")["Contents"]]
        assert "blob.bin" not in keys and "after-downgrade" in keys
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")  # and up again, over what the 0003 release wrote since
    assert up.returncode == 0, up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD
    assert encrypted_rows(db_env) == dict.fromkeys(ENCRYPTED_TABLES, 0)
