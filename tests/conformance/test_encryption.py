"""Server-side encryption (issue #18), as boto3 users meet it: SSE-S3, SSE-KMS, SSE-C,
bucket default encryption, CopyObject and multipart uploads across encryption modes,
range reads across the 64 KiB cipher chunks, the response headers and ETags AWS S3
gives, and what an attacker cannot do (a refused write stores nothing; an SSE-C or
SSE header added unsigned to a presigned URL is refused).

Every test server knows master key ``m1`` and the SSE-KMS keys ``test-key`` and
``other-key`` (tests/servers.py write_config) and believes ``X-Forwarded-Proto``
from 127.0.0.1 (gunicorn's FORWARDED_ALLOW_IPS default). SSE-C needs a secure request: the ``s3s``
client adds ``X-Forwarded-Proto: https`` to every request to a node; through the
cluster's nginx (which sets X-Forwarded-Proto itself, overwriting a client's) it
uses nginx's HTTPS port. The plain ``s3`` client stays plain HTTP.

Plaintexts are distinctive and never periodic (every 16-odd bytes name their own
offset), so a range served from the wrong place cannot pass for the right one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from ..servers import ACCESS_KEY, SECRET_KEY
from .helpers import error_of
from .support_multipart import PART, MiB, abort_all, multipart_etag, open_uploads

REGION = "us-east-1"
ACCOUNT = "000000000000"
CHUNK = 64 * 1024                       # plaintext bytes per AES-GCM chunk
K1 = hashlib.sha256(b"bleepstore sse-c customer key one").digest()
K2 = hashlib.sha256(b"bleepstore sse-c customer key two").digest()
SSE_PREFIX = "x-amz-server-side-encryption"
MANAGED_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/s3"
SSEC_HEADERS = ("x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
                "x-amz-server-side-encryption-customer-key-md5")


def kms_arn(name: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"


# -- data and keys ----------------------------------------------------------------------------

def plain(size: int, tag: str) -> bytes:
    """``size`` bytes of ``[tag:offset]`` markers: readable, distinctive, and no two
    places alike."""
    width = len(tag) + 11
    count = size // width + 1
    text = "".join(f"[{tag}:{i * width:08x}]" for i in range(count)).encode()
    return text[:size]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def md5_b64(raw: bytes) -> str:
    return b64(hashlib.md5(raw).digest())


def md5_etag(raw: bytes) -> str:
    return '"' + hashlib.md5(raw).hexdigest() + '"'


def ssec_args(key: bytes, prefix: str = "") -> dict:
    """boto3 SSE-C parameters (boto3 base64s the key and fills in its MD5)."""
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": key}


def ssec_raw(key: bytes) -> dict[str, str]:
    """The SSE-C headers as they go on the wire."""
    return dict(zip(SSEC_HEADERS, ("AES256", b64(key), md5_b64(key))))


class Enc:
    """One way an object is stored: what a write sends, what a read (or a copy from
    it) must send, and what the responses must say."""

    def __init__(self, label: str, mode: str, write: dict | None = None, *, arn: str | None = None,
                 key: bytes | None = None) -> None:
        self.label, self.mode, self.write, self.arn, self.key = label, mode, dict(write or {}), arn, key
        self.read = ssec_args(key) if key else {}
        self.source = ssec_args(key, "CopySource") if key else {}

    def __repr__(self) -> str:
        return self.label

    def check(self, resp: dict, bucket_key: bool = False) -> None:
        """The encryption headers of a response (Put/Get/Head/Copy/CreateMPU/UploadPart/
        UploadPartCopy/Complete) say what this is, and nothing else. Read off the wire:
        botocore's CompleteMultipartUpload output has no SSE-C members."""
        headers = resp["ResponseMetadata"]["HTTPHeaders"]  # lower-case names
        got = {name: headers.get(SSE_PREFIX + name) for name in ("", "-aws-kms-key-id", "-customer-algorithm",
                                                                  "-customer-key-md5")}
        want = dict.fromkeys(got)
        if self.mode == "sse-s3":
            want[""] = "AES256"
        elif self.mode == "sse-kms":
            want.update({"": "aws:kms", "-aws-kms-key-id": self.arn})
        elif self.mode == "sse-c":
            want.update({"-customer-algorithm": "AES256", "-customer-key-md5": md5_b64(self.key)})
        assert got == want, (self.label, headers)
        flag = headers.get(SSE_PREFIX + "-bucket-key-enabled")
        if bucket_key:
            assert flag == "true", (self.label, headers)
        else:
            assert flag in (None, "false"), (self.label, headers)

    def check_etag(self, etag: str, data: bytes) -> None:
        """Unencrypted and SSE-S3: the MD5 of the plaintext. SSE-C and SSE-KMS: 32 hex
        digits that are not the plaintext's MD5."""
        if self.mode in ("clear", "sse-s3"):
            assert etag == md5_etag(data), (self.label, etag)
        else:
            assert re.fullmatch(r'"[0-9a-f]{32}"', etag), (self.label, etag)
            assert etag != md5_etag(data), (self.label, "the ETag gives the plaintext's MD5 away")


CLEAR = Enc("clear", "clear")
SSE_S3 = Enc("sse-s3", "sse-s3", {"ServerSideEncryption": "AES256"})
KMS_TEST = Enc("kms-test-key", "sse-kms", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "test-key"},
               arn=kms_arn("test-key"))
KMS_OTHER = Enc("kms-other-key", "sse-kms", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "other-key"},
                arn=kms_arn("other-key"))
KMS_MANAGED = Enc("kms-managed", "sse-kms", {"ServerSideEncryption": "aws:kms"}, arn=MANAGED_ARN)
SSEC1 = Enc("sse-c-k1", "sse-c", ssec_args(K1), key=K1)
SSEC2 = Enc("sse-c-k2", "sse-c", ssec_args(K2), key=K2)
ENCRYPTED = [SSE_S3, KMS_TEST, SSEC1]


# -- clients and fixtures -------------------------------------------------------------------

def _client(endpoint: str, verify, forwarded_https: bool, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                          aws_secret_access_key=secret_key, region_name=REGION, verify=verify,
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                        retries={"max_attempts": 1}))
    if forwarded_https:
        client.meta.events.register(
            "before-sign.s3", lambda request, **kw: request.headers.__setitem__("X-Forwarded-Proto", "https"))
    return client


