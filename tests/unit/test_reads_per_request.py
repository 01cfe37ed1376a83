"""How many times one request reads its bucket's row (issue #20: query count per
operation). The app runs in-process on a temporary SQLite database; every call to
MetadataStore.get_bucket is counted."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from bleepstore_app import create_app
from bleepstore_app.config import load_settings
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
    calls = []
    original = MetadataStore.get_bucket

    def counted(self, name):
        calls.append(name)
        return original(self, name)
    monkeypatch.setattr(MetadataStore, "get_bucket", counted)
    return calls


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
