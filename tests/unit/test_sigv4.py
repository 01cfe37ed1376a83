"""Unit tests for bleepstore_app.auth.sigv4 (AWS Signature Version 4 for S3).

Reference vectors: AWS S3 API Reference, "Signature Calculations for the
Authorization Header: Transferring Payload in a Single Chunk" (GET Object with a
Range header, PUT Object, GET Bucket Lifecycle, Get Bucket (List Objects)) and
"Authenticating Requests: Using Query Parameters" (presigned GET). Everything
else is checked against botocore's own signers (S3SigV4Auth / S3SigV4QueryAuth).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import Headers

from bleepstore_app import errors
from bleepstore_app.auth import sigv4

# --- AWS documentation constants -------------------------------------------

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
DOC_NOW = datetime(2013, 5, 24, 0, 0, 0, tzinfo=timezone.utc)
HOST = "examplebucket.s3.amazonaws.com"
SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()
WELCOME_SHA = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()


def lookup(secrets: dict[str, str]):
    return lambda access_key: secrets.get(access_key)


DOC_LOOKUP = lookup({AKID: SECRET})


def auth_header(signed: str, signature: str, akid: str = AKID, scope: str = SCOPE) -> str:
    return f"AWS4-HMAC-SHA256 Credential={akid}/{scope},SignedHeaders={signed},Signature={signature}"


def doc_headers(**extra: str) -> Headers:
    h = Headers()
    h.add("Host", HOST)
    h.add("x-amz-date", AMZ_DATE)
    h.add("x-amz-content-sha256", EMPTY)
    for name, value in extra.items():
        h.set(name.replace("_", "-"), value)
    return h


# --- the published examples --------------------------------------------------

GET_OBJECT_SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
PUT_OBJECT_SIG = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
LIFECYCLE_SIG = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
LIST_OBJECTS_SIG = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
PRESIGNED_SIG = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_signing_key_aws_example_signs_get_object_string_to_sign():
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3")
    canonical = "\n".join([
        "GET", "/test.txt", "",
        f"host:{HOST}", "range:bytes=0-9", f"x-amz-content-sha256:{EMPTY}", f"x-amz-date:{AMZ_DATE}", "",
        "host;range;x-amz-content-sha256;x-amz-date", EMPTY,
    ])
    sts = sigv4.string_to_sign(AMZ_DATE, SCOPE, canonical)
    assert sts == ("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                   "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
    assert sigv4.sign(key, sts) == GET_OBJECT_SIG


def test_canonical_request_aws_get_object_example():
    headers = doc_headers(Range="bytes=0-9")
    signed = ("host", "range", "x-amz-content-sha256", "x-amz-date")
    creq = sigv4.canonical_request("GET", sigv4.canonical_uri("/test.txt"), sigv4.canonical_query(""),
                                   headers, signed, EMPTY)
    assert hashlib.sha256(creq.encode()).hexdigest() == \
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"


def test_verify_header_auth_aws_get_object_example():
    headers = doc_headers(Range="bytes=0-9")
    headers.set("Authorization", auth_header("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG))
    result = sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert result.access_key == AKID
    assert result.signature == GET_OBJECT_SIG
    assert result.scope == SCOPE
    assert result.amz_date == AMZ_DATE
    assert result.payload_hash == EMPTY
    assert result.presigned is False
    assert result.signing_key == sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3")


def test_verify_header_auth_aws_put_object_example():
    headers = Headers()
    headers.add("Date", "Fri, 24 May 2013 00:00:00 GMT")
    headers.add("Host", HOST)
    headers.add("x-amz-date", AMZ_DATE)
    headers.add("x-amz-storage-class", "REDUCED_REDUNDANCY")
    headers.add("x-amz-content-sha256", WELCOME_SHA)
    signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
    headers.set("Authorization", auth_header(signed, PUT_OBJECT_SIG))
    # The key is "test$file.text"; a client sends '$' encoded as %24.
    result = sigv4.verify_header_auth("PUT", "/test%24file.text", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert result.payload_hash == WELCOME_SHA
    assert result.signature == PUT_OBJECT_SIG


def test_verify_header_auth_aws_put_object_example_unencoded_dollar():
    headers = Headers()
    headers.add("Date", "Fri, 24 May 2013 00:00:00 GMT")
    headers.add("Host", HOST)
    headers.add("x-amz-date", AMZ_DATE)
    headers.add("x-amz-storage-class", "REDUCED_REDUNDANCY")
    headers.add("x-amz-content-sha256", WELCOME_SHA)
    signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
    headers.set("Authorization", auth_header(signed, PUT_OBJECT_SIG))
    result = sigv4.verify_header_auth("PUT", "/test$file.text", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert result.signature == PUT_OBJECT_SIG


def test_canonical_uri_aws_put_object_example_encodes_dollar():
    assert sigv4.canonical_uri("/test$file.text") == "/test%24file.text"
    assert sigv4.canonical_uri("/test%24file.text") == "/test%24file.text"


def test_verify_header_auth_aws_get_bucket_lifecycle_example():
    headers = doc_headers()
    headers.set("Authorization", auth_header("host;x-amz-content-sha256;x-amz-date", LIFECYCLE_SIG))
    result = sigv4.verify_header_auth("GET", "/", "lifecycle", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert result.signature == LIFECYCLE_SIG


def test_canonical_query_aws_lifecycle_example_valueless_parameter():
    assert sigv4.canonical_query("lifecycle") == "lifecycle="
    assert sigv4.canonical_query("lifecycle=") == "lifecycle="


def test_verify_header_auth_aws_list_objects_example():
    headers = doc_headers()
    headers.set("Authorization", auth_header("host;x-amz-content-sha256;x-amz-date", LIST_OBJECTS_SIG))
    result = sigv4.verify_header_auth("GET", "/", "max-keys=2&prefix=J", headers, DOC_LOOKUP, DOC_NOW,
                                      "us-east-1")
    assert result.signature == LIST_OBJECTS_SIG


def test_verify_header_auth_aws_list_objects_example_query_out_of_order():
    headers = doc_headers()
    headers.set("Authorization", auth_header("host;x-amz-content-sha256;x-amz-date", LIST_OBJECTS_SIG))
    result = sigv4.verify_header_auth("GET", "/", "prefix=J&max-keys=2", headers, DOC_LOOKUP, DOC_NOW,
                                      "us-east-1")
    assert result.signature == LIST_OBJECTS_SIG


def test_canonical_query_aws_list_objects_example_sorted():
    assert sigv4.canonical_query("prefix=J&max-keys=2") == "max-keys=2&prefix=J"


PRESIGNED_RAW_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={AKID}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    f"&X-Amz-Signature={PRESIGNED_SIG}"
)


def parse_query(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            out.setdefault(unquote(name), unquote(value))
    return out


def host_only() -> Headers:
    return Headers([("Host", HOST)])


def test_verify_presigned_aws_example():
    result = sigv4.verify_presigned("GET", "/test.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                                    host_only(), DOC_LOOKUP, DOC_NOW + timedelta(hours=1), "us-east-1")
    assert result.presigned is True
    assert result.access_key == AKID
    assert result.signature == PRESIGNED_SIG
    assert result.payload_hash == sigv4.UNSIGNED_PAYLOAD
    assert result.scope == SCOPE


def test_canonical_query_aws_presigned_example_excludes_signature():
    assert sigv4.canonical_query(PRESIGNED_RAW_QUERY, exclude="X-Amz-Signature") == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host")


def test_verify_presigned_aws_example_expired_after_86400_seconds():
    now = DOC_NOW + timedelta(seconds=86401)
    with pytest.raises(errors.AccessDenied) as exc:
        sigv4.verify_presigned("GET", "/test.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                               host_only(), DOC_LOOKUP, now, "us-east-1")
    assert exc.value.message == "Request has expired"
    assert exc.value.fields["X-Amz-Expires"] == "86400"
    assert exc.value.fields["Expires"] == "2013-05-25T00:00:00Z"
    assert exc.value.fields["ServerTime"] == "2013-05-25T00:00:01Z"


def test_verify_presigned_aws_example_valid_at_exact_expiry():
    now = DOC_NOW + timedelta(seconds=86400)
    result = sigv4.verify_presigned("GET", "/test.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                                    host_only(), DOC_LOOKUP, now, "us-east-1")
    assert result.signature == PRESIGNED_SIG


def test_verify_presigned_aws_example_tampered_path():
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_presigned("GET", "/test2.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                               host_only(), DOC_LOOKUP, DOC_NOW, "us-east-1")


def test_verify_presigned_aws_example_tampered_method():
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_presigned("PUT", "/test.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                               host_only(), DOC_LOOKUP, DOC_NOW, "us-east-1")


def test_verify_presigned_aws_example_extra_query_parameter():
    raw = PRESIGNED_RAW_QUERY + "&response-content-type=text%2Fhtml"
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_presigned("GET", "/test.txt", raw, parse_query(raw), host_only(), DOC_LOOKUP, DOC_NOW,
                               "us-east-1")


def test_verify_presigned_aws_example_other_host():
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_presigned("GET", "/test.txt", PRESIGNED_RAW_QUERY, parse_query(PRESIGNED_RAW_QUERY),
                               Headers([("Host", "evil.example.com")]), DOC_LOOKUP, DOC_NOW, "us-east-1")


# --- canonical_uri / canonical_query ----------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("", "/"),
    ("/", "/"),
    ("/bucket", "/bucket"),
    ("/bucket/", "/bucket/"),
    ("/bucket/a b", "/bucket/a%20b"),
    ("/bucket/a%20b", "/bucket/a%20b"),
    ("/bucket/a+b", "/bucket/a%2Bb"),
    ("/bucket/a%2Bb", "/bucket/a%2Bb"),
    ("/bucket/a~b_c-d.e", "/bucket/a~b_c-d.e"),
    ("/bucket/a%7Eb", "/bucket/a~b"),
    ("/bucket/a=b", "/bucket/a%3Db"),
    ("/bucket/é", "/bucket/%C3%A9"),
    ("/bucket/%C3%A9", "/bucket/%C3%A9"),
    ("/bucket/%c3%a9", "/bucket/%C3%A9"),
    ("/bucket/日本", "/bucket/%E6%97%A5%E6%9C%AC"),
    ("/bucket/a//b", "/bucket/a//b"),
    ("/bucket/a%2Fb", "/bucket/a%2Fb"),
    ("/bucket/./x/../y", "/bucket/./x/../y"),
    ("/bucket/(1)!*'", "/bucket/%281%29%21%2A%27"),
])
def test_canonical_uri_encoding(raw, expected):
    assert sigv4.canonical_uri(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("", ""),
    ("&&", ""),
    ("a", "a="),
    ("a=", "a="),
    ("b=2&a=1", "a=1&b=2"),
    ("a=2&a=1", "a=1&a=2"),
    ("a=1&a=1", "a=1&a=1"),
    ("prefix=a%20b", "prefix=a%20b"),
    ("prefix=a b", "prefix=a%20b"),
    ("prefix=a%2Bb", "prefix=a%2Bb"),
    ("prefix=a~b", "prefix=a~b"),
    ("prefix=a%7Eb", "prefix=a~b"),
    ("prefix=a%2Fb", "prefix=a%2Fb"),
    ("prefix=a/b", "prefix=a%2Fb"),
    ("prefix=a=b", "prefix=a%3Db"),
    ("prefix=a%3Db", "prefix=a%3Db"),
    ("prefix=%C3%A9", "prefix=%C3%A9"),
    ("prefix=é", "prefix=%C3%A9"),
    ("a%3Db=c", "a%3Db=c"),
    ("list-type=2&delimiter=%2F&encoding-type=url",
     "delimiter=%2F&encoding-type=url&list-type=2"),
    # Sorted by encoded name: uppercase sorts before lowercase, '-' before letters.
    ("b=1&B=1&a-b=1&a=1", "B=1&a=1&a-b=1&b=1"),
])
def test_canonical_query_encoding(raw, expected):
    assert sigv4.canonical_query(raw) == expected


def test_canonical_query_sort_is_idempotent():
    once = sigv4.canonical_query("z=1&y=%20&x&w=%2B&v=~")
    assert once == "v=~&w=%2B&x=&y=%20&z=1"
    assert sigv4.canonical_query(once) == once


def test_canonical_query_exclude_matches_decoded_name():
    assert sigv4.canonical_query("X-Amz-Signature=abc&a=1", exclude="X-Amz-Signature") == "a=1"
    assert sigv4.canonical_query("X%2DAmz%2DSignature=abc&a=1", exclude="X-Amz-Signature") == "a=1"


def test_canonical_headers_trims_and_collapses_spaces():
    headers = Headers([("X-Amz-Meta-A", "  one   two  three "), ("Host", "h")])
    assert sigv4.canonical_headers(headers, ("host", "x-amz-meta-a")) == "host:h\nx-amz-meta-a:one two three\n"


def test_canonical_headers_missing_signed_header():
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.canonical_headers(Headers([("Host", "h")]), ("host", "content-type"))


def test_canonical_headers_empty_value():
    headers = Headers([("Host", "h"), ("x-amz-meta-empty", "")])
    assert sigv4.canonical_headers(headers, ("host", "x-amz-meta-empty")) == "host:h\nx-amz-meta-empty:\n"


# --- signing_key ---------------------------------------------------------------

def test_signing_key_matches_botocore_derivation():
    import hmac as _hmac

    def h(key, msg):
        return _hmac.new(key, msg.encode(), hashlib.sha256).digest()
    expected = h(h(h(h(("AWS4" + SECRET).encode(), "20130524"), "us-east-1"), "s3"), "aws4_request")
    assert sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3") == expected
    assert len(expected) == 32


def test_signing_key_is_cached():
    sigv4.signing_key.cache_clear()
    first = sigv4.signing_key("secret-x", "20240101", "us-east-1", "s3")
    second = sigv4.signing_key("secret-x", "20240101", "us-east-1", "s3")
    info = sigv4.signing_key.cache_info()
    assert first is second
    assert info.hits == 1
    assert info.misses == 1


def test_signing_key_differs_per_date_region_secret():
    base = sigv4.signing_key("s", "20240101", "us-east-1", "s3")
    assert sigv4.signing_key("s", "20240102", "us-east-1", "s3") != base
    assert sigv4.signing_key("s", "20240101", "eu-west-1", "s3") != base
    assert sigv4.signing_key("t", "20240101", "us-east-1", "s3") != base


# --- botocore-signed requests -----------------------------------------------------

BOTO_AK = "bleepstore"
BOTO_SK = "bleepstore-secret"
BOTO_LOOKUP = lookup({BOTO_AK: BOTO_SK, "other": "other-secret"})
FIXED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED.replace(tzinfo=None))
    return FIXED


class _FixedPayloadAuth(S3SigV4Auth):
    """botocore's S3 signer with a fixed x-amz-content-sha256 (UNSIGNED-PAYLOAD, STREAMING-*)."""

    def __init__(self, *args, payload_hash: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


class _FixedPayloadQueryAuth(S3SigV4QueryAuth):
    def __init__(self, *args, payload_hash: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def boto_sign(url: str, method: str = "GET", headers: dict | None = None, data: bytes = b"",
              region: str = "us-east-1", secret: str = BOTO_SK, access_key: str = BOTO_AK,
              payload_hash: str | None = None):
    """Sign with botocore; return (method, raw_path, raw_query, Headers)."""
    req = AWSRequest(method=method, url=url, headers=headers or {}, data=data)
    creds = Credentials(access_key, secret)
    if payload_hash is None:
        S3SigV4Auth(creds, "s3", region).add_auth(req)
    else:
        _FixedPayloadAuth(creds, "s3", region, payload_hash=payload_hash).add_auth(req)
    parts = urlsplit(req.url)
    h = Headers([("Host", parts.netloc)])
    for name, value in req.headers.items():
        h.add(name, value)
    return method, parts.path, parts.query, h


def boto_presign(url: str, method: str = "GET", headers: dict | None = None, expires: int = 3600,
                 region: str = "us-east-1", secret: str = BOTO_SK, payload_hash: str | None = None):
    req = AWSRequest(method=method, url=url, headers=headers or {})
    creds = Credentials(BOTO_AK, secret)
    if payload_hash is None:
        S3SigV4QueryAuth(creds, "s3", region, expires=expires).add_auth(req)
    else:
        _FixedPayloadQueryAuth(creds, "s3", region, expires=expires, payload_hash=payload_hash).add_auth(req)
    parts = urlsplit(req.url)
    h = Headers([("Host", parts.netloc)])
    for name, value in (headers or {}).items():
        h.add(name, value)
    return method, parts.path, parts.query, h


def verify(method, path, query, headers, now=FIXED, region="us-east-1", secrets=BOTO_LOOKUP):
    return sigv4.verify_header_auth(method, path, query, headers, secrets, now, region)


def verify_q(method, path, query, headers, now=FIXED, region="us-east-1", secrets=BOTO_LOOKUP, qmap=None):
    return sigv4.verify_presigned(method, path, query, qmap if qmap is not None else parse_query(query),
                                  headers, secrets, now, region)


@pytest.mark.parametrize("url", [
    "http://localhost:9010/",
    "http://localhost:9010/bucket",
    "http://localhost:9010/bucket/key",
    "http://localhost:9010/bucket/a%20b/c~d",
    "http://localhost:9010/bucket/%C3%A9t%C3%A9%202013/a%2Bb%20%281%29.jpg",
    "http://localhost:9010/bucket/%E6%97%A5%E6%9C%AC%E8%AA%9E",
    "http://localhost:9010/bucket/a%3Db%26c",
    "http://localhost:9010/bucket?list-type=2&prefix=a%20b&delimiter=%2F",
    "http://localhost:9010/bucket?prefix=x%2By&start-after=~a&max-keys=5",
    "http://localhost:9010/bucket?location",
    "http://localhost:9010/bucket?prefix=&marker=",
    "http://localhost:9010/bucket?prefix=%C3%A9&encoding-type=url",
    "http://s3.localhost:9010/bucket/key?versionId=abc%3D%3D",
])
def test_verify_header_auth_botocore_get(fixed_clock, url):
    result = verify(*boto_sign(url))
    assert result.access_key == BOTO_AK
    assert result.payload_hash == EMPTY
    assert result.amz_date == "20240301T120000Z"


def test_verify_header_auth_botocore_put_with_body_and_meta(fixed_clock):
    body = b"hello world"
    method, path, query, headers = boto_sign(
        "http://localhost:9010/bucket/dir/file.txt", "PUT",
        {"Content-Type": "text/plain", "x-amz-meta-color": "  blue   green ", "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww=="},
        body)
    result = verify(method, path, query, headers)
    assert result.payload_hash == hashlib.sha256(body).hexdigest()


def test_verify_header_auth_botocore_region_configured(fixed_clock):
    result = verify(*boto_sign("http://localhost:9010/bucket/k", region="eu-west-1"), region="eu-west-1")
    assert result.scope == "20240301/eu-west-1/s3/aws4_request"


def test_verify_header_auth_wrong_region(fixed_clock):
    with pytest.raises(errors.AuthorizationHeaderMalformed) as exc:
        verify(*boto_sign("http://localhost:9010/bucket/k", region="eu-west-1"), region="eu-central-1")
    assert exc.value.fields["Region"] == "eu-central-1"


def test_verify_header_auth_us_east_1_accepted_for_other_region(fixed_clock):
    result = verify(*boto_sign("http://localhost:9010/bucket/k"), region="eu-west-1")
    assert result.scope.endswith("/us-east-1/s3/aws4_request")


def test_verify_header_auth_unknown_access_key(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k", access_key="nobody")
    with pytest.raises(errors.InvalidAccessKeyId) as exc:
        verify(method, path, query, headers)
    assert exc.value.fields["AWSAccessKeyId"] == "nobody"
    assert exc.value.status == 403


def test_verify_header_auth_wrong_secret(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k", secret="not-the-secret")
    with pytest.raises(errors.SignatureDoesNotMatch) as exc:
        verify(method, path, query, headers)
    assert exc.value.status == 403
    assert exc.value.fields["AWSAccessKeyId"] == BOTO_AK
    assert exc.value.fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n20240301T120000Z\n")


def test_verify_header_auth_tampered_signed_header(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k", "PUT", {"x-amz-meta-a": "1"})
    headers.set("x-amz-meta-a", "2")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


def test_verify_header_auth_unsigned_header_may_change(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("User-Agent", "something-else")
    assert verify(method, path, query, headers).access_key == BOTO_AK


def test_verify_header_auth_tampered_path(fixed_clock):
    method, _, query, headers = boto_sign("http://localhost:9010/b/k")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, "/b/k2", query, headers)


def test_verify_header_auth_tampered_query(fixed_clock):
    method, path, _, headers = boto_sign("http://localhost:9010/b?prefix=a")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, "prefix=b", headers)


def test_verify_header_auth_tampered_method(fixed_clock):
    _, path, query, headers = boto_sign("http://localhost:9010/b/k")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("DELETE", path, query, headers)


def test_verify_header_auth_tampered_host(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("Host", "localhost:9011")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


def test_verify_header_auth_tampered_payload_hash(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k", "PUT", data=b"abc")
    headers.set("x-amz-content-sha256", hashlib.sha256(b"abd").hexdigest())
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


def test_verify_header_auth_tampered_signature_hex(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    auth = headers["Authorization"]
    last = auth[-1]
    headers.set("Authorization", auth[:-1] + ("0" if last != "0" else "1"))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


@pytest.mark.parametrize("delta", [timedelta(minutes=15, seconds=1), timedelta(minutes=-15, seconds=-1),
                                   timedelta(hours=5), timedelta(days=-1)])
def test_verify_header_auth_clock_skew(fixed_clock, delta):
    with pytest.raises(errors.RequestTimeTooSkewed) as exc:
        verify(*boto_sign("http://localhost:9010/b/k"), now=FIXED + delta)
    assert exc.value.status == 403
    assert exc.value.fields["RequestTime"] == "20240301T120000Z"
    assert exc.value.fields["MaxAllowedSkewMilliseconds"] == "900000"
    assert exc.value.fields["ServerTime"] == (FIXED + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("delta", [timedelta(minutes=15), timedelta(minutes=-15), timedelta(0)])
def test_verify_header_auth_clock_skew_within_limit(fixed_clock, delta):
    assert verify(*boto_sign("http://localhost:9010/b/k"), now=FIXED + delta).access_key == BOTO_AK


def test_verify_header_auth_signed_content_sha256_not_sent(fixed_clock):
    """Signed (in SignedHeaders) but not sent: the signature is then checked against
    the body's hash, and cannot match, whatever the body."""
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    del headers["x-amz-content-sha256"]
    signed = verify(method, path, query, headers)
    assert signed.verify_payload is not None
    with pytest.raises(errors.SignatureDoesNotMatch):
        signed.verify_payload(EMPTY)


def test_verify_header_auth_invalid_content_sha256(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("x-amz-content-sha256", "not-a-hash")
    with pytest.raises(errors.InvalidArgument) as exc:
        verify(method, path, query, headers)
    assert exc.value.fields["ArgumentName"] == "x-amz-content-sha256"
    assert exc.value.fields["ArgumentValue"] == "not-a-hash"


@pytest.mark.parametrize("mode", ["UNSIGNED-PAYLOAD", *sigv4.STREAMING_MODES])
def test_verify_header_auth_special_payload_modes(fixed_clock, mode):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k", "PUT", payload_hash=mode)
    assert headers["x-amz-content-sha256"] == mode
    assert verify(method, path, query, headers).payload_hash == mode


def test_verify_header_auth_missing_amz_date(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    del headers["x-amz-date"]
    with pytest.raises(errors.AccessDenied):
        verify(method, path, query, headers)


def test_verify_header_auth_bad_amz_date(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("x-amz-date", "2024-03-01T12:00:00Z")
    with pytest.raises(errors.AccessDenied):
        verify(method, path, query, headers)


def test_verify_header_auth_credential_date_differs_from_amz_date(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("Authorization", headers["Authorization"].replace("/20240301/", "/20240302/"))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


def test_verify_header_auth_host_not_signed(fixed_clock):
    headers = Headers([("Host", "localhost"), ("x-amz-date", "20240301T120000Z"),
                       ("x-amz-content-sha256", EMPTY)])
    headers.set("Authorization", "AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3/aws4_request, "
                                 "SignedHeaders=x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64)
    with pytest.raises(errors.AccessDenied) as exc:
        verify("GET", "/b/k", "", headers)
    assert exc.value.message == "Host header is not signed"


def test_verify_header_auth_host_not_signed_even_with_valid_signature(fixed_clock):
    # Compute a genuinely valid signature over x-amz-date only: still refused.
    headers = Headers([("Host", "localhost"), ("x-amz-date", "20240301T120000Z"), ("x-amz-content-sha256", EMPTY)])
    scope = "20240301/us-east-1/s3/aws4_request"
    creq = sigv4.canonical_request("GET", "/b/k", "", headers, ("x-amz-content-sha256", "x-amz-date"), EMPTY)
    sig = sigv4.sign(sigv4.signing_key(BOTO_SK, "20240301", "us-east-1", "s3"),
                     sigv4.string_to_sign("20240301T120000Z", scope, creq))
    headers.set("Authorization", f"AWS4-HMAC-SHA256 Credential={BOTO_AK}/{scope}, "
                                 f"SignedHeaders=x-amz-content-sha256;x-amz-date, Signature={sig}")
    with pytest.raises(errors.AccessDenied):
        verify("GET", "/b/k", "", headers)


@pytest.mark.parametrize("value, error", [
    ("AWS4-HMAC-SHA256", errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3/aws4_request", errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3/aws4_request, SignedHeaders=host",
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3/aws4_request SignedHeaders=host "
     "Signature=" + "0" * 64, errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3, SignedHeaders=host, Signature=" + "0" * 64,
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/s3/aws4, SignedHeaders=host, Signature=" + "0" * 64,
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=/20240301/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + "0" * 64,
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=bleepstore/20240301/us-east-1/ec2/aws4_request, SignedHeaders=host, "
     "Signature=" + "0" * 64, errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA512 Credential=bleepstore/20240301/us-east-1/s3/aws4_request, SignedHeaders=host, "
     "Signature=" + "0" * 64, errors.AuthorizationHeaderMalformed),
    ("Bearer abc", errors.AuthorizationHeaderMalformed),
    ("", errors.AuthorizationHeaderMalformed),
    ("AWS bleepstore:abcdef=", errors.InvalidRequest),
])
def test_verify_header_auth_malformed_authorization(fixed_clock, value, error):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("Authorization", value)
    with pytest.raises(error) as exc:
        verify(method, path, query, headers)
    assert exc.value.status == 400


def test_parse_authorization_fields():
    parsed = sigv4.parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AK/20240301/eu-west-1/s3/aws4_request,SignedHeaders=host;x-amz-date,"
        "Signature=abc")
    assert parsed.access_key == "AK"
    assert parsed.date == "20240301"
    assert parsed.region == "eu-west-1"
    assert parsed.service == "s3"
    assert parsed.signed_headers == ("host", "x-amz-date")
    assert parsed.signature == "abc"


def test_parse_authorization_tolerates_spaces_after_commas():
    parsed = sigv4.parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AK/20240301/us-east-1/s3/aws4_request,  SignedHeaders=host ,  Signature=ff")
    assert parsed.signed_headers == ("host",)
    assert parsed.signature == "ff"


def test_verify_header_auth_wrong_service_message(fixed_clock):
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    headers.set("Authorization", headers["Authorization"].replace("/s3/", "/iam/"))
    with pytest.raises(errors.AuthorizationHeaderMalformed) as exc:
        verify(method, path, query, headers)
    assert 'incorrect service "iam"' in exc.value.message


def test_verify_header_auth_non_ascii_signature(fixed_clock):
    """Regression: hmac.compare_digest on a non-ASCII str raised TypeError (a 500)."""
    method, path, query, headers = boto_sign("http://localhost:9010/b/k")
    auth = headers["Authorization"]
    headers.set("Authorization", auth[:auth.index("Signature=")] + "Signature=" + "é" * 64)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(method, path, query, headers)


# --- presigned URLs (botocore) -------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://localhost:9010/bucket/key",
    "http://localhost:9010/bucket/a%20b/%C3%A9~x",
    "http://localhost:9010/bucket/k?response-content-type=text%2Fplain&response-content-disposition=a%3Db",
    "http://localhost:9010/bucket?list-type=2&prefix=a%2Bb",
])
def test_verify_presigned_botocore(fixed_clock, url):
    result = verify_q(*boto_presign(url), now=FIXED + timedelta(seconds=10))
    assert result.presigned is True
    assert result.payload_hash == sigv4.UNSIGNED_PAYLOAD
    assert result.access_key == BOTO_AK


def test_verify_presigned_botocore_put(fixed_clock):
    assert verify_q(*boto_presign("http://localhost:9010/bucket/key", "PUT")).presigned is True


def test_verify_presigned_expired(fixed_clock):
    with pytest.raises(errors.AccessDenied) as exc:
        verify_q(*boto_presign("http://localhost:9010/b/k", expires=60), now=FIXED + timedelta(seconds=61))
    assert exc.value.message == "Request has expired"
    assert exc.value.status == 403
    assert exc.value.fields["X-Amz-Expires"] == "60"
    assert exc.value.fields["Expires"] == "2024-03-01T12:01:00Z"


def test_verify_presigned_not_yet_valid(fixed_clock):
    with pytest.raises(errors.AccessDenied) as exc:
        verify_q(*boto_presign("http://localhost:9010/b/k"), now=FIXED - timedelta(minutes=16))
    assert exc.value.message == "Request is not valid yet"


def test_verify_presigned_slightly_future_date_accepted(fixed_clock):
    assert verify_q(*boto_presign("http://localhost:9010/b/k"), now=FIXED - timedelta(minutes=14)).presigned


def test_verify_presigned_wrong_secret(fixed_clock):
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(*boto_presign("http://localhost:9010/b/k", secret="wrong"))


def test_verify_presigned_unknown_access_key(fixed_clock):
    with pytest.raises(errors.InvalidAccessKeyId) as exc:
        verify_q(*boto_presign("http://localhost:9010/b/k"), secrets=lookup({}))
    assert exc.value.fields["AWSAccessKeyId"] == BOTO_AK


def replace_param(raw_query: str, name: str, value: str | None) -> str:
    parts = []
    for part in raw_query.split("&"):
        if part.split("=", 1)[0] == name:
            if value is not None:
                parts.append(f"{name}={value}")
        else:
            parts.append(part)
    return "&".join(parts)


@pytest.mark.parametrize("value, message", [
    ("0", "X-Amz-Expires must be non-negative"),
    ("-1", "X-Amz-Expires must be non-negative"),
    ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
    ("abc", "X-Amz-Expires should be a number"),
    ("1.5", "X-Amz-Expires should be a number"),
])
def test_verify_presigned_bad_expires(fixed_clock, value, message):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, "X-Amz-Expires", value)
    with pytest.raises(errors.AuthorizationQueryParametersError) as exc:
        verify_q(method, path, query, headers)
    assert exc.value.message == message
    assert exc.value.status == 400


def test_verify_presigned_max_expires_accepted(fixed_clock):
    result = verify_q(*boto_presign("http://localhost:9010/b/k", expires=604800),
                      now=FIXED + timedelta(seconds=604800))
    assert result.presigned is True


@pytest.mark.parametrize("name", ["X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date",
                                  "X-Amz-Expires"])
def test_verify_presigned_missing_parameter(fixed_clock, name):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, name, None)
    with pytest.raises(errors.AuthorizationQueryParametersError) as exc:
        verify_q(method, path, query, headers)
    assert "requires the X-Amz-Algorithm, X-Amz-Credential" in exc.value.message


@pytest.mark.parametrize("name", ["X-Amz-Credential", "X-Amz-Signature", "X-Amz-Expires"])
def test_verify_presigned_empty_parameter(fixed_clock, name):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, name, "")
    with pytest.raises(errors.AuthorizationQueryParametersError):
        verify_q(method, path, query, headers)


@pytest.mark.parametrize("value", [None, "AWS4-HMAC-SHA1", "aws4-hmac-sha256"])
def test_verify_presigned_bad_algorithm(fixed_clock, value):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, "X-Amz-Algorithm", value)
    with pytest.raises(errors.AuthorizationQueryParametersError) as exc:
        verify_q(method, path, query, headers)
    assert exc.value.message == 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'


def test_verify_presigned_malformed_credential(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, "X-Amz-Credential", "bleepstore%2F20240301%2Fus-east-1")
    with pytest.raises(errors.AuthorizationQueryParametersError) as exc:
        verify_q(method, path, query, headers)
    assert "Credential is mal-formed" in exc.value.message


def test_verify_presigned_wrong_region(fixed_clock):
    with pytest.raises(errors.AuthorizationQueryParametersError) as exc:
        verify_q(*boto_presign("http://localhost:9010/b/k", region="ap-south-1"), region="eu-west-1")
    assert exc.value.fields["Region"] == "eu-west-1"


def test_verify_presigned_credential_date_differs(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = query.replace("%2F20240301%2F", "%2F20240302%2F")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)


def test_verify_presigned_host_not_signed(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, "X-Amz-SignedHeaders", "content-type")
    with pytest.raises(errors.AccessDenied) as exc:
        verify_q(method, path, query, headers)
    assert exc.value.message == "Host header is not signed"


def test_verify_presigned_signed_content_type_enforced(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", "PUT",
                                                {"Content-Type": "image/png"})
    assert "X-Amz-SignedHeaders=content-type%3Bhost" in query
    assert verify_q(method, path, query, headers).presigned is True
    other = Headers(headers)
    other.set("Content-Type", "text/html")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, other)
    missing = Headers(headers)
    del missing["Content-Type"]
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, missing)


def test_verify_presigned_tampered_query_value(fixed_clock):
    method, path, query, headers = boto_presign(
        "http://localhost:9010/b/k?response-content-type=text%2Fplain")
    query = query.replace("text%2Fplain", "text%2Fhtml")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)


def test_verify_presigned_tampered_expires(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", expires=60)
    query = replace_param(query, "X-Amz-Expires", "600")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)


def test_verify_presigned_content_sha256_parameter_used_as_payload_hash(fixed_clock):
    # A presigned URL may carry X-Amz-Content-Sha256; it then replaces UNSIGNED-PAYLOAD
    # as the canonical request's payload hash.
    digest = hashlib.sha256(b"x").hexdigest()
    url = f"http://localhost:9010/b/k?X-Amz-Content-Sha256={digest}"
    method, path, query, headers = boto_presign(url, "PUT", payload_hash=digest)
    assert verify_q(method, path, query, headers).payload_hash == digest
    # Signed as UNSIGNED-PAYLOAD but carrying a digest: the hashes differ, so no match.
    method, path, query, headers = boto_presign(url, "PUT")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)


def test_verify_presigned_non_ascii_signature(fixed_clock):
    """Regression: X-Amz-Signature=%C3%A9... reached hmac.compare_digest as non-ASCII str (TypeError, 500)."""
    method, path, query, headers = boto_presign("http://localhost:9010/b/k")
    query = replace_param(query, "X-Amz-Signature", "%C3%A9" * 64)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)


# --- small helpers --------------------------------------------------------------

def test_parse_amz_date_valid():
    assert sigv4.parse_amz_date("20130524T000000Z") == DOC_NOW


@pytest.mark.parametrize("value", ["", "20130524", "2013-05-24T00:00:00Z", "20131324T000000Z", None])
def test_parse_amz_date_invalid(value):
    with pytest.raises(errors.AccessDenied):
        sigv4.parse_amz_date(value)


# --- headers the signature does not cover --------------------------------------------------

def covered_of(result) -> frozenset[str]:
    assert result.covered_headers is not None
    return result.covered_headers


def test_require_signed_headers_refuses_unsigned_amz_headers_in_request_order():
    covered = frozenset({"host", "x-amz-date", "x-amz-content-sha256"})
    with pytest.raises(errors.AccessDenied) as exc:
        sigv4.require_signed_headers(["Host", "X-Amz-Copy-Source", "x-amz-date", "X-AMZ-ACL", "x-amz-copy-source"],
                                     covered)
    assert exc.value.status == 403
    assert exc.value.message == "There were headers present in the request which were not signed"
    assert exc.value.fields == {"HeadersNotSigned": "x-amz-copy-source, x-amz-acl"}


@pytest.mark.parametrize("names", [
    [], ["Host", "User-Agent", "Content-Type", "Content-MD5", "Range"], ["x-amzn-trace-id", "amz-sdk-request"],
    ["X-Amz-Date", "x-amz-content-sha256", "x-amz-meta-a"],
])
def test_require_signed_headers_passes_covered_and_non_amz_headers(names):
    sigv4.require_signed_headers(names, frozenset({"host", "x-amz-date", "x-amz-content-sha256", "x-amz-meta-a"}))


def test_verify_header_auth_covers_signed_headers_date_and_payload_hash(fixed_clock):
    result = verify(*boto_sign("http://localhost:9010/b/k", "PUT", {"x-amz-acl": "private", "X-Amz-Meta-A": "1"}))
    covered = covered_of(result)
    assert {"host", "x-amz-acl", "x-amz-meta-a", "x-amz-date", "x-amz-content-sha256"} <= covered
    with pytest.raises(errors.AccessDenied) as exc:
        sigv4.require_signed_headers(["x-amz-acl", "x-amz-copy-source"], covered)
    assert exc.value.fields["HeadersNotSigned"] == "x-amz-copy-source"


def test_verify_header_auth_date_and_payload_hash_covered_even_when_unlisted(fixed_clock):
    headers = Headers([("Host", "localhost"), ("x-amz-date", "20240301T120000Z"), ("x-amz-content-sha256", EMPTY)])
    scope = "20240301/us-east-1/s3/aws4_request"
    creq = sigv4.canonical_request("GET", "/b/k", "", headers, ("host",), EMPTY)
    sig = sigv4.sign(sigv4.signing_key(BOTO_SK, "20240301", "us-east-1", "s3"),
                     sigv4.string_to_sign("20240301T120000Z", scope, creq))
    headers.set("Authorization", f"AWS4-HMAC-SHA256 Credential={BOTO_AK}/{scope}, SignedHeaders=host, Signature={sig}")
    covered = covered_of(verify("GET", "/b/k", "", headers))
    sigv4.require_signed_headers(["x-amz-date", "x-amz-content-sha256"], covered)
    # ... because both values are in what was signed: changing either breaks the signature.
    for name, value in (("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD), ("x-amz-date", "20240301T120001Z")):
        changed = Headers(headers)
        changed.set(name, value)
        with pytest.raises(errors.SignatureDoesNotMatch):
            verify("GET", "/b/k", "", changed)


def test_verify_presigned_covers_only_signed_headers_and_payload_hash(fixed_clock):
    covered = covered_of(verify_q(*boto_presign("http://localhost:9010/b/k", "PUT")))
    assert covered == {"host", "x-amz-content-sha256"}
    with pytest.raises(errors.AccessDenied) as exc:
        sigv4.require_signed_headers(["x-amz-acl", "x-amz-copy-source", "x-amz-date"], covered)
    assert exc.value.fields["HeadersNotSigned"] == "x-amz-acl, x-amz-copy-source, x-amz-date"


def test_verify_presigned_signed_amz_header_covered(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", "PUT", {"x-amz-acl": "public-read"})
    assert "x-amz-acl" in unquote(query)
    sigv4.require_signed_headers(["x-amz-acl"], covered_of(verify_q(method, path, query, headers)))


def test_verify_presigned_content_sha256_header_is_the_payload_hash(fixed_clock):
    # botocore (like aws-sdk-go) puts an x-amz-content-sha256 header into the payload line.
    digest = hashlib.sha256(b"x").hexdigest()
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", "PUT", {"x-amz-content-sha256": digest})
    assert verify_q(method, path, query, headers).payload_hash == digest
    # A digest sent to a URL signed for UNSIGNED-PAYLOAD is a payload line nobody signed.
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", "PUT")
    headers.set("x-amz-content-sha256", digest)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_q(method, path, query, headers)
    headers.set("x-amz-content-sha256", sigv4.UNSIGNED_PAYLOAD)
    assert verify_q(method, path, query, headers).payload_hash == sigv4.UNSIGNED_PAYLOAD


def test_verify_presigned_invalid_content_sha256_header(fixed_clock):
    method, path, query, headers = boto_presign("http://localhost:9010/b/k", "PUT")
    headers.set("x-amz-content-sha256", "not-a-hash")
    with pytest.raises(errors.InvalidArgument):
        verify_q(method, path, query, headers)


# --- generic signers (no x-amz-content-sha256) and the Date header -------------

def _plain_sigv4(method: str, url: str, body: bytes, when: datetime) -> Headers:
    """Headers of botocore's plain SigV4Auth, which hashes the body into the
    canonical request but sends no x-amz-content-sha256."""
    req = AWSRequest(method=method, url=url, data=body)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
        botocore.auth.SigV4Auth(Credentials(AKID, SECRET), "s3", "us-east-1").add_auth(req)
    headers = Headers(list(req.headers.items()))
    headers.set("Host", HOST)
    assert "x-amz-content-sha256" not in headers
    return headers


def test_plain_sigv4auth_signature_is_checked_against_the_body_hash():
    body = b"Welcome to Amazon S3."
    headers = _plain_sigv4("PUT", f"https://{HOST}/k", body, DOC_NOW)
    signed = sigv4.verify_header_auth("PUT", "/k", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert signed.payload_hash == sigv4.BODY_SHA256 and signed.verify_payload is not None
    signed.verify_payload(hashlib.sha256(body).hexdigest())  # the body that was signed: accepted
    for other in (b"Welcome to Amazon S3!", b""):
        with pytest.raises(errors.SignatureDoesNotMatch):
            signed.verify_payload(hashlib.sha256(other).hexdigest())


def test_plain_sigv4auth_without_a_body_signs_the_empty_hash():
    headers = _plain_sigv4("GET", f"https://{HOST}/k", b"", DOC_NOW)
    signed = sigv4.verify_header_auth("GET", "/k", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    signed.verify_payload(EMPTY)
    with pytest.raises(errors.SignatureDoesNotMatch):
        signed.verify_payload(WELCOME_SHA)


def _date_only(date_header: str, stamp: str, scope_date: str) -> Headers:
    """The AWS GET Object example, dated by Date instead of x-amz-date: the string
    to sign carries ``stamp`` (ISO 8601 basic), signed here independently."""
    import hmac as _hmac
    signed = "date;host;range;x-amz-content-sha256"
    canonical = "\n".join(["GET", "/test.txt", "", f"date:{date_header}", f"host:{HOST}", "range:bytes=0-9",
                           f"x-amz-content-sha256:{EMPTY}", "", signed, EMPTY])
    scope = f"{scope_date}/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SECRET).encode()
    for part in (scope_date, "us-east-1", "s3", "aws4_request"):
        key = _hmac.new(key, part.encode(), hashlib.sha256).digest()
    h = Headers()
    h.add("Host", HOST)
    h.add("Date", date_header)
    h.add("Range", "bytes=0-9")
    h.add("x-amz-content-sha256", EMPTY)
    h.add("Authorization", auth_header(signed, _hmac.new(key, sts.encode(), hashlib.sha256).hexdigest(),
                                       scope=scope))
    return h


def test_date_header_alone_dates_the_request():
    headers = _date_only("Fri, 24 May 2013 00:00:00 GMT", AMZ_DATE, "20130524")
    signed = sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    assert signed.amz_date == AMZ_DATE and signed.verify_payload is None
    # Other RFC 1123 spellings of the same instant name the same timestamp.
    assert sigv4.date_header_timestamp("Fri, 24 May 2013 02:00:00 +0200") == AMZ_DATE


def test_date_header_refused_when_it_does_not_match():
    # Signed for 00:00:00 but sent saying 00:00:01.
    headers = _date_only("Fri, 24 May 2013 00:00:00 GMT", AMZ_DATE, "20130524")
    headers.set("Date", "Fri, 24 May 2013 00:00:01 GMT")
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    # The credential scope names another day than the Date header.
    headers = _date_only("Fri, 24 May 2013 00:00:00 GMT", AMZ_DATE, "20130523")
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
    # Outside the allowed skew; not a date at all.
    headers = _date_only("Fri, 24 May 2013 00:00:00 GMT", AMZ_DATE, "20130524")
    with pytest.raises(errors.RequestTimeTooSkewed):
        sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW + timedelta(minutes=16),
                                 "us-east-1")
    for bad in ("yesterday", "Fri, 24 May 2013 00:00:00"):  # the second has no zone
        headers.set("Date", bad)
        with pytest.raises(errors.AccessDenied):
            sigv4.verify_header_auth("GET", "/test.txt", "", headers, DOC_LOOKUP, DOC_NOW, "us-east-1")