def _secure(server):
    """(endpoint, verify, headers) that make a request secure: a node directly, with
    X-Forwarded-Proto: https (trusted by the test servers); the cluster through its
    nginx's HTTPS port."""
    nginx = getattr(server, "nginx", None)
    if nginx is not None:
        return f"https://127.0.0.1:{nginx.https_port}", str(nginx.cert), {}
    return server.endpoint, True, {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def secure(server):
    return _secure(server)


@pytest.fixture(scope="module")
def s3s(secure):
    """boto3 over a secure connection (SSE-C allowed)."""
    endpoint, verify, headers = secure
    client = _client(endpoint, verify, bool(headers))
    yield client
    client._endpoint.http_session.close()


@pytest.fixture(scope="module")
def presigner(secure):
    """boto3 to the secure endpoint without the X-Forwarded-Proto hook (its presigned
    URLs sign the host only)."""
    endpoint, verify, _ = secure
    client = _client(endpoint, verify, False)
    yield client
    client._endpoint.http_session.close()


@pytest.fixture
def mbucket(s3, bucket):
    yield bucket
    abort_all(s3, bucket)


def _err(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _status(call, **kwargs) -> int:
    return _err(call, **kwargs)[1]


def _absent(s3, bucket, key) -> bool:
    return _status(s3.head_object, Bucket=bucket, Key=key) == 404


def _read(client, bucket, key, enc: Enc, **kwargs) -> tuple[bytes, dict]:
    resp = client.get_object(Bucket=bucket, Key=key, **enc.read, **kwargs)
    return resp["Body"].read(), resp


def _put(client, bucket, key, data, enc: Enc, **kwargs) -> dict:
    return client.put_object(Bucket=bucket, Key=key, Body=data, **enc.write, **kwargs)


def _check_object(client, bucket, key, data, enc: Enc, etag: str | None = None, bucket_key=False) -> None:
    """GET and HEAD give the exact plaintext, its size, the ETag and the encryption."""
    body, got = _read(client, bucket, key, enc)
    assert body == data, (len(body), len(data), body[:64], data[:64])
    assert got["ContentLength"] == len(data)
    enc.check(got, bucket_key)
    head = client.head_object(Bucket=bucket, Key=key, **enc.read)
    assert head["ContentLength"] == len(data)
    enc.check(head, bucket_key)
    assert head["ETag"] == got["ETag"]
    if etag is not None:
        assert got["ETag"] == etag


# -- SSE-S3 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1000, 200_000], ids=["inline", "file"])
def test_sse_s3_round_trip(s3, bucket, size):
    data = plain(size, "sse-s3-round-trip")
    resp = _put(s3, bucket, "doc.txt", data, SSE_S3, ContentType="text/x-bleep", Metadata={"colour": "teal"})
    SSE_S3.check(resp)
    assert resp["ETag"] == md5_etag(data)  # SSE-S3 single part: the plaintext's MD5, as unencrypted
    _check_object(s3, bucket, "doc.txt", data, SSE_S3, md5_etag(data))
    head = s3.head_object(Bucket=bucket, Key="doc.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-bleep", {"colour": "teal"})
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("doc.txt", size, md5_etag(data))]


def test_sse_s3_and_kms_reads_need_no_headers(server, s3, s3s, presigner, secure, bucket):
    """GET/HEAD of SSE-S3 and SSE-KMS objects need no encryption headers and no
    HTTPS: plain boto3, a presigned URL, an anonymous read of a public-read object."""
    for enc in (SSE_S3, KMS_TEST, KMS_MANAGED):
        data = plain(70_000, f"no-headers-{enc.label}")
        _put(s3, bucket, enc.label, data, enc, ACL="public-read")  # written over plain HTTP too
        got = s3.get_object(Bucket=bucket, Key=enc.label)
        assert got["Body"].read() == data
        enc.check(got)
        enc.check(s3.head_object(Bucket=bucket, Key=enc.label))
        anonymous = requests.get(f"{server.endpoint}/{bucket}/{enc.label}", timeout=60)
        assert anonymous.status_code == 200, anonymous.content[:300]
        assert anonymous.content == data
        url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": enc.label})
        presigned = requests.get(url, verify=secure[1], timeout=60)
        assert presigned.status_code == 200, presigned.content[:300]
        assert presigned.content == data
        assert presigned.headers.get("x-amz-server-side-encryption") == enc.write["ServerSideEncryption"]


def test_unencrypted_object_has_no_encryption_headers(s3, bucket):
    data = plain(1000, "clear")
    resp = s3.put_object(Bucket=bucket, Key="clear", Body=data)
    CLEAR.check(resp)
    _check_object(s3, bucket, "clear", data, CLEAR, md5_etag(data))


# -- SSE-KMS -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key_id", [
    "test-key",
    "alias/test-key",
    "arn:aws:kms:us-east-1:000000000000:key/test-key",
    "arn:aws:kms:us-east-1:000000000000:alias/test-key",
    "arn:aws:kms:us-east-1:123456789012:key/test-key",
], ids=["name", "alias", "key-arn", "alias-arn", "key-arn-other-account"])
def test_kms_named_key_forms(s3, bucket, key_id):
    data = plain(200_000, "kms-forms")
    resp = s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    KMS_TEST.check(resp)
    KMS_TEST.check_etag(resp["ETag"], data)
    _check_object(s3, bucket, "k", data, KMS_TEST, resp["ETag"])


def test_kms_two_keys_each_named_in_their_objects(s3, bucket):
    a, b = plain(5000, "kms-a"), plain(90_000, "kms-b")
    KMS_TEST.check(_put(s3, bucket, "a", a, KMS_TEST))
    KMS_OTHER.check(_put(s3, bucket, "b", b, KMS_OTHER))
    _check_object(s3, bucket, "a", a, KMS_TEST)
    _check_object(s3, bucket, "b", b, KMS_OTHER)


@pytest.mark.parametrize("key_id", [None, "alias/aws/s3"], ids=["no-key-id", "alias-aws-s3"])
def test_kms_managed_key(s3, bucket, key_id):
    data = plain(70_000, "kms-managed")
    extra = {"SSEKMSKeyId": key_id} if key_id else {}
    resp = s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms", **extra)
    KMS_MANAGED.check(resp)
    KMS_MANAGED.check_etag(resp["ETag"], data)
    _check_object(s3, bucket, "k", data, KMS_MANAGED, resp["ETag"])


def test_kms_encryption_context(s3, bucket):
    data = plain(70_000, "kms-context")
    context = b64(json.dumps({"project": "bleepstore", "team": "storage"}).encode())
    resp = s3.put_object(Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms",
                         SSEKMSKeyId="test-key", SSEKMSEncryptionContext=context)
    KMS_TEST.check(resp)
    _check_object(s3, bucket, "k", data, KMS_TEST, resp["ETag"])  # the reader never sends the context


def test_kms_bucket_key_enabled(s3, bucket):
    data = plain(70_000, "kms-bucket-key")
    resp = _put(s3, bucket, "on", data, KMS_TEST, BucketKeyEnabled=True)
    KMS_TEST.check(resp, bucket_key=True)
    _check_object(s3, bucket, "on", data, KMS_TEST, resp["ETag"], bucket_key=True)
    resp = _put(s3, bucket, "off", data, KMS_TEST)
    KMS_TEST.check(resp, bucket_key=False)
    _check_object(s3, bucket, "off", data, KMS_TEST, resp["ETag"], bucket_key=False)


@pytest.mark.parametrize("key_id", ["no-such-key", "alias/no-such-key",
                                    "arn:aws:kms:us-east-1:000000000000:key/no-such-key"])
def test_kms_unknown_key_refused(s3, bucket, key_id):
    assert _err(s3.put_object, Bucket=bucket, Key="k", Body=b"secret", ServerSideEncryption="aws:kms",
                SSEKMSKeyId=key_id) == ("KMS.NotFoundException", 400)
    assert _absent(s3, bucket, "k")


def test_kms_dsse_not_implemented(s3, bucket):
    assert _err(s3.put_object, Bucket=bucket, Key="k", Body=b"secret",
                ServerSideEncryption="aws:kms:dsse") == ("NotImplemented", 501)
    assert _absent(s3, bucket, "k")


# -- SSE-C -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1000, 200_000], ids=["inline", "file"])
def test_ssec_round_trip(s3s, bucket, size):
    data = plain(size, "sse-c-round-trip")
    resp = _put(s3s, bucket, "k", data, SSEC1)
    SSEC1.check(resp)
    SSEC1.check_etag(resp["ETag"], data)
    _check_object(s3s, bucket, "k", data, SSEC1, resp["ETag"])
    listed = s3s.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("k", size, resp["ETag"])]


def test_ssec_two_keys_two_objects(s3s, bucket):
    """The ETag of an SSE-C object does not let anyone check a guess of the plaintext,
    and two keys give two objects that each only their own key reads."""
    data = plain(20_000, "sse-c-two-keys")
    e1 = _put(s3s, bucket, "one", data, SSEC1)["ETag"]
    e2 = _put(s3s, bucket, "two", data, SSEC2)["ETag"]
    SSEC1.check_etag(e1, data)
    SSEC2.check_etag(e2, data)
    _check_object(s3s, bucket, "one", data, SSEC1)
    _check_object(s3s, bucket, "two", data, SSEC2)
    assert _err(s3s.get_object, Bucket=bucket, Key="one", **SSEC2.read) == ("AccessDenied", 403)
    assert _err(s3s.get_object, Bucket=bucket, Key="two", **SSEC1.read) == ("AccessDenied", 403)


