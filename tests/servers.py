"""Start and stop real BleepStore servers (gunicorn + gevent) for the tests."""
from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BLEEPSTORE = str(Path(sys.executable).parent / "bleepstore")
ACCESS_KEY, SECRET_KEY = "bleepstore", "bleepstore-secret"
OTHER_ACCESS_KEY, OTHER_SECRET_KEY = "bleepstore-other", "bleepstore-other-secret"
# Test servers delete unlinked blobs only when a test sweeps (Server.sweep()), and
# then at once: deletion is deterministic, and no sweep races a test's readers.
# Tests of the sweeper's own timing set these themselves.
SWEEP_ON_DEMAND = {"BLEEPSTORE_STORAGE_GARBAGE_GRACE_SECONDS": "0",
                   "BLEEPSTORE_STORAGE_SWEEP_INTERVAL_SECONDS": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `bleepstore serve` process and where to reach it."""
    workdir: Path
    env: dict
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"
        self.env = {**SWEEP_ON_DEMAND, **self.env}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "Server":
        self.port = self.port or free_port()
        env = dict(self.env, BLEEPSTORE_SERVER_PORT=str(self.port), BLEEPSTORE_SERVER_HOST="127.0.0.1")
        log = open(self.log_path, "ab")
        log_start = log.tell()
        self.proc = subprocess.Popen([BLEEPSTORE, "serve"], cwd=self.workdir, env=env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                requests.get(self.endpoint + "/", timeout=1)
            except requests.RequestException:
                time.sleep(0.1)
                continue
            if self._every_worker_serving(log_start, deadline):
                return self
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log()}")

    def _every_worker_serving(self, log_start: int, deadline: float) -> bool:
        """Wait until each worker has said it is serving (gunicorn_conf.post_worker_init):
        the first answer only proves one, and a worker still starting may yet act
        on the data directory (create its folders again, say)."""
        if not self._says_serving():
            return True  # an earlier release (the migration tests) says nothing of the kind
        from bleepstore_app.config import load_settings
        settings = load_settings(self.env.get("BLEEPSTORE_CONFIG"), environ=self.env)
        if settings.log_level not in ("debug", "info"):
            return True  # the line is not logged
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(log_start)
                if len(re.findall(rb"Worker \d+ serving", f.read())) >= settings.workers:
                    return True
            time.sleep(0.05)
        return False

    def _says_serving(self) -> bool:
        """Whether the code this server runs (the first bleepstore_app on its
        PYTHONPATH, else this checkout's) logs "Worker N serving"."""
        import bleepstore_app
        for entry in [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p]:
            conf = Path(entry) / "bleepstore_app" / "gunicorn_conf.py"
            if conf.exists():
                return "def post_worker_init" in conf.read_text()
        return "def post_worker_init" in (Path(bleepstore_app.__file__).parent / "gunicorn_conf.py").read_text()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """kill -9 the whole server: master and workers."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)

    def sweep(self) -> int:
        """One pass of the server's blob sweeper (what its workers run on their
        timer), from this process on the server's database and storage."""
        saved = dict(os.environ)
        os.environ.update(self.env)  # the SDKs read credentials from the environment
        try:
            return sweep_once(self.env)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def lifecycle(self, now_us: int | None = None) -> dict:
        """One lifecycle pass (what the workers run on their timer), from this process
        on the server's database, as if it were ``now_us``; its counts per action."""
        return lifecycle_once(self.env, now_us)

    def blobs(self) -> set[str]:
        """Every blob location in the server's storage backend (local disk or a
        gateway's bucket), read through the backend itself."""
        with self._storage() as storage:
            return set(storage.iter_locations(-3600))  # a cutoff in the future: all

    def blob_bytes(self, location: str) -> bytes:
        with self._storage() as storage:
            reader = storage.open(location)
            return b"".join(reader.iter_range(0, reader.size))

    def metadata_blobs(self) -> dict[str, set[str]]:
        """The blob locations the server's metadata points at, per table, read
        straight from its database (SQLite file or PostgreSQL): ``objects`` and
        ``object_versions`` (current and noncurrent versions that are neither inline,
        delete markers nor made of part rows), ``object_parts`` (completed
        multipart objects) and ``multipart_parts`` (parts of uploads not completed)."""
        import sqlalchemy as sa
        from bleepstore_app.config import load_settings
        url = load_settings(self.env["BLEEPSTORE_CONFIG"], environ=self.env).database_url
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        queries = {
            "objects": "SELECT data_location FROM objects WHERE NOT data_inline AND NOT delete_marker"
                       " AND data_location <> 'multipart'",
            "object_versions": "SELECT data_location FROM object_versions WHERE NOT data_inline"
                               " AND NOT delete_marker AND data_location <> 'multipart'",
            "object_parts": "SELECT data_location FROM object_parts",
            "multipart_parts": "SELECT data_location FROM multipart_parts",
        }
        try:
            with engine.connect() as conn:
                return {table: {row[0] for row in conn.execute(sa.text(sql))} for table, sql in queries.items()}
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def _storage(self):
        """The server's StorageBackend, built from its config in this process."""
        from bleepstore_app.config import load_settings
        from bleepstore_app.storage import make_storage
        saved = dict(os.environ)
        os.environ.update(self.env)  # the SDKs read credentials from the environment
        try:
            yield make_storage(load_settings(self.env["BLEEPSTORE_CONFIG"], environ=self.env))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def sweep_once(env: dict) -> int:
    """Run the blob sweeper once on the database and storage of the config that
    ``env`` names; the number of blobs it deleted."""
    from bleepstore_app.config import load_settings
    from bleepstore_app.jobs.sweeper import sweep_garbage
    from bleepstore_app.metadata.engine import Database, make_engine
    from bleepstore_app.metadata.store import MetadataStore
    from bleepstore_app.storage import make_storage
    settings = load_settings(env["BLEEPSTORE_CONFIG"], environ=env)
    db = Database(make_engine(settings))
    try:
        swept = sweep_garbage(MetadataStore(db, settings.garbage_grace_seconds), make_storage(settings))
    finally:
        db.dispose()
    assert swept is not None, "another process holds the sweeper's lease"
    return swept


def lifecycle_once(env: dict, now_us: int | None = None) -> dict:
    """Run the lifecycle pass once on the database of the config that ``env`` names."""
    from bleepstore_app.config import load_settings
    from bleepstore_app.jobs.lifecycle import run_lifecycle
    from bleepstore_app.metadata.engine import Database, make_engine
    from bleepstore_app.metadata.store import MetadataStore
    from bleepstore_app.service import Services
    settings = load_settings(env["BLEEPSTORE_CONFIG"], environ=env)
    db = Database(make_engine(settings))
    try:  # deletions touch only metadata (blobs go to the sweeper): no storage needed
        counts = run_lifecycle(Services(settings, MetadataStore(db, settings.garbage_grace_seconds), None),
                               now=now_us)
    finally:
        db.dispose()
    assert counts is not None, "another process holds the lifecycle lease"
    return counts


def write_config(workdir: Path, database_url: str | None, extra: str = "", storage: str | None = None,
                 encryption: bool = True) -> Path:
    """A server config in ``workdir``; ``storage`` replaces the default local-disk
    storage section (e.g. an emulator's gateway settings). Without ``encryption``
    it has no encryption section (releases before 0004 refuse one)."""
    metadata = (f"  engine: postgresql\n  postgresql:\n    url: {database_url}\n" if database_url
                else f"  engine: sqlite\n  sqlite:\n    path: {workdir}/data/metadata.db\n")
    text = f"""server:
  region: us-east-1
  workers: 2
  virtual_host_domains: [s3.localhost]
auth:
  access_key: {ACCESS_KEY}
  secret_key: {SECRET_KEY}
  display_name: main-user
  credentials:
    - access_key: {OTHER_ACCESS_KEY}
      secret_key: {OTHER_SECRET_KEY}
      display_name: other-user
metadata:
{metadata}{storage or _local_storage(workdir)}{extra}"""
    path = workdir / "bleepstore.yaml"
    path.write_text(text + (_encryption(workdir, extra) if encryption else ""))
    return path


# The SSE-KMS key-ring names every test server knows (tests/conformance/test_encryption.py).
KMS_KEYS = ("test-key", "other-key")


def _encryption(workdir: Path, extra: str) -> str:
    """Encryption keys for a test server: one master key and two KMS keys, each in
    a file of its own (as an operator would keep them). (SSE-C tests over plain
    HTTP send X-Forwarded-Proto: https, which the server believes from 127.0.0.1,
    gunicorn's default FORWARDED_ALLOW_IPS, as from a proxy on the same host.)"""
    if "encryption:" in extra:
        return ""
    keys = workdir / "keys"
    keys.mkdir(exist_ok=True)
    sources = {}
    for name in ("m1",) + KMS_KEYS:
        key_file = keys / f"{name}.key"
        if not key_file.exists():
            key_file.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
            key_file.chmod(0o600)
        sources[name] = f"file:{key_file}"
    kms = "".join(f"    {name}: {sources[name]}\n" for name in KMS_KEYS)
    return f"encryption:\n  master_keys:\n    m1: {sources['m1']}\n  kms_keys:\n{kms}"


def _local_storage(workdir: Path) -> str:
    return f"storage:\n  local:\n    root_dir: {workdir}/data/objects\n"


class PostgresDatabases:
    """Creates a fresh database per server on the PostgreSQL named by a URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def _admin(self):
        import psycopg
        plain = self.url.replace("postgresql+psycopg://", "postgresql://")
        return psycopg.connect(plain, autocommit=True)

    def create(self) -> str:
        name = "bleepstore_test_" + uuid.uuid4().hex[:12]
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base, _, _ = self.url.rpartition("/")
        url = f"{base}/{name}"
        return url if url.startswith("postgresql+psycopg://") else url.replace("postgresql://", "postgresql+psycopg://", 1)

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
