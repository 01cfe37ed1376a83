"""How many times one request reads its bucket's row (issue #20: query count per
operation). The app runs in-process on a temporary SQLite database; every call to
MetadataStore.get_bucket is counted."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from bleepstore_app import create_app
from bleepstore_app.config import load_settings
from bleepstore_app.metadata.engine import Cursor
from bleepstore_app.metadata.store import MetadataStore
from bleepstore_app.recovery import recover

HOST = "127.0.0.1:9000"


@pytest.fixture(scope="module")
def app_and_signer(tmp_path_factory):
    root = tmp_path_factory.mktemp("reads")
    settings = load_settings(environ={}, overrides={"metadata.sqlite.path": str(root / "m.db"),
                                                    "storage.local.root_dir": str(root / "o")})
    recover(settings)
    client = create_app(settings=settings).test_client()
    cred = settings.credentials[0]
    s3 = boto3.client("s3", endpoint_url=f"http://{HOST}", region_name="us-east-1",
                      aws_access_key_id=cred.access_key, aws_secret_access_key=cred.secret_key,
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def send(method: str, operation: str, body: bytes = b"", headers: dict | None = None, **params):
        url = s3.generate_presigned_url(operation, Params=params, ExpiresIn=600)
        return client.open(url.split(HOST, 1)[1], method=method, data=body, headers=headers or {},
                           base_url=f"http://{HOST}")
    send.client = client
    assert send("PUT", "create_bucket", Bucket="reads").status_code == 200
    return send


def client_of(send):
    return send.client


@pytest.fixture
def bucket_reads(monkeypatch):
    """Names of the buckets whose row was read, by get_bucket or together with an
    object (read_bucket_and_object)."""
    calls = []
    get_bucket, with_object = MetadataStore.get_bucket, MetadataStore.read_bucket_and_object

    def counted(self, name):
        calls.append(name)
        return get_bucket(self, name)

    def counted_with_object(self, name, key, with_bytes=True):
        calls.append(name)
        return with_object(self, name, key, with_bytes)
    monkeypatch.setattr(MetadataStore, "get_bucket", counted)
    monkeypatch.setattr(MetadataStore, "read_bucket_and_object", counted_with_object)
    return calls


@pytest.fixture
def statements(monkeypatch):
    """The SQL text of every statement the metadata layer runs."""
    seen = []
    original = Cursor._execute

    def counted(self, q, params):
        seen.append(q.compiled(self._dialect)[0])
        return original(self, q, params)
    monkeypatch.setattr(Cursor, "_execute", counted)
    return seen


@pytest.mark.parametrize("method,operation,body,status", [
    ("PUT", "put_object", b"x" * 1024, 200),
    ("GET", "get_object", b"", 200),
    ("HEAD", "head_object", b"", 200),
    ("DELETE", "delete_object", b"", 204),
])
def test_an_object_request_reads_its_bucket_row_once(app_and_signer, bucket_reads, method, operation, body,
                                                     status):
    send = app_and_signer
    if method != "PUT":
        assert send("PUT", "put_object", b"y" * 10, Bucket="reads", Key="k").status_code == 200
        bucket_reads.clear()
    resp = send(method, operation, body, Bucket="reads", Key="k")
    assert resp.status_code == status, resp.data
    assert bucket_reads == ["reads"]  # the policy decision, the handler and x-amz-expiration share one read


def test_a_missing_key_still_reads_the_bucket_row_once(app_and_signer, bucket_reads):
    resp = app_and_signer("GET", "get_object", Bucket="reads", Key="absent")
    assert resp.status_code == 404 and b"NoSuchKey" in resp.data
    assert bucket_reads == ["reads"]


def test_a_bucket_configuration_change_is_read_back_fresh(app_and_signer):
    """A request that changes the bucket row does not keep rows for the request:
    the next request sees the change at once."""
    send = app_and_signer
    from bleepstore_app.s3.dispatch import _keeps_bucket_rows
    assert not _keeps_bucket_rows("PutBucketVersioning") and not _keeps_bucket_rows("PutBucketPolicy")
    assert send("PUT", "put_bucket_acl", headers={"x-amz-acl": "public-read"}, Bucket="reads",
                ACL="public-read").status_code == 200
    assert client_of(send).get("/reads", base_url=f"http://{HOST}").status_code == 200  # anonymous listing
    assert send("PUT", "put_bucket_acl", headers={"x-amz-acl": "private"}, Bucket="reads",
                ACL="private").status_code == 200
    assert client_of(send).get("/reads", base_url=f"http://{HOST}").status_code == 403


@pytest.mark.parametrize("method,operation", [("GET", "get_object"), ("HEAD", "head_object")])
def test_a_read_of_an_object_is_one_statement_with_its_bucket(app_and_signer, statements, method, operation):
    """GetObject and HeadObject need the bucket's row (policy, ACL, lifecycle) and
    the object's: one SELECT reads both, one round trip to PostgreSQL."""
    send = app_and_signer
    assert send("PUT", "put_object", b"one statement", Bucket="reads", Key="joined").status_code == 200
    statements.clear()
    resp = send(method, operation, Bucket="reads", Key="joined")
    assert resp.status_code == 200
    assert method == "HEAD" or resp.data == b"one statement"
    assert len(statements) == 1, statements
    assert "buckets" in statements[0] and "objects" in statements[0]


