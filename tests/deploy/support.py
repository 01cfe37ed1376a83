"""Run the deployment pieces for real, as processes: the compose file's environment,
deploy/migrate.sh and deploy/entrypoint.sh against PostgreSQL, and nginx rendered
from deploy/nginx.conf (the production configuration) in front of several nodes.

PostgreSQL: $BLEEPSTORE_TEST_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres (trust auth); a fresh database
per test. nginx: /usr/sbin/nginx or $BLEEPSTORE_TEST_NGINX. A missing one FAILS the
test with the command that installs it.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

from ..servers import ACCESS_KEY, SECRET_KEY, PostgresDatabases, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
MIGRATE = DEPLOY / "migrate.sh"
NGINX_CONF = DEPLOY / "nginx.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent

PG_URL = os.environ.get("BLEEPSTORE_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NGINX = os.environ.get("BLEEPSTORE_TEST_NGINX", "/usr/sbin/nginx")
NGINX_HINT = "install it with: apt-get update && apt-get install -y nginx"
PG_HINT = ("start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres "
           "(apt-get install -y postgresql), or set BLEEPSTORE_TEST_DATABASE_URL")

# What an operator's .env would hold (docker-compose.yml requires these).
DOTENV = {"POSTGRES_PASSWORD": "not-used-by-the-tests",
          "BLEEPSTORE_ACCESS_KEY": ACCESS_KEY, "BLEEPSTORE_SECRET_KEY": SECRET_KEY}


# -- prerequisites --------------------------------------------------------------

def nginx_binary() -> str:
    path = NGINX if os.path.isabs(NGINX) else shutil.which(NGINX)
    if not path or not os.access(path, os.X_OK):
        path = shutil.which("nginx")
    if not path:
        pytest.fail(f"nginx is required but {NGINX} was not found; {NGINX_HINT}", pytrace=False)
    return path


def postgres_databases() -> PostgresDatabases:
    dbs = PostgresDatabases(PG_URL)
    try:
        with dbs._admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same verdict
        pytest.fail(f"PostgreSQL is required at {PG_URL} but is not reachable ({exc}); {PG_HINT}",
                    pytrace=False)
    return dbs


def psql_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# -- docker-compose.yml -----------------------------------------------------------

def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


_INTERPOLATION = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's variable interpolation: $$, ${V}, ${V:-default}, ${V-default}, ${V:?err}."""
    def sub(m: re.Match) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        val = variables.get(name)
        if op in (":-", "-"):
            return val if (val if op == ":-" else val is not None) else arg
        if op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                raise KeyError(f"compose: {name} is required: {arg}")
        return val or ""
    return _INTERPOLATION.sub(sub, value)


def service_environment(service: str, overrides: dict[str, str] | None = None,
                        dotenv: dict[str, str] | None = None) -> dict[str, str]:
    """The environment docker-compose.yml gives ``service``, interpolated with an
    operator's .env, then ``overrides`` (host-specific values: database URL,
    ports, data directory)."""
    env = load_compose()["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    values = dict(DOTENV if dotenv is None else dotenv)
    out = {k: interpolate(str(v), values) for k, v in env.items()}
    out.update(overrides or {})
    return out


def process_environ(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment (no BLEEPSTORE_* from the caller) with the venv on PATH,
    as the image has the project's commands on PATH."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("BLEEPSTORE_") and k not in ("PROMETHEUS_MULTIPROC_DIR", "FLASK_APP")}
    base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '/usr/bin:/bin')}"
    base.update(extra)
    return base


def node_environment(database_url: str, root_dir: Path, port: int = 0, **more: str) -> dict[str, str]:
    """The bleepstore service's compose environment, pointed at this host's resources."""
    env = service_environment("bleepstore", {
        "BLEEPSTORE_METADATA_POSTGRESQL_URL": database_url,
        "BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR": str(root_dir),
        "BLEEPSTORE_SERVER_HOST": "127.0.0.1",
        "BLEEPSTORE_SERVER_PORT": str(port or free_port()),
    })
    env.update(more)
    return process_environ(env)


def run_migrate(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(MIGRATE)], env=env, cwd="/", capture_output=True, text=True, timeout=timeout)


# -- a node: deploy/entrypoint.sh as a process --------------------------------------

