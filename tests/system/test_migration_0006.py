"""Schema 0006 (bucket CORS rules, policy, public access block, ownership
controls) against data written by the release before it (commit 53bab8a,
schema head 0005), on both engines.

As in the earlier migration tests, the old release runs from its own source
tree (``git archive``) on the same interpreter and virtualenv, and each test
checks that it is the old code by asking for something only the new code does
(PutBucketPolicy, which 53bab8a answers 501).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from botocore.exceptions import ClientError

from ..conftest import ENGINES
from ..servers import Server, write_config
from .test_migration_0003 import (HEAD, NO_AUTOMIGRATE, canonical, clients, flask_db, head_view, read, schema,
                                  schema_revision, snapshot, strip)
from .test_migration_0004 import assert_reads_back, complete_inflight, fill
from .test_migration_0005 import (assert_sse_reads_back, assert_tagged, fill_sse, old_server, release_tree,
                                  tag_set)

OLD_RELEASE = "53bab8a"  # the release whose schema head is 0005
OLD_MIGRATIONS = ["0001_initial_schema.py", "0002_blob_garbage_and_leases.py",
                  "0003_object_versions_and_object_lock.py", "0004_server_side_encryption.py",
                  "0005_tagging_and_lifecycle.py"]
ACCESS_COLUMNS = ("cors", "policy", "public_access_block", "ownership_controls")
NONE_SET = dict.fromkeys(ACCESS_COLUMNS, 0)
# What a bucket answers for each configuration it does not have.
ABSENT = {"get_bucket_policy": ("NoSuchBucketPolicy", 404), "get_bucket_cors": ("NoSuchCORSConfiguration", 404),
          "get_public_access_block": ("NoSuchPublicAccessBlockConfiguration", 404),
          "get_bucket_ownership_controls": ("OwnershipControlsNotFoundError", 404)}
LIFECYCLE_RULE = {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
ORIGIN = "https://app.example.com"


@pytest.fixture
def old_release(tmp_path) -> Path:
    """The 0005 release's source tree."""
    return release_tree(tmp_path, OLD_RELEASE, OLD_MIGRATIONS)


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app")


def access_rows(env: dict) -> dict[str, int]:
    """Buckets with each 0006 column set, straight from the database."""
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {c: conn.execute(sa.text(f"SELECT count(*) FROM buckets WHERE {c} IS NOT NULL")).scalar_one()
                    for c in ACCESS_COLUMNS}
    finally:
        engine.dispose()