# Reads (GET, HEAD) of an SSE-C object with faulty SSE-C input: (parameters, code, status).
SSEC_READ_ERRORS = {
    "no-headers": ({}, "InvalidRequest", 400),
    "wrong-key": (ssec_args(K2), "AccessDenied", 403),
    "md5-of-another-key": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": b64(K1),
                            "SSECustomerKeyMD5": md5_b64(K2)}, "InvalidArgument", 400),
    "key-16-bytes": (ssec_args(K1[:16]), "InvalidArgument", 400),
    "key-33-bytes": (ssec_args(K1 + b"!"), "InvalidArgument", 400),
    "key-not-base64": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "not*base64*at*all!",
                        "SSECustomerKeyMD5": md5_b64(K1)}, "InvalidArgument", 400),
    "algorithm-aes128": ({"SSECustomerAlgorithm": "AES128", "SSECustomerKey": K1},
                         "InvalidEncryptionAlgorithmError", 400),
    "key-without-algorithm": ({"SSECustomerKey": K1}, "InvalidArgument", 400),
    "algorithm-without-key": ({"SSECustomerAlgorithm": "AES256"}, "InvalidArgument", 400),
}


@pytest.mark.parametrize("case", list(SSEC_READ_ERRORS))
def test_ssec_read_errors(s3s, bucket, case):
    params, code, status = SSEC_READ_ERRORS[case]
    data = plain(70_000, "sse-c-read-errors")
    _put(s3s, bucket, "k", data, SSEC1)
    assert _err(s3s.get_object, Bucket=bucket, Key="k", **params) == (code, status)
    assert _err(s3s.get_object, Bucket=bucket, Key="k", Range="bytes=0-99", **params) == (code, status)
    assert _status(s3s.head_object, Bucket=bucket, Key="k", **params) == status
    assert _read(s3s, bucket, "k", SSEC1)[0] == data  # the right key still reads it


@pytest.mark.parametrize("enc", [CLEAR, SSE_S3, KMS_TEST], ids=repr)
def test_ssec_headers_on_object_that_is_not_ssec(s3s, bucket, enc):
    data = plain(70_000, "not-sse-c")
    _put(s3s, bucket, "k", data, enc)
    assert _err(s3s.get_object, Bucket=bucket, Key="k", **ssec_args(K1)) == ("InvalidRequest", 400)
    assert _status(s3s.head_object, Bucket=bucket, Key="k", **ssec_args(K1)) == 400
    _check_object(s3s, bucket, "k", data, enc)


def test_ssec_refused_over_plain_http(s3, s3s, bucket):
    """No X-Forwarded-Proto: plain HTTP; SSE-C writes and reads are refused
    (InvalidRequest), the write stores nothing, and the key never travels in vain."""
    data = plain(70_000, "sse-c-plain-http")
    assert _err(s3.put_object, Bucket=bucket, Key="new", Body=data, **ssec_args(K1)) == ("InvalidRequest", 400)
    assert _absent(s3, bucket, "new")
    _put(s3s, bucket, "k", data, SSEC1)
    assert _err(s3.get_object, Bucket=bucket, Key="k", **ssec_args(K1)) == ("InvalidRequest", 400)
    assert _status(s3.head_object, Bucket=bucket, Key="k", **ssec_args(K1)) == 400
    assert _err(s3.create_multipart_upload, Bucket=bucket, Key="mpu", **ssec_args(K1)) == ("InvalidRequest", 400)
    assert open_uploads(s3, bucket) == []
    assert _read(s3s, bucket, "k", SSEC1)[0] == data


def test_ssec_forwarded_proto_over_http(server, bucket):
    """A client on plain HTTP saying X-Forwarded-Proto: https. Straight to a node
    that trusts its peer as a proxy (127.0.0.1), that is the proxy's word and SSE-C
    works; through the
    cluster's nginx, nginx overwrites the header with the real scheme (http) and
    the request is refused. (The header is added after signing, unsigned, as a
    proxy adds it: it is not an x-amz-* header.)"""
    client = _client(server.endpoint, True, False)
    client.meta.events.register(
        "before-send.s3", lambda request, **kw: request.headers.__setitem__("X-Forwarded-Proto", "https"))
    data = plain(70_000, "sse-c-forwarded-proto")
    try:
        if getattr(server, "proxied", False):
            assert _err(client.put_object, Bucket=bucket, Key="k", Body=data,
                        **ssec_args(K1)) == ("InvalidRequest", 400)
            assert _absent(client, bucket, "k")
        else:
            SSEC1.check(_put(client, bucket, "k", data, SSEC1))
            _check_object(client, bucket, "k", data, SSEC1)
    finally:
        client._endpoint.http_session.close()


def test_ssec_forwarded_proto_http_refused(server, bucket):
    client = _client(server.endpoint, True, False)
    client.meta.events.register(
        "before-sign.s3", lambda request, **kw: request.headers.__setitem__("X-Forwarded-Proto", "http"))
    try:
        assert _err(client.put_object, Bucket=bucket, Key="k", Body=b"secret",
                    **ssec_args(K1)) == ("InvalidRequest", 400)
        assert _absent(client, bucket, "k")
    finally:
        client._endpoint.http_session.close()


@pytest.mark.direct_only  # the cluster's SSE-C tests all go through its nginx's HTTPS port
def test_ssec_through_tls_proxy(request, server, bucket):
    """Real TLS: nginx in front of the server sets X-Forwarded-Proto: https; boto3
    needs no hook."""
    url, ca_bundle = request.getfixturevalue("tls_endpoint")
    client = _client(url, ca_bundle, False)
    data = plain(200_000, "sse-c-tls")
    try:
        resp = _put(client, bucket, "k", data, SSEC1)
        SSEC1.check(resp)
        _check_object(client, bucket, "k", data, SSEC1, resp["ETag"])
        assert _err(client.get_object, Bucket=bucket, Key="k", **SSEC2.read) == ("AccessDenied", 403)
    finally:
        client._endpoint.http_session.close()


# -- refused writes store nothing ----------------------------------------------------------------

