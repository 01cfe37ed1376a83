"""gunicorn settings and hooks for BleepStore (gevent workers).

Used by `bleepstore serve` (as ``python:bleepstore_app.gunicorn_conf``) and by the
top-level ``gunicorn.conf.py``. gevent patches the standard library before
anything imports ssl, socket or a database driver, so ``--preload`` stays safe.
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

# Prometheus multiprocess mode: a fresh directory per start, named before any
# process imports prometheus_client (workers inherit it).
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bleepstore-metrics-")

import gunicorn.http.wsgi  # noqa: E402

from bleepstore_app.config import ConfigError, load_settings  # noqa: E402

# gunicorn writes its own Server header; make it ours.
gunicorn.http.wsgi.SERVER = "BleepStore"

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f"bleepstore: configuration error: {exc}", file=sys.stderr)
    sys.exit(2)

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
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        os.unlink(os.path.join(metrics_dir, name))
    from bleepstore_app.recovery import SchemaBehind, recover
    from bleepstore_app import configure_logging
    configure_logging(_settings)
    try:
        recover(_settings)
    except SchemaBehind as exc:
        print(f"bleepstore: {exc}", file=sys.stderr)
        sys.exit(3)


def child_exit(server, worker):
    """A dead worker's live gauges must not be summed any more."""
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