def public_read_policy(bucket: str, key: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{key}"}]})


CORS = {"CORSRules": [{"AllowedOrigins": [ORIGIN], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
                       "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def assert_old_code(s3, bucket: str) -> None:
    """The server behind ``s3`` is the 0005 release: it has no bucket policies."""
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=public_read_policy(bucket, "x"))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501, exc.value.response
    assert exc.value.response["Error"]["Code"] == "NotImplemented"


def assert_no_access_config(s3, bucket: str) -> None:
    for call, (code, status) in ABSENT.items():
        with pytest.raises(ClientError) as exc:
            getattr(s3, call)(Bucket=bucket)
        error = exc.value.response
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), \
            (bucket, call, error)


def preflight(endpoint: str, path: str) -> requests.Response:
    return requests.options(f"{endpoint}/{path}", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
                            timeout=10)


def test_upgrade_from_the_0005_release(tmp_path, db_env, old_release):
    """A database written by the 0005 release migrates to 0006 when the current
    server starts on it and serves every object, version, ACL, tag set, lifecycle
    rule and open upload as before, with no CORS rules, policy, public access
    block or ownership controls on any bucket; then each of them can be set on
    the old buckets and governs their old objects, whose bytes, ETags and dates
    do not change."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        sse = fill_sse(s3)
        s3.put_object_tagging(Bucket="old-data", Key="blob.bin", Tagging={"TagSet": tag_set({"kept": "yes"})})
        s3.put_bucket_tagging(Bucket="old-data", Tagging={"TagSet": tag_set({"team": "storage"})})
        s3.put_bucket_lifecycle_configuration(Bucket="old-data", LifecycleConfiguration={"Rules": [LIFECYCLE_RULE]})
        assert_old_code(s3, "old-data")
    finally:
        srv.stop()
    assert schema_revision(db_env) == "0005"

    srv = Server(tmp_path, db_env).start()  # migrates on start
    try:
        current = flask_db(db_env, "current")
        assert f"{HEAD} (head)" in current.stdout, current.stdout + current.stderr
        assert access_rows(db_env) == NONE_SET
        s3, s3_other = clients(srv)
        buckets = recorded["buckets"] + ["old-sse"]
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == sorted(buckets)
        assert_reads_back(s3, s3_other, recorded, new_code=True)
        assert_sse_reads_back(s3, sse)
        assert_tagged(s3, "old-data", "blob.bin", {"kept": "yes"})
        assert s3.get_bucket_tagging(Bucket="old-data")["TagSet"] == tag_set({"team": "storage"})
        rules = s3.get_bucket_lifecycle_configuration(Bucket="old-data")["Rules"]
        assert [r["ID"] for r in rules] == ["expire-tmp"] and rules[0]["Expiration"] == {"Days": 30}, rules
        for bucket in buckets:
            assert_no_access_config(s3, bucket)
        # no configuration means today's answers: no CORS, nothing public
        assert preflight(srv.endpoint, "old-data/blob.bin").status_code == 403
        assert requests.get(f"{srv.endpoint}/old-acl/granted.bin", timeout=10).status_code == 403
        complete_inflight(s3, recorded, extra_part=os.urandom(1000))
        assert access_rows(db_env) == NONE_SET, "a read or write set an access configuration"

        # each configuration on an old bucket, governing its old objects
        s3.put_bucket_policy(Bucket="old-acl", Policy=public_read_policy("old-acl", "granted.bin"))
        anonymous = requests.get(f"{srv.endpoint}/old-acl/granted.bin", timeout=10)
        assert anonymous.status_code == 200 and anonymous.content == recorded["raw"]["old-acl", "granted.bin"]
        s3.put_bucket_cors(Bucket="old-data", CORSConfiguration=CORS)
        answer = preflight(srv.endpoint, "old-data/blob.bin")
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == ORIGIN, answer.headers
        s3.put_public_access_block(Bucket="old-vers", PublicAccessBlockConfiguration=BLOCK_ALL)
        with pytest.raises(ClientError) as exc:  # BlockPublicAcls: a public ACL on an old version is refused
            s3.put_object_acl(Bucket="old-vers", Key="doc", ACL="public-read")
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        s3.put_bucket_ownership_controls(Bucket="old-sse", OwnershipControls=ENFORCED)
        assert s3.get_bucket_ownership_controls(Bucket="old-sse")["OwnershipControls"] == ENFORCED
        assert access_rows(db_env) == dict.fromkeys(ACCESS_COLUMNS, 1)

        for (bucket, key), digest in recorded["bodies"].items():
            if (bucket, key) == ("old-vers", "doc"):
                continue  # the completed upload made a new current version of it
            body, view = read(s3, bucket, key)
            assert view == recorded["heads"][bucket, key], (bucket, key)
        assert_sse_reads_back(s3, sse)
    finally:
        srv.stop()


def test_downgrade_refused_while_access_configuration_exists(tmp_path, db_env, old_release, pg_databases):
    """0005-release data upgraded with `flask db upgrade`; while any bucket has
    CORS rules, a policy, a public access block or ownership controls,
    `flask db downgrade 0005` refuses, names the counts, and leaves the database
    as it was. With all four deleted, the downgrade goes through, to the schema
    0005 itself makes, and the 0005 release serves what is there."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        for bucket in ("plain", "web", "locked"):
            s3.create_bucket(Bucket=bucket)
        assert_old_code(s3, "plain")
        small, blob = b"from 0005", os.urandom(100_000)
        s3.put_object(Bucket="plain", Key="k", Body=small, Tagging="era=0005")
        s3.put_object(Bucket="web", Key="page.html", Body=blob, ContentType="text/html")
        heads = {("plain", "k"): head_view(s3, "plain", "k"), ("web", "page.html"): head_view(s3, "web", "page.html")}
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Running upgrade 0005 -> 0006" in up.stdout + up.stderr
    assert schema_revision(db_env) == HEAD and access_rows(db_env) == NONE_SET

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()  # nothing left to migrate
    try:
        s3, _ = clients(srv)
        s3.put_bucket_policy(Bucket="plain", Policy=public_read_policy("plain", "k"))
        s3.put_bucket_cors(Bucket="web", CORSConfiguration=CORS)
        s3.put_public_access_block(Bucket="locked", PublicAccessBlockConfiguration=BLOCK_ALL)
        s3.put_bucket_ownership_controls(Bucket="locked", OwnershipControls=ENFORCED)
    finally:
        srv.stop()
    assert access_rows(db_env) == {"cors": 1, "policy": 1, "public_access_block": 1, "ownership_controls": 1}

    to_0006 = flask_db(db_env, "downgrade", "0006")  # any later revision holds nothing here
    assert to_0006.returncode == 0, to_0006.stdout + to_0006.stderr
    before, before_schema = snapshot(db_env), schema(db_env)
    down = flask_db(db_env, "downgrade", "0005")
    assert down.returncode != 0, down.stdout + down.stderr
    message = down.stdout + down.stderr
    assert "cannot downgrade below 0006" in message, message
    for count in ("1 bucket(s) with cors", "1 bucket(s) with policy", "1 bucket(s) with public_access_block",
                  "1 bucket(s) with ownership_controls"):
        assert count in message, (count, message)
    assert "DeleteBucketPolicy" in message and "DeletePublicAccessBlock" in message, message
    assert schema_revision(db_env) == "0006"
    assert snapshot(db_env) == before, "a refused downgrade changed the database"
    assert schema(db_env) == before_schema, "a refused downgrade changed the schema"
    back = flask_db(db_env, "upgrade")
    assert back.returncode == 0, back.stdout + back.stderr

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()
    try:
        s3, _ = clients(srv)
        # everything is as it was, then each configuration is deleted
        assert requests.get(f"{srv.endpoint}/plain/k", timeout=10).content == small  # the policy still applies
        assert s3.get_bucket_cors(Bucket="web")["CORSRules"][0]["AllowedOrigins"] == [ORIGIN]
        assert s3.get_public_access_block(Bucket="locked")["PublicAccessBlockConfiguration"] == BLOCK_ALL
        s3.delete_bucket_policy(Bucket="plain")
        s3.delete_bucket_cors(Bucket="web")
        s3.delete_public_access_block(Bucket="locked")
        s3.delete_bucket_ownership_controls(Bucket="locked")
        for bucket in ("plain", "web", "locked"):
            assert_no_access_config(s3, bucket)
        assert requests.get(f"{srv.endpoint}/plain/k", timeout=10).status_code == 403
    finally:
        srv.stop()
    assert access_rows(db_env) == NONE_SET
    down = flask_db(db_env, "downgrade", "0005")
    assert down.returncode == 0, down.stdout + down.stderr
    assert schema_revision(db_env) == "0005"
    pristine_dir = tmp_path / "pristine-0005"
    (pristine_dir / "data").mkdir(parents=True)
    on_postgresql = "engine: postgresql" in Path(db_env["BLEEPSTORE_CONFIG"]).read_text()
    pristine = dict(db_env, BLEEPSTORE_CONFIG=str(write_config(
        pristine_dir, pg_databases.create() if on_postgresql else None)))
    made = flask_db(pristine, "upgrade", "0005")
    assert made.returncode == 0, made.stdout + made.stderr
    downgraded = schema(db_env)
    assert all(column not in [c[0] for c in downgraded["buckets"]["columns"]] for column in ACCESS_COLUMNS)
    assert downgraded == schema(pristine), "the downgrade does not give back the 0005 schema"

    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        assert_old_code(s3, "plain")
        for (bucket, key), data in ((("plain", "k"), small), (("web", "page.html"), blob)):
            body, view = read(s3, bucket, key)
            assert body == data and view == heads[bucket, key], (bucket, key)
        assert_tagged(s3, "plain", "k", {"era": "0005"})
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["locked", "plain", "web"]
        assert strip(s3.get_bucket_acl(Bucket="locked"))["Grants"][0]["Permission"] == "FULL_CONTROL"
    finally:
        srv.stop()
