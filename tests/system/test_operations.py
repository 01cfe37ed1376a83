"""Operator endpoints on a real 2-worker server: metrics summed across workers,
health probes, access log, OpenAPI + Swagger UI, and bucket names they share."""
from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bleepstore_app.s3.routing import ROUTES

from ..conftest import ENGINES, make_client
from ..servers import Server, write_config


@pytest.fixture(scope="module", params=ENGINES)
def ops_server(request, tmp_path_factory, pg_databases):
    workdir = tmp_path_factory.mktemp("ops")
    url = pg_databases.create() if request.param == "postgresql" else None
    config = write_config(workdir, url, extra="")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(config), BLEEPSTORE_SERVER_LOG_FORMAT="json")
    srv = Server(workdir, env).start()
    srv.database_url = url
    yield srv
    srv.stop()


def _samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line.rpartition(" ")
            found[labels] = float(value)
    return found


def _scrape(srv) -> str:
    resp = requests.get(srv.endpoint + "/metrics", timeout=10)
    assert resp.status_code == 200
    return resp.text


def test_metrics_count_every_request_exactly_across_workers(ops_server):
    srv = ops_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="counted")
    s3.put_object(Bucket="counted", Key="k", Body=b"x" * 10)
    url = s3.generate_presigned_url("head_object", Params={"Bucket": "counted", "Key": "k"})
    before = _scrape(srv)
    n = 300

    def head(_):
        with requests.Session() as session:  # a fresh connection: requests spread over workers
            return session.head(url, timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(head, range(n))) == {200}
    key = 'bleepstore_s3_operations_total{operation="HeadObject",outcome="success"}'
    http_key = 'bleepstore_http_requests_total{method="HEAD",route="/{bucket}/{key}",status="200"}'

    def counted(scrape) -> tuple[float, float]:
        return (_samples(scrape, "bleepstore_s3_operations_total").get(key, 0) -
                _samples(before, "bleepstore_s3_operations_total").get(key, 0),
                _samples(scrape, "bleepstore_http_requests_total").get(http_key, 0) -
                _samples(before, "bleepstore_http_requests_total").get(http_key, 0))
    # A request is counted just after its last byte leaves: the client can see its
    # answer a moment before the count. Wait for it (briefly), then demand exactness.
    deadline = time.monotonic() + 5
    after = _scrape(srv)
    while min(counted(after)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        after = _scrape(srv)
    assert counted(after) == (n, n)
    # The scrape does not count itself, and no raw path (bucket or key) becomes a label.
    assert "/metrics" not in "".join(_samples(after, "bleepstore_http_requests_total"))
    assert "counted" not in after
    workers = _samples(after, "process_resident_memory_bytes")
    assert len([k for k in workers if 'role="worker"' in k]) == 2
    assert _samples(after, "bleepstore_buckets") and _samples(after, "bleepstore_objects")


def test_metrics_names_and_types(ops_server):
    text = _scrape(ops_server)
    for name, kind in (("bleepstore_http_requests_total", "counter"),
                       ("bleepstore_http_request_duration_seconds", "histogram"),
                       ("bleepstore_http_request_size_bytes", "histogram"),
                       ("bleepstore_http_response_size_bytes", "histogram"),
                       ("bleepstore_s3_operations_total", "counter"),
                       ("bleepstore_bytes_received_total", "counter"), ("bleepstore_bytes_sent_total", "counter"),
                       ("bleepstore_buckets", "gauge"), ("bleepstore_objects", "gauge"),
                       ("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge")):
        assert re.search(rf"^# TYPE {name.removesuffix('_total')}(_total)? {kind}$", text, re.M), name


def test_healthz_readyz_health_answer(ops_server):
    srv = ops_server
    live = requests.get(srv.endpoint + "/healthz")
    assert (live.status_code, live.content) == (200, b"")
    ready = requests.get(srv.endpoint + "/readyz")
    assert (ready.status_code, ready.content) == (200, b"")  # the earlier BleepStore's probes expect no body
    health = requests.get(srv.endpoint + "/health").json()
    assert health["status"] == "ok"
    # checks: the earlier shape; components: the same entries under this server's first name.
    assert set(health["checks"]) == {"metadata", "storage"}
    for check in health["checks"].values():
        assert check["status"] == "ok" and isinstance(check["latency_ms"], (int, float)) and check["latency_ms"] >= 0
    assert health["components"] == health["checks"]


def test_readyz_503_while_storage_is_unusable(ops_server):
    srv = ops_server
    tmp = srv.workdir / "data" / "objects" / "tmp"
    moved = tmp.with_name("tmp-away")
    tmp.rename(moved)
    try:
        ready = requests.get(srv.endpoint + "/readyz")
        assert ready.status_code == 503 and b"storage" in ready.content and b"metadata" not in ready.content
        health = requests.get(srv.endpoint + "/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["checks"]["storage"]["status"] == "unavailable"
        assert health.json()["checks"]["metadata"]["status"] == "ok"
        assert health.json()["components"]["storage"]["status"] == "unavailable"
    finally:
        moved.rename(tmp)
    assert requests.get(srv.endpoint + "/readyz").status_code == 200


@pytest.mark.parametrize("ops_server", [e for e in ENGINES if e == "postgresql"], indirect=True)
def test_reads_on_kept_postgresql_connections_survive_the_server_dropping_them(ops_server):
    """Reads run on connections each worker keeps (no pre-ping): when PostgreSQL
    drops them, the next read notices and runs again on a fresh one, unseen."""
    srv = ops_server
    s3 = make_client(srv.endpoint)
    bucket = f"kept-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"still here")
    with ThreadPoolExecutor(8) as pool:  # both workers keep reader connections
        assert all(pool.map(lambda _: s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 10, range(40)))
    assert _terminate_backends(srv) >= 2
    for _ in range(20):  # each worker meets a dead connection first
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"still here"


def _terminate_backends(srv) -> int:
    import psycopg
    name = srv.database_url.rsplit("/", 1)[1]
    admin = psycopg.connect(srv.database_url.replace("postgresql+psycopg://", "postgresql://")
                            .rsplit("/", 1)[0] + "/postgres", autocommit=True)
    try:
        return admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                             (name,)).fetchone()[0]
    finally:
        admin.close()


@pytest.mark.parametrize("ops_server", [e for e in ENGINES if e == "postgresql"], indirect=True)
def test_writes_on_kept_postgresql_connections_survive_the_server_dropping_them(ops_server):
    """Writes keep their connections too (no pre-ping per write): a write that
    meets a dropped one runs again on a fresh connection, and is stored once."""
    srv = ops_server
    s3 = make_client(srv.endpoint)
    bucket = f"kept-writes-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:  # both workers keep writer connections
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"warm-{i}", Body=b"w"), range(40)))
    assert _terminate_backends(srv) >= 2
    for i in range(20):  # each worker meets dead connections first
        s3.put_object(Bucket=bucket, Key=f"after-{i}", Body=f"body {i}".encode())
        s3.delete_object(Bucket=bucket, Key=f"warm-{i}")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == sorted([f"after-{i}" for i in range(20)] + [f"warm-{i}" for i in range(20, 40)])
    for i in range(20):
        assert s3.get_object(Bucket=bucket, Key=f"after-{i}")["Body"].read() == f"body {i}".encode()