# PutObject parameters that must be refused: (parameters, code, status).
BAD_WRITES = {
    "sse-invalid-value": ({"ServerSideEncryption": "AES512"}, "InvalidArgument", 400),
    "sse-kms-unknown-key": ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "no-such-key"},
                            "KMS.NotFoundException", 400),
    "kms-key-id-without-kms": ({"SSEKMSKeyId": "test-key"}, "InvalidArgument", 400),
    "kms-key-id-with-sse-s3": ({"ServerSideEncryption": "AES256", "SSEKMSKeyId": "test-key"},
                               "InvalidArgument", 400),
    "kms-context-not-base64": ({"ServerSideEncryption": "aws:kms", "SSEKMSEncryptionContext": "{not base64}"},
                               "InvalidArgument", 400),
    "kms-context-not-json": ({"ServerSideEncryption": "aws:kms", "SSEKMSEncryptionContext": b64(b"plain words")},
                             "InvalidArgument", 400),
    "kms-context-json-array": ({"ServerSideEncryption": "aws:kms",
                                "SSEKMSEncryptionContext": b64(b'["project", "bleep"]')}, "InvalidArgument", 400),
    "kms-context-non-string-value": ({"ServerSideEncryption": "aws:kms",
                                      "SSEKMSEncryptionContext": b64(b'{"answer": 42}')}, "InvalidArgument", 400),
    "dsse": ({"ServerSideEncryption": "aws:kms:dsse"}, "NotImplemented", 501),
    "ssec-md5-of-another-key": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": b64(K1),
                                 "SSECustomerKeyMD5": md5_b64(K2)}, "InvalidArgument", 400),
    "ssec-key-16-bytes": (ssec_args(K1[:16]), "InvalidArgument", 400),
    "ssec-key-not-base64": ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "not*base64*at*all!",
                             "SSECustomerKeyMD5": md5_b64(K1)}, "InvalidArgument", 400),
    "ssec-algorithm-aes128": ({"SSECustomerAlgorithm": "AES128", "SSECustomerKey": K1},
                              "InvalidEncryptionAlgorithmError", 400),
    "ssec-key-without-algorithm": ({"SSECustomerKey": K1}, "InvalidArgument", 400),
    "ssec-algorithm-without-key": ({"SSECustomerAlgorithm": "AES256"}, "InvalidArgument", 400),
    "ssec-with-sse-s3": ({"ServerSideEncryption": "AES256", **ssec_args(K1)}, "InvalidArgument", 400),
    "ssec-with-kms": ({"ServerSideEncryption": "aws:kms", **ssec_args(K1)}, "InvalidArgument", 400),
    "ssec-over-plain-http": (ssec_args(K1), "InvalidRequest", 400),
}


def _client_for(case: str, s3, s3s):
    return s3 if case.endswith("plain-http") else s3s


@pytest.mark.parametrize("existing", [False, True], ids=["new-key", "existing-key"])
@pytest.mark.parametrize("case", list(BAD_WRITES))
def test_refused_put_stores_nothing(s3, s3s, bucket, case, existing):
    params, code, status = BAD_WRITES[case]
    client = _client_for(case, s3, s3s)
    original = plain(70_000, "victim-original")
    if existing:
        etag = _put(s3, bucket, "victim", original, SSE_S3, Metadata={"v": "1"})["ETag"]
    attacker = plain(70_000, "attacker-overwrite")
    assert _err(client.put_object, Bucket=bucket, Key="victim", Body=attacker, **params) == (code, status)
    if not existing:
        assert _absent(s3, bucket, "victim")
        assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []
        return
    got = s3.get_object(Bucket=bucket, Key="victim")
    assert got["Body"].read() == original
    assert (got["ETag"], got["Metadata"]) == (etag, {"v": "1"})
    SSE_S3.check(got)


@pytest.mark.parametrize("case", ["sse-invalid-value", "sse-kms-unknown-key", "kms-key-id-without-kms", "dsse",
                                  "ssec-md5-of-another-key", "ssec-with-sse-s3", "ssec-over-plain-http"])
def test_refused_copy_stores_nothing(s3, s3s, bucket, case):
    params, code, status = BAD_WRITES[case]
    client = _client_for(case, s3, s3s)
    source, original = plain(70_000, "copy-source"), plain(2000, "copy-victim")
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    etag = s3.put_object(Bucket=bucket, Key="victim", Body=original)["ETag"]
    for dst in ("victim", "new"):
        assert _err(client.copy_object, Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": "src"},
                    **params) == (code, status)
    assert _absent(s3, bucket, "new")
    got = s3.get_object(Bucket=bucket, Key="victim")
    assert (got["Body"].read(), got["ETag"]) == (original, etag)
    CLEAR.check(got)


@pytest.mark.parametrize("case", ["sse-invalid-value", "sse-kms-unknown-key", "kms-context-not-json", "dsse",
                                  "ssec-key-16-bytes", "ssec-with-kms", "ssec-over-plain-http"])
def test_refused_create_multipart_upload_opens_nothing(s3, s3s, mbucket, case):
    params, code, status = BAD_WRITES[case]
    client = _client_for(case, s3, s3s)
    assert _err(client.create_multipart_upload, Bucket=mbucket, Key="k", **params) == (code, status)
    assert open_uploads(s3, mbucket) == []


# -- the attacker and presigned URLs ---------------------------------------------------------

def _not_signed(resp: requests.Response, names) -> None:
    assert resp.status_code == 403, (resp.status_code, resp.content[:500])
    fields = error_of(resp)
    assert fields.get("Code") == "AccessDenied", fields
    assert set(fields.get("HeadersNotSigned", "").split(", ")) == set(names), fields


@pytest.mark.parametrize("enc", [SSEC1, CLEAR, SSE_S3], ids=repr)
def test_presigned_get_with_unsigned_ssec_headers_refused(s3s, presigner, secure, bucket, enc):
    """A presigned GET made without SSE-C parameters; its holder adds SSE-C headers.
    Every x-amz-* header must be signed: 403 HeadersNotSigned, and no byte of the
    object comes back."""
    _, verify, forwarded = secure
    data = plain(70_000, "presigned-get")
    _put(s3s, bucket, "k", data, enc)
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.get(url, headers={**forwarded, **ssec_raw(K1)}, verify=verify, timeout=60)
    _not_signed(resp, SSEC_HEADERS)
    assert data[:40] not in resp.content
    plain_get = requests.get(url, headers=forwarded, verify=verify, timeout=60)
    if enc is SSEC1:  # without the key an SSE-C object is not served
        assert plain_get.status_code == 400, plain_get.content[:300]
        assert error_of(plain_get)["Code"] == "InvalidRequest"
        assert data[:40] not in plain_get.content
    else:
        assert plain_get.status_code == 200 and plain_get.content == data


def test_presigned_get_with_signed_ssec_headers(s3s, presigner, secure, bucket):
    """A presigned GET made with SSE-C parameters signs the SSE-C headers: its holder
    must send them, with exactly the key signed."""
    _, verify, forwarded = secure
    data = plain(70_000, "presigned-signed-ssec")
    _put(s3s, bucket, "k", data, SSEC1)
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k", **SSEC1.read},
                                           ExpiresIn=300)
    assert "x-amz-server-side-encryption-customer-key" in url  # in X-Amz-SignedHeaders
    ok = requests.get(url, headers={**forwarded, **ssec_raw(K1)}, verify=verify, timeout=60)
    assert ok.status_code == 200, ok.content[:300]
    assert ok.content == data
    assert ok.headers.get("x-amz-server-side-encryption-customer-key-md5") == md5_b64(K1)
    for headers in ({}, ssec_raw(K2)):  # a signed header missing, or another key than the one signed
        resp = requests.get(url, headers={**forwarded, **headers}, verify=verify, timeout=60)
        assert resp.status_code == 403, resp.content[:300]
        assert data[:40] not in resp.content


@pytest.mark.parametrize("added", ["sse-c", "sse-kms", "sse-s3"])
def test_presigned_put_with_unsigned_encryption_headers_refused(s3, presigner, secure, bucket, added):
    """A presigned PUT made without encryption; its holder adds SSE headers (e.g. to
    lock the owner out with a key of their own): refused, nothing stored, the object
    already there unchanged. The URL itself works."""
    _, verify, forwarded = secure
    headers = {"sse-c": ssec_raw(K2),
               "sse-kms": {"x-amz-server-side-encryption": "aws:kms",
                           "x-amz-server-side-encryption-aws-kms-key-id": "other-key"},
               "sse-s3": {"x-amz-server-side-encryption": "AES256"}}[added]
    original = plain(3000, "presigned-put-original")
    etag = s3.put_object(Bucket=bucket, Key="have", Body=original)["ETag"]
    attacker = plain(3000, "presigned-put-attacker")
    for key in ("have", "new"):
        url = presigner.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        resp = requests.put(url, data=attacker, headers={**forwarded, **headers}, verify=verify, timeout=60)
        _not_signed(resp, headers)
    assert _absent(s3, bucket, "new")
    got = s3.get_object(Bucket=bucket, Key="have")
    assert (got["Body"].read(), got["ETag"]) == (original, etag)
    CLEAR.check(got)
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "new"}, ExpiresIn=300)
    ok = requests.put(url, data=attacker, headers=forwarded, verify=verify, timeout=60)
    assert ok.status_code == 200, ok.content[:300]
    got = s3.get_object(Bucket=bucket, Key="new")
    assert got["Body"].read() == attacker
    CLEAR.check(got)


