"""`flask db ...` drives the schema on both engines, safely under concurrency."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bleepstore_app import MIGRATIONS_DIR

from ..conftest import ENGINES
from ..servers import Server, write_config

# The current code's newest revision: what `flask db upgrade` reaches.
HEAD = ScriptDirectory(MIGRATIONS_DIR).get_current_head()

FLASK = str(Path(sys.executable).parent / "flask")


@pytest.fixture(params=ENGINES)
def db_env(request, tmp_path, pg_databases):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    return dict(os.environ, BLEEPSTORE_CONFIG=str(config), FLASK_APP="bleepstore_app")


def flask_db(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([FLASK, "db", *args], env=env, capture_output=True, text=True, timeout=120)


def test_flask_db_upgrade_current_history_downgrade_check(db_env):
    assert flask_db(db_env, "current").stdout.strip() == ""
    up = flask_db(db_env, "upgrade")
    assert up.returncode == 0, up.stderr
    current = flask_db(db_env, "current")
    assert f"{HEAD} (head)" in current.stdout, current.stderr
    history = flask_db(db_env, "history")
    assert "initial schema" in history.stdout
    check = flask_db(db_env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    down = flask_db(db_env, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert flask_db(db_env, "current").stdout.strip() == ""
    assert flask_db(db_env, "upgrade").returncode == 0


def test_flask_db_upgrade_twice_at_once_applies_once(db_env):
    procs = [subprocess.Popen([FLASK, "db", "upgrade"], env=db_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
    assert f"{HEAD} (head)" in flask_db(db_env, "current").stdout


def test_server_with_migrations_off_refuses_a_database_behind_the_code(tmp_path, db_env):
    env = dict(db_env, BLEEPSTORE_METADATA_MIGRATE_ON_START="false")
    srv = Server(tmp_path, env)
    with pytest.raises(RuntimeError) as exc:
        srv.start(timeout=20)
    assert "flask db upgrade" in str(exc.value)
    assert flask_db(db_env, "upgrade").returncode == 0
    srv.start()
    srv.stop()


def test_two_servers_starting_together_on_one_database(tmp_path, db_env):
    servers = [Server(tmp_path / name, db_env) for name in ("one", "two")]
    for srv in servers:
        srv.workdir.mkdir()
    import threading
    errors: list[Exception] = []

    def start(srv):
        try:
            srv.start()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert f"{HEAD} (head)" in flask_db(db_env, "current").stdout
    finally:
        for srv in servers:
            srv.stop()


def test_upgrade_from_the_0001_release_keeps_every_object(tmp_path, db_env):
    """A database left by the release whose head was 0001 (objects inline, in a
    blob, multipart) upgrades to 0002 on start and serves the same bytes; an
    overwrite then goes through the new garbage table and its sweep."""
    from ..conftest import make_client
    srv = Server(tmp_path, db_env).start()
    bodies = {"inline": b"i" * 100, "blob": os.urandom(100_000), "multipart": os.urandom(6 * 1024 * 1024)}
    try:
        s3 = make_client(srv.endpoint)
        s3.create_bucket(Bucket="old")
        s3.put_object(Bucket="old", Key="inline", Body=bodies["inline"])
        s3.put_object(Bucket="old", Key="blob", Body=bodies["blob"])
        up = s3.create_multipart_upload(Bucket="old", Key="multipart")["UploadId"]
        etags = [s3.upload_part(Bucket="old", Key="multipart", UploadId=up, PartNumber=n,
                                Body=bodies["multipart"][(n - 1) * 5 * 1024 * 1024: n * 5 * 1024 * 1024])["ETag"]
                 for n in (1, 2)]
        s3.complete_multipart_upload(Bucket="old", Key="multipart", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
    finally:
        srv.stop()
    down = flask_db(db_env, "downgrade", "0001")
    assert down.returncode == 0, down.stderr
    assert "0001" in flask_db(db_env, "current").stdout

    srv = Server(tmp_path, db_env).start()  # migrates on start
    try:
        assert f"{HEAD} (head)" in flask_db(db_env, "current").stdout
        s3 = make_client(srv.endpoint)
        for key, body in bodies.items():
            assert s3.get_object(Bucket="old", Key=key)["Body"].read() == body, key
        blobs_before = srv.blobs()
        s3.put_object(Bucket="old", Key="blob", Body=b"new")
        s3.delete_object(Bucket="old", Key="multipart")
        assert srv.blobs() == blobs_before, "unlinked blobs wait for the sweeper"
        assert srv.sweep() == 3  # the replaced blob and both parts
        assert len(blobs_before - srv.blobs()) == 3
        assert s3.get_object(Bucket="old", Key="blob")["Body"].read() == b"new"
        assert s3.get_object(Bucket="old", Key="inline")["Body"].read() == bodies["inline"]
    finally:
        srv.stop()
