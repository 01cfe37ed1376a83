"""Schema 0005 (object and bucket tagging, lifecycle configuration) against data
written by the release before it (commit 98ae388, schema head 0004), on both
engines.

As in test_migration_0003.py and test_migration_0004.py, the old release runs
from its own source tree (``git archive`` of that commit) on the same
interpreter and virtualenv: its directory is the server's cwd and first on
PYTHONPATH, so ``import bleepstore_app`` is the old code; each test checks that
by asking that server for something only the new code does (a PutObject with an
``x-amz-tagging`` header, which 98ae388 refuses with 501). The old release reads
a config without the settings it does not know (it refuses unknown settings),
on the same database and data directory.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from botocore.exceptions import ClientError

from ..conftest import ENGINES
from ..servers import Server, write_config
from .test_migration_0003 import (HEAD, MIB, NO_AUTOMIGRATE, ROOT, canonical, clients, flask_db, head_view, read,
                                  schema, schema_revision, sha, snapshot, strip)
from .test_migration_0004 import (assert_reads_back, complete_inflight, fill, multipart, put_sse_s3,
                                  version_view)

OLD_RELEASE = "98ae388"  # the release whose schema head is 0004
OLD_MIGRATIONS = ["0001_initial_schema.py", "0002_blob_garbage_and_leases.py",
                  "0003_object_versions_and_object_lock.py", "0004_server_side_encryption.py"]
# The columns 0005 adds (all NULL when there is nothing: no tags, no rules).
TAG_COLUMNS = (("objects", "tags"), ("object_versions", "tags"), ("multipart_uploads", "tags"),
               ("buckets", "tagging"), ("buckets", "lifecycle"))
NONE_TAGGED = dict.fromkeys(TAG_COLUMNS, 0)


def release_tree(tmp_path: Path, commit: str, migrations: list[str]) -> Path:
    """A release's source tree (bleepstore_app, wsgi.py, gunicorn.conf.py), checked
    to hold exactly ``migrations``."""
    git = shutil.which("git")
    if git is None:
        pytest.fail(f"git is not installed: release {commit}'s source cannot be extracted")
    tree = tmp_path / f"release-{commit}"
    tree.mkdir()
    archive = subprocess.run([git, "-C", str(ROOT), "archive", commit, "bleepstore_app", "wsgi.py",
                              "gunicorn.conf.py"], capture_output=True, timeout=60)
    if archive.returncode != 0:
        pytest.fail(f"cannot extract release {commit} from the repository at {ROOT} "
                    f"(git archive exited {archive.returncode}): {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
    versions = sorted(p.name for p in (tree / "bleepstore_app/migrations/versions").glob("*.py"))
    assert versions == migrations, versions
    return tree


@pytest.fixture
def old_release(tmp_path) -> Path:
    """The 0004 release's source tree."""
    return release_tree(tmp_path, OLD_RELEASE, OLD_MIGRATIONS)


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    assert "\nencryption:\n" in config.read_text(), "tests/servers.py gives test servers encryption keys"
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app")


