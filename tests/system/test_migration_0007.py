"""Schema 0007 (credentials managed in the database, secrets sealed at rest)
against data written by the release before it (commit 77bf0b6, schema head
0006), on both engines.

As in the earlier migration tests, the old release runs from its own source
tree (``git archive``) on the same interpreter and virtualenv; each test checks
that it is the old code by asking for something only the new code does (the
admin API: the old release takes GET /admin/status with a bearer token for a
malformed S3 request to a bucket named "admin"). The admin token reaches the servers by
$BLEEPSTORE_ADMIN_TOKEN, which the old release ignores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from ..conftest import ENGINES, make_client
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY, Server, write_config
from .test_migration_0003 import HEAD, NO_AUTOMIGRATE, canonical, clients, flask_db, schema, schema_revision, snapshot
from .test_migration_0004 import assert_reads_back, fill
from .test_migration_0005 import old_server, release_tree

OLD_RELEASE = "77bf0b6"  # the release whose schema head is 0006
OLD_MIGRATIONS = ["0001_initial_schema.py", "0002_blob_garbage_and_leases.py",
                  "0003_object_versions_and_object_lock.py", "0004_server_side_encryption.py",
                  "0005_tagging_and_lifecycle.py", "0006_bucket_access_configuration.py"]
TOKEN = "migration-test-admin-token"
BLEEPSTORE = str(Path(sys.executable).parent / "bleepstore")


@pytest.fixture
def old_release(tmp_path) -> Path:
    return release_tree(tmp_path, OLD_RELEASE, OLD_MIGRATIONS)


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app", BLEEPSTORE_ADMIN_TOKEN=TOKEN)


def rows(env: dict) -> dict[str, dict]:
    from bleepstore_app.config import load_settings
    url = load_settings(env["BLEEPSTORE_CONFIG"], environ=env).database_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {r.access_key: dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM credentials"))}
    finally:
        engine.dispose()


def admin(srv: Server, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{srv.endpoint}/admin{path}", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {TOKEN}"})


def assert_old_code(srv: Server) -> None:
    answer = admin(srv, "GET", "/status")
    assert answer.headers["Content-Type"].startswith("application/xml"), answer.text
    assert answer.status_code == 400 and "AuthorizationHeaderMalformed" in answer.text, answer.text


def assert_plain(env: dict) -> None:
    found = rows(env)
    assert {k: r["secret_key"] for k, r in found.items()} == {ACCESS_KEY: SECRET_KEY, OTHER_ACCESS_KEY: OTHER_SECRET_KEY}
    assert all(r.get("secret_ciphertext") is None for r in found.values())


def assert_sealed(env: dict, secrets: tuple[str, ...] = (SECRET_KEY, OTHER_SECRET_KEY)) -> dict:
    found = rows(env)
    for key, row in found.items():
        assert row["secret_key"] is None, key
        assert row["secret_ciphertext"].startswith("v1:sse:m1:"), key
        for secret in secrets:
            assert secret not in repr(row), key
    return found


def test_upgrade_from_the_0006_release(tmp_path, db_env, old_release):
    """The 0006 release's database (its YAML keys stored in clear) migrates when
    the current server starts on it; the start seals every secret, the old keys
    and everything they wrote keep working, and keys made by the admin API work
    beside them."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, s3_other = clients(srv)
        recorded = fill(s3, s3_other, canonical(s3_other))
        assert_old_code(srv)
    finally:
        srv.stop()
    assert schema_revision(db_env) == "0006"
    assert_plain(db_env)

    srv = Server(tmp_path, db_env).start()  # migrates on start, then seals
    try:
        assert schema_revision(db_env) == HEAD == "0007"
        sealed = assert_sealed(db_env)
        assert {r["source"] for r in sealed.values()} == {"config"}
        s3, s3_other = clients(srv)
        assert_reads_back(s3, s3_other, recorded, new_code=True)
        made = admin(srv, "POST", "/credentials", {"description": "after the upgrade"})
        assert made.status_code == 201, made.text
        key = made.json()
        user = make_client(srv.endpoint, key["access_key_id"], key["secret_access_key"])
        user.create_bucket(Bucket="new-user-bucket")
        assert [b["Name"] for b in user.list_buckets()["Buckets"]] == ["new-user-bucket"]
        assert_sealed(db_env, (SECRET_KEY, OTHER_SECRET_KEY, key["secret_access_key"]))
    finally:
        srv.stop()


def test_sealing_at_start_and_downgrade_refusal(tmp_path, db_env, old_release):
    """`flask db upgrade` leaves the secrets in clear (the key may not be where
    migrations run); the first start seals them. A downgrade that would lose a
    key made by the admin API, or re-enable a disabled one, is refused and
    changes nothing; without those it goes through, and the 0006 release seeds
    its YAML keys again and serves what is there."""
    srv = old_server(old_release, db_env).start()
    try:
        s3, _ = clients(srv)
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="k", Body=b"written by 0006")
    finally:
        srv.stop()
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Running upgrade 0006 -> 0007" in up.stdout + up.stderr
    assert_plain(db_env)  # the migration itself seals nothing

    srv = Server(tmp_path, dict(db_env, **NO_AUTOMIGRATE)).start()
    try:
        assert_sealed(db_env)
        s3, s3_other = clients(srv)
        assert s3.get_object(Bucket="kept", Key="k")["Body"].read() == b"written by 0006"
        s3_other.list_buckets()
        made = admin(srv, "POST", "/credentials", {"description": "blocks the downgrade"}).json()
        assert admin(srv, "PUT", f"/credentials/{OTHER_ACCESS_KEY}/status", {"status": "disabled"}).status_code == 200
    finally:
        srv.stop()

    before, before_schema = snapshot(db_env), schema(db_env)
    down = flask_db(db_env, "downgrade", "0006")
    message = down.stdout + down.stderr
    assert down.returncode != 0, message
    assert "cannot downgrade below 0007" in message, message
    assert "1 credential(s) made by the admin API" in message and "1 credential(s) disabled" in message, message
    assert made["secret_access_key"] not in message
    assert schema_revision(db_env) == "0007"
    assert snapshot(db_env) == before, "a refused downgrade changed the database"
    assert schema(db_env) == before_schema

    cli_env = dict(db_env)
    cli_env.pop("BLEEPSTORE_ADMIN_TOKEN")
    for args in (("delete", made["access_key_id"]), ("enable", OTHER_ACCESS_KEY)):
        done = subprocess.run([BLEEPSTORE, "admin", "--direct", "credentials", *args], env=cli_env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    down = flask_db(db_env, "downgrade", "0006")
    assert down.returncode == 0, down.stdout + down.stderr
    assert schema_revision(db_env) == "0006"
    assert rows(db_env) == {}  # the YAML keys, held only sealed: the 0006 release seeds them again

    srv = old_server(old_release, db_env).start()
    try:
        assert_old_code(srv)
        assert_plain(db_env)
        s3, s3_other = clients(srv)
        assert s3.get_object(Bucket="kept", Key="k")["Body"].read() == b"written by 0006"
        assert json.loads(json.dumps(s3_other.list_buckets()["Buckets"])) == []
    finally:
        srv.stop()