@pytest.mark.parametrize("params,status,code", [
    ({"Bucket": "reads", "Key": "never-stored"}, 404, b"NoSuchKey"),
    ({"Bucket": "no-such-bucket-here", "Key": "k"}, 404, b"NoSuchBucket"),
])
def test_a_read_of_nothing_is_one_statement_too(app_and_signer, statements, params, status, code):
    statements.clear()
    resp = app_and_signer("GET", "get_object", **params)
    assert resp.status_code == status and code in resp.data
    assert len(statements) == 1, statements


def test_a_version_or_part_read_still_reads_what_it_names(app_and_signer):
    """Reads the joined statement does not announce (versionId, partNumber) read
    their own rows, and answer as before."""
    send = app_and_signer
    put = send("PUT", "put_object", b"12345", Bucket="reads", Key="versioned")
    assert put.status_code == 200
    got = send("GET", "get_object", Bucket="reads", Key="versioned", VersionId="null")
    assert got.status_code == 200 and got.data == b"12345"
    part = send("GET", "get_object", Bucket="reads", Key="versioned", PartNumber=1)
    assert part.status_code == 206 and part.data == b"12345"


def test_the_object_read_with_its_bucket_is_handed_over_once(app_and_signer, statements):
    """A second read of the announced object in one request reads afresh (a
    handler reading its object twice must not see the first answer twice), and a
    read of another key, or without the bytes announced, is not answered from it."""
    from bleepstore_app.service import buckets
    send = app_and_signer
    assert send("PUT", "put_object", b"handed over", Bucket="reads", Key="once").status_code == 200
    svc = client_of(send).application.extensions["bleepstore"].services
    with buckets.rows_read_once(("reads", "once", True)):
        statements.clear()
        assert buckets.lookup(svc, "reads").name == "reads"
        assert buckets.read_with_bucket(svc, "reads", "other", True) is buckets.NOT_READ_WITH_BUCKET
        assert buckets.read_with_bucket(svc, "reads", "once", False) is buckets.NOT_READ_WITH_BUCKET
        version = buckets.read_with_bucket(svc, "reads", "once", True)
        assert version.inline == b"handed over" and version.record.key == "once"
        assert buckets.read_with_bucket(svc, "reads", "once", True) is buckets.NOT_READ_WITH_BUCKET
        assert buckets.lookup(svc, "reads").name == "reads"
        assert len(statements) == 1, statements
    with buckets.rows_read_once(("reads", "once", True)):  # no lookup first: the read fetches both
        statements.clear()
        assert buckets.read_with_bucket(svc, "reads", "once", True).inline == b"handed over"
        assert buckets.lookup(svc, "reads").name == "reads" and len(statements) == 1