@pytest.mark.parametrize("ops_server", [e for e in ENGINES if e == "postgresql"], indirect=True)
def test_503_while_postgresql_refuses_and_nothing_lost(ops_server):
    """PostgreSQL refusing connections (down, out of connections) is a 503
    ServiceUnavailable that clients retry, for the probes and for S3 requests alike;
    a PUT refused meanwhile leaves nothing behind, and what was stored is still there."""
    srv = ops_server
    import psycopg
    from botocore.exceptions import ClientError
    s3 = make_client(srv.endpoint)
    bucket = f"refused-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"stored before")
    blobs_before = _blob_files(srv)
    name = srv.database_url.rsplit("/", 1)[1]
    admin = psycopg.connect(srv.database_url.replace("postgresql+psycopg://", "postgresql://")
                            .rsplit("/", 1)[0] + "/postgres", autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        assert requests.get(srv.endpoint + "/readyz", timeout=30).status_code == 503
        assert requests.get(srv.endpoint + "/health", timeout=30).json()["checks"]["metadata"]["status"] \
            == "unavailable"
        for _ in range(4):  # both workers, reads on kept connections and writes on pooled ones
            url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "kept"})
            resp = requests.get(url, timeout=30)
            assert resp.status_code == 503, resp.text
            assert b"<Code>ServiceUnavailable</Code>" in resp.content and b"<RequestId>" in resp.content
            with pytest.raises(ClientError) as refused:
                s3.put_object(Bucket=bucket, Key="refused", Body=b"x" * 100_000)
            assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    deadline = time.monotonic() + 30
    while requests.get(srv.endpoint + "/readyz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"stored before"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]
    assert _blob_files(srv) == blobs_before  # the refused PUTs' bodies were discarded
    assert "metadata database unavailable" in srv.log_path.read_text()


def _blob_files(srv) -> set[str]:
    return {os.path.join(root, f) for root, _dirs, files in os.walk(srv.workdir / "data" / "objects" / "data")
            for f in files}


def test_access_log_one_json_line_per_request_without_secrets(ops_server):
    srv = ops_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="logged")
    resp = s3.put_object(Bucket="logged", Key="k", Body=b"12345")
    request_id = resp["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 5
    while request_id not in srv.log_path.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log = srv.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if request_id in line]
    assert len(lines) == 1
    entry = lines[0]
    assert (entry["operation"], entry["bucket"], entry["status"], entry["bytes_in"]) == ("PutObject", "logged", 200, 5)
    assert entry["logger"] == "bleepstore.access" and entry["duration_ms"] >= 0
    assert "bleepstore-secret" not in log and "Signature=" not in log