def _release_settings(tree: Path) -> tuple[dict, frozenset]:
    """The settings a release knows: its config module's DEFAULTS and FREE_MAPPINGS
    (the module needs only the standard library and PyYAML)."""
    spec = importlib.util.spec_from_file_location(f"_config_{tree.name.replace('-', '_')}",
                                                  tree / "bleepstore_app/config.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module.DEFAULTS, module.FREE_MAPPINGS


def _known(loaded: dict, defaults: dict, free: frozenset, prefix: str = "") -> dict:
    out = {}
    for key, value in loaded.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            continue  # a setting the release does not know (e.g. a lifecycle section)
        if isinstance(defaults[key], dict) and dotted not in free and isinstance(value, dict):
            out[key] = _known(value, defaults[key], free, dotted + ".")
        else:
            out[key] = value
    return out


def old_config(config: Path, tree: Path) -> Path:
    """The test server's config minus every setting the release in ``tree`` does
    not know (it refuses unknown settings): same database, same data directory,
    same encryption keys."""
    defaults, free = _release_settings(tree)
    loaded = yaml.safe_load(config.read_text())
    kept = _known(loaded, defaults, free)
    assert kept["metadata"] == loaded["metadata"] and kept["storage"] == loaded["storage"], \
        "the old release must see the same database and data directory"
    assert kept.get("encryption") == loaded.get("encryption"), "the 0004 release knows the encryption keys"
    path = config.with_name(f"bleepstore-{tree.name}.yaml")
    path.write_text(yaml.safe_dump(kept, sort_keys=False))
    return path


def old_server(tree: Path, env: dict) -> Server:
    """A server of the old release: the tree is its cwd (and where its log goes)."""
    config = old_config(Path(env["BLEEPSTORE_CONFIG"]), tree)
    return Server(tree, dict(env, BLEEPSTORE_CONFIG=str(config),
                             PYTHONPATH=os.pathsep.join([str(tree)] + [p for p in [env.get("PYTHONPATH")] if p])))


def assert_old_code(s3, bucket: str) -> None:
    """The server behind ``s3`` is the 0004 release: it has no tagging."""
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="probe-tagging", Body=b"x", Tagging="a=b")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501, exc.value.response
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    with pytest.raises(ClientError) as exc:  # and the refused write left nothing behind
        s3.head_object(Bucket=bucket, Key="probe-tagging")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def tagged_rows(env: dict) -> dict[tuple[str, str], int]:
    """Rows with each 0005 column set, straight from the database."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {(t, c): conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE {c} IS NOT NULL")).scalar_one()
                    for t, c in TAG_COLUMNS}
    finally:
        engine.dispose()


def tag_count_header(s3, bucket: str, key: str, **kw) -> str | None:
    """x-amz-tagging-count on HEAD and on GET (the same on both), None without."""
    head = s3.head_object(Bucket=bucket, Key=key, **kw)["ResponseMetadata"]["HTTPHeaders"]
    got = s3.get_object(Bucket=bucket, Key=key, **kw)
    got["Body"].close()
    assert head.get("x-amz-tagging-count") == got["ResponseMetadata"]["HTTPHeaders"].get("x-amz-tagging-count")
    return head.get("x-amz-tagging-count")


def assert_untagged(s3, bucket: str, key: str, **kw) -> None:
    assert s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"] == [], (bucket, key, kw)
    assert tag_count_header(s3, bucket, key, **kw) is None, (bucket, key, kw)


def tag_set(tags: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def assert_tagged(s3, bucket: str, key: str, tags: dict, **kw) -> None:
    assert s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"] == tag_set(tags), (bucket, key, kw)
    assert tag_count_header(s3, bucket, key, **kw) == str(len(tags)), (bucket, key, kw)


def assert_no_bucket_tags(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "NoSuchTagSet", (bucket, exc.value.response)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def fill_sse(s3) -> dict:
    """SSE-S3 data beside fill()'s: a versioned bucket with an encrypted inline
    object, an encrypted blob version over an encrypted inline one (noncurrent),
    and an encrypted multipart object."""
    s3.create_bucket(Bucket="old-sse")
    s3.put_bucket_versioning(Bucket="old-sse", VersioningConfiguration={"Status": "Enabled"})
    small, v1, v2 = b"sealed by 0004 " * 20, b"sealed first version", os.urandom(200_000)
    put_sse_s3(s3, "old-sse", "small", small)
    first = put_sse_s3(s3, "old-sse", "doc", v1)["VersionId"]
    second = put_sse_s3(s3, "old-sse", "doc", v2)["VersionId"]
    big = os.urandom(5 * MIB + 4321)
    multipart(s3, "old-sse", "big", big, ServerSideEncryption="AES256")
    objects = {"small": small, "doc": v2, "big": big}
    versions = {("doc", first): v1, ("doc", second): v2}
    return {
        "raw": objects,
        "heads": {key: head_view(s3, "old-sse", key) for key in objects},
        "versions": versions,
        "version_heads": {(k, v): head_view(s3, "old-sse", k, VersionId=v) for k, v in versions},
        "noncurrent": first,
        "current_ids": {key: s3.head_object(Bucket="old-sse", Key=key)["VersionId"] for key in objects},
        "version_listing": version_view(s3, "old-sse"),
    }


def assert_sse_reads_back(s3, sse: dict) -> None:
    for key, data in sse["raw"].items():
        got = s3.get_object(Bucket="old-sse", Key=key)
        assert got["Body"].read() == data and got["ServerSideEncryption"] == "AES256", key
        assert head_view(s3, "old-sse", key) == sse["heads"][key], key
    for (key, vid), data in sse["versions"].items():
        body, view = read(s3, "old-sse", key, VersionId=vid)
        assert body == data and view == sse["version_heads"][key, vid], (key, vid)
    assert version_view(s3, "old-sse") == sse["version_listing"]


def test_upgrade_from_the_0004_release(tmp_path, db_env, old_release):
    """A database written by the 0004 release migrates to 0005 when the current
    server starts on it, and serves every object, version, ACL and open upload
    as before, with no tags anywhere; then old objects, old noncurrent versions
    and the old upload's completion take tags, and their bytes, ETags and dates
    do not change."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        sse = fill_sse(s3)
        assert_old_code(s3, "old-data")
    finally:
        srv.stop()
    assert schema_revision(db_env) == "0004"

    srv = Server(tmp_path, db_env).start()  # migrates on start
    try:
        current = flask_db(db_env, "current")
        assert f"{HEAD} (head)" in current.stdout, current.stdout + current.stderr
        assert tagged_rows(db_env) == NONE_TAGGED
        s3, s3_other = clients(srv)
        buckets = recorded["buckets"] + ["old-sse"]
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == sorted(buckets)
        assert_reads_back(s3, s3_other, recorded, new_code=True)
        assert_sse_reads_back(s3, sse)

        # no tags anywhere: objects, versions, buckets
        for bucket, key in recorded["bodies"]:
            assert_untagged(s3, bucket, key)
        for bucket, key, vid in recorded["versions"]:
            assert_untagged(s3, bucket, key, VersionId=vid)
        for key in sse["raw"]:
            assert_untagged(s3, "old-sse", key)
        for key, vid in sse["versions"]:
            assert_untagged(s3, "old-sse", key, VersionId=vid)
        for bucket in buckets:
            assert_no_bucket_tags(s3, bucket)
        assert tagged_rows(db_env) == NONE_TAGGED, "a read wrote a tag set"

        # the uploads left in flight complete, and what they make has no tags (they had none)
        complete_inflight(s3, recorded, extra_part=os.urandom(1000))
        assert_untagged(s3, "old-data", "inflight.bin")
        assert_untagged(s3, "old-vers", "doc")  # the old upload over the versioned key
        assert tagged_rows(db_env) == NONE_TAGGED

        # tags on every old object (the current versions), each its own set
        current_keys = [k for k in recorded["bodies"] if k != ("old-vers", "doc")]  # doc: a new version now
        tagsets = {}
        for n, (bucket, key) in enumerate(current_keys):
            tagsets[bucket, key] = {"n": str(n), "origin": "0004", "path": key[:20]}
            out = s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set(tagsets[bucket, key])})
            assert "VersionId" not in out, (bucket, key, strip(out))  # never-versioned buckets
        for key in sse["raw"]:
            tagsets["old-sse", key] = {"sealed": "yes"}
            out = s3.put_object_tagging(Bucket="old-sse", Key=key, Tagging={"TagSet": tag_set({"sealed": "yes"})})
            assert out["VersionId"] == sse["current_ids"][key], (key, strip(out))
        # and on old noncurrent versions, by version id (under a delete marker too)
        version_tags = {}
        for n, (bucket, key, vid) in enumerate(recorded["versions"]):
            version_tags[bucket, key, vid] = {"version": str(n)}
            out = s3.put_object_tagging(Bucket=bucket, Key=key, VersionId=vid,
                                        Tagging={"TagSet": tag_set(version_tags[bucket, key, vid])})
            assert out["VersionId"] == vid
        noncurrent = sse["noncurrent"]
        out = s3.put_object_tagging(Bucket="old-sse", Key="doc", VersionId=noncurrent,
                                    Tagging={"TagSet": tag_set({"old": "version"})})
        assert out["VersionId"] == noncurrent

        for (bucket, key), tags in tagsets.items():
            assert_tagged(s3, bucket, key, tags)
        for (bucket, key, vid), tags in version_tags.items():
            assert_tagged(s3, bucket, key, tags, VersionId=vid)
        assert_tagged(s3, "old-sse", "doc", {"old": "version"}, VersionId=noncurrent)
        # tags are per version: the versions not tagged still have none
        assert_untagged(s3, "old-vers", "doc")
        assert_tagged(s3, "old-sse", "doc", {"sealed": "yes"}, VersionId=sse["current_ids"]["doc"])
        assert tagged_rows(db_env) == {("objects", "tags"): len(tagsets), ("object_versions", "tags"): 5,
                                       ("multipart_uploads", "tags"): 0, ("buckets", "tagging"): 0,
                                       ("buckets", "lifecycle"): 0}

        # the tagged objects and versions are byte for byte, ETag and date what they were
        for (bucket, key) in current_keys:
            body, view = read(s3, bucket, key)
            assert sha(body) == recorded["bodies"][bucket, key], (bucket, key)
            assert view == recorded["heads"][bucket, key], (bucket, key)
            assert head_view(s3, bucket, key) == recorded["heads"][bucket, key], (bucket, key)
        for (bucket, key, vid), digest in recorded["versions"].items():
            body, view = read(s3, bucket, key, VersionId=vid)
            assert sha(body) == digest and view == recorded["version_heads"][bucket, key, vid], (key, vid)
        assert_sse_reads_back(s3, sse)  # listing included: tagging made no new version
        for bucket, before in recorded["listings"].items():
            after = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
            assert [c for c in after if c["Key"] != "inflight.bin" and (bucket, c["Key"]) != ("old-vers", "doc")] \
                == [c for c in before.get("Contents", []) if (bucket, c["Key"]) != ("old-vers", "doc")], bucket
        assert strip(s3.get_object_acl(Bucket="old-acl", Key="granted.bin")) == recorded["object_acl"]
        assert sha(s3_other.get_object(Bucket="old-acl", Key="granted.bin")["Body"].read()) == \
            recorded["bodies"]["old-acl", "granted.bin"]

        # the bucket tag set, and a write with x-amz-tagging (what the old release refused)
        s3.put_bucket_tagging(Bucket="old-data", Tagging={"TagSet": tag_set({"team": "storage"})})
        assert s3.get_bucket_tagging(Bucket="old-data")["TagSet"] == tag_set({"team": "storage"})
        s3.put_object(Bucket="old-data", Key="probe-tagging", Body=b"x", Tagging="a=b")
        assert_tagged(s3, "old-data", "probe-tagging", {"a": "b"})
    finally:
        srv.stop()


