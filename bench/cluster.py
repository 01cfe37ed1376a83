"""``--nodes N``: N BleepStore nodes on one PostgreSQL database behind nginx, on this host.

Started the way the deployment starts them (docker-compose.yml, deploy/): a fresh
database on the local PostgreSQL, ``deploy/migrate.sh`` once, then
``deploy/entrypoint.sh`` (gunicorn) per node with migrations off, all nodes on one
shared data directory, and nginx from ``deploy/nginx.conf`` (the production
configuration, round-robin) in front. The harness measures through nginx.

``ClusterSampler`` replaces ``ProcessSampler``: it watches every node's process
tree, nginx's tree and the PostgreSQL processes serving the database, plus the
machine's CPU and disk counters, so the report can say where a run saturates.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .report import Section
from .server import (CLK_TCK, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, REPO, Target, Window, _cpu_ticks,
                     free_port, process_tree, tree_cpu_seconds, tree_rss_bytes, wait_ready)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEPLOY = REPO / "deploy"
NGINX_CONF = DEPLOY / "nginx.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "nginx")
PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z0-9_]+)\}")
CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")   # "127.0.0.1(35034)" in a client backend's title


# --------------------------------------------------------------------------- PostgreSQL

def _plain(url: str) -> str:
    """psycopg wants postgresql://, SQLAlchemy's URL names the driver."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Database:
    """A fresh database on the server named by ``admin_url``, dropped at the end."""
    admin_url: str
    name: str = field(default_factory=lambda: "bleepstore_bench_" + uuid.uuid4().hex[:12])
    created: bool = False

    def admin(self):
        import psycopg
        return psycopg.connect(_plain(self.admin_url), autocommit=True, connect_timeout=10)

    @property
    def url(self) -> str:
        """The admin URL with this database's name as its path (SQLAlchemy form, for the nodes)."""
        parts = urlsplit(self.admin_url)
        url = urlunsplit(parts._replace(path="/" + self.name))
        return url if url.startswith("postgresql+psycopg://") else url.replace("postgresql://",
                                                                                 "postgresql+psycopg://", 1)

    def create(self) -> "Database":
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self

    def drop(self) -> None:
        if self.created:
            with self.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def describe(self) -> str:
        """Version and the settings that decide what a commit costs."""
        names = ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers", "max_connections")
        with self.admin() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            rows = dict(conn.execute("SELECT name, setting || coalesce(unit, '') FROM pg_settings "
                                     "WHERE name = ANY(%s)", [list(names)]).fetchall())
        return f"PostgreSQL {version}: " + ", ".join(f"{n}={rows.get(n, '?')}" for n in names)

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid when the server runs on this host (parent of our own backend), else None."""
        try:
            with self.admin() as conn:  # read /proc while the backend lives: it exits on close
                backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                with open(f"/proc/{backend}/status") as f:
                    ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
            with open(f"/proc/{ppid}/comm") as f:
                return ppid if f.read().strip().startswith("postgres") else None
        except Exception:  # noqa: BLE001 - a remote or hidden server: no pids, PostgreSQL CPU n/a
            return None

    def data_directory(self) -> str | None:
        try:
            with self.admin() as conn:
                return conn.execute("SHOW data_directory").fetchone()[0]
        except Exception:  # noqa: BLE001 - needs a superuser; only used to find the disk
            return None


# --------------------------------------------------------------------------- processes

def venv_environ(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment (no BLEEPSTORE_* from the caller) with this venv on PATH, as the
    image has the project's commands (gunicorn, flask) on PATH for deploy/entrypoint.sh."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BLEEPSTORE_") and k not in ("PROMETHEUS_MULTIPROC_DIR", "FLASK_APP")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(extra)
    return env


def stop_group(proc: subprocess.Popen | None, sig: int, timeout: float = 20) -> None:
    """Signal the process group we started; SIGKILL it if it lingers."""
    if not proc or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    except ProcessLookupError:
        pass


def tail(path: Path, chars: int) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Node:
    """One BleepStore node: ``deploy/entrypoint.sh`` (exec gunicorn) as a process group."""
    name: str
    env: dict
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return int(self.env["BLEEPSTORE_SERVER_PORT"])

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(DEPLOY / "entrypoint.sh")], cwd="/", env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        """Poll /readyz (database reachable, storage writable) every 50 ms."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log_path, 3000)}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout:.0f} s:\n{tail(self.log_path, 3000)}")

    def stop(self) -> None:
        """gunicorn's quick shutdown (SIGINT): nothing is in flight any more, and a graceful
        SIGTERM would wait for nginx's idle keep-alive connections."""
        stop_group(self.proc, signal.SIGINT)