# -- bucket default encryption -------------------------------------------------------------------

def _config(algorithm: str, key_id: str | None = None, bucket_key: bool | None = None) -> dict:
    default = {"SSEAlgorithm": algorithm, **({"KMSMasterKeyID": key_id} if key_id else {})}
    rule = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return {"Rules": [rule]}


def _rule(s3, bucket) -> dict:
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert len(rules) == 1, rules
    return rules[0]


def _kms_rule(rule: dict, key_id: str | None, enc: Enc) -> None:
    """An aws:kms default names its key as configured or as that key's ARN (the spec
    does not say which; either names the same key)."""
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert default.get("SSEAlgorithm") == "aws:kms", rule
    if key_id is None:
        assert default.get("KMSMasterKeyID") in (None, "", MANAGED_ARN, "alias/aws/s3"), rule
    else:
        assert default.get("KMSMasterKeyID") in (key_id, enc.arn), rule
    assert set(default) <= {"SSEAlgorithm", "KMSMasterKeyID"}, rule


def _no_config(s3, bucket) -> bool:
    return _err(s3.get_bucket_encryption, Bucket=bucket) == ("ServerSideEncryptionConfigurationNotFoundError", 404)


def test_bucket_encryption_put_get_delete(s3, bucket):
    assert _no_config(s3, bucket)
    before = plain(1000, "before-default")
    s3.put_object(Bucket=bucket, Key="before", Body=before)
    resp = s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("AES256"))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    rule = _rule(s3, bucket)
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert not rule.get("BucketKeyEnabled")

    data = plain(70_000, "default-sse-s3")
    resp = s3.put_object(Bucket=bucket, Key="during", Body=data)
    SSE_S3.check(resp)
    assert resp["ETag"] == md5_etag(data)
    _check_object(s3, bucket, "during", data, SSE_S3, md5_etag(data))
    _check_object(s3, bucket, "before", before, CLEAR)  # existing objects are left as they are

    resp = s3.delete_bucket_encryption(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _no_config(s3, bucket)
    after = plain(1000, "after-default")
    CLEAR.check(s3.put_object(Bucket=bucket, Key="after", Body=after))
    _check_object(s3, bucket, "after", after, CLEAR)
    _check_object(s3, bucket, "during", data, SSE_S3)
    assert s3.delete_bucket_encryption(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_bucket_encryption_replaced(s3, bucket):
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("AES256"))
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("aws:kms", "other-key"))
    _kms_rule(_rule(s3, bucket), "other-key", KMS_OTHER)
    data = plain(5000, "replaced-default")
    KMS_OTHER.check(s3.put_object(Bucket=bucket, Key="k", Body=data))
    _check_object(s3, bucket, "k", data, KMS_OTHER)


@pytest.mark.parametrize("key_id, enc", [("test-key", KMS_TEST), (kms_arn("other-key"), KMS_OTHER),
                                         ("alias/test-key", KMS_TEST), (None, KMS_MANAGED)],
                         ids=["name", "arn", "alias", "managed"])
@pytest.mark.parametrize("bucket_key", [False, True], ids=["plain", "bucket-key"])
def test_bucket_encryption_kms_default(s3, bucket, key_id, enc, bucket_key):
    s3.put_bucket_encryption(Bucket=bucket,
                             ServerSideEncryptionConfiguration=_config("aws:kms", key_id, bucket_key or None))
    rule = _rule(s3, bucket)
    _kms_rule(rule, key_id, enc)
    assert bool(rule.get("BucketKeyEnabled")) is bucket_key
    data = plain(70_000, "default-kms")
    resp = s3.put_object(Bucket=bucket, Key="k", Body=data)
    enc.check(resp, bucket_key)
    enc.check_etag(resp["ETag"], data)
    _check_object(s3, bucket, "k", data, enc, resp["ETag"], bucket_key)


def test_bucket_default_applies_to_copy_object(s3, bucket):
    data = plain(70_000, "default-copy")
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("aws:kms", "test-key"))
    resp = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    KMS_TEST.check(resp)
    KMS_TEST.check_etag(resp["CopyObjectResult"]["ETag"], data)
    _check_object(s3, bucket, "dst", data, KMS_TEST, resp["CopyObjectResult"]["ETag"])
    _check_object(s3, bucket, "src", data, CLEAR, md5_etag(data))


def test_bucket_default_applies_to_multipart_upload(s3, mbucket):
    s3.put_bucket_encryption(Bucket=mbucket, ServerSideEncryptionConfiguration=_config("AES256"))
    parts = [plain(PART, "default-mpu-1"), plain(70_001, "default-mpu-2")]
    create = s3.create_multipart_upload(Bucket=mbucket, Key="k")
    SSE_S3.check(create)
    done = []
    for n, body in enumerate(parts, 1):
        resp = s3.upload_part(Bucket=mbucket, Key="k", UploadId=create["UploadId"], PartNumber=n, Body=body)
        SSE_S3.check(resp)
        assert resp["ETag"] == md5_etag(body)
        done.append({"PartNumber": n, "ETag": resp["ETag"]})
    resp = s3.complete_multipart_upload(Bucket=mbucket, Key="k", UploadId=create["UploadId"],
                                        MultipartUpload={"Parts": done})
    SSE_S3.check(resp)
    assert resp["ETag"] == f'"{multipart_etag(parts)}"'
    _check_object(s3, mbucket, "k", b"".join(parts), SSE_S3, resp["ETag"])


@pytest.mark.parametrize("default, explicit", [
    (_config("aws:kms", "test-key"), SSE_S3),
    (_config("AES256"), KMS_OTHER),
    (_config("AES256"), SSEC1),
    (_config("aws:kms", "test-key", True), SSEC2),
], ids=["sse-s3-over-kms", "kms-over-sse-s3", "sse-c-over-sse-s3", "sse-c-over-kms"])
def test_bucket_default_explicit_headers_win(s3, s3s, mbucket, default, explicit):
    data = plain(70_000, "explicit-wins")
    s3s.put_object(Bucket=mbucket, Key="src", Body=data)  # before the default: unencrypted
    s3.put_bucket_encryption(Bucket=mbucket, ServerSideEncryptionConfiguration=default)
    explicit.check(_put(s3s, mbucket, "put", data, explicit))
    _check_object(s3s, mbucket, "put", data, explicit)
    resp = s3s.copy_object(Bucket=mbucket, Key="copy", CopySource={"Bucket": mbucket, "Key": "src"},
                           **explicit.write)
    explicit.check(resp)
    _check_object(s3s, mbucket, "copy", data, explicit)
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="mpu", **explicit.write)
    explicit.check(create)
    part = s3s.upload_part(Bucket=mbucket, Key="mpu", UploadId=create["UploadId"], PartNumber=1, Body=data,
                           **explicit.read)
    explicit.check(part)
    done = s3s.complete_multipart_upload(Bucket=mbucket, Key="mpu", UploadId=create["UploadId"],
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
                                         **explicit.read)
    explicit.check(done)
    _check_object(s3s, mbucket, "mpu", data, explicit)