def test_downgrade_refused_while_tags_exist(tmp_path, db_env, old_release, pg_databases):
    """0004-release data upgraded with `flask db upgrade`; once anything has a tag
    set (an object, a noncurrent version, an open upload, a bucket) or a lifecycle
    rule, `flask db downgrade 0004` refuses, names the counts, and leaves the
    database as it was. With all of it removed, the downgrade goes through, to the
    schema 0004 itself makes, and the 0004 release serves what is left."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        for bucket in ("plain", "vers", "tagged"):
            s3.create_bucket(Bucket=bucket)
        assert_old_code(s3, "plain")
        small, blob = b"from 0004", os.urandom(100_000)
        etags = {"k": s3.put_object(Bucket="plain", Key="k", Body=small)["ETag"],
                 "blob": s3.put_object(Bucket="plain", Key="blob", Body=blob)["ETag"]}
        sealed = b"sealed by 0004 " * 5000
        put_sse_s3(s3, "plain", "sealed", sealed)
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        v1 = s3.put_object(Bucket="vers", Key="v", Body=b"version one")["VersionId"]
        v2 = s3.put_object(Bucket="vers", Key="v", Body=b"version two")["VersionId"]
        heads = {key: head_view(s3, "plain", key) for key in ("k", "blob", "sealed")}
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Running upgrade 0004 -> 0005" in up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD
    assert tagged_rows(db_env) == NONE_TAGGED

    rule = {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()  # nothing left to migrate
    try:
        s3, _ = clients(srv)
        s3.put_object_tagging(Bucket="plain", Key="k", Tagging={"TagSet": tag_set({"colour": "red"})})
        s3.put_object_tagging(Bucket="vers", Key="v", VersionId=v1,
                              Tagging={"TagSet": tag_set({"era": "first", "keep": "yes"})})
        upload = s3.create_multipart_upload(Bucket="plain", Key="mpu", Tagging="stage=upload")["UploadId"]
        s3.upload_part(Bucket="plain", Key="mpu", UploadId=upload, PartNumber=1, Body=b"p" * 1000)
        s3.put_bucket_tagging(Bucket="tagged", Tagging={"TagSet": tag_set({"cost-centre": "42"})})
        # lifecycle: the columns are there; the operation may not be yet
        try:
            s3.put_bucket_lifecycle_configuration(Bucket="tagged", LifecycleConfiguration={"Rules": [rule]})
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 501, exc.response
            assert exc.response["Error"]["Code"] == "NotImplemented", exc.response
            lifecycle = False
        else:
            got = s3.get_bucket_lifecycle_configuration(Bucket="tagged")["Rules"]
            assert [r["ID"] for r in got] == ["expire-tmp"] and got[0]["Expiration"] == {"Days": 30}, got
            lifecycle = True
        assert_tagged(s3, "plain", "k", {"colour": "red"})
        assert_tagged(s3, "vers", "v", {"era": "first", "keep": "yes"}, VersionId=v1)
        assert_untagged(s3, "vers", "v")
    finally:
        srv.stop()
    expected = {("objects", "tags"): 1, ("object_versions", "tags"): 1, ("multipart_uploads", "tags"): 1,
                ("buckets", "tagging"): 1, ("buckets", "lifecycle"): int(lifecycle)}
    assert tagged_rows(db_env) == expected

    to_0005 = flask_db(db_env, "downgrade", "0005")  # the later revisions hold nothing here
    assert to_0005.returncode == 0, to_0005.stdout + to_0005.stderr
    before, before_schema = snapshot(db_env), schema(db_env)
    down = flask_db(db_env, "downgrade", "0004")
    assert down.returncode != 0, down.stdout + down.stderr
    message = down.stdout + down.stderr
    assert "cannot downgrade below 0005" in message, message
    for count in ("1 tags in objects", "1 tags in object_versions", "1 tags in multipart_uploads",
                  "1 tagging in buckets"):
        assert count in message, (count, message)
    assert ("1 lifecycle in buckets" in message) == lifecycle, message
    assert "DeleteObjectTagging" in message and "DeleteBucketTagging" in message, message
    assert schema_revision(db_env) == "0005"
    assert snapshot(db_env) == before, "a refused downgrade changed the database"
    assert schema(db_env) == before_schema, "a refused downgrade changed the schema"
    back = flask_db(db_env, "upgrade")
    assert back.returncode == 0, back.stdout + back.stderr

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()
    try:
        s3, _ = clients(srv)
        # everything is as it was: the tags, the bytes, the upload
        assert_tagged(s3, "plain", "k", {"colour": "red"})
        assert_tagged(s3, "vers", "v", {"era": "first", "keep": "yes"}, VersionId=v1)
        assert s3.get_bucket_tagging(Bucket="tagged")["TagSet"] == tag_set({"cost-centre": "42"})
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="plain")["Uploads"]] == [upload]
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == small
        assert s3.get_object(Bucket="vers", Key="v", VersionId=v1)["Body"].read() == b"version one"
        for key in heads:
            assert head_view(s3, "plain", key) == heads[key], key
        # remove every tag set and rule: then the downgrade is possible
        s3.delete_object_tagging(Bucket="plain", Key="k")
        s3.delete_object_tagging(Bucket="vers", Key="v", VersionId=v1)
        s3.abort_multipart_upload(Bucket="plain", Key="mpu", UploadId=upload)
        s3.delete_bucket_tagging(Bucket="tagged")
        if lifecycle:
            s3.delete_bucket_lifecycle(Bucket="tagged")
            with pytest.raises(ClientError) as exc:
                s3.get_bucket_lifecycle_configuration(Bucket="tagged")
            assert exc.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
        assert_untagged(s3, "plain", "k")
        assert_untagged(s3, "vers", "v", VersionId=v1)
        assert_no_bucket_tags(s3, "tagged")
        assert head_view(s3, "plain", "k") == heads["k"]  # untagging kept the ETag and date too
    finally:
        srv.stop()
    assert tagged_rows(db_env) == NONE_TAGGED
    down = flask_db(db_env, "downgrade", "0004")
    assert down.returncode == 0, down.stdout + down.stderr
    assert schema_revision(db_env) == "0004"
    pristine_dir = tmp_path / "pristine-0004"
    (pristine_dir / "data").mkdir(parents=True)
    on_postgresql = "engine: postgresql" in Path(db_env["BLEEPSTORE_CONFIG"]).read_text()
    pristine = dict(db_env, BLEEPSTORE_CONFIG=str(write_config(
        pristine_dir, pg_databases.create() if on_postgresql else None)))
    made = flask_db(pristine, "upgrade", "0004")
    assert made.returncode == 0, made.stdout + made.stderr
    downgraded = schema(db_env)
    assert all(column not in [c[0] for c in downgraded[t]["columns"]] for t, column in TAG_COLUMNS)
    assert downgraded == schema(pristine), "the downgrade does not give back the 0004 schema"

    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        assert_old_code(s3, "plain")
        for key, data in (("k", small), ("blob", blob), ("sealed", sealed)):
            body, view = read(s3, "plain", key)
            assert body == data and view == heads[key], key
        assert s3.get_object(Bucket="plain", Key="k")["ETag"] == etags["k"]
        assert s3.get_object(Bucket="plain", Key="blob")["ETag"] == etags["blob"]
        assert s3.head_object(Bucket="plain", Key="sealed")["ServerSideEncryption"] == "AES256"
        assert sorted(c["Key"] for c in s3.list_objects_v2(Bucket="plain")["Contents"]) == ["blob", "k", "sealed"]
        assert s3.list_multipart_uploads(Bucket="plain").get("Uploads", []) == []
        assert s3.get_object(Bucket="vers", Key="v", VersionId=v1)["Body"].read() == b"version one"
        assert s3.get_object(Bucket="vers", Key="v", VersionId=v2)["Body"].read() == b"version two"
        assert s3.get_object(Bucket="vers", Key="v")["VersionId"] == v2
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["plain", "tagged", "vers"]
    finally:
        srv.stop()
