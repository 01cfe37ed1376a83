"""Signed means signed: a request may not carry meaning its signature does not cover.

AWS S3 refuses a request with an ``x-amz-*`` header that the signature does not
cover: 403 AccessDenied, "There were headers present in the request which were
not signed", and a ``HeadersNotSigned`` element naming them (comma-separated,
lower case). The S3 API Reference ("Signature Calculations for the Authorization
Header", "Authenticating Requests: Using Query Parameters") requires every
``x-amz-*`` header to be in SignedHeaders / X-Amz-SignedHeaders; the canonical
query covers every query parameter of a SigV4 URL; SigV2 puts every ``x-amz-*``
header and every subresource into its string to sign.

Exemptions (AWS's, kept because their values are bound by the signature anyway):
``x-amz-content-sha256`` (the canonical request's payload line) and, for header
authentication, ``x-amz-date`` (the string to sign's date line). Headers that are
not ``x-amz-*`` (Content-Type, Content-MD5, Range, ``x-amzn-trace-id``...) may go
unsigned on a presigned URL, as on AWS: browsers add Content-Type to presigned PUTs.

Every refusal checks the error document and that nothing was stored or changed.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ..servers import ACCESS_KEY, SECRET_KEY
from .helpers import error_of, sign_headers, signed_request
from .support_issue4 import (ALL_USERS, SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER, ChunkSigner, checksum_b64,
                             encode_aws_chunked, presign_v4, utcnow)

NOT_SIGNED = "There were headers present in the request which were not signed"


# -- helpers ----------------------------------------------------------------------------------

def _refused(resp: requests.Response, code: str, status: int, resource: str) -> dict[str, str]:
    """A complete S3 error document: Code, Message, Resource and the RequestId of the response."""
    assert resp.status_code == status, (resp.status_code, resp.content[:600])
    fields = error_of(resp)
    assert fields.get("Code") == code, resp.content[:600]
    assert fields.get("Message"), fields
    assert fields.get("Resource") == resource, fields
    assert fields.get("RequestId") and fields["RequestId"] == resp.headers.get("x-amz-request-id"), fields
    return fields


def _not_signed(resp: requests.Response, resource: str, *names: str) -> None:
    fields = _refused(resp, "AccessDenied", 403, resource)
    assert fields["Message"] == NOT_SIGNED, fields
    assert fields.get("HeadersNotSigned", "").split(", ") == list(names), fields


def _keys(s3, bucket) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _public(s3, bucket, key=None) -> bool:
    acl = s3.get_object_acl(Bucket=bucket, Key=key) if key else s3.get_bucket_acl(Bucket=bucket)
    return any(g["Grantee"].get("URI") == ALL_USERS for g in acl["Grants"])


def _anonymous_get(server, bucket, key) -> int:
    return requests.get(f"{server.endpoint}/{bucket}/{quote(key)}", timeout=30).status_code


class _Raw:
    """The parts of a response _refused() reads, from a request sent byte for byte
    (requests would decode %75 to u in the URL, hiding the encoded-name probes)."""

    def __init__(self, status, headers, content):
        self.status_code, self.headers, self.content = status, headers, content


def _raw(server, method: str, url: str, body: bytes = b"") -> _Raw:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=body, headers={"Host": parts.netloc})
        resp = conn.getresponse()
        return _Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def _v2_client(server):
    """boto3's default presigner against a custom endpoint: SigV2 URLs."""
    return boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


class _Omitting(botocore.auth.S3SigV4Auth):
    """botocore's header signer, leaving some headers out of SignedHeaders (the payload
    hash and date still enter the canonical request and string to sign)."""

    omit: tuple[str, ...] = ()

    def headers_to_sign(self, request):
        headers = super().headers_to_sign(request)
        for name in self.omit:
            del headers[name]
        return headers


