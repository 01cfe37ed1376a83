"""gunicorn settings and hooks for BleepStore (gevent workers).

Used by `bleepstore serve` (as ``python:bleepstore_app.gunicorn_conf``) and by the
top-level ``gunicorn.conf.py``. gevent patches the standard library before
anything imports ssl, socket or a database driver, so ``--preload`` stays safe.
"""
from gevent import monkey

monkey.patch_all()

import hashlib  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import gunicorn.http.wsgi  # noqa: E402

from bleepstore_app.config import ConfigError, load_settings  # noqa: E402

# gunicorn writes its own Server header; make it ours.
gunicorn.http.wsgi.SERVER = "BleepStore"

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f"bleepstore: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)


def _metrics_dir(settings) -> str:
    """Where prometheus_client's multiprocess files live: one fixed directory per
    server, emptied by every start (on_starting), so a kill -9 leaves nothing that
    piles up. Named after the server's database and bind address, so two servers
    on one host never share one: beside the SQLite database
    (``<database>-metrics-<id>``), else (PostgreSQL: no local data directory) in
    the temporary directory (``$TMPDIR/bleepstore-metrics-<uid>-<id>``)."""
    identity = f"{settings.database_url}|{settings.host}:{settings.port}"
    tag = hashlib.sha256(identity.encode()).hexdigest()[:12]
    if settings.metadata_engine == "sqlite" and settings.sqlite_path != ":memory:":
        return f"{os.path.abspath(settings.sqlite_path)}-metrics-{tag}"
    return os.path.join(tempfile.gettempdir(), f"bleepstore-metrics-{os.getuid()}-{tag}")


def _own_directory(path: str) -> str:
    """``path`` as a directory only this user can write: a fixed name in a shared
    temporary directory must not be one somebody else prepared."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        print(f"bleepstore: metrics directory {path} is not a directory owned and writable only by this user; "
              "remove it or set PROMETHEUS_MULTIPROC_DIR", file=sys.stderr)
        sys.exit(2)
    return path


# Prometheus multiprocess mode: the directory is named before any process imports
# prometheus_client (workers inherit it); an operator's PROMETHEUS_MULTIPROC_DIR wins.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_directory(_metrics_dir(_settings))

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = "bleepstore_app.worker.S3Worker"  # gevent pywsgi (see worker.py)
worker_connections = 1000
# Large uploads and downloads stream for minutes: gevent workers heartbeat while
# they do, so this timeout only catches a worker whose hub is stuck.
timeout = 120
graceful_timeout = 30
keepalive = 75
# S3 keys are up to 1024 UTF-8 bytes, percent-encoded three bytes each, plus
# presigned-URL query parameters: lift gunicorn's 4094-byte request-line limit.
limit_request_line = 0
limit_request_field_size = 16384
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = _settings.log_level


def on_starting(server):
    """Once per server start, in the master before any worker exists: an empty
    metrics directory, then recovery."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):  # a killed server's samples (kill -9 skips on_exit)
        os.unlink(os.path.join(directory, name))
    from bleepstore_app import configure_logging
    configure_logging(_settings)
    code = _recover_in_child()
    if code:
        sys.exit(code)


def _recover_in_child() -> int:
    """Run recovery in a child process and return its exit status (3: the schema is
    behind the code). The master never imports the metadata layer and Alembic (about
    40 MB it would hold for its whole life, and hand to every worker it forks)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from bleepstore_app.recovery import SchemaBehind, recover
            try:
                recover(_settings)
                code = 0
            except SchemaBehind as exc:
                print(f"bleepstore: {exc}", file=sys.stderr)
                code = 3
        except BaseException:  # noqa: BLE001 - reported here, the master only sees the status
            import traceback
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1


def post_worker_init(worker):
    """A worker has built the app and now takes requests: said once, so that an
    operator (and a test that needs every worker up) can tell."""
    worker.log.info("Worker %s serving", worker.pid)


def child_exit(server, worker):
    """A dead worker's live gauges must not be summed any more."""
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
