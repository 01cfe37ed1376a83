"""deploy/migrate.sh and deploy/entrypoint.sh as processes, with the environment
docker-compose.yml gives the migrate and bleepstore services, against a fresh
PostgreSQL database per test (PostgreSQL is required: missing, the tests fail)."""
from __future__ import annotations

import concurrent.futures
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from ..conftest import make_client
from ..servers import free_port
from .support import (DOCKERFILE, ENTRYPOINT, ROOT, Node, node_environment, postgres_databases, process_environ,
                      psql_url, run_migrate, service_environment)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database():
    dbs = postgres_databases()
    yield dbs.create()
    dbs.drop_all()


def migrate_env(database_url: str, tmp_path) -> dict:
    return process_environ(service_environment("migrate", {
        "BLEEPSTORE_METADATA_POSTGRESQL_URL": database_url,
        "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(tmp_path / "objects")}))


def schema_revisions(database_url: str) -> list[str]:
    with psycopg.connect(psql_url(database_url)) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version").fetchall()]


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory
    from bleepstore_app.recovery import alembic_config
    return set(ScriptDirectory.from_config(alembic_config(None)).get_heads())


def test_migrate_is_idempotent(database, tmp_path):
    env = migrate_env(database, tmp_path)
    first = run_migrate(env)
    assert first.returncode == 0, first.stdout + first.stderr
    revisions = schema_revisions(database)
    assert set(revisions) == head_revisions() and len(revisions) == 1
    second = run_migrate(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert schema_revisions(database) == revisions


def test_migrate_twice_concurrently(database, tmp_path):
    env = migrate_env(database, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_migrate(env), range(2)))
    for proc in results:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(schema_revisions(database)) == head_revisions()
    # And a later run on the result is a no-op.
    assert run_migrate(env).returncode == 0


def test_entrypoint_serves_after_migrate(database, tmp_path):
    assert run_migrate(migrate_env(database, tmp_path)).returncode == 0
    env = node_environment(database, tmp_path / "objects")
    assert env["BLEEPSTORE_METADATA_MIGRATE_ON_START"] == "false"
    node = Node("node", env, tmp_path).start()
    try:
        assert requests.get(node.endpoint + "/readyz", timeout=5).status_code == 200
        assert requests.get(node.endpoint + "/healthz", timeout=5).status_code == 200
        # gunicorn from the project's gunicorn.conf.py: gevent workers, server.workers of them.
        assert len(node.worker_pids()) == int(env["BLEEPSTORE_SERVER_WORKERS"])
        s3 = make_client(node.endpoint)
        s3.create_bucket(Bucket="entrypoint")
        s3.put_object(Bucket="entrypoint", Key="k", Body=b"hello")
        assert s3.get_object(Bucket="entrypoint", Key="k")["Body"].read() == b"hello"
        # JSON logs, as compose asks for.
        assert '"level"' in node.log() or '"msg"' in node.log() or '{"' in node.log()
    finally:
        node.stop()
    assert node.proc.returncode is not None


def test_unmigrated_database_is_refused(database, tmp_path):
    env = node_environment(database, tmp_path / "objects")
    node = Node("node", env, tmp_path)
    proc = node.spawn()
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        node.kill()
        pytest.fail(f"a server with migrations off started on an empty database:\n{node.log()}")
    assert code != 0
    assert "flask db upgrade" in node.log()
    # Nothing was created behind the operator's back.
    with psycopg.connect(psql_url(database)) as conn:
        tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                              ).fetchone()[0]
    assert tables == 0
    # After the migration the same command starts.
    assert run_migrate(migrate_env(database, tmp_path)).returncode == 0
    node.start()
    node.stop()


def test_secret_from_a_file(database, tmp_path):
    """Docker secrets: BLEEPSTORE_AUTH_SECRET_KEY_FILE instead of the value."""
    assert run_migrate(migrate_env(database, tmp_path)).returncode == 0
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-secret\n")
    env = node_environment(database, tmp_path / "objects", BLEEPSTORE_AUTH_SECRET_KEY_FILE=str(secret))
    del env["BLEEPSTORE_AUTH_SECRET_KEY"]
    node = Node("node", env, tmp_path).start()
    try:
        ok = make_client(node.endpoint, secret_key="from-a-file-secret")
        ok.create_bucket(Bucket="secret-file")
        bad = make_client(node.endpoint)
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            bad.list_buckets()
    finally:
        node.stop()


def test_entrypoint_passes_other_commands_through(tmp_path):
    env = process_environ({"BLEEPSTORE_SERVER_PORT": str(free_port())})
    proc = subprocess.run([str(ENTRYPOINT), "sh", "-c", 'echo "$FLASK_APP $PWD"'], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["bleepstore_app", str(ENTRYPOINT.parent.parent)]
    missing = subprocess.run([str(ENTRYPOINT), "true"], capture_output=True, text=True, timeout=30,
                             env=process_environ({"BLEEPSTORE_AUTH_SECRET_KEY_FILE": str(tmp_path / "nope")}))
    assert missing.returncode == 2 and "cannot be read" in missing.stderr


def dockerfile_steps() -> tuple[list[tuple[list[str], str]], str]:
    """The Dockerfile's COPY instructions (sources, destination) and its pip install command."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    copies, pip = [], None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            copies.append((words[1:-1], words[-1]))
        elif words[:1] == ["RUN"] and "pip install" in line:
            pip = line.split(None, 1)[1].split("&&")[0].strip()
    assert pip and copies
    return copies, pip


@pytest.mark.slow
def test_the_images_install_steps_serve(database, tmp_path):
    """The Dockerfile's COPY and pip steps replayed into a fresh venv (from PyPI), then
    migrate.sh and entrypoint.sh from that copy with only that venv on PATH."""
    app = tmp_path / "app"
    app.mkdir()
    copies, pip = dockerfile_steps()
    for sources, dest in copies:
        for source in sources:
            src, target = ROOT / source, app / dest
            if dest.endswith("/") or len(sources) > 1:
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in process_environ({}).items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    proc = subprocess.run(["sh", "-c", pip], cwd=app, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    settings = {"BLEEPSTORE_METADATA_POSTGRESQL_URL": database,
                "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(tmp_path / "objects")}
    migrate_env = dict(env, **service_environment("migrate", settings))
    migrated = subprocess.run([str(app / "deploy" / "migrate.sh")], env=migrate_env, cwd="/",
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    node_env = dict(env, **service_environment("bleepstore", dict(
        settings, BLEEPSTORE_SERVER_HOST="127.0.0.1", BLEEPSTORE_SERVER_PORT=str(port))))
    node = Node("image", node_env, tmp_path / "node")
    node.proc = subprocess.Popen([str(app / "deploy" / "entrypoint.sh")], cwd="/", env=node_env,
                                 stdout=open(node.log_path, "ab"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        node.wait_ready()
        # The image's HEALTHCHECK command, as written in the Dockerfile.
        check = [rest for word, rest in _instructions() if word == "HEALTHCHECK"][0].split(" CMD ", 1)[1]
        assert subprocess.run(["sh", "-c", check], env=node_env, timeout=30).returncode == 0
        s3 = make_client(node.endpoint)
        s3.create_bucket(Bucket="image-steps")
        s3.put_object(Bucket="image-steps", Key="k", Body=b"x" * 100_000)
        assert s3.get_object(Bucket="image-steps", Key="k")["Body"].read() == b"x" * 100_000
    finally:
        node.stop()


def _instructions() -> list[tuple[str, str]]:
    from .test_compose import dockerfile_instructions
    return dockerfile_instructions()