def render_nginx_conf(values: dict[str, str]) -> str:
    """envsubst restricted to the ${NGINX_*} placeholders, as the nginx image does, so
    nginx's own $variables stay."""
    text = NGINX_CONF.read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"deploy/nginx.conf needs values for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def nginx_binary() -> str:
    for candidate in NGINX_CANDIDATES:
        found = candidate if os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    raise SystemExit("bench: --nodes needs nginx; install it with: apt-get update && apt-get install -y nginx")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """deploy/nginx.conf always listens for TLS too, so it needs a certificate (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("bench: --nodes needs the openssl CLI for nginx's TLS listener: apt-get install -y openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class Nginx:
    """deploy/nginx.conf rendered for this host, run in the foreground as its own process group."""
    workdir: Path
    upstreams: list[str]
    http_port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "nginx.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 15.0) -> None:
        binary = nginx_binary()
        state = self.workdir / "state"
        state.mkdir(parents=True, exist_ok=True)
        cert, key = self_signed_certificate(self.workdir / "tls")
        self.http_port = self.http_port or free_port()
        conf = self.workdir / "nginx.conf"
        conf.write_text(render_nginx_conf({
            "NGINX_UPSTREAM_SERVERS": " ".join(f"server {u};" for u in self.upstreams),
            "NGINX_SERVER_NAMES": "s3.localhost *.s3.localhost localhost",
            "NGINX_HTTP_PORT": f"127.0.0.1:{self.http_port}",
            "NGINX_HTTPS_PORT": f"127.0.0.1:{free_port()}",
            "NGINX_TLS_CERTIFICATE": str(cert), "NGINX_TLS_CERTIFICATE_KEY": str(key),
            "NGINX_STATE_DIR": str(state)}))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([binary, "-p", str(state), "-c", str(conf), "-e", "stderr",
                                          "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{tail(self.log_path, 3000)}")
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen within {timeout:.0f} s:\n{tail(self.log_path, 3000)}")

    def stop(self) -> None:
        """SIGQUIT: nginx's graceful stop, which closes its idle upstream connections."""
        stop_group(self.proc, signal.SIGQUIT, timeout=15)


# --------------------------------------------------------------------------- the cluster

