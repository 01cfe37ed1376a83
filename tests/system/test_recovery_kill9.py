"""kill -9 of the master while its recovery child runs.

Start-up recovery runs in a child the gunicorn master forks (gunicorn_conf.py).
Killed with the master, that child is left on its own: it must finish (or die)
without harm, and the next start, which recovers again, must serve every
acknowledged object, with the orphans gone.

The orphan sweep is made long (tens of thousands of old orphan blobs) so the
kill lands inside recovery; the test checks that it did.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
import uuid

import pytest

from ..conftest import ENGINES, make_client
from ..servers import BLEEPSTORE, Server, write_config

pytestmark = [pytest.mark.slow]

ORPHANS = 40_000


@pytest.fixture(params=ENGINES)
def workdir_and_env(tmp_path, pg_databases, request):
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(tmp_path, url)
    return tmp_path, dict(os.environ, BLEEPSTORE_CONFIG=str(config))


def _children(pid: int) -> list[int]:
    try:
        text = open(f"/proc/{pid}/task/{pid}/children").read()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _left(orphan_dir, names: set[str]) -> int:
    return len(names.intersection(os.listdir(orphan_dir)))


def test_kill_9_of_the_master_during_recovery(workdir_and_env):
    workdir, env = workdir_and_env
    srv = Server(workdir, env).start()
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="kept")
    bodies = {"inline": os.urandom(1000), "blob": os.urandom(300_000)}
    for key, body in bodies.items():
        s3.put_object(Bucket="kept", Key=key, Body=body)
    srv.kill()

    # Old orphan blobs under data/ff/ff/ (no row points at them): recovery removes them.
    orphan_dir = workdir / "data" / "objects" / "data" / "ff" / "ff"
    orphan_dir.mkdir(parents=True, exist_ok=True)
    old = time.time() - 7 * 86400
    names = {"ffff" + uuid.uuid4().hex[4:] for _ in range(ORPHANS)}
    for name in names:
        path = orphan_dir / name
        path.write_bytes(b"o")
        os.utime(path, (old, old))

    log = open(workdir / "server.log", "ab")
    port = str(srv.port)
    master = subprocess.Popen([BLEEPSTORE, "serve"], cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(srv.env, BLEEPSTORE_SERVER_PORT=port, BLEEPSTORE_SERVER_HOST="127.0.0.1"),
                              start_new_session=True)
    deadline = time.monotonic() + 30
    child = None
    while child is None and time.monotonic() < deadline and master.poll() is None:
        kids = _children(master.pid)
        child = kids[0] if kids else None
        time.sleep(0.002)
    assert child is not None, "the master forked no recovery child"
    # Let the child get into its work, then kill only the master.
    while _left(orphan_dir, names) == ORPHANS and _alive(child) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(master.pid, signal.SIGKILL)
    master.wait(10)
    left_at_kill = _left(orphan_dir, names)
    assert _alive(child), "recovery had already ended: the kill did not land inside it"
    assert 0 < left_at_kill < ORPHANS, left_at_kill
    assert _children(master.pid) == []

    # The orphaned child finishes on its own (it is nobody's worker: it must not
    # go on serving or linger).
    deadline = time.monotonic() + 120
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the recovery child outlived its master by two minutes"

    # The next start recovers again and serves everything acknowledged.
    srv.start(timeout=120)
    s3 = make_client(srv.endpoint)
    for key, body in bodies.items():
        got = s3.get_object(Bucket="kept", Key=key)
        data = got["Body"].read()
        assert data == body, key
        assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert _left(orphan_dir, names) == 0
    s3.put_object(Bucket="kept", Key="after", Body=b"fine")
    assert s3.get_object(Bucket="kept", Key="after")["Body"].read() == b"fine"
    srv.stop()