def _sign_omitting(server, method, path, omit, body=b""):
    host = f"127.0.0.1:{server.port}"
    req = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    signer = _Omitting(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1")
    signer.omit = omit
    signer.add_auth(req)
    listed = req.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert not set(omit) & set(listed), listed
    return dict(req.headers.items(), Host=host)


def _streaming(server, bucket, key, data, mode, *, signed_extra=None, added=None, trailer=None,
               declared=("x-amz-checksum-crc32",), sign_mode=None, send_mode=None):
    """PUT an aws-chunked body. ``signed_extra`` headers are signed, ``added`` ones are
    added after signing; ``trailer`` overrides the trailer lines sent; ``sign_mode``
    and ``send_mode`` let the signed and the sent x-amz-content-sha256 differ."""
    path = f"/{bucket}/{key}"
    host = f"127.0.0.1:{server.port}"
    lines = trailer if trailer is not None else (
        [("x-amz-checksum-crc32", checksum_b64("CRC32", data))] if mode.endswith("-TRAILER") else None)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    if declared and mode.endswith("-TRAILER"):
        headers["x-amz-trailer"] = ",".join(declared)
    headers.update(signed_extra or {})
    dummy = ChunkSigner("0" * 64, "20000101T000000Z")
    headers["Content-Length"] = str(len(encode_aws_chunked(data, mode, 4096, signer=dummy, trailer=lines)))
    signed = sign_headers("PUT", f"http://{host}{path}", headers=headers, payload_hash=sign_mode or mode)
    seed = signed["Authorization"].rsplit("Signature=", 1)[1]
    body = encode_aws_chunked(data, mode, 4096, signer=ChunkSigner(seed, signed["X-Amz-Date"]), trailer=lines)
    assert len(body) == int(headers["Content-Length"])
    if send_mode:
        signed["X-Amz-Content-SHA256"] = send_mode
    signed.update(added or {})
    signed["Host"] = host
    return requests.put(f"{server.endpoint}{path}", data=body, headers=signed, timeout=60)


# -- header-signed SigV4: an x-amz-* header added after signing ------------------------------------

def test_put_object_unsigned_acl_header_refused(server, s3, bucket):
    path = f"/{bucket}/k"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", body=b"data")
    headers["x-amz-acl"] = "public-read"
    resp = requests.put(f"{server.endpoint}{path}", data=b"data", headers=headers, timeout=30)
    _not_signed(resp, path, "x-amz-acl")
    assert _keys(s3, bucket) == []


def test_put_object_acl_unsigned_acl_header_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"private")
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}/{bucket}/k?acl")
    headers["x-amz-acl"] = "public-read"
    resp = requests.put(f"{server.endpoint}/{bucket}/k?acl", headers=headers, timeout=30)
    _not_signed(resp, f"/{bucket}/k", "x-amz-acl")
    assert not _public(s3, bucket, "k")
    assert _anonymous_get(server, bucket, "k") == 403


def test_put_object_unsigned_copy_source_refused_no_copy(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="dst", Body=b"mine")
    path = f"/{bucket}/dst"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}")
    headers["x-amz-copy-source"] = f"/{bucket}/private"
    headers["x-amz-acl"] = "public-read"
    resp = requests.put(f"{server.endpoint}{path}", headers=headers, timeout=30)
    _not_signed(resp, path, "x-amz-copy-source", "x-amz-acl")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"mine"
    assert not _public(s3, bucket, "dst")


@pytest.mark.parametrize("name,value", [
    ("x-amz-meta-owner", "mallory"), ("x-amz-storage-class", "STANDARD"), ("x-amz-security-token", "token"),
    ("x-amz-checksum-crc32", "AAAAAA=="), ("x-amz-sdk-checksum-algorithm", "CRC32"),
    ("X-AMZ-TAGGING", "a=b"),
])
def test_put_object_unsigned_amz_header_refused(server, s3, bucket, name, value):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    path = f"/{bucket}/k"
    headers = sign_headers("PUT", f"http://127.0.0.1:{server.port}{path}", body=b"new")
    headers[name] = value
    resp = requests.put(f"{server.endpoint}{path}", data=b"new", headers=headers, timeout=30)
    _not_signed(resp, path, name.lower())
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"old" and got["Metadata"] == {}


def test_get_object_unsigned_checksum_mode_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/{bucket}/k")
    headers["x-amz-checksum-mode"] = "ENABLED"
    _not_signed(requests.get(f"{server.endpoint}/{bucket}/k", headers=headers, timeout=30), f"/{bucket}/k",
                "x-amz-checksum-mode")


def test_delete_objects_unsigned_bypass_header_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    body = b'<Delete><Object><Key>k</Key></Object></Delete>'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    headers = sign_headers("POST", f"http://127.0.0.1:{server.port}/{bucket}?delete", body=body,
                           headers={"Content-MD5": md5})
    headers["x-amz-bypass-governance-retention"] = "true"
    resp = requests.post(f"{server.endpoint}/{bucket}?delete", data=body, headers=headers, timeout=30)
    _not_signed(resp, f"/{bucket}", "x-amz-bypass-governance-retention")
    assert _keys(s3, bucket) == ["k"]


def test_head_object_unsigned_amz_header_refused_without_body(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    headers = sign_headers("HEAD", f"http://127.0.0.1:{server.port}/{bucket}/k")
    headers["x-amz-checksum-mode"] = "ENABLED"
    resp = requests.head(f"{server.endpoint}/{bucket}/k", headers=headers, timeout=30)
    assert resp.status_code == 403 and resp.content == b""


def test_put_object_signed_amz_headers_accepted(server, s3, bucket):
    """The control: the same headers, signed, are honoured."""
    resp = signed_request(server, "PUT", f"/{bucket}/k", body=b"data",
                          headers={"x-amz-acl": "public-read", "x-amz-meta-a": "1"})
    assert resp.status_code == 200, resp.content
    assert _public(s3, bucket, "k") and s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {"a": "1"}


# -- header-signed SigV4: what may go unsigned ---------------------------------------------------

@pytest.mark.parametrize("omit", [("x-amz-content-sha256",), ("x-amz-date",),
                                  ("x-amz-content-sha256", "x-amz-date")])
def test_put_object_payload_hash_and_date_may_go_unsigned(server, s3, bucket, omit):
    """Both values are bound by the signature without being listed: the payload hash is
    the canonical request's last line, the date the string to sign's second line."""
    path = f"/{bucket}/k"
    headers = _sign_omitting(server, "PUT", path, omit, body=b"data")
    resp = requests.put(f"{server.endpoint}{path}", data=b"data", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.content
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_put_object_unlisted_payload_hash_still_bound(server, s3, bucket):
    path = f"/{bucket}/k"
    headers = _sign_omitting(server, "PUT", path, ("x-amz-content-sha256",), body=b"data")
    headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    resp = requests.put(f"{server.endpoint}{path}", data=b"evil", headers=headers, timeout=30)
    _refused(resp, "SignatureDoesNotMatch", 403, path)
    assert _keys(s3, bucket) == []


def test_get_object_non_amz_headers_may_go_unsigned(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/{bucket}/k")
    headers.update({"x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793", "User-Agent": "other",
                    "amz-sdk-request": "attempt=2"})
    resp = requests.get(f"{server.endpoint}/{bucket}/k", headers=headers, timeout=30)
    assert resp.status_code == 200 and resp.content == b"data"


# -- presigned SigV4 ------------------------------------------------------------------------------

def test_presigned_put_copy_source_and_acl_refused(server, s3, bucket):
    """The attack: an upload URL turned into a public copy of the signer's private object."""
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "upload"}, ExpiresIn=300)
    resp = requests.put(url, headers={"x-amz-copy-source": f"/{bucket}/private", "x-amz-acl": "public-read"},
                        timeout=30)
    _not_signed(resp, f"/{bucket}/upload", "x-amz-copy-source", "x-amz-acl")
    assert _keys(s3, bucket) == ["private"]
    assert _anonymous_get(server, bucket, "upload") == 403


@pytest.mark.parametrize("name,value", [
    ("x-amz-acl", "public-read"), ("x-amz-meta-x", "1"), ("x-amz-date", "20300101T000000Z"),
    ("x-amz-security-token", "t"), ("x-amz-checksum-sha256", base64.b64encode(hashlib.sha256(b"v").digest()).decode()),
    ("x-amz-server-side-encryption", "AES256"), ("x-amz-website-redirect-location", "/evil"),
])
def test_presigned_put_unsigned_amz_header_refused(server, s3, bucket, name, value):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    _not_signed(requests.put(url, data=b"v", headers={name: value}, timeout=30), f"/{bucket}/k", name)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"old" and got["Metadata"] == {}
    assert not _public(s3, bucket, "k")


def test_presigned_get_unsigned_amz_header_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.get(url, headers={"x-amz-checksum-mode": "ENABLED", "x-amz-request-payer": "requester"},
                        timeout=30)
    _not_signed(resp, f"/{bucket}/k", "x-amz-checksum-mode", "x-amz-request-payer")


@pytest.mark.parametrize("name", ["x_amz_acl", "X-Amz-Acl ", "X-Amz-Acl\t"])
def test_presigned_put_respelled_acl_header_not_honoured(server, s3, bucket, name):
    """Spellings the worker does not map to x-amz-acl must not reach the application as it."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_host=True, skip_accept_encoding=True)
        for header, value in (("Host", parts.netloc), ("Content-Length", "1"), (name, "public-read")):
            conn.putheader(header, value)
        conn.endheaders(b"v")
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status in (200, 400, 403), status
    assert _keys(s3, bucket) == (["k"] if status == 200 else [])
    if status == 200:
        assert not _public(s3, bucket, "k")


def test_presigned_put_duplicated_signed_header_refused(server, s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k", "ACL": "private"},
                                    ExpiresIn=300)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_host=True, skip_accept_encoding=True)
        for header, value in (("Host", parts.netloc), ("Content-Length", "1"), ("x-amz-acl", "private"),
                              ("x-amz-acl", "public-read")):
            conn.putheader(header, value)
        conn.endheaders(b"v")
        resp = conn.getresponse()
        raw = _Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()
    _refused(raw, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    assert _keys(s3, bucket) == []


def test_presigned_put_signed_acl_accepted(server, s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k", "ACL": "public-read"},
                                    ExpiresIn=300)
    resp = requests.put(url, data=b"v", headers={"x-amz-acl": "public-read"}, timeout=30)
    assert resp.status_code == 200, resp.content
    assert _public(s3, bucket, "k")


@pytest.mark.parametrize("value", ["UNSIGNED-PAYLOAD", hashlib.sha256(b"body").hexdigest()])
def test_presigned_put_unlisted_content_sha256(server, s3, bucket, value):
    """x-amz-content-sha256, listed or not, is the canonical request's payload line (botocore
    and aws-sdk-go sign it so, presigned or not): a URL signed for UNSIGNED-PAYLOAD accepts
    that value and refuses a digest it was not signed with."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.put(url, data=b"body", headers={"x-amz-content-sha256": value}, timeout=30)
    if value == "UNSIGNED-PAYLOAD":
        assert resp.status_code == 200, resp.content
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"body"
    else:
        _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
        assert _keys(s3, bucket) == []


def test_presigned_put_signed_content_sha256_verified(server, s3, bucket):
    """A presigned PUT signing a known digest (botocore and aws-sdk-go put the header's value in
    the payload line): the URL works with that header, and the body must match it."""
    digest = hashlib.sha256(b"expected").hexdigest()
    url = presign_v4("PUT", f"http://127.0.0.1:{server.port}/{bucket}/k",
                     headers={"x-amz-content-sha256": digest})
    assert "x-amz-content-sha256" in url  # in X-Amz-SignedHeaders
    assert requests.put(url, data=b"expected", headers={"x-amz-content-sha256": digest}, timeout=30).status_code == 200
    resp = requests.put(url, data=b"tampered", headers={"x-amz-content-sha256": digest}, timeout=30)
    _refused(resp, "XAmzContentSHA256Mismatch", 400, f"/{bucket}/k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"expected"


def test_presigned_put_unsigned_content_type_and_md5_accepted(server, s3, bucket):
    """Not x-amz-*: AWS lets them through unsigned (browsers send Content-Type with any PUT);
    Content-MD5 only makes the upload stricter."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    md5 = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    resp = requests.put(url, data=b"body", headers={"Content-Type": "image/png", "Content-MD5": md5,
                                                    "x-amzn-trace-id": "Root=1"}, timeout=30)
    assert resp.status_code == 200, resp.content
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "image/png"
    bad = requests.put(url, data=b"evil", headers={"Content-MD5": md5}, timeout=30)
    _refused(bad, "BadDigest", 400, f"/{bucket}/k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"body"


# -- presigned SigV4: the query is signed whole ------------------------------------------------------

def _upload(s3, bucket, key):
    return s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]


def test_presigned_put_turned_into_upload_part_refused(server, s3, bucket):
    upload_id = _upload(s3, bucket, "big")
    try:
        url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "big"}, ExpiresIn=300)
        for extra in (f"&uploadId={upload_id}&partNumber=1", f"&%75ploadId={upload_id}&%70artNumber=1"):
            _refused(_raw(server, "PUT", url + extra, b"part"), "SignatureDoesNotMatch", 403, f"/{bucket}/big")
        assert s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id).get("Parts", []) == []
        assert _keys(s3, bucket) == []
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id)


def test_presigned_put_turned_into_put_acl_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    for extra in ("&acl", "&acl="):
        resp = requests.put(url + extra, headers={"x-amz-acl": "public-read"}, timeout=30)
        assert resp.status_code == 403, resp.content
        resp = requests.put(url + extra, timeout=30)
        _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    assert not _public(s3, bucket, "k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


@pytest.mark.parametrize("extra", ["&versionId=null", "&partNumber=1", "&response-content-type=text%2Fhtml",
                                   "&response-content-disposition=attachment", "&x-id=GetObject", "&acl",
                                   "&x-amz-acl=public-read"])
def test_presigned_get_extended_query_refused(server, s3, bucket, extra):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    assert requests.get(url, timeout=30).status_code == 200
    _refused(requests.get(url + extra, timeout=30), "SignatureDoesNotMatch", 403, f"/{bucket}/k")


def test_presigned_delete_objects_from_get_bucket_url_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=300)
    body = b'<Delete><Object><Key>k</Key></Object></Delete>'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    resp = requests.post(url + "&delete", data=body, headers={"Content-MD5": md5}, timeout=30)
    _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}")
    assert _keys(s3, bucket) == ["k"]


def test_presigned_put_extended_expiry_refused_expired_denied(server, s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    longer = url.replace("X-Amz-Expires=60", "X-Amz-Expires=604800")
    assert longer != url
    _refused(requests.put(longer, data=b"v", timeout=30), "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    old = presign_v4("PUT", f"http://127.0.0.1:{server.port}/{bucket}/k", expires=60,
                     when=utcnow() - dt.timedelta(minutes=5))
    fields = _refused(requests.put(old, data=b"v", timeout=30), "AccessDenied", 403, f"/{bucket}/k")
    assert fields["Message"] == "Request has expired"
    assert _keys(s3, bucket) == []


# -- SigV2 ------------------------------------------------------------------------------------------

def test_sigv2_presigned_put_added_amz_header_refused(server, s3, bucket):
    url = _v2_client(server).generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"},
                                                    ExpiresIn=300)
    assert "Signature=" in url and "X-Amz-Signature" not in url
    resp = requests.put(url, data=b"v", headers={"x-amz-acl": "public-read"}, timeout=30)
    _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    assert _keys(s3, bucket) == []


def test_sigv2_presigned_put_header_overriding_signed_query_value_refused(server, s3, bucket):
    """botocore's V2 presigner moves x-amz-* and Content-Type into the query; a header of the
    same name with another value is what S3 would act on, so it must be what was signed."""
    url = _v2_client(server).generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "k", "ACL": "private", "ContentType": "text/plain"},
        ExpiresIn=300)
    assert "x-amz-acl=private" in url and "content-type=text%2Fplain" in url
    for headers in ({"x-amz-acl": "public-read", "Content-Type": "text/plain"},
                    {"x-amz-acl": "private", "Content-Type": "text/html"}):
        _refused(requests.put(url, data=b"v", headers=headers, timeout=30), "SignatureDoesNotMatch", 403,
                 f"/{bucket}/k")
    assert _keys(s3, bucket) == []
    ok = requests.put(url, data=b"v", headers={"x-amz-acl": "private", "Content-Type": "text/plain"}, timeout=30)
    assert ok.status_code == 200, ok.content
    assert not _public(s3, bucket, "k")


def test_sigv2_presigned_put_encoded_subresource_names_refused(server, s3, bucket):
    """Subresources are matched after decoding, as the router decodes them: an encoded
    ``uploadId`` must not slip past the string to sign and turn the PUT into UploadPart."""
    upload_id = _upload(s3, bucket, "big")
    try:
        url = _v2_client(server).generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "big"},
                                                        ExpiresIn=300)
        for extra in (f"&uploadId={upload_id}&partNumber=1", f"&%75ploadId={upload_id}&%70artNumber=1"):
            _refused(_raw(server, "PUT", url + extra, b"part"), "SignatureDoesNotMatch", 403, f"/{bucket}/big")
        assert s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id).get("Parts", []) == []
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id)


@pytest.mark.parametrize("extra", ["&%61cl", "&%76ersionId=null", "&response-content-type=text%2Fhtml"])
def test_sigv2_presigned_get_extended_query_refused(server, s3, bucket, extra):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = _v2_client(server).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                                    ExpiresIn=300)
    assert _raw(server, "GET", url).status_code == 200
    _refused(_raw(server, "GET", url + extra), "SignatureDoesNotMatch", 403, f"/{bucket}/k")


def test_sigv2_header_auth_added_amz_header_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    req = AWSRequest(method="PUT", url=f"http://127.0.0.1:{server.port}/{bucket}/k", data=b"new")
    botocore.auth.HmacV1Auth(Credentials(ACCESS_KEY, SECRET_KEY)).add_auth(req)
    headers = dict(req.headers.items(), **{"x-amz-acl": "public-read"})
    resp = requests.put(f"{server.endpoint}/{bucket}/k", data=b"new", headers=headers, timeout=30)
    _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"
    assert not _public(s3, bucket, "k")


# -- aws-chunked: headers and trailers ---------------------------------------------------------------

@pytest.mark.parametrize("mode", [SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_streaming_put_signed_trailer_headers_accepted(server, s3, bucket, mode):
    resp = _streaming(server, bucket, "k", b"x" * 10000, mode,
                      signed_extra={"x-amz-sdk-checksum-algorithm": "CRC32"})
    assert resp.status_code == 200, resp.content
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 10000


def test_streaming_put_unsigned_trailer_header_refused(server, s3, bucket):
    resp = _streaming(server, bucket, "k", b"x" * 10000, UNSIGNED_TRAILER, declared=(),
                      added={"x-amz-trailer": "x-amz-checksum-crc32"})
    _not_signed(resp, f"/{bucket}/k", "x-amz-trailer")
    assert _keys(s3, bucket) == []


def test_streaming_put_unsigned_decoded_length_refused(server, s3, bucket):
    data = b"x" * 10000
    path = f"/{bucket}/k"
    host = f"127.0.0.1:{server.port}"
    body = encode_aws_chunked(data, UNSIGNED_TRAILER, 4096,
                              trailer=[("x-amz-checksum-crc32", checksum_b64("CRC32", data))])
    headers = sign_headers("PUT", f"http://{host}{path}", payload_hash=UNSIGNED_TRAILER,
                           headers={"Content-Encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
                                    "Content-Length": str(len(body))})
    headers["x-amz-decoded-content-length"] = str(len(data))
    resp = requests.put(f"{server.endpoint}{path}", data=body, headers=headers, timeout=30)
    _not_signed(resp, path, "x-amz-decoded-content-length")
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("mode", [SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_streaming_put_undeclared_trailer_refused(server, s3, bucket, mode):
    data = b"x" * 10000
    lines = [("x-amz-checksum-crc32", checksum_b64("CRC32", data)),
             ("x-amz-checksum-sha256", checksum_b64("SHA256", data))]
    resp = _streaming(server, bucket, "k", data, mode, trailer=lines)
    _refused(resp, "InvalidRequest", 400, f"/{bucket}/k")
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("mode", [SIGNED_TRAILER, UNSIGNED_TRAILER])
def test_streaming_put_trailer_without_x_amz_trailer_refused(server, s3, bucket, mode):
    """A trailer mode with no x-amz-trailer header declares no trailer: any trailer sent is undeclared."""
    data = b"x" * 10000
    resp = _streaming(server, bucket, "k", data, mode, declared=(),
                      trailer=[("x-amz-checksum-crc64nvme", checksum_b64("CRC64NVME", data))])
    _refused(resp, "InvalidRequest", 400, f"/{bucket}/k")
    assert _keys(s3, bucket) == []


def test_streaming_put_signed_mode_switched_to_unsigned_trailer_refused(server, s3, bucket):
    """The payload mode is bound by the signature even where x-amz-content-sha256 goes unlisted:
    a request signed for signed chunks cannot be replayed as an unsigned-trailer upload."""
    data = b"x" * 10000
    resp = _streaming(server, bucket, "k", data, UNSIGNED_TRAILER, sign_mode=SIGNED, send_mode=UNSIGNED_TRAILER)
    _refused(resp, "SignatureDoesNotMatch", 403, f"/{bucket}/k")
    assert _keys(s3, bucket) == []


def test_streaming_put_trailer_after_non_trailer_mode_refused(server, s3, bucket):
    data = b"x" * 5000
    body_ok = _streaming(server, bucket, "k", data, SIGNED)
    assert body_ok.status_code == 200, body_ok.content
    s3.delete_object(Bucket=bucket, Key="k")
    path = f"/{bucket}/k"
    host = f"127.0.0.1:{server.port}"
    dummy = ChunkSigner("0" * 64, "20000101T000000Z")
    extra = b"x-amz-checksum-crc32:" + checksum_b64("CRC32", data).encode() + b"\r\n"
    length = len(encode_aws_chunked(data, SIGNED, 4096, signer=dummy)) + len(extra)
    headers = sign_headers("PUT", f"http://{host}{path}", payload_hash=SIGNED,
                           headers={"Content-Encoding": "aws-chunked", "Content-Length": str(length),
                                    "x-amz-decoded-content-length": str(len(data))})
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = encode_aws_chunked(data, SIGNED, 4096, signer=ChunkSigner(seed, headers["X-Amz-Date"]))
    body = body[:-2] + extra + b"\r\n"  # a trailer line slipped in before the closing CRLF
    resp = requests.put(f"{server.endpoint}{path}", data=body, headers=headers, timeout=30)
    _refused(resp, "InvalidRequest", 400, path)
    assert _keys(s3, bucket) == []


# -- x-amz-* headers carried in a presigned URL's query mean what the header means ------------

def test_sigv2_presigned_put_applies_the_acl_and_metadata_it_carries_in_its_query(server, s3, bucket):
    """boto3's SigV2 presigner moves every x-amz-* header into the query; S3 applies
    them (they were ignored: the object was private and had no metadata)."""
    v2 = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                      config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    url = v2.generate_presigned_url("put_object", Params={
        "Bucket": bucket, "Key": "hoisted", "ACL": "public-read", "Metadata": {"colour": "blue"}})
    assert "x-amz-acl=public-read" in url
    assert requests.put(url, data=b"shared", timeout=30).status_code == 200
    assert _public(s3, bucket, "hoisted")
    assert _anonymous_get(server, bucket, "hoisted") == 200
    assert s3.head_object(Bucket=bucket, Key="hoisted")["Metadata"] == {"colour": "blue"}


def test_sigv4_presigned_put_applies_an_x_amz_header_hoisted_into_its_signed_query(server, s3, bucket):
    request = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/hoisted?x-amz-acl=public-read")
    botocore.auth.S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", 300).add_auth(request)
    assert requests.put(request.url, data=b"shared", timeout=30).status_code == 200
    assert _public(s3, bucket, "hoisted")
    # A header sent as well is what the request acts on (and it must be signed: here it is not).
    resp = requests.put(request.url, data=b"other", headers={"x-amz-acl": "private"}, timeout=30)
    _not_signed(resp, f"/{bucket}/hoisted", "x-amz-acl")
    assert s3.get_object(Bucket=bucket, Key="hoisted")["Body"].read() == b"shared"


def test_presigned_query_hoisting_refuses_what_the_header_would_refuse(server, s3, bucket):
    request = AWSRequest(method="PUT",
                         url=f"{server.endpoint}/{bucket}/redirect?x-amz-website-redirect-location=%2Felsewhere")
    botocore.auth.S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", 300).add_auth(request)
    resp = requests.put(request.url, data=b"secret", timeout=30)
    assert resp.status_code == 501, resp.content
    assert error_of(resp)["Code"] == "NotImplemented"
    assert "redirect" not in _keys(s3, bucket)


def test_presigned_query_hoisting_applies_what_the_header_would(server, s3, bucket):
    """x-amz-server-side-encryption signed in the query encrypts as the header does."""
    request = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}/sse?x-amz-server-side-encryption=AES256")
    botocore.auth.S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", 300).add_auth(request)
    resp = requests.put(request.url, data=b"secret", timeout=30)
    assert resp.status_code == 200, resp.content
    assert resp.headers["x-amz-server-side-encryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="sse")["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("extra", ["&x-amz-acl=public-read", "&x-amz-meta-owner=attacker",
                                   "&X-Amz-Copy-Source=%2Fsecret%2Fk"])
def test_sigv2_presigned_put_extended_with_an_x_amz_query_parameter_refused(server, s3, bucket, extra):
    """Query x-amz-* parameters now act as headers: one appended to a SigV2 URL by
    whoever holds it must break the signature, and nothing is stored."""
    url = _v2_client(server).generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"},
                                                    ExpiresIn=300)
    _refused(_raw(server, "PUT", url + extra, b"attacker"), "SignatureDoesNotMatch", 403, f"/{bucket}/up")
    assert "up" not in _keys(s3, bucket)
    assert _raw(server, "PUT", url, b"owner").status_code == 200
    assert not _public(s3, bucket, "up")
    assert s3.head_object(Bucket=bucket, Key="up")["Metadata"] == {}
