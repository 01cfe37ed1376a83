"""The server under test: start an embedded BleepStore, or describe a foreign one.

Also home of ``ProcessSampler``, which watches a server's process tree (the
gunicorn master and its workers) and tells how much CPU it used and how much
memory it held during a measured window.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY = "bleepstore", "bleepstore-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Target:
    """Where the S3 server is and how to sign for it."""
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    pid: int | None = None          # server process whose tree we sample; None = unknown

    def client(self):
        """A boto3 S3 client (path-style addressing) for setup work and presigning."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1}, max_pool_connections=32))

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.endpoint)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bleepstore_command() -> str:
    """The ``bleepstore`` script next to this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / "bleepstore"
    found = str(local) if local.exists() else shutil.which("bleepstore")
    if not found:
        raise SystemExit("bench: cannot find the `bleepstore` command; run with the project's venv "
                         "(.venv/bin/python -m bench) or pass --endpoint")
    return found


@dataclass
class EmbeddedServer:
    """``bleepstore serve`` on a fresh temporary data directory (SQLite, local disk, fsync on)."""
    workers: int = 2
    parent_dir: str | None = None
    workdir: Path = field(init=False)
    port: int = 0
    proc: subprocess.Popen | None = None
    startup_seconds: float | None = None

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="bleepstore-bench-", dir=self.parent_dir))

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLEEPSTORE_")}
        env.update({
            "BLEEPSTORE_SERVER_HOST": "127.0.0.1",
            "BLEEPSTORE_SERVER_PORT": str(self.port),
            "BLEEPSTORE_SERVER_WORKERS": str(self.workers),
            "BLEEPSTORE_SERVER_LOG_LEVEL": "warning",
            "BLEEPSTORE_AUTH_ACCESS_KEY": DEFAULT_ACCESS_KEY,
            "BLEEPSTORE_AUTH_SECRET_KEY": DEFAULT_SECRET_KEY,
            "BLEEPSTORE_METADATA_ENGINE": "sqlite",
            "BLEEPSTORE_METADATA_SQLITE_PATH": str(self.data_dir / "metadata.db"),
            "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(self.data_dir / "objects"),
            "BLEEPSTORE_STORAGE_LOCAL_FSYNC": "true",
        })
        return env

    @property
    def command(self) -> list[str]:
        return [bleepstore_command(), "serve"]

    @property
    def target(self) -> Target:
        return Target(f"http://127.0.0.1:{self.port}", DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY,
                      pid=self.proc.pid if self.proc else None)

    def start(self, timeout: float = 60.0) -> "EmbeddedServer":
        """Start and wait for the first successful signed request; records ``startup_seconds``."""
        self.port = self.port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        began = time.monotonic()
        self.proc = subprocess.Popen(self.command, cwd=self.workdir, env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            wait_ready(self.target, timeout, alive=lambda: self.proc.poll() is None)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n--- server log ---\n{self.log_tail()}") from None
        self.startup_seconds = time.monotonic() - began
        return self

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group (master and workers); SIGKILL if it lingers."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_ready(target: Target, timeout: float, alive=lambda: True) -> None:
    """Poll a presigned ListBuckets (GET /) every 10 ms until it answers 200."""
    url = target.client().generate_presigned_url("list_buckets", ExpiresIn=3600)
    parts = urlsplit(url)
    path = parts.path + "?" + parts.query
    host, port = target.host_port
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("server exited during start-up")
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return
            last = f"HTTP {resp.status}: {body[:300]!r}"
        except OSError as exc:
            last = repr(exc)
        finally:
            conn.close()
        time.sleep(0.01)
    raise RuntimeError(f"server at {target.endpoint} not ready within {timeout}s (last: {last})")


# --------------------------------------------------------------------------- sampling

def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def _cpu_ticks(pid: int, with_children: bool) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3): utime=14, stime=15, cutime=16, cstime=17
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_cpu_seconds(root: int) -> float:
    """utime+stime summed over the tree, plus the root's reaped children (dead workers)."""
    total = 0
    for pid in process_tree(root):
        try:
            total += _cpu_ticks(pid, with_children=(pid == root))
        except OSError:
            pass
    return total / CLK_TCK


def tree_rss_bytes(root: int, include_root: bool = True) -> int:
    """VmRSS summed over the tree (shared pages of forked workers count once per process);
    without the root itself: the gunicorn workers (and anything they started)."""
    total = 0
    for pid in process_tree(root):
        if pid == root and not include_root:
            continue
        try:
            total += _rss_bytes(pid)
        except OSError:
            pass
    return total


def workers_cpu_seconds(root: int) -> float:
    """utime+stime of the root's children's trees (the workers), without the master."""
    total = 0
    for pid in process_tree(root):
        if pid != root:
            try:
                total += _cpu_ticks(pid, with_children=False)
            except OSError:
                pass
    return total / CLK_TCK


@dataclass
class Window:
    """What the server used between ``ProcessSampler.begin()`` and ``end()``."""
    cpu_seconds: float | None = None
    peak_rss: int | None = None


class ProcessSampler:
    """Samples a process tree's RSS every ``interval`` seconds in a background thread.

    ``begin()`` opens a measuring window (CPU reading taken now, peak RSS reset);
    ``end()`` closes it and returns a ``Window``. With ``pid=None`` every figure is None.
    ``workers_only``: RSS and CPU of the master's descendants (the workers), not the master.
    """

    def __init__(self, pid: int | None, interval: float = 0.1, workers_only: bool = False) -> None:
        self.pid, self.interval, self.workers_only = pid, interval, workers_only
        self._peak = 0
        self._cpu0 = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if pid is not None:
            self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        rss = tree_rss_bytes(self.pid, include_root=not self.workers_only)
        with self._lock:
            self._peak = max(self._peak, rss)

    def begin(self) -> None:
        if self.pid is None:
            return
        with self._lock:
            self._peak = 0
        self._sample()
        self._cpu0 = self._cpu()

    def _cpu(self) -> float:
        return workers_cpu_seconds(self.pid) if self.workers_only else tree_cpu_seconds(self.pid)

    def end(self) -> Window:
        if self.pid is None:
            return Window()
        cpu = self._cpu() - self._cpu0
        self._sample()
        with self._lock:
            return Window(cpu_seconds=cpu, peak_rss=self._peak)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(1)