@dataclass
class Cluster:
    """N nodes + nginx + a fresh PostgreSQL database, in one temporary work directory."""
    nodes: int
    workers: int = 2
    database_url: str = DEFAULT_DATABASE_URL
    parent_dir: str | None = None
    workdir: Path = field(init=False)
    database: Database = field(init=False)
    members: list[Node] = field(default_factory=list)
    nginx: Nginx | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="bleepstore-bench-cluster-", dir=self.parent_dir))
        self.database = Database(self.database_url)

    @property
    def data_dir(self) -> Path:
        """The one data directory every node stores objects in (a shared volume in production)."""
        return self.workdir / "objects"

    def env(self, **more: str) -> dict[str, str]:
        """What docker-compose.yml gives every node, pointed at this host; credentials and log
        level as for the embedded server."""
        return venv_environ({
            "BLEEPSTORE_METADATA_ENGINE": "postgresql",
            "BLEEPSTORE_METADATA_POSTGRESQL_URL": self.database.url,
            "BLEEPSTORE_METADATA_MIGRATE_ON_START": "false",
            "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(self.data_dir),
            "BLEEPSTORE_STORAGE_LOCAL_FSYNC": "true",
            "BLEEPSTORE_SERVER_HOST": "127.0.0.1",
            "BLEEPSTORE_SERVER_WORKERS": str(self.workers),
            "BLEEPSTORE_SERVER_LOG_LEVEL": "warning",
            "BLEEPSTORE_AUTH_ACCESS_KEY": DEFAULT_ACCESS_KEY,
            "BLEEPSTORE_AUTH_SECRET_KEY": DEFAULT_SECRET_KEY,
            "FORWARDED_ALLOW_IPS": "*",
            **more})

    def start(self, timeout: float = 120.0) -> "Cluster":
        """Database, migration, nodes (started together, then awaited), nginx, first signed request."""
        began = time.monotonic()
        try:
            self.database.create()
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same verdict
            raise RuntimeError(f"cannot create a database at {self.database_url} ({exc}); start PostgreSQL "
                               "(trust auth for user postgres) or pass --database-url") from None
        self.data_dir.mkdir(parents=True)
        t = time.monotonic()
        migrate = subprocess.run([str(DEPLOY / "migrate.sh")], env=self.env(), cwd="/", capture_output=True,
                                 text=True, timeout=300)
        if migrate.returncode != 0:
            raise RuntimeError(f"deploy/migrate.sh failed:\n{migrate.stdout}{migrate.stderr}")
        self.timings["migrate"] = time.monotonic() - t
        t = time.monotonic()
        for i in range(self.nodes):
            node = Node(f"node{i + 1}", self.env(BLEEPSTORE_SERVER_PORT=str(free_port())),
                        self.workdir / f"node{i + 1}.log")
            self.members.append(node)
            node.spawn()
        for node in self.members:
            node.wait_ready(timeout)
        self.timings["nodes ready"] = time.monotonic() - t
        self.nginx = Nginx(self.workdir / "nginx", [f"127.0.0.1:{n.port}" for n in self.members])
        self.nginx.workdir.mkdir()
        self.nginx.start()
        wait_ready(self.target, timeout, alive=lambda: self.nginx.proc.poll() is None)
        self.timings["total"] = time.monotonic() - began
        return self

    @property
    def target(self) -> Target:
        return Target(self.nginx.endpoint, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)

    def describe(self) -> list[tuple[str, str]]:
        """Header lines for the report's "Server under test"."""
        nginx_v = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.strip()
        return [
            ("nodes", f"{self.nodes} × `deploy/entrypoint.sh` (gunicorn, {self.workers} gevent workers each), "
                      "127.0.0.1, migrations off (BLEEPSTORE_METADATA_MIGRATE_ON_START=false)"),
            ("load balancer", f"{nginx_v.split(':', 1)[-1].strip()} from `deploy/nginx.conf` (round-robin, "
                              "keep-alive upstreams, worker_processes auto, access log on); the harness "
                              f"measures through it ({self.nginx.endpoint})"),
            ("metadata", f"{self.database.describe()}; fresh database `{self.database.name}` "
                         "(deploy/migrate.sh once), dropped at the end"),
            ("storage", "one shared local data directory, fsync on; objects up to 16 KiB inlined in the "
                        "metadata"),
            ("data dir", f"fresh temporary directory `{self.data_dir}`"),
            ("start-up of this cluster", ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items())),
            ("sampled", "server CPU s below = all nodes' process trees + nginx + PostgreSQL (split in the "
                        "\"where the time went\" tables); server peak RSS = nodes + nginx"),
        ]

    def log_tail(self, chars: int = 4000) -> str:
        parts = [f"--- {n.name} ---\n{tail(n.log_path, chars)}" for n in self.members]
        if self.nginx:
            parts.append(f"--- nginx (access log and errors) ---\n{tail(self.nginx.log_path, chars)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """nginx first (so no request lands on a stopping node), then every node."""
        if self.nginx:
            self.nginx.stop()
        for node in self.members:
            node.stop()

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            try:
                self.database.drop()
            finally:
                shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------- sampling

def machine_ticks() -> dict[str, int]:
    """/proc/stat's first line: busy (user+nice+system+irq+softirq), idle, iowait, steal jiffies."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return {"busy": v[0] + v[1] + v[2] + v[5] + v[6], "idle": v[3], "iowait": v[4], "steal": v[7]}


def block_device(path: str) -> str | None:
    """The /proc/diskstats name of the device holding ``path`` (partition or whole disk)."""
    try:
        dev = os.stat(path).st_dev
        return Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve().name
    except OSError:
        return None


def disk_busy_ms(devices: list[str]) -> dict[str, int]:
    """Milliseconds each device spent with I/O in flight (diskstats field 13, io_ticks)."""
    out = {}
    with open("/proc/diskstats") as f:
        for line in f:
            parts = line.split()
            if parts[2] in devices:
                out[parts[2]] = int(parts[12])
    return out


class PidTicks:
    """CPU ticks of a changing set of processes (PostgreSQL backends come and go).

    Remembers the last reading of every pid it has seen, so a process that exits
    between samples still counts up to its last sample (within 100 ms)."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.gone = 0

    def update(self, pids: list[int]) -> None:
        now = {}
        for pid in pids:
            try:
                now[pid] = _cpu_ticks(pid, with_children=False)
            except OSError:
                pass
        self.gone += sum(t for pid, t in self.last.items() if pid not in now)
        self.last = now

    @property
    def total(self) -> int:
        return self.gone + sum(self.last.values())


class CpuSeconds(float):
    """A window's server CPU seconds that also carries the breakdown behind it.

    The scenarios copy ``Window.cpu_seconds`` into each report row as a number; as
    a float subclass the per-component figures ride along to ``cpu_section``
    without changing the scenarios or the row type."""
    parts: dict[str, float | None]
    wall: float
    machine: dict[str, float]
    disks: dict[str, float]
    pg: dict[str, float]

    def __new__(cls, parts: dict[str, float | None], **extra) -> "CpuSeconds":
        self = super().__new__(cls, sum(v for v in parts.values() if v is not None))
        self.parts = parts
        for name, value in extra.items():
            setattr(self, name, value)
        return self


class ClusterSampler:
    """``ProcessSampler``'s interface over a whole cluster.

    Every 100 ms: peak RSS over the node trees and nginx (PostgreSQL left out: its
    shared buffers would count once per backend), the PostgreSQL processes' CPU,
    and how many of our database's backends are running a statement, waiting inside
    one (WAL flush, I/O, a lock) or idle in a transaction (waiting for a node):
    PostgreSQL is the bottleneck only if the first two dominate. ``end()`` returns a ``Window`` whose ``cpu_seconds``
    is a ``CpuSeconds``: nodes + nginx + PostgreSQL, with each part, the machine's
    busy/iowait/idle time, the disks' busy time and PostgreSQL's counters.
    """

    def __init__(self, cluster: Cluster, interval: float = 0.1) -> None:
        self.cluster, self.interval = cluster, interval
        self.postmaster = cluster.database.postmaster_pid()
        dirs = [str(cluster.data_dir)] + [d for d in [cluster.database.data_directory()] if d]
        self.devices = sorted({d for d in map(block_device, dirs) if d})
        self.pg = PidTicks()
        self._peak = 0
        self._start: dict = {}
        self._stats_conn = self._activity_conn = None
        self._activity = [0, 0, 0, 0]       # samples; backends running, waiting, idle in transaction
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def roots(self) -> dict[str, list[int]]:
        c = self.cluster
        return {"nodes": [n.proc.pid for n in c.members if n.proc],
                "nginx": [c.nginx.proc.pid] if c.nginx and c.nginx.proc else []}

    def postgres_pids(self) -> list[int]:
        """The postmaster's children that serve our database or the whole server (walwriter,
        checkpointer, ...); other databases' client backends are someone else's load."""
        if self.postmaster is None:
            return []
        found = []
        for pid in process_tree(self.postmaster)[1:]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if self.cluster.database.name in title.split() or not CLIENT_BACKEND.search(title):
                found.append(pid)
        return found

    def _sample(self) -> None:
        rss = sum(tree_rss_bytes(pid) for pids in self.roots().values() for pid in pids)
        pg_pids = self.postgres_pids()
        active = self._pg_activity()
        with self._lock:
            self._peak = max(self._peak, rss)
            self.pg.update(pg_pids)
            if active:
                self._activity = [a + b for a, b in zip(self._activity, (1, *active))]

    def _pg_activity(self) -> tuple[int, int, int] | None:
        """Our database's backends (running a statement on the CPU, waiting inside one on I/O or a
        lock, idle in a transaction the client has not finished), from pg_stat_activity."""
        try:
            if self._activity_conn is None:
                self._activity_conn = self.cluster.database.admin()
            return self._activity_conn.execute(
                "SELECT count(*) FILTER (WHERE state = 'active' AND wait_event IS NULL), "
                "count(*) FILTER (WHERE state = 'active' AND wait_event IS NOT NULL), "
                "count(*) FILTER (WHERE state LIKE 'idle in transaction%%') FROM pg_stat_activity "
                "WHERE datname = %s AND backend_type = 'client backend'",
                [self.cluster.database.name]).fetchone()
        except Exception:  # noqa: BLE001 - a nicety; n/a when unavailable
            return None

    def _pg_stats(self) -> dict[str, float]:
        """Commits in our database and WAL syncs server-wide (statistics lag up to ~1 s)."""
        try:
            if self._stats_conn is None:
                self._stats_conn = self.cluster.database.admin()
            row = self._stats_conn.execute(
                "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = %s), "
                "(SELECT wal_sync FROM pg_stat_wal)", [self.cluster.database.name]).fetchone()
            return {"commits": float(row[0] or 0), "wal_syncs": float(row[1] or 0)}
        except Exception:  # noqa: BLE001 - statistics are a nicety; n/a when unavailable
            return {}

    def _snapshot(self) -> dict:
        roots = self.roots()
        return {"time": time.monotonic(),
                "nodes": sum(tree_cpu_seconds(p) for p in roots["nodes"]),
                "nginx": sum(tree_cpu_seconds(p) for p in roots["nginx"]),
                "postgres": self.pg.total / CLK_TCK,
                "machine": machine_ticks(), "disks": disk_busy_ms(self.devices), "pg": self._pg_stats()}

    def begin(self) -> None:
        with self._lock:
            self._peak = 0
            self._activity = [0, 0, 0, 0]
        self._sample()
        with self._lock:
            self._start = self._snapshot()

    def end(self) -> Window:
        self._sample()
        with self._lock:
            a, b = self._start, self._snapshot()
            peak, (n, *states) = self._peak, self._activity
        wall = b["time"] - a["time"]
        parts = {"nodes": b["nodes"] - a["nodes"], "nginx": b["nginx"] - a["nginx"],
                 "postgres": b["postgres"] - a["postgres"] if self.postmaster else None}
        machine = {k: (b["machine"][k] - a["machine"][k]) / CLK_TCK for k in a["machine"]}
        disks = {d: (b["disks"][d] - a["disks"].get(d, 0)) / 1000 for d in b["disks"]}
        pg = {k: (b["pg"][k] - a["pg"][k]) / wall for k in b["pg"] if k in a["pg"]}
        if n:
            pg.update(zip(("running", "waiting", "idle_in_tx"), (v / n for v in states)))
        return Window(cpu_seconds=CpuSeconds(parts, wall=wall, machine=machine, disks=disks, pg=pg),
                      peak_rss=peak)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        for conn in (self._stats_conn, self._activity_conn):
            if conn is not None:
                conn.close()


# --------------------------------------------------------------------------- report

def _cores(seconds: float | None, wall: float, ncpu: int) -> str:
    if seconds is None or wall <= 0:
        return "n/a"
    cores = seconds / wall
    return f"{cores:.2f} ({100 * cores / ncpu:.0f}%)"


def cpu_section(section: Section) -> Section | None:
    """"Where the time went" for a scenario run against a cluster: one line per table row
    (its median repeat), CPU in cores used (and % of the machine), disk busy %, and
    PostgreSQL's committed transactions (this database) and WAL syncs (server-wide) per second."""
    rows = [r for r in section.rows if isinstance(r.server_cpu_s, CpuSeconds)]
    if not rows:
        return None
    ncpu = os.cpu_count() or 1
    devices = sorted({d for r in rows for d in r.server_cpu_s.disks})
    disk_cols = "".join(f" disk {d} busy |" for d in devices)
    out = Section(f"{section.title}: where the time went")
    out.text += [
        f"CPU in cores used during the measured run (and share of all {ncpu} cores). BleepStore = every "
        "node's gunicorn master and workers; PostgreSQL = the backends of this benchmark's database plus "
        "the server-wide background processes (walwriter, checkpointer; shared with anything else using "
        "the server); load generator = wrk or bench.headload; rest = the machine's busy time minus "
        "those (the harness itself and any other process on the machine). iowait, steal (CPU time the "
        "hypervisor gave to other guests) and idle are from /proc/stat; disk busy is the share of the run with I/O in flight on the device "
        "(/proc/diskstats). PG xacts/s = transactions committed in this database (reads too), WAL "
        "syncs/s = WAL flushes of the whole server (pg_stat_wal); both from statistics that lag by up "
        "to ~1 s. PG backends = the average number of this database's backends, sampled every 100 ms "
        "from pg_stat_activity, that are running a statement on a CPU / waiting inside one (WAL flush, "
        "I/O, a lock) / idle in a transaction, i.e. waiting for BleepStore to send the next statement "
        "or the commit. PostgreSQL is the limit when the first two dominate; the third means the "
        "nodes are.", "",
        f"| op | size | conc | {section.unit} | BleepStore | nginx | PostgreSQL | load generator | rest "
        f"| iowait | steal | idle |{disk_cols} PG xacts/s | WAL syncs/s | PG backends running / waiting / idle in tx |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|" + "--:|" * len(devices) + "--:|--:|--:|"]
    for r in rows:
        c = r.server_cpu_s
        known = sum(v for v in c.parts.values() if v is not None) + (r.client_cpu_s or 0)
        rest = max(0.0, c.machine["busy"] - known)
        disks = "".join(f" {100 * c.disks.get(d, 0) / c.wall:.0f}% |" for d in devices)
        rate = lambda k: f"{c.pg[k]:,.0f}" if k in c.pg else "n/a"  # noqa: E731
        backends = (f"{c.pg['running']:.1f} / {c.pg['waiting']:.1f} / {c.pg['idle_in_tx']:.1f}"
                    if "running" in c.pg else "n/a")
        out.text.append(
            f"| {r.op} | {r.size} | {r.conc} | {r.median:,.0f} | {_cores(c.parts['nodes'], c.wall, ncpu)} "
            f"| {_cores(c.parts['nginx'], c.wall, ncpu)} | {_cores(c.parts['postgres'], c.wall, ncpu)} "
            f"| {_cores(r.client_cpu_s, c.wall, ncpu)} | {_cores(rest, c.wall, ncpu)} "
            f"| {_cores(c.machine['iowait'], c.wall, ncpu)} | {_cores(c.machine['steal'], c.wall, ncpu)} "
            f"| {_cores(c.machine['idle'], c.wall, ncpu)} "
            f"|{disks} {rate('commits')} | {rate('wal_syncs')} | {backends} |")
    return out