def test_bucket_encryption_owner_only(s3, s3_other, bucket):
    assert _err(s3_other.get_bucket_encryption, Bucket=bucket) == ("AccessDenied", 403)
    assert _err(s3_other.put_bucket_encryption, Bucket=bucket,
                ServerSideEncryptionConfiguration=_config("aws:kms", "other-key")) == ("AccessDenied", 403)
    assert _no_config(s3, bucket)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("AES256"))
    assert _err(s3_other.get_bucket_encryption, Bucket=bucket) == ("AccessDenied", 403)
    assert _err(s3_other.put_bucket_encryption, Bucket=bucket,
                ServerSideEncryptionConfiguration=_config("aws:kms", "other-key")) == ("AccessDenied", 403)
    assert _err(s3_other.delete_bucket_encryption, Bucket=bucket) == ("AccessDenied", 403)
    assert _rule(s3, bucket)["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    SSE_S3.check(s3.put_object(Bucket=bucket, Key="k", Body=b"still the owner's default"))


def test_bucket_encryption_no_such_bucket(s3):
    name = "no-such-" + uuid.uuid4().hex[:16]
    assert _err(s3.get_bucket_encryption, Bucket=name) == ("NoSuchBucket", 404)
    assert _err(s3.put_bucket_encryption, Bucket=name,
                ServerSideEncryptionConfiguration=_config("AES256")) == ("NoSuchBucket", 404)


BAD_CONFIGS = {
    "unknown-kms-key": (_config("aws:kms", "no-such-key"), {"KMS.NotFoundException", "InvalidArgument"}),
    "two-rules": ({"Rules": _config("AES256")["Rules"] + _config("aws:kms", "test-key")["Rules"]},
                  {"MalformedXML", "InvalidArgument"}),
    "bad-algorithm": (_config("AES512"), {"MalformedXML", "InvalidArgument"}),
}


@pytest.mark.parametrize("existing", [False, True], ids=["no-config", "config-kept"])
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bucket_encryption_invalid_config_refused(s3, bucket, case, existing):
    config, codes = BAD_CONFIGS[case]
    if existing:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_config("aws:kms", "other-key"))
    code, status = _err(s3.put_bucket_encryption, Bucket=bucket, ServerSideEncryptionConfiguration=config)
    assert status == 400 and code in codes, (code, status)
    if existing:
        _kms_rule(_rule(s3, bucket), "other-key", KMS_OTHER)
        KMS_OTHER.check(s3.put_object(Bucket=bucket, Key="k", Body=b"x"))
    else:
        assert _no_config(s3, bucket)
        CLEAR.check(s3.put_object(Bucket=bucket, Key="k", Body=b"x"))


# -- CopyObject ----------------------------------------------------------------------------------

COPY_PAIRS = [(CLEAR, SSE_S3), (SSE_S3, CLEAR), (SSEC1, SSEC2), (SSEC1, SSE_S3), (KMS_TEST, SSE_S3),
              (SSE_S3, KMS_TEST), (KMS_TEST, KMS_OTHER), (CLEAR, SSEC1), (SSEC1, CLEAR), (SSEC2, KMS_MANAGED),
              (SSE_S3, SSEC1), (KMS_OTHER, SSEC2)]


@pytest.mark.parametrize("size", [1000, 200_000], ids=["inline", "file"])
@pytest.mark.parametrize("src, dst", COPY_PAIRS, ids=[f"{a!r}-to-{b!r}" for a, b in COPY_PAIRS])
def test_copy_object_across_encryption(s3s, bucket, src, dst, size):
    """The destination is encrypted as the copy request says, never as the source
    was; the plaintext is byte-exact."""
    data = plain(size, f"copy-{src.label}")
    _put(s3s, bucket, "src", data, src)
    resp = s3s.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                           **src.source, **dst.write)
    dst.check(resp)
    etag = resp["CopyObjectResult"]["ETag"]
    dst.check_etag(etag, data)
    _check_object(s3s, bucket, "dst", data, dst, etag)
    _check_object(s3s, bucket, "src", data, src)  # the source is untouched
    if src.mode == "sse-c" and dst.mode == "sse-c":
        assert _err(s3s.get_object, Bucket=bucket, Key="dst", **src.read) == ("AccessDenied", 403)


def test_copy_object_ssec_source_errors(s3, s3s, bucket):
    data = plain(70_000, "copy-sse-c-source")
    _put(s3s, bucket, "src", data, SSEC1)
    s3s.put_object(Bucket=bucket, Key="clear", Body=data)
    src = {"Bucket": bucket, "Key": "src"}
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src) == ("InvalidRequest", 400)
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                **ssec_args(K2, "CopySource")) == ("AccessDenied", 403)
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=b64(K1),
                CopySourceSSECustomerKeyMD5=md5_b64(K2)) == ("InvalidArgument", 400)
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                **ssec_args(K1[:16], "CopySource")) == ("InvalidArgument", 400)
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src, CopySourceSSECustomerAlgorithm="AES128",
                CopySourceSSECustomerKey=K1) == ("InvalidEncryptionAlgorithmError", 400)
    # The source's key given as the destination's is not the copy source's key.
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource=src, **ssec_args(K1)) == ("InvalidRequest", 400)
    # Copy-source SSE-C headers for a source that is not SSE-C.
    assert _err(s3s.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "clear"},
                **ssec_args(K1, "CopySource")) == ("InvalidRequest", 400)
    # The right copy-source key, over plain HTTP.
    assert _err(s3.copy_object, Bucket=bucket, Key="dst", CopySource=src,
                **ssec_args(K1, "CopySource")) == ("InvalidRequest", 400)
    assert _absent(s3s, bucket, "dst")


def test_copy_object_multipart_source_to_any_encryption(s3s, mbucket):
    """A three-part SSE-C source copied to every kind of destination."""
    parts = [plain(PART + 3, "mp-src-1"), plain(PART + 1, "mp-src-2"), plain(777, "mp-src-3")]
    data = b"".join(parts)
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="src", **SSEC1.write)
    done = [{"PartNumber": n, "ETag": s3s.upload_part(Bucket=mbucket, Key="src", UploadId=create["UploadId"],
                                                      PartNumber=n, Body=body, **SSEC1.read)["ETag"]}
            for n, body in enumerate(parts, 1)]
    s3s.complete_multipart_upload(Bucket=mbucket, Key="src", UploadId=create["UploadId"],
                                  MultipartUpload={"Parts": done}, **SSEC1.read)
    boundary = len(parts[0])
    for dst in (CLEAR, SSE_S3, KMS_TEST, SSEC2):
        key = f"dst-{dst.label}"
        resp = s3s.copy_object(Bucket=mbucket, Key=key, CopySource={"Bucket": mbucket, "Key": "src"},
                               **SSEC1.source, **dst.write)
        dst.check(resp)
        _check_object(s3s, mbucket, key, data, dst, resp["CopyObjectResult"]["ETag"])
        body, got = _read(s3s, mbucket, key, dst, Range=f"bytes={boundary - 100}-{boundary + 100}")
        assert body == data[boundary - 100:boundary + 101]
        assert got["ContentRange"] == f"bytes {boundary - 100}-{boundary + 100}/{len(data)}"


SELF_COPIES = [(CLEAR, SSE_S3), (SSE_S3, KMS_TEST), (SSE_S3, SSEC1), (SSEC1, SSEC2), (KMS_TEST, KMS_OTHER),
               (SSEC1, SSE_S3), (KMS_OTHER, SSE_S3)]


