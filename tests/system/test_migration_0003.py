"""Schema 0003 (versions and Object Lock) against data written by the release
before it (commit ce4f98c, schema head 0002), on both engines.

The old release runs from its own source tree (``git archive`` of that commit),
on the same interpreter and virtualenv: its directory is the server's cwd and
first on PYTHONPATH, so ``import bleepstore_app`` is the old code; each test
checks that by asking that server for something only the new code does.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from botocore.exceptions import ClientError

from bleepstore_app import MIGRATIONS_DIR

from ..conftest import ENGINES, make_client
from ..servers import OTHER_ACCESS_KEY, OTHER_SECRET_KEY, Server, write_config

# The current code's newest revision (0003 or later): what a current server
# migrates to on start and `flask db upgrade` reaches, through 0003.
HEAD = ScriptDirectory(MIGRATIONS_DIR).get_current_head()

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).parent / "flask")
OLD_RELEASE = "ce4f98c"  # the release whose schema head is 0002
MIB = 1024 * 1024
NO_AUTOMIGRATE = {"BLEEPSTORE_METADATA_MIGRATE_ON_START": "false"}


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url, encryption=False)  # the 0002 release knows no encryption section
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app")


@pytest.fixture
def old_release(tmp_path) -> Path:
    """The 0002 release's source tree (bleepstore_app, wsgi.py, gunicorn.conf.py)."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not installed: the 0002 release's source cannot be extracted")
    tree = tmp_path / "release-0002"
    tree.mkdir()
    archive = subprocess.run([git, "-C", str(ROOT), "archive", OLD_RELEASE, "bleepstore_app", "wsgi.py",
                              "gunicorn.conf.py"], capture_output=True, timeout=60)
    if archive.returncode != 0:
        pytest.fail(f"cannot extract release {OLD_RELEASE} from the repository at {ROOT} "
                    f"(git archive exited {archive.returncode}): {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
    versions = sorted(p.name for p in (tree / "bleepstore_app/migrations/versions").glob("*.py"))
    assert versions == ["0001_initial_schema.py", "0002_blob_garbage_and_leases.py"], versions
    return tree


def old_env(env: dict, tree: Path) -> dict:
    return dict(env, PYTHONPATH=os.pathsep.join([str(tree)] + [p for p in [env.get("PYTHONPATH")] if p]))


def old_server(tree: Path, env: dict) -> Server:
    """A server of the old release: the tree is its cwd (and where its log goes)."""
    return Server(tree, old_env(env, tree))


def flask_db(env, *args, cwd=None) -> subprocess.CompletedProcess:
    # Flask puts the directory holding ./bleepstore_app first on sys.path when
    # there is one in the cwd: the old tree for the old code, the repository (or
    # the installed package) for the current one.
    return subprocess.run([FLASK, "db", *args], env=env, capture_output=True, text=True, timeout=120,
                          cwd=cwd or ROOT)


def assert_old_code(s3) -> None:
    """The server behind ``s3`` is the 0002 release: it has no versioning."""
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket=s3.list_buckets()["Buckets"][0]["Name"],
                                 VersioningConfiguration={"Status": "Enabled"})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501, exc.value.response
    assert exc.value.response["Error"]["Code"] == "NotImplemented"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def head_view(s3, bucket: str, key: str, **kw) -> dict:
    h = s3.head_object(Bucket=bucket, Key=key, **kw)
    return {"ETag": h["ETag"], "LastModified": h["LastModified"], "ContentType": h.get("ContentType"),
            "ContentLength": h["ContentLength"], "Metadata": h.get("Metadata"),
            "ContentDisposition": h.get("ContentDisposition"), "CacheControl": h.get("CacheControl")}


def read(s3, bucket: str, key: str, **kw) -> tuple[bytes, dict]:
    got = s3.get_object(Bucket=bucket, Key=key, **kw)
    body = got["Body"].read()
    return body, {"ETag": got["ETag"], "LastModified": got["LastModified"], "ContentType": got.get("ContentType"),
                  "ContentLength": got["ContentLength"], "Metadata": got.get("Metadata"),
                  "ContentDisposition": got.get("ContentDisposition"), "CacheControl": got.get("CacheControl")}


def listing(s3, bucket: str) -> dict:
    out = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)
    assert not out["IsTruncated"]
    return strip(out)


