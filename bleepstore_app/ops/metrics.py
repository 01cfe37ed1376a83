"""Prometheus metrics, correct across gunicorn workers, and the access log.

In gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set by gunicorn_conf.py (one fixed
directory per server, emptied on every start) before prometheus_client is
imported, so every worker writes its samples to files that the scraping worker sums. Outside gunicorn (``flask ...``) the same
metrics live in-process.
"""
from __future__ import annotations

import json
import logging
import os
import time

from prometheus_client import Counter, Histogram

from ..logsafe import needs_quotes, quoted

PREFIX = "bleepstore"
SIZE_BUCKETS = (0, 1024, 16 * 1024, 64 * 1024, 1 << 20, 8 << 20, 64 << 20, 512 << 20, 5 << 30)

HTTP_REQUESTS = Counter(f"{PREFIX}_http_requests_total", "HTTP requests by method, route template and status",
                        ("method", "route", "status"))
HTTP_DURATION = Histogram(f"{PREFIX}_http_request_duration_seconds",
                          "Time from the request's arrival to its last response byte",
                          ("method", "route", "status"),
                          buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))
S3_OPERATIONS = Counter(f"{PREFIX}_s3_operations_total", "S3 operations by AWS name and outcome",
                        ("operation", "outcome"))
REQUEST_SIZE = Histogram(f"{PREFIX}_http_request_size_bytes", "Request body sizes", ("route",),
                         buckets=SIZE_BUCKETS)
RESPONSE_SIZE = Histogram(f"{PREFIX}_http_response_size_bytes", "Response body sizes", ("route",),
                          buckets=SIZE_BUCKETS)
BYTES_RECEIVED = Counter(f"{PREFIX}_bytes_received_total", "Request body bytes received")
BYTES_SENT = Counter(f"{PREFIX}_bytes_sent_total", "Response body bytes sent")
ADMIN_REQUESTS = Counter(f"{PREFIX}_admin_requests_total", "Admin API requests by action and HTTP status",
                         ("action", "status"))

access_log = logging.getLogger("bleepstore.access")
UNCOUNTED_ROUTES = frozenset({"/metrics"})  # a scrape does not count itself


def outcome_of(status: int) -> str:
    return "success" if status < 400 else ("client_error" if status < 500 else "server_error")


def route_of(environ: dict) -> str:
    """The route template of a request: never the raw path with bucket and key."""
    return environ.get("bleepstore.route") or "unmatched"


_CHILDREN: dict[tuple, tuple] = {}


def _children(method: str, route: str, status: int, operation: str | None) -> tuple:
    """The labelled metric children of one kind of request, looked up once per
    worker (``labels()`` costs a lock and a tuple build on every call)."""
    key = (method, route, status, operation)
    found = _CHILDREN.get(key)
    if found is None:
        if len(_CHILDREN) > 10_000:  # methods and statuses are bounded; this is a backstop
            _CHILDREN.clear()
        code = str(status)
        found = _CHILDREN[key] = (
            HTTP_REQUESTS.labels(method, route, code), HTTP_DURATION.labels(method, route, code),
            S3_OPERATIONS.labels(operation, outcome_of(status)) if operation else None,
            REQUEST_SIZE.labels(route), RESPONSE_SIZE.labels(route))
    return found


class ObservedBody:
    """Wraps a response body: counts the bytes sent, and when the server closes it
    (after the last byte, or on a disconnect) records metrics and the access log."""

    def __init__(self, body, environ: dict, status: int, started: float, json_format: bool) -> None:
        self._body = body
        self._environ = environ
        self._status = status
        self._started = started
        self._json = json_format
        self._sent = 0
        self._closed = False

    def __iter__(self):
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._record()

    def _record(self) -> None:
        env = self._environ
        route = route_of(env)
        if route in UNCOUNTED_ROUTES:
            return
        elapsed = time.perf_counter() - self._started
        method = env.get("REQUEST_METHOD", "")
        operation = env.get("bleepstore.operation")
        received = env.get("bleepstore.bytes_in")
        if received is None:
            try:
                received = int(env.get("CONTENT_LENGTH") or 0)
            except ValueError:
                received = 0
        requests, duration, operations, request_size, response_size = _children(
            method, route, self._status, operation)
        requests.inc()
        duration.observe(elapsed)
        if operations is not None:
            operations.inc()
        request_size.observe(received)
        response_size.observe(self._sent)
        if received:
            BYTES_RECEIVED.inc(received)
        if self._sent:
            BYTES_SENT.inc(self._sent)
        admin_action = env.get("bleepstore.admin_action")
        if admin_action is not None:
            ADMIN_REQUESTS.labels(admin_action, str(self._status)).inc()
        if access_log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": env.get("bleepstore.request_id"), "method": env.get("REQUEST_METHOD"),
                "operation": operation, "bucket": env.get("bleepstore.bucket"), "key": env.get("bleepstore.key"),
                "status": self._status, "bytes_in": received, "bytes_out": self._sent,
                "duration_ms": round(elapsed * 1000, 3),
                "remote": env.get("REMOTE_ADDR"), "user_agent": env.get("HTTP_USER_AGENT"),
            }
            if admin_action is not None:
                fields["admin_action"], fields["admin_target"] = admin_action, env.get("bleepstore.admin_target")
            access_log.info(access_line(fields, self._json))