@dataclass
class Node:
    """One BleepStore server started the way the container starts it."""
    name: str
    env: dict
    workdir: Path
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def port(self) -> int:
        return int(self.env["BLEEPSTORE_SERVER_PORT"])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> subprocess.Popen:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(ENTRYPOINT)], cwd="/", env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self.proc

    def start(self, timeout: float = 60.0) -> "Node":
        self.spawn()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.endpoint + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        """gunicorn's quick shutdown (SIGINT): the tests do not wait for idle
        keep-alive connections to close, as a graceful SIGTERM would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """kill -9 master and workers at once."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid)


# -- nginx from deploy/nginx.conf ----------------------------------------------------

PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z0-9_]+)\}")


def render_nginx_conf(values: dict[str, str], template: str | None = None) -> str:
    """envsubst restricted to the ${NGINX_*} placeholders, as the nginx image does."""
    text = NGINX_CONF.read_text() if template is None else template
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"deploy/nginx.conf needs values for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def make_certificate(directory: Path, names: tuple[str, ...]) -> tuple[Path, Path]:
    """A self-signed certificate (openssl CLI) for ``names``; returns (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is required; install it with: apt-get install -y openssl", pytrace=False)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    san = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                    "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class Nginx:
    """deploy/nginx.conf rendered for this host and run as a foreground process."""
    workdir: Path
    upstreams: list[str]
    server_names: str = "s3.localhost *.s3.localhost localhost"
    http_port: int = 0
    https_port: int = 0
    proc: subprocess.Popen | None = None

    def values(self) -> dict[str, str]:
        return {
            "NGINX_UPSTREAM_SERVERS": " ".join(f"server {u};" for u in self.upstreams),
            "NGINX_SERVER_NAMES": self.server_names,
            "NGINX_HTTP_PORT": f"127.0.0.1:{self.http_port}",
            "NGINX_HTTPS_PORT": f"127.0.0.1:{self.https_port}",
            "NGINX_TLS_CERTIFICATE": str(self.cert),
            "NGINX_TLS_CERTIFICATE_KEY": str(self.key),
            "NGINX_STATE_DIR": str(self.state_dir),
        }

    def prepare(self) -> Path:
        self.binary = nginx_binary()
        self.state_dir = self.workdir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = make_certificate(self.workdir / "tls", ("s3.localhost", "*.s3.localhost",
                                                                      "localhost", "127.0.0.1"))
        self.http_port = self.http_port or free_port()
        self.https_port = self.https_port or free_port()
        self.conf = self.workdir / "nginx.conf"
        self.conf.write_text(render_nginx_conf(self.values()))
        return self.conf

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.state_dir), "-c", str(self.conf), "-e", "stderr",
                "-g", "daemon off;", *extra]

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self, timeout: float = 15.0) -> "Nginx":
        self.prepare()
        self.log_path = self.workdir / "nginx.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {timeout}s:\n{self.log()}")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tls_endpoint(self) -> str:
        return f"https://localhost:{self.https_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def worker_pids(self) -> list[int]:
        return child_pids(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)


# -- storage and database bookkeeping --------------------------------------------------

def blob_files(root_dir: Path) -> set[str]:
    data = root_dir / "data"
    return {p.name for p in data.glob("*/*/*") if p.is_file()} if data.exists() else set()


def temp_files(root_dir: Path) -> list[str]:
    tmp = root_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def referenced_locations(database_url: str) -> set[str]:
    import psycopg
    with psycopg.connect(psql_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT data_location FROM objects WHERE NOT data_inline AND NOT delete_marker"
            " UNION SELECT data_location FROM object_versions WHERE NOT data_inline AND NOT delete_marker"
            " UNION SELECT data_location FROM object_parts"
            " UNION SELECT data_location FROM multipart_parts").fetchall()
    return {r[0] for r in rows}


def leaked_blobs(root_dir: Path, database_url: str, settle: float = 10.0) -> set[str]:
    """Blob files no object or part row points at, after letting the sweeper delete
    what writes unlinked (the cluster's nodes sweep every second)."""
    deadline = time.monotonic() + settle
    while True:
        leaked = blob_files(root_dir) - referenced_locations(database_url)
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.2)


# -- processes ---------------------------------------------------------------------

def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def proc_status_kib(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (root, Linux >= 4.0); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