def test_internal_error_is_logged_server_side_only(ops_server):
    srv = ops_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket="broken")
    s3.put_object(Bucket="broken", Key="gone", Body=b"z" * 100_000)
    for root, _dirs, files in os.walk(srv.workdir / "data" / "objects" / "data"):
        for name in files:
            os.unlink(os.path.join(root, name))  # metadata now points at missing data
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "broken", "Key": "gone"})
    resp = requests.get(url)
    assert resp.status_code == 500
    assert b"<Code>InternalError</Code>" in resp.content and b"Traceback" not in resp.content
    assert "points at missing data" in srv.log_path.read_text()


def test_openapi_document_is_valid_and_lists_every_route(ops_server):
    from openapi_spec_validator import validate
    doc = requests.get(ops_server.endpoint + "/openapi.json").json()
    validate(doc)
    operation_ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {route.operation for route in ROUTES} <= operation_ids
    assert {"ops_healthz", "ops_readyz", "ops_health", "ops_metrics"} <= operation_ids
    # The earlier BleepStore's document: its version, title, security scheme and tags.
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "BleepStore S3-Compatible API"
    scheme = doc["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "AWS4-HMAC-SHA256" in scheme["description"]
    assert {"sigv4": []} in doc["security"]
    assert {"Bucket", "Object", "MultipartUpload"} <= {tag["name"] for tag in doc["tags"]}
    tags = {op["operationId"]: op["tags"] for path in doc["paths"].values() for op in path.values()}
    for name, family in (("ListBuckets", "Bucket"), ("CreateBucket", "Bucket"), ("GetBucketAcl", "Bucket"),
                         ("PutObject", "Object"), ("GetObjectTagging", "Object"), ("CopyObject", "Object"),
                         ("CreateMultipartUpload", "MultipartUpload"), ("UploadPart", "MultipartUpload"),
                         ("UploadPartCopy", "MultipartUpload"), ("ListMultipartUploads", "MultipartUpload"),
                         ("ListParts", "MultipartUpload"), ("CompleteMultipartUpload", "MultipartUpload"),
                         ("AbortMultipartUpload", "MultipartUpload")):
        assert tags[name] == [family], name
    declared = {tag["name"] for tag in doc["tags"]}
    assert all(len(t) == 1 and t[0] in declared for t in tags.values())


def test_docs_serve_swagger_ui_from_the_installed_package(ops_server):
    page = requests.get(ops_server.endpoint + "/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        resp = requests.get(f"{ops_server.endpoint}/docs/{asset}")
        assert resp.status_code == 200 and len(resp.content) > 1000


@pytest.mark.parametrize("name", ["metrics", "health", "healthz", "readyz", "docs"])
def test_buckets_named_like_operator_endpoints_work_for_signed_requests(ops_server, name):
    srv = ops_server
    s3 = make_client(srv.endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="swagger-ui.css", Body=b"mine")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]] == ["swagger-ui.css"]
    assert s3.get_object(Bucket=name, Key="swagger-ui.css")["Body"].read() == b"mine"
    s3.head_bucket(Bucket=name)
    # Unsigned, the same path is the operator endpoint; under /-/ it always is.
    assert requests.get(f"{srv.endpoint}/{name}").status_code in (200, 503)
    assert requests.get(f"{srv.endpoint}/-/{name}").status_code in (200, 503)
    s3.delete_object(Bucket=name, Key="swagger-ui.css")
    s3.delete_bucket(Bucket=name)