def access_line(fields: dict, json_format: bool) -> str:
    """One access-log line. Bucket, key, method and User-Agent are the client's
    own text: json.dumps escapes every control character (ensure_ascii); the text
    form quotes and escapes them (logsafe.text_field)."""
    if json_format:
        return json.dumps(fields, separators=(",", ":"))
    parts = []
    for name, value in fields.items():
        if value is None:
            continue
        if value.__class__ is str and (not value or needs_quotes(value) is not None):
            value = quoted(value)  # text_field, inlined: this runs for every request
        parts.append(f"{name}={value}")
    return " ".join(parts)


class ObservingMiddleware:
    """Outermost WSGI layer: times each request and wraps its body in ObservedBody."""

    def __init__(self, app, json_format: bool) -> None:
        self.app = app
        self.json_format = json_format

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        state = {}

        def observe_start(status, headers, exc_info=None):
            state["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        body = self.app(environ, observe_start)
        return ObservedBody(body, environ, state.get("status", 500), started, self.json_format)


def exposition(exporter, accept: str | None) -> tuple[bytes, str]:
    """The /metrics body: every worker's samples summed (multiprocess mode), plus
    the scrape-time collectors; or this process's registry outside gunicorn."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    collectors = getattr(exporter, "scrape_collectors", None)
    if collectors is None:
        registry = REGISTRY
    else:
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for collector in collectors:
            registry.register(collector)
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


def init_prometheus(app, services):
    """prometheus-flask-exporter on the app, multiprocess-aware under gunicorn.

    The exporter provides the exposition (summing every worker's samples) and
    the gunicorn worker-exit hook; the HTTP metrics are recorded by ObservedBody,
    which sees the whole streamed response. /metrics itself is routed by
    ops.endpoints, so a signed S3 request to a bucket named "metrics" still
    reaches S3.
    """
    kwargs = dict(path=None, export_defaults=False, defaults_prefix=PREFIX)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
        exporter = GunicornInternalPrometheusMetrics(app=None, **kwargs)  # path None: no route of its own
        exporter.init_app(app)
        exporter.scrape_collectors = (StoreCollector(services.meta), ServerProcessCollector())
        return exporter
    # One process (flask CLI, tests): prometheus_client's default registry, which
    # already carries this process's process_* and python_* metrics.
    from prometheus_flask_exporter import PrometheusMetrics
    return PrometheusMetrics(app, **kwargs)


class StoreCollector:
    """bleepstore_buckets / bleepstore_objects / bleepstore_stored_bytes, counted
    at scrape time at most every ``ttl`` seconds (two COUNT and two SUM queries),
    not tracked on every write. Only the scraping worker runs it, so a count is
    never summed over workers (not doubled).

    ``bleepstore_buckets_total`` / ``bleepstore_objects_total`` carry the same
    values under the earlier BleepStore's names, which existing dashboards query."""

    def __init__(self, meta, ttl: float = 15.0) -> None:
        self._meta, self._ttl = meta, ttl
        self._cached: tuple[float, tuple[int, int]] | None = None

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self._ttl:
            self._cached = (now, (*self._meta.count_buckets_and_objects(), self._meta.stored_bytes()))
        buckets, objects, stored = self._cached[1]
        yield GaugeMetricFamily(f"{PREFIX}_buckets", "Buckets in the store", value=buckets)
        yield GaugeMetricFamily(f"{PREFIX}_objects", "Objects in the store", value=objects)
        yield GaugeMetricFamily(f"{PREFIX}_stored_bytes", "Bytes of every object version in the store",
                                value=stored)
        yield GaugeMetricFamily(f"{PREFIX}_buckets_total", "Buckets in the store (earlier name of "
                                f"{PREFIX}_buckets)", value=buckets)
        yield GaugeMetricFamily(f"{PREFIX}_objects_total", "Objects in the store (earlier name of "
                                f"{PREFIX}_objects)", value=objects)


class ServerProcessCollector:
    """process_* metrics for the gunicorn master and every worker (label ``pid``):
    in multiprocess mode prometheus_client would only describe the scraping worker."""

    def collect(self):
        import platform
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
        ticks = os.sysconf("SC_CLK_TCK")
        page = os.sysconf("SC_PAGE_SIZE")
        boot = _boot_time()
        cpu = CounterMetricFamily("process_cpu_seconds_total", "CPU seconds used", labels=("pid", "role"))
        rss = GaugeMetricFamily("process_resident_memory_bytes", "Resident memory", labels=("pid", "role"))
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors", labels=("pid", "role"))
        start = GaugeMetricFamily("process_start_time_seconds", "Start time (epoch)", labels=("pid", "role"))
        for pid, role in _server_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                open_fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            labels = (str(pid), role)
            cpu.add_metric(labels, (int(fields[11]) + int(fields[12])) / ticks)
            rss.add_metric(labels, int(fields[21]) * page)
            fds.add_metric(labels, open_fds)
            start.add_metric(labels, boot + int(fields[19]) / ticks)
        yield from (cpu, rss, fds, start)
        info = InfoMetricFamily("python", "Python platform information")
        info.add_metric([], {"implementation": platform.python_implementation(), "version": platform.python_version()})
        yield info


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime"):
                return float(line.split()[1])
    return 0.0


def _server_pids() -> list[tuple[int, str]]:
    """This worker's master (its parent) and all the master's children."""
    master = os.getppid()
    pids = [(master, "master")]
    try:
        for task in os.listdir(f"/proc/{master}/task"):
            with open(f"/proc/{master}/task/{task}/children") as f:
                pids += [(int(p), "worker") for p in f.read().split()]
    except OSError:
        pids.append((os.getpid(), "worker"))
    return pids