@pytest.mark.parametrize("src, dst", SELF_COPIES, ids=[f"{a!r}-to-{b!r}" for a, b in SELF_COPIES])
def test_copy_object_onto_itself_changing_encryption(s3s, bucket, src, dst):
    """Changing an object's encryption in place is a CopyObject onto itself: allowed
    (no "copy to itself" 400)."""
    data = plain(70_000, f"self-copy-{src.label}")
    _put(s3s, bucket, "k", data, src, Metadata={"kept": "yes"})
    resp = s3s.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
                           **src.source, **dst.write)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    dst.check(resp)
    dst.check_etag(resp["CopyObjectResult"]["ETag"], data)
    _check_object(s3s, bucket, "k", data, dst, resp["CopyObjectResult"]["ETag"])
    assert s3s.head_object(Bucket=bucket, Key="k", **dst.read)["Metadata"] == {"kept": "yes"}
    if src.mode == "sse-c":  # the old key opens nothing any more
        code = ("AccessDenied", 403) if dst.mode == "sse-c" else ("InvalidRequest", 400)
        assert _err(s3s.get_object, Bucket=bucket, Key="k", **src.read) == code


# -- versions ----------------------------------------------------------------------------------

def test_versions_keep_their_own_encryption(s3s, bucket):
    """Each version of a key is encrypted as its own write said; an SSE-C version
    needs its key whichever version is current."""
    s3s.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        v1, v2, v3 = plain(70_000, "version-1"), plain(2000, "version-2"), plain(90_000, "version-3")
        id1 = _put(s3s, bucket, "k", v1, SSEC1)["VersionId"]
        id2 = _put(s3s, bucket, "k", v2, KMS_TEST)["VersionId"]
        id3 = _put(s3s, bucket, "k", v3, SSE_S3)["VersionId"]
        _check_object(s3s, bucket, "k", v3, SSE_S3)
        body, got = _read(s3s, bucket, "k", SSEC1, VersionId=id1)
        assert body == v1
        SSEC1.check(got)
        assert _err(s3s.get_object, Bucket=bucket, Key="k", VersionId=id1) == ("InvalidRequest", 400)
        assert _err(s3s.get_object, Bucket=bucket, Key="k", VersionId=id1, **ssec_args(K2)) == ("AccessDenied", 403)
        body, got = _read(s3s, bucket, "k", KMS_TEST, VersionId=id2)
        assert body == v2
        KMS_TEST.check(got)
        assert _err(s3s.get_object, Bucket=bucket, Key="k", VersionId=id3,
                    **ssec_args(K1)) == ("InvalidRequest", 400)
    finally:
        for v in s3s.list_object_versions(Bucket=bucket).get("Versions", []):
            s3s.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


# -- multipart -----------------------------------------------------------------------------------

@pytest.mark.parametrize("enc", [SSE_S3, KMS_TEST, SSEC1], ids=repr)
def test_multipart_encrypted_round_trip(s3s, mbucket, enc):
    parts = [plain(PART + 1, f"mpu-{enc.label}-1"), plain(CHUNK * 2 + 9, f"mpu-{enc.label}-2")]
    data = b"".join(parts)
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="k", ContentType="text/x-parts", **enc.write)
    enc.check(create)
    upload_id = create["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        resp = s3s.upload_part(Bucket=mbucket, Key="k", UploadId=upload_id, PartNumber=n, Body=body, **enc.read)
        enc.check(resp)
        enc.check_etag(resp["ETag"], body)
        done.append({"PartNumber": n, "ETag": resp["ETag"]})
    listed = s3s.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [
        (d["PartNumber"], len(b), d["ETag"]) for d, b in zip(done, parts)]
    resp = s3s.complete_multipart_upload(Bucket=mbucket, Key="k", UploadId=upload_id,
                                         MultipartUpload={"Parts": done}, **enc.read)
    enc.check(resp)
    etag = resp["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}-2"', etag), etag
    if enc.mode == "sse-s3":
        assert etag == f'"{multipart_etag(parts)}"'
    _check_object(s3s, mbucket, "k", data, enc, etag)
    assert s3s.head_object(Bucket=mbucket, Key="k", **enc.read)["ContentType"] == "text/x-parts"
    listed = s3s.list_objects_v2(Bucket=mbucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("k", len(data), etag)]

    offset = 0
    for n, body in enumerate(parts, 1):
        got, resp = _read(s3s, mbucket, "k", enc, PartNumber=n)
        assert got == body, n
        assert resp["PartsCount"] == 2
        assert resp["ContentRange"] == f"bytes {offset}-{offset + len(body) - 1}/{len(data)}"
        enc.check(resp)
        head = s3s.head_object(Bucket=mbucket, Key="k", PartNumber=n, **enc.read)
        assert (head["ContentLength"], head["PartsCount"]) == (len(body), 2)
        offset += len(body)

    p1 = len(parts[0])
    for first, last in [(p1 - 10, p1 + 10), (p1 - 1, p1), (p1 + CHUNK - 3, p1 + CHUNK + 3), (0, p1 + 5),
                        (PART - CHUNK - 1, PART - CHUNK + 1), (len(data) - 1, len(data) - 1)]:
        got, resp = _read(s3s, mbucket, "k", enc, Range=f"bytes={first}-{last}")
        assert got == data[first:last + 1], (first, last)
        assert resp["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
    got, _ = _read(s3s, mbucket, "k", enc, Range=f"bytes=-{len(parts[1]) + 50}")
    assert got == data[-(len(parts[1]) + 50):]


def test_multipart_ssec_part_key_mismatch(s3s, mbucket):
    data = plain(CHUNK + 5, "mpu-key-mismatch")
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="k", **SSEC1.write)
    upload_id = create["UploadId"]
    args = {"Bucket": mbucket, "Key": "k", "UploadId": upload_id, "PartNumber": 1, "Body": data}
    assert _err(s3s.upload_part, **args, **ssec_args(K2)) == ("AccessDenied", 403)
    assert _err(s3s.upload_part, **args) == ("InvalidRequest", 400)
    assert _err(s3s.upload_part, **args, SSECustomerAlgorithm="AES256", SSECustomerKey=b64(K1),
                SSECustomerKeyMD5=md5_b64(K2)) == ("InvalidArgument", 400)
    assert s3s.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id).get("Parts", []) == []
    plain_http = _client(s3s.meta.endpoint_url, True, False) if s3s.meta.endpoint_url.startswith("http:") else None
    if plain_http is not None:  # the right key over plain HTTP
        try:
            assert _err(plain_http.upload_part, **args, **SSEC1.read) == ("InvalidRequest", 400)
        finally:
            plain_http._endpoint.http_session.close()
        assert s3s.list_parts(Bucket=mbucket, Key="k", UploadId=upload_id).get("Parts", []) == []
    resp = s3s.upload_part(**args, **SSEC1.read)
    SSEC1.check(resp)
    # A second try with the wrong key does not replace the part that is there.
    assert _err(s3s.upload_part, **dict(args, Body=plain(100, "intruder")), **ssec_args(K2)) == ("AccessDenied", 403)
    done = s3s.complete_multipart_upload(Bucket=mbucket, Key="k", UploadId=upload_id, **SSEC1.read,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": resp["ETag"]}]})
    SSEC1.check(done)
    _check_object(s3s, mbucket, "k", data, SSEC1, done["ETag"])
    assert _err(s3s.get_object, Bucket=mbucket, Key="k", **ssec_args(K2)) == ("AccessDenied", 403)
    assert _err(s3s.get_object, Bucket=mbucket, Key="k", PartNumber=1) == ("InvalidRequest", 400)


UPC_SOURCES = [SSE_S3, KMS_TEST, SSEC1]
UPC_DESTS = [CLEAR, SSE_S3, SSEC2]


@pytest.mark.parametrize("dst", UPC_DESTS, ids=repr)
@pytest.mark.parametrize("src", UPC_SOURCES, ids=repr)
def test_upload_part_copy_from_encrypted_source(s3s, mbucket, src, dst):
    data = plain(200_000, f"upc-{src.label}")
    _put(s3s, mbucket, "src", data, src)
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="dst", **dst.write)
    dst.check(create)
    first, last = CHUNK - 7, 3 * CHUNK + 7
    resp = s3s.upload_part_copy(Bucket=mbucket, Key="dst", UploadId=create["UploadId"], PartNumber=1,
                                CopySource={"Bucket": mbucket, "Key": "src"}, CopySourceRange=f"bytes={first}-{last}",
                                **src.source, **dst.read)
    dst.check(resp)
    expected = data[first:last + 1]
    dst.check_etag(resp["CopyPartResult"]["ETag"], expected)
    done = s3s.complete_multipart_upload(Bucket=mbucket, Key="dst", UploadId=create["UploadId"], **dst.read,
                                         MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                     "ETag": resp["CopyPartResult"]["ETag"]}]})
    dst.check(done)
    _check_object(s3s, mbucket, "dst", expected, dst, done["ETag"])