def schema_revision(env: dict) -> str:
    """The database's Alembic revision, read directly (cheaper than `flask db current`)."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def schema(env: dict) -> dict:
    """Tables, columns (type, collation, nullability, default), keys and indexes."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            return {table: {
                "columns": [(c["name"], str(c["type"]), getattr(c["type"], "collation", None), c["nullable"],
                             c["default"]) for c in insp.get_columns(table)],
                "pk": insp.get_pk_constraint(table),
                "fks": sorted(map(repr, insp.get_foreign_keys(table))),
                "indexes": sorted(map(repr, insp.get_indexes(table))),
                "unique": sorted(map(repr, insp.get_unique_constraints(table))),
            } for table in insp.get_table_names()}
    finally:
        engine.dispose()


def snapshot(env: dict) -> dict:
    """Every row of every table, straight from the database."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {name: sorted(map(repr, conn.execute(table.select()).all()))
                    for name, table in meta.tables.items()}
    finally:
        engine.dispose()


def fill(s3, s3_other, other_id: str) -> dict:
    """Objects of every storage kind, ACLs, and an upload left in flight;
    what a reader should find afterwards."""
    s3.create_bucket(Bucket="old-data")
    s3.create_bucket(Bucket="old-acl")
    objects = {
        ("old-data", "inline/small.txt"): dict(Body=b"hello, 0002\n" * 8, ContentType="text/plain",
                                               Metadata={"colour": "blue", "n": "1"}),
        ("old-data", "inline/\u00fcnicode k\u00e9y"): dict(Body=os.urandom(15_000),
                                                          ContentType="application/x-small",
                                                          ContentDisposition="attachment; filename=a.bin",
                                                          CacheControl="max-age=60"),
        ("old-data", "inline/empty"): dict(Body=b""),
        ("old-data", "blob.bin"): dict(Body=os.urandom(100_000), ContentType="application/octet-stream",
                                       Metadata={"kind": "blob"}),
        ("old-acl", "granted.bin"): dict(Body=os.urandom(50_000), ContentType="image/png"),
    }
    bodies = {}
    for (bucket, key), kw in objects.items():
        s3.put_object(Bucket=bucket, Key=key, **kw)
        bodies[bucket, key] = kw["Body"]

    big = os.urandom(10 * MIB)
    up = s3.create_multipart_upload(Bucket="old-data", Key="multipart.bin", ContentType="video/mp4",
                                    Metadata={"kind": "multipart"})["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket="old-data", Key="multipart.bin", UploadId=up,
                                                      PartNumber=n, Body=big[(n - 1) * 5 * MIB: n * 5 * MIB])["ETag"]}
             for n in (1, 2)]
    done = s3.complete_multipart_upload(Bucket="old-data", Key="multipart.bin", UploadId=up,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"].endswith('-2"'), done
    bodies["old-data", "multipart.bin"] = big

    s3.put_object_acl(Bucket="old-acl", Key="granted.bin", GrantRead=f"id={other_id}",
                      GrantFullControl=f"id={canonical(s3)}")
    s3.put_bucket_acl(Bucket="old-acl", GrantRead=f"id={other_id}", GrantFullControl=f"id={canonical(s3)}")
    assert s3_other.get_object(Bucket="old-acl", Key="granted.bin")["Body"].read() == bodies["old-acl", "granted.bin"]

    inflight_part1 = os.urandom(5 * MIB)
    inflight = s3.create_multipart_upload(Bucket="old-data", Key="inflight.bin", ContentType="text/csv",
                                          Metadata={"kind": "inflight"})["UploadId"]
    inflight_etag1 = s3.upload_part(Bucket="old-data", Key="inflight.bin", UploadId=inflight, PartNumber=1,
                                    Body=inflight_part1)["ETag"]
    # and one over an existing key, to be completed once its bucket is versioned
    over = s3.create_multipart_upload(Bucket="old-data", Key="inline/empty")["UploadId"]
    over_part = os.urandom(2000)
    over_etag = s3.upload_part(Bucket="old-data", Key="inline/empty", UploadId=over, PartNumber=1,
                               Body=over_part)["ETag"]

    return {
        "bodies": {k: sha(v) for k, v in bodies.items()},
        "raw": bodies,
        "heads": {k: head_view(s3, *k) for k in bodies},
        "listings": {b: listing(s3, b) for b in ("old-data", "old-acl")},
        "object_acl": strip(s3.get_object_acl(Bucket="old-acl", Key="granted.bin")),
        "bucket_acl": strip(s3.get_bucket_acl(Bucket="old-acl")),
        "data_bucket_acl": strip(s3.get_bucket_acl(Bucket="old-data")),
        "blob_acl": strip(s3.get_object_acl(Bucket="old-data", Key="blob.bin")),
        "uploads": strip(s3.list_multipart_uploads(Bucket="old-data")),
        "parts": strip(s3.list_parts(Bucket="old-data", Key="inflight.bin", UploadId=inflight)),
        "inflight": (inflight, inflight_etag1, inflight_part1),
        "inflight_over": (over, over_etag, over_part),
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
    }


def canonical(s3) -> str:
    return s3.list_buckets()["Owner"]["ID"]


def assert_reads_back(s3, s3_other, recorded: dict) -> None:
    for (bucket, key), digest in recorded["bodies"].items():
        body, view = read(s3, bucket, key)
        assert sha(body) == digest, (bucket, key)
        assert view == recorded["heads"][bucket, key], (bucket, key)
        assert head_view(s3, bucket, key) == recorded["heads"][bucket, key], (bucket, key)
    for bucket, before in recorded["listings"].items():
        assert listing(s3, bucket) == before, bucket
    assert strip(s3.get_object_acl(Bucket="old-acl", Key="granted.bin")) == recorded["object_acl"]
    assert strip(s3.get_bucket_acl(Bucket="old-acl")) == recorded["bucket_acl"]
    assert strip(s3.get_bucket_acl(Bucket="old-data")) == recorded["data_bucket_acl"]
    assert strip(s3.get_object_acl(Bucket="old-data", Key="blob.bin")) == recorded["blob_acl"]
    assert sha(s3_other.get_object(Bucket="old-acl", Key="granted.bin")["Body"].read()) == \
        recorded["bodies"]["old-acl", "granted.bin"]
    with pytest.raises(ClientError) as exc:  # the grant is READ on the one object, nothing more
        s3_other.get_object(Bucket="old-data", Key="blob.bin")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def clients(srv: Server):
    s3 = make_client(srv.endpoint)
    s3_other = make_client(srv.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    return s3, s3_other


def test_upgrade_from_the_0002_release(tmp_path, db_env, old_release):
    """A database written by the 0002 release migrates to 0003 when the current
    server starts on it, and serves every object, ACL and open upload as before;
    old objects are the "null" versions of their keys."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        assert_old_code(s3)
    finally:
        srv.stop()
    assert schema_revision(db_env) == "0002"

    srv = Server(tmp_path, db_env).start()  # migrates on start
    try:
        current = flask_db(db_env, "current")
        assert f"{HEAD} (head)" in current.stdout, current.stdout + current.stderr
        s3, s3_other = clients(srv)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == recorded["buckets"]
        assert_reads_back(s3, s3_other, recorded)

        # the upload left in flight by the old release lists, takes a part, completes
        assert strip(s3.list_multipart_uploads(Bucket="old-data")) == recorded["uploads"]
        upload_id, etag1, part1 = recorded["inflight"]
        assert strip(s3.list_parts(Bucket="old-data", Key="inflight.bin", UploadId=upload_id)) == recorded["parts"]
        part2 = os.urandom(1000)
        etag2 = s3.upload_part(Bucket="old-data", Key="inflight.bin", UploadId=upload_id, PartNumber=2,
                               Body=part2)["ETag"]
        done = s3.complete_multipart_upload(Bucket="old-data", Key="inflight.bin", UploadId=upload_id,
                                            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1},
                                                                       {"PartNumber": 2, "ETag": etag2}]})
        got = s3.get_object(Bucket="old-data", Key="inflight.bin")
        assert got["Body"].read() == part1 + part2
        assert got["ETag"] == done["ETag"] and got["ContentType"] == "text/csv"
        assert got["Metadata"] == {"kind": "inflight"}
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="old-data")["Uploads"]] == \
            [recorded["inflight_over"][0]]
        assert s3.delete_object(Bucket="old-data", Key="inflight.bin")  # back to what the old release listed
        assert listing(s3, "old-data") == recorded["listings"]["old-data"]

        # every old object is the one, "null", version of its key
        for bucket in ("old-data", "old-acl"):
            versions = s3.list_object_versions(Bucket=bucket)
            assert versions.get("DeleteMarkers", []) == []
            contents = recorded["listings"][bucket]["Contents"]
            assert [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"], v["Size"], v["LastModified"])
                    for v in versions["Versions"]] == \
                [(c["Key"], "null", True, c["ETag"], c["Size"], c["LastModified"]) for c in contents]
            assert strip(s3.get_bucket_versioning(Bucket=bucket)) == {}
        for (bucket, key), digest in recorded["bodies"].items():
            body, view = read(s3, bucket, key, VersionId="null")
            assert sha(body) == digest and view == recorded["heads"][bucket, key], (bucket, key)

        # versioning on an old bucket: an overwrite keeps the old bytes as the
        # noncurrent "null" version (an inline, a blob and a multipart object)
        s3.put_bucket_versioning(Bucket="old-data", VersioningConfiguration={"Status": "Enabled"})
        assert s3.get_bucket_versioning(Bucket="old-data")["Status"] == "Enabled"
        overwritten = ["inline/small.txt", "blob.bin", "multipart.bin"]
        new_ids = {key: s3.put_object(Bucket="old-data", Key=key, Body=b"new " + key.encode())["VersionId"]
                   for key in overwritten}
        versions = s3.list_object_versions(Bucket="old-data")["Versions"]
        for key in overwritten:
            assert new_ids[key] != "null"
            assert s3.get_object(Bucket="old-data", Key=key)["Body"].read() == b"new " + key.encode()
            body, view = read(s3, "old-data", key, VersionId="null")
            assert sha(body) == recorded["bodies"]["old-data", key], key
            assert view == recorded["heads"]["old-data", key], key
            mine = [(v["VersionId"], v["IsLatest"]) for v in versions if v["Key"] == key]
            assert mine == [(new_ids[key], True), ("null", False)], (key, mine)
        first = s3.get_object(Bucket="old-data", Key="multipart.bin", VersionId="null", PartNumber=1)
        assert first["Body"].read() == recorded["raw"]["old-data", "multipart.bin"][:5 * MIB]
        assert first["PartsCount"] == 2
        assert strip(s3.get_object_acl(Bucket="old-data", Key="blob.bin", VersionId="null")) == recorded["blob_acl"]
        # the keys not overwritten are still just their null version
        assert [(v["VersionId"], v["IsLatest"]) for v in versions if v["Key"] == "inline/empty"] == [("null", True)]
        # the old release's upload over an old key completes as a new version
        over, over_etag, over_part = recorded["inflight_over"]
        s3.complete_multipart_upload(Bucket="old-data", Key="inline/empty", UploadId=over,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": over_etag}]})
        latest = s3.get_object(Bucket="old-data", Key="inline/empty")
        assert latest["Body"].read() == over_part and latest["VersionId"] != "null"
        body, view = read(s3, "old-data", "inline/empty", VersionId="null")
        assert body == b"" and view == recorded["heads"]["old-data", "inline/empty"]
        assert [(v["VersionId"], v["IsLatest"]) for v in s3.list_object_versions(
            Bucket="old-data", Prefix="inline/empty")["Versions"]] == [(latest["VersionId"], True), ("null", False)]
    finally:
        srv.stop()


def test_downgrade_refused_while_versioned_data_exists(tmp_path, db_env, old_release):
    """0002-release data upgraded with `flask db upgrade`; once a bucket has been
    versioned, `flask db downgrade 0002` refuses, says why and what to do, and
    leaves the database as it was."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        s3.create_bucket(Bucket="vers")
        assert_old_code(s3)
        s3.put_object(Bucket="vers", Key="k", Body=b"from 0002")
        s3.put_object(Bucket="vers", Key="other", Body=os.urandom(100_000))
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Running upgrade 0002 -> 0003" in up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()  # nothing left to migrate
    try:
        s3, _ = clients(srv)
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        new_id = s3.put_object(Bucket="vers", Key="k", Body=b"from 0003")["VersionId"]
    finally:
        srv.stop()

    # Down to 0003 first (later revisions undo cleanly without their own data), so
    # that what is refused is 0003's downgrade alone, on every engine.
    assert flask_db(db_env, "downgrade", "0003").returncode == 0
    before = snapshot(db_env)
    down = flask_db(db_env, "downgrade", "0002")
    assert down.returncode != 0, down.stdout + down.stderr
    message = down.stdout + down.stderr
    assert "cannot downgrade below 0003" in message, message
    assert "buckets with versioning or Object Lock: 1" in message, message
    assert "noncurrent object versions: 1" in message, message
    assert "objects with a version id, a delete marker or a lock: 1" in message, message
    assert "restore a backup taken before the upgrade" in message, message
    assert schema_revision(db_env) == "0003"
    assert snapshot(db_env) == before, "a refused downgrade changed the database"

    assert flask_db(db_env, "upgrade").returncode == 0  # back to the current code's schema
    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()
    try:
        s3, _ = clients(srv)
        assert s3.get_object(Bucket="vers", Key="k")["Body"].read() == b"from 0003"
        assert s3.get_object(Bucket="vers", Key="k", VersionId="null")["Body"].read() == b"from 0002"
        assert s3.get_object(Bucket="vers", Key="k", VersionId=new_id)["Body"].read() == b"from 0003"
        # with every version gone and versioning suspended, the bucket has still
        # been versioned: S3 has no way back to "never versioned", nor has 0002
        for key, version in (("k", "null"), ("k", new_id), ("other", "null")):
            s3.delete_object(Bucket="vers", Key=key, VersionId=version)
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Suspended"})
        assert s3.list_object_versions(Bucket="vers").get("Versions", []) == []
    finally:
        srv.stop()
    assert flask_db(db_env, "downgrade", "0003").returncode == 0
    down = flask_db(db_env, "downgrade", "0002")
    assert down.returncode != 0, down.stdout + down.stderr
    message = down.stdout + down.stderr
    assert "buckets with versioning or Object Lock: 1" in message, message
    assert "noncurrent" not in message, message
    assert schema_revision(db_env) == "0003"


def test_downgrade_to_0002_without_versioned_data_keeps_every_object(tmp_path, db_env, old_release, pg_databases):
    """A 0003 database that never used versioning downgrades to 0002, to the
    schema 0002 itself makes, and the 0002 release then serves every object, ACL
    and open upload written by the current code, and writes again."""
    srv = Server(tmp_path, db_env).start()  # a fresh database, migrated to 0003 on start
    try:
        assert schema_revision(db_env) == HEAD
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        assert strip(s3.get_bucket_versioning(Bucket="old-data")) == {}
    finally:
        srv.stop()
    down = flask_db(db_env, "downgrade", "0002")
    assert down.returncode == 0, down.stdout + down.stderr
    current = flask_db(db_env, "current")
    assert "0002" in current.stdout and "0003" not in current.stdout, current.stdout + current.stderr
    pristine_dir = tmp_path / "pristine-0002"
    (pristine_dir / "data").mkdir(parents=True)
    on_postgresql = "engine: postgresql" in Path(db_env["BLEEPSTORE_CONFIG"]).read_text()
    pristine = dict(db_env, BLEEPSTORE_CONFIG=str(write_config(
        pristine_dir, pg_databases.create() if on_postgresql else None, encryption=False)))
    assert flask_db(pristine, "upgrade", "0002").returncode == 0
    downgraded = schema(db_env)
    assert "objects" in downgraded and "object_versions" not in downgraded, sorted(downgraded)
    assert downgraded == schema(pristine), "the downgrade does not give back the 0002 schema"

    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        assert_old_code(s3)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == recorded["buckets"]
        assert_reads_back(s3, s3_other, recorded)
        assert strip(s3.list_multipart_uploads(Bucket="old-data")) == recorded["uploads"]
        upload_id, etag1, part1 = recorded["inflight"]
        assert strip(s3.list_parts(Bucket="old-data", Key="inflight.bin", UploadId=upload_id)) == recorded["parts"]
        done = s3.complete_multipart_upload(Bucket="old-data", Key="inflight.bin", UploadId=upload_id,
                                            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}]})
        got = s3.get_object(Bucket="old-data", Key="inflight.bin")
        assert got["Body"].read() == part1 and got["ETag"] == done["ETag"]
        # the old schema takes writes again: an overwrite of a multipart object
        # (its part rows), a new object, a delete
        s3.put_object(Bucket="old-data", Key="multipart.bin", Body=b"replaced")
        assert s3.get_object(Bucket="old-data", Key="multipart.bin")["Body"].read() == b"replaced"
        s3.put_object(Bucket="old-data", Key="after-downgrade", Body=b"0002 again")
        s3.delete_object(Bucket="old-data", Key="blob.bin")
        keys = [c["Key"] for c in s3.list_objects_v2(Bucket="old-data")["Contents"]]
        assert "blob.bin" not in keys and "after-downgrade" in keys
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")  # and up again, over what the 0002 release wrote since
    assert up.returncode == 0, up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD
