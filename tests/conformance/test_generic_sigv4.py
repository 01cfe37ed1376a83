"""Generic SigV4 signers, which send no x-amz-content-sha256 (botocore's plain
SigV4Auth, curl --aws-sigv4), and requests dated only by the Date header.

Without x-amz-content-sha256 the canonical request's payload line is the SHA-256
of the body: the server checks the signature against the body it received, and
stores nothing unless it matches. With only a Date header (RFC 1123), that date
is the string to sign's timestamp, as AWS accepts it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import shutil
import subprocess
from email.utils import format_datetime

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ..servers import ACCESS_KEY, SECRET_KEY
from .helpers import assert_client_error, assert_error, key_path, utcnow
from .test_objects import blob_files

SMALL, INLINE_PLUS, LARGE = 10, 20_000, 3 * 1024 * 1024  # inline row, blob, more than a buffered body


def generic(server, method: str, path: str, body: bytes = b"", *, signed_body: bytes | None = None,
            secret: str = SECRET_KEY, headers: dict | None = None) -> requests.Response:
    """``method path`` signed by botocore's plain SigV4Auth (not S3SigV4Auth): it hashes
    the body into the canonical request and sends no x-amz-content-sha256."""
    url = server.endpoint + path
    req = AWSRequest(method=method, url=url, data=body if signed_body is None else signed_body,
                     headers=dict(headers or {}))
    SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", "us-east-1").add_auth(req)
    sent = dict(req.headers.items())
    assert not any(name.lower() == "x-amz-content-sha256" for name in sent), sent
    return requests.request(method, url, data=body, headers=sent, timeout=60, allow_redirects=False)


def assert_absent(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key=key)
    assert_client_error(exc, "404", 404)


# -- botocore SigV4Auth ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, SMALL, INLINE_PLUS, LARGE])
def test_put_and_get_object_signed_by_plain_sigv4auth(server, s3, bucket, size):
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    put = generic(server, "PUT", key_path(bucket, "generic/obj"), body)
    assert put.status_code == 200, put.content[:500]
    assert put.headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = generic(server, "GET", key_path(bucket, "generic/obj"))
    assert got.status_code == 200, got.content[:500]
    assert got.content == body
    head = generic(server, "HEAD", key_path(bucket, "generic/obj"))
    assert (head.status_code, int(head.headers["Content-Length"])) == (200, size)
    listing = generic(server, "GET", key_path(bucket), headers={})
    assert listing.status_code == 200 and b"<Key>generic/obj</Key>" in listing.content
    assert s3.get_object(Bucket=bucket, Key="generic/obj")["Body"].read() == body
    deleted = generic(server, "DELETE", key_path(bucket, "generic/obj"))
    assert deleted.status_code == 204
    assert_absent(s3, bucket, "generic/obj")


@pytest.mark.parametrize("size", [SMALL, INLINE_PLUS, LARGE])
def test_tampered_body_is_signature_does_not_match_and_nothing_is_stored(server, s3, bucket, size):
    before = blob_files(server)
    resp = generic(server, "PUT", key_path(bucket, "tampered"), b"b" * size, signed_body=b"a" * size)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert_absent(s3, bucket, "tampered")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert blob_files(server) == before
    # The same request untampered is accepted: the refusal was the body, nothing else.
    assert generic(server, "PUT", key_path(bucket, "tampered"), b"a" * size).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="tampered")["Body"].read() == b"a" * size


@pytest.mark.parametrize("size", [SMALL, INLINE_PLUS])
def test_tampered_body_keeps_the_previous_object(server, s3, bucket, size):
    s3.put_object(Bucket=bucket, Key="k", Body=b"o" * size)
    resp = generic(server, "PUT", key_path(bucket, "k"), b"n" * size, signed_body=b"x" * size)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"o" * size


def test_upload_part_with_a_tampered_body_stores_no_part(server, s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    path = f"{key_path(bucket, 'mp')}?partNumber=1&uploadId={upload}"
    resp = generic(server, "PUT", path, b"b" * INLINE_PLUS, signed_body=b"a" * INLINE_PLUS)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload).get("Parts", []) == []
    ok = generic(server, "PUT", path, b"a" * INLINE_PLUS)
    assert ok.status_code == 200, ok.content[:500]
    assert [p["Size"] for p in s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]] == [INLINE_PLUS]
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload)


def test_wrong_secret_is_refused_on_requests_without_a_body(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    resp = generic(server, "GET", key_path(bucket, "k"), secret="not-the-secret")
    assert_error(resp, "SignatureDoesNotMatch", 403)
    assert b"secret" not in resp.content
    assert_error(generic(server, "DELETE", key_path(bucket, "k"), secret="not-the-secret"),
                 "SignatureDoesNotMatch", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret"


def test_a_forged_upload_learns_nothing_about_buckets(server, s3, bucket):
    """Until the body proves the signature, what the handler found (here: no such
    bucket) is not the answer; with a good signature it is."""
    missing = f"{bucket}-absent"
    forged = generic(server, "PUT", key_path(missing, "k"), b"b" * INLINE_PLUS, signed_body=b"a" * INLINE_PLUS)
    assert_error(forged, "SignatureDoesNotMatch", 403)
    honest = generic(server, "PUT", key_path(missing, "k"), b"a" * INLINE_PLUS)
    assert_error(honest, "NoSuchBucket", 404)


def test_create_bucket_with_a_configuration_body(server, s3, bucket):
    """A body that is not streamed (an XML document) is read and checked before the
    handler runs: tampered, no bucket is created."""
    doc = b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    other = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
             b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>")
    name = f"{bucket}-cfg"
    tampered = generic(server, "PUT", key_path(name), other, signed_body=doc)
    assert_error(tampered, "SignatureDoesNotMatch", 403)  # not IllegalLocationConstraintException
    assert_error(generic(server, "PUT", key_path(name), other), "IllegalLocationConstraintException", 400)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert_client_error(exc, "404", 404)
    created = generic(server, "PUT", key_path(name), doc)
    assert created.status_code == 200, created.content[:500]
    s3.head_bucket(Bucket=name)
    assert generic(server, "DELETE", key_path(name)).status_code == 204


# -- requests-aws4auth ----------------------------------------------------------------------

def test_requests_aws4auth_put_and_get(server, s3, bucket):
    """requests-aws4auth signs the body's hash and sends it as x-amz-content-sha256."""
    from requests_aws4auth import AWS4Auth
    auth = AWS4Auth(ACCESS_KEY, SECRET_KEY, "us-east-1", "s3")
    url = f"{server.endpoint}{key_path(bucket, 'aws4auth.bin')}"
    body = b"requests-aws4auth" * 3000
    put = requests.put(url, data=body, auth=auth, timeout=60)
    assert put.status_code == 200, put.content[:500]
    got = requests.get(url, auth=auth, timeout=60)
    assert (got.status_code, got.content) == (200, body)
    wrong = requests.put(f"{server.endpoint}{key_path(bucket, 'aws4auth-wrong.bin')}", data=body, timeout=60,
                         auth=AWS4Auth(ACCESS_KEY, "wrong", "us-east-1", "s3"))
    assert_error(wrong, "SignatureDoesNotMatch", 403)
    assert_absent(s3, bucket, "aws4auth-wrong.bin")


# -- curl --aws-sigv4 -----------------------------------------------------------------------

def curl(*args: str, secret: str = SECRET_KEY) -> tuple[int, bytes, str]:
    """curl --aws-sigv4 (status, body, its -v trace of the request headers)."""
    exe = shutil.which("curl")
    if exe is None:
        pytest.fail("curl is not installed (apt-get install curl): the curl --aws-sigv4 test needs it")
    proc = subprocess.run([exe, "-sS", "-v", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{ACCESS_KEY}:{secret}",
                           "-o", "-", "-w", "\n%{http_code}", *args], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body, status = proc.stdout.rsplit(b"\n", 1)
    sent = "\n".join(line[2:] for line in proc.stderr.decode(errors="replace").splitlines() if line.startswith("> "))
    return int(status), body, sent


def test_curl_aws_sigv4_put_and_get(server, s3, bucket, tmp_path):
    """curl hashes a --data-binary body into the signature (and sends no
    x-amz-content-sha256): the server checks it against the body received."""
    body = b"sent by curl --aws-sigv4\n" * 1000
    source = tmp_path / "upload.bin"
    source.write_bytes(body)
    url = f"{server.endpoint}{key_path(bucket, 'curl.bin')}"
    status, content, sent = curl("-X", "PUT", "--data-binary", f"@{source}", "-H", "Content-Type: text/plain", url)
    assert "x-amz-content-sha256" not in sent.lower() and "AWS4-HMAC-SHA256" in sent
    assert status == 200, content[-500:]
    obj = s3.get_object(Bucket=bucket, Key="curl.bin")
    assert (obj["Body"].read(), obj["ContentType"]) == (body, "text/plain")
    status, content, _ = curl(url)
    assert (status, content) == (200, body)
    status, _, _ = curl("-I", url)
    assert status == 200
    # The refused side: the same upload with a wrong secret stores nothing.
    wrong_url = f"{server.endpoint}{key_path(bucket, 'curl-wrong.bin')}"
    status, content, _ = curl("-X", "PUT", "--data-binary", f"@{source}", wrong_url, secret="wrong")
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in content
    assert_absent(s3, bucket, "curl-wrong.bin")
    status, content, _ = curl(url, secret="wrong")
    assert status == 403 and body not in content
    status, _, _ = curl("-X", "DELETE", url)
    assert status == 204
    assert_absent(s3, bucket, "curl.bin")


def test_curl_upload_file_is_stored_only_if_its_body_is_signed(server, s3, bucket, tmp_path):
    """curl -T: curl before 8.x signs the EMPTY payload's hash while it sends the
    file (it hashes only --data bodies) and sends no x-amz-content-sha256, so the
    signature does not cover the body: refused, nothing stored. A curl that sends
    x-amz-content-sha256 (UNSIGNED-PAYLOAD) with -T is an ordinary S3 signer: stored."""
    source = tmp_path / "upload.bin"
    source.write_bytes(b"t" * 5000)
    status, content, sent = curl("-T", str(source), f"{server.endpoint}{key_path(bucket, 'uploaded.bin')}")
    if "x-amz-content-sha256" in sent.lower():
        assert status == 200, content[-500:]
        assert s3.get_object(Bucket=bucket, Key="uploaded.bin")["Body"].read() == b"t" * 5000
    else:
        assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in content, (status, content[-500:])
        assert_absent(s3, bucket, "uploaded.bin")
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# -- dated by the Date header alone ---------------------------------------------------------

def date_signed(server, method: str, path: str, body: bytes = b"", *, when: dt.datetime | None = None,
                scope_date: str | None = None, send_date: str | None = None,
                content_sha256: bool = True) -> requests.Response:
    """A request built and signed by hand, with Date (RFC 1123) and no X-Amz-Date:
    the string to sign's timestamp is the Date header's, in ISO 8601 basic form."""
    when = when or utcnow()
    date_header = format_datetime(when.astimezone(dt.timezone.utc).replace(microsecond=0), usegmt=True)
    stamp = when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope_date = scope_date or stamp[:8]
    host = f"127.0.0.1:{server.port}" if hasattr(server, "port") else server.endpoint.split("//", 1)[1]
    payload = hashlib.sha256(body).hexdigest()
    headers = {"date": date_header, "host": host}
    if content_sha256:
        headers["x-amz-content-sha256"] = payload
    signed = sorted(headers)
    canonical = "\n".join([method, path, "", *(f"{n}:{headers[n]}" for n in signed), "", ";".join(signed), payload])
    scope = f"{scope_date}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (scope_date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    sent = {"Date": send_date or date_header, "Host": host,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                             f"SignedHeaders={';'.join(signed)}, Signature={signature}"}
    if content_sha256:
        sent["x-amz-content-sha256"] = payload
    return requests.request(method, server.endpoint + path, headers=sent, data=body, timeout=60)


@pytest.mark.parametrize("content_sha256", [True, False])
def test_a_request_dated_only_by_the_date_header_is_accepted(server, s3, bucket, content_sha256):
    put = date_signed(server, "PUT", key_path(bucket, "dated"), b"dated body", content_sha256=content_sha256)
    assert put.status_code == 200, put.content[:500]
    got = date_signed(server, "GET", key_path(bucket, "dated"), content_sha256=content_sha256)
    assert (got.status_code, got.content) == (200, b"dated body")
    assert date_signed(server, "GET", "/").status_code == 200


def test_date_header_requests_refused_when_the_date_does_not_match(server, s3, bucket):
    now = utcnow()
    # The credential scope names another day than the Date header.
    other_day = (now - dt.timedelta(days=1)).strftime("%Y%m%d")
    resp = date_signed(server, "PUT", key_path(bucket, "dated"), b"x", scope_date=other_day)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    # The Date header changed after signing (one second later).
    later = format_datetime((now + dt.timedelta(seconds=1)).astimezone(dt.timezone.utc).replace(microsecond=0),
                            usegmt=True)
    resp = date_signed(server, "PUT", key_path(bucket, "dated"), b"x", when=now, send_date=later)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    # A Date outside the allowed skew, and one that is not a date.
    resp = date_signed(server, "PUT", key_path(bucket, "dated"), b"x", when=now - dt.timedelta(minutes=20))
    assert_error(resp, "RequestTimeTooSkewed", 403)
    resp = date_signed(server, "PUT", key_path(bucket, "dated"), b"x", send_date="yesterday at noon")
    assert_error(resp, "AccessDenied", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