def test_upload_part_copy_whole_multipart_ssec_source(s3s, mbucket):
    """UploadPartCopy of a whole two-part SSE-C object as part 1 of an SSE-S3 upload,
    then an SSE-KMS object's range as part 2."""
    parts = [plain(PART + 11, "upc-mp-1"), plain(CHUNK + 1, "upc-mp-2")]
    create = s3s.create_multipart_upload(Bucket=mbucket, Key="src", **SSEC1.write)
    done = [{"PartNumber": n, "ETag": s3s.upload_part(Bucket=mbucket, Key="src", UploadId=create["UploadId"],
                                                      PartNumber=n, Body=body, **SSEC1.read)["ETag"]}
            for n, body in enumerate(parts, 1)]
    s3s.complete_multipart_upload(Bucket=mbucket, Key="src", UploadId=create["UploadId"],
                                  MultipartUpload={"Parts": done}, **SSEC1.read)
    tail = plain(90_000, "upc-kms-tail")
    _put(s3s, mbucket, "tail", tail, KMS_TEST)
    upload = s3s.create_multipart_upload(Bucket=mbucket, Key="dst", **SSE_S3.write)["UploadId"]
    args = {"Bucket": mbucket, "Key": "dst", "UploadId": upload}
    assert _err(s3s.upload_part_copy, **args, PartNumber=1,
                CopySource={"Bucket": mbucket, "Key": "src"}) == ("InvalidRequest", 400)
    assert _err(s3s.upload_part_copy, **args, PartNumber=1, CopySource={"Bucket": mbucket, "Key": "src"},
                **ssec_args(K2, "CopySource")) == ("AccessDenied", 403)
    one = s3s.upload_part_copy(**args, PartNumber=1, CopySource={"Bucket": mbucket, "Key": "src"}, **SSEC1.source)
    SSE_S3.check(one)
    two = s3s.upload_part_copy(**args, PartNumber=2, CopySource={"Bucket": mbucket, "Key": "tail"},
                               CopySourceRange="bytes=1000-70000")
    SSE_S3.check(two)
    source, piece = b"".join(parts), tail[1000:70001]
    assert one["CopyPartResult"]["ETag"] == md5_etag(source)
    assert two["CopyPartResult"]["ETag"] == md5_etag(piece)
    out = s3s.complete_multipart_upload(**args, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": one["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": two["CopyPartResult"]["ETag"]}]})
    SSE_S3.check(out)
    assert out["ETag"] == f'"{multipart_etag([source, piece])}"'
    _check_object(s3s, mbucket, "dst", source + piece, SSE_S3, out["ETag"])
    assert _read(s3s, mbucket, "dst", SSE_S3, PartNumber=2)[0] == piece


def test_upload_part_copy_into_ssec_upload_needs_its_key(s3s, mbucket):
    data = plain(70_000, "upc-dest-key")
    s3s.put_object(Bucket=mbucket, Key="src", Body=data)
    upload = s3s.create_multipart_upload(Bucket=mbucket, Key="dst", **SSEC1.write)["UploadId"]
    args = {"Bucket": mbucket, "Key": "dst", "UploadId": upload, "PartNumber": 1,
            "CopySource": {"Bucket": mbucket, "Key": "src"}}
    assert _err(s3s.upload_part_copy, **args) == ("InvalidRequest", 400)
    assert _err(s3s.upload_part_copy, **args, **ssec_args(K2)) == ("AccessDenied", 403)
    assert s3s.list_parts(Bucket=mbucket, Key="dst", UploadId=upload).get("Parts", []) == []
    resp = s3s.upload_part_copy(**args, **SSEC1.read)
    SSEC1.check(resp)
    done = s3s.complete_multipart_upload(Bucket=mbucket, Key="dst", UploadId=upload, **SSEC1.read,
                                         MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                     "ETag": resp["CopyPartResult"]["ETag"]}]})
    _check_object(s3s, mbucket, "dst", data, SSEC1, done["ETag"])


# -- range reads ----------------------------------------------------------------------------------

RANGE_SIZES = [0, 1, 65535, 65536, 65537, 200_000, 3 * MiB + 5]


def _ranges(size: int) -> list[str]:
    """Ranges at the start, the end, the middle, suffixes, and on every side of the
    chunk boundaries (whole-object reads only a few times: the multi-MiB sizes
    would make the rest slow)."""
    if size == 0:
        return []
    out = {"bytes=0-0", f"bytes=0-{min(99, size - 1)}", f"bytes={size - 1}-{size - 1}", f"bytes={size - 1}-",
           "bytes=-1", f"bytes=-{min(100, size)}", f"bytes=0-{size - 1}", "bytes=0-", f"bytes=-{size + 10}",
           f"bytes={size // 3}-{2 * size // 3}", f"bytes={size // 2}-{size + 1000}"}
    last_edge = (size - 1) // CHUNK * CHUNK  # where the last (partial) chunk starts
    for edge in sorted({CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 3 * CHUNK + 7, 16 * CHUNK,
                        last_edge - 1, last_edge, last_edge + 1}):
        if not 0 < edge < size:
            continue
        out.add(f"bytes={edge}-{min(edge + 2, size - 1)}")
        if size - edge <= 4 * CHUNK:
            out.add(f"bytes={edge}-")
            out.add(f"bytes=-{size - edge}")
        if edge > 10 and edge + 10 < size:
            out.add(f"bytes={edge - 10}-{edge + 10}")
    if 2 * CHUNK < size:
        out.add(f"bytes={CHUNK - 1}-{2 * CHUNK}")  # one whole chunk and a byte either side
        out.add(f"bytes={CHUNK}-{2 * CHUNK - 1}")  # exactly one chunk
    return sorted(out)


def _expected(spec: str, size: int) -> tuple[int, int]:
    first, _, last = spec.removeprefix("bytes=").partition("-")
    if first == "":
        return max(0, size - int(last)), size - 1
    return int(first), min(int(last), size - 1) if last else size - 1


@pytest.mark.parametrize("enc", ENCRYPTED, ids=repr)
@pytest.mark.parametrize("size", RANGE_SIZES)
def test_range_reads(s3s, bucket, size, enc):
    data = plain(size, f"range-{size}")
    resp = _put(s3s, bucket, "k", data, enc)
    enc.check_etag(resp["ETag"], data)
    _check_object(s3s, bucket, "k", data, enc, resp["ETag"])
    for spec in _ranges(size):
        first, last = _expected(spec, size)
        got, resp = _read(s3s, bucket, "k", enc, Range=spec)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 206, spec
        assert got == data[first:last + 1], (spec, len(got), got[:40], data[first:first + 40])
        assert resp["ContentLength"] == last - first + 1, spec
        assert resp["ContentRange"] == f"bytes {first}-{last}/{size}", spec
        enc.check(resp)
    if size:
        assert _err(s3s.get_object, Bucket=bucket, Key="k", Range=f"bytes={size}-{size + 5}",
                    **enc.read) == ("InvalidRange", 416)
