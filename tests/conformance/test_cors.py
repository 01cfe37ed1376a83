"""CORS against a running server: Put/Get/DeleteBucketCors with boto3 (every
refused configuration leaves the stored one unchanged), preflights sent raw with
``requests`` and never signed, and the Access-Control-* headers on actual
requests (signed, presigned, anonymous, and their error answers).
The browser's side of the same protocol: test_cors_browser.py."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests
from botocore.exceptions import ClientError

from bleepstore_app.config import default_owner_id
from tests.servers import ACCESS_KEY, OTHER_ACCESS_KEY

from .helpers import assert_error, client_error, presign, signed_request

ORIGIN = "https://app.example.com"
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
               "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
               "whitelisted by the resource's CORS spec.")
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
FULL_RULE = {"ID": "uploads", "AllowedHeaders": ["Content-Type", "x-amz-*"], "AllowedMethods": ["PUT", "GET"],
             "AllowedOrigins": [ORIGIN, "http://*.example.org"], "ExposeHeaders": ["ETag", "x-amz-request-id"],
             "MaxAgeSeconds": 3000}
BASELINE = [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://baseline.example"]}]


def _error(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return client_error(exc)


def _put(s3, bucket, rules) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


def _rules(s3, bucket) -> list[dict] | None:
    try:
        return s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchCORSConfiguration", err
        return None


def _put_raw(server, bucket, body: bytes, md5: bool = True, **kw) -> requests.Response:
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if md5 else {}
    headers.update(kw.pop("headers", {}))
    return signed_request(server, "PUT", f"/{bucket}", query="cors", body=body, headers=headers, **kw)


def _doc(*rules: str) -> bytes:
    return ('<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            + "".join(f"<CORSRule>{r}</CORSRule>" for r in rules) + "</CORSConfiguration>").encode()


def _options(server, path: str, origin: str | None = ORIGIN, method: str | None = "PUT",
             request_headers: str | None = None, query: str = "", extra: dict | None = None) -> requests.Response:
    headers = dict(extra or {})
    if origin is not None:
        headers["Origin"] = origin
    if method is not None:
        headers["Access-Control-Request-Method"] = method
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    url = server.endpoint + path + (f"?{query}" if query else "")
    return requests.options(url, headers=headers, timeout=30)


def _cors_headers(resp) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("access-control-") or k == "Vary"}


# -- Put/Get/DeleteBucketCors ----------------------------------------------------------------------

def test_put_get_delete_bucket_cors(server, s3, bucket):
    assert _rules(s3, bucket) is None
    second = {"AllowedMethods": ["DELETE"], "AllowedOrigins": ["*"]}
    put = s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [FULL_RULE, second]})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _rules(s3, bucket) == [FULL_RULE, second]  # order kept, only the members set
    raw = signed_request(server, "GET", f"/{bucket}", query="cors")
    assert raw.status_code == 200 and raw.headers["Content-Type"] == "application/xml"
    assert raw.content.endswith(
        b'<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule><ID>uploads</ID>'
        b"<AllowedHeader>Content-Type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader>"
        b"<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>"
        b"<AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedOrigin>http://*.example.org</AllowedOrigin>"
        b"<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>"
        b"<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule><CORSRule><AllowedMethod>DELETE</AllowedMethod>"
        b"<AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>")
    # replaced whole, not merged
    _put(s3, bucket, BASELINE)
    assert _rules(s3, bucket) == BASELINE
    delete = s3.delete_bucket_cors(Bucket=bucket)
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _rules(s3, bucket) is None
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert client_error(exc) == ("NoSuchCORSConfiguration", 404)
    assert exc.value.response["Error"]["BucketName"] == bucket
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204  # none: still 204


def test_put_bucket_cors_document_without_namespace(server, s3, bucket):
    body = (b"<CORSConfiguration><CORSRule><AllowedOrigin></AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>"
            b"</CORSRule></CORSConfiguration>")
    assert _put_raw(server, bucket, body).status_code == 200
    assert _rules(s3, bucket) == [{"AllowedMethods": ["HEAD"], "AllowedOrigins": [""]}]


INVALID = [
    ("unsupported method", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"),
     "InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
    ("OPTIONS is no allowed method", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>OPTIONS</AllowedMethod>"),
     "InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is OPTIONS"),
    ("two wildcards in an origin",
     _doc("<AllowedOrigin>http://*.*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"),
     "InvalidRequest", 'AllowedOrigin "http://*.*.example.com" can not have more than one wildcard.'),
    ("two wildcards in a header",
     _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-*-*</AllowedHeader>"),
     "InvalidRequest", 'AllowedHeader "x-*-*" can not have more than one wildcard.'),
    ("wildcard expose header",
     _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader>*</ExposeHeader>"),
     "InvalidRequest", None),
    ("expose header with CR LF",
     _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
          "<ExposeHeader>ETag&#13;&#10;Set-Cookie: a=b</ExposeHeader>"), "InvalidRequest", None),
    ("101 rules", _doc(*["<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"] * 101),
     "MalformedXML", None),
    ("no rules", _doc(), "MalformedXML", None),
    ("a rule without origin", _doc("<AllowedMethod>GET</AllowedMethod>"), "MalformedXML", None),
    ("a rule without method", _doc("<AllowedOrigin>*</AllowedOrigin>"), "MalformedXML", None),
    ("unknown element", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Foo>1</Foo>"),
     "MalformedXML", None),
    ("two MaxAgeSeconds", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                               "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>"), "MalformedXML", None),
    ("MaxAgeSeconds not a number", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                                        "<MaxAgeSeconds>soon</MaxAgeSeconds>"), "MalformedXML", None),
    ("ID over 255 characters", _doc("<ID>" + "i" * 256 + "</ID><AllowedOrigin>*</AllowedOrigin>"
                                    "<AllowedMethod>GET</AllowedMethod>"), "InvalidArgument", None),
    ("wrong root", b"<CORSConfig><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                   b"</CORSRule></CORSConfig>", "MalformedXML", None),
    ("entity expansion", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                         b"<CORSConfiguration><CORSRule><AllowedOrigin>&b;</AllowedOrigin>"
                         b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>", "MalformedXML", None),
    ("external entity", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                        b"<CORSConfiguration><CORSRule><AllowedOrigin>&e;</AllowedOrigin>"
                        b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>", "MalformedXML", None),
    ("non-UTF-8 bytes", _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>").replace(
        b"<AllowedOrigin>*", b"<AllowedOrigin>\xff\xfe*"), "MalformedXML", None),
    ("not XML", b"\x00\x01garbage", "MalformedXML", None),
    ("over 64 KB", _doc(*["<AllowedOrigin>https://" + "o" * 700 + ".example</AllowedOrigin>"
                          "<AllowedMethod>GET</AllowedMethod>"] * 95), "MaxMessageLengthExceeded", None),
]


@pytest.mark.parametrize("body, code, message", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_put_bucket_cors_invalid_refused_and_unchanged(server, s3, bucket, body, code, message):
    _put(s3, bucket, BASELINE)
    fields = assert_error(_put_raw(server, bucket, body), code, 400)
    if message is not None:
        assert fields["Message"] == message
    assert _rules(s3, bucket) == BASELINE
    # ... and a bucket that had none still has none
    s3.delete_bucket_cors(Bucket=bucket)
    assert_error(_put_raw(server, bucket, body), code, 400)
    assert _rules(s3, bucket) is None


def test_put_bucket_cors_needs_content_md5_and_checks_it(server, s3, bucket):
    _put(s3, bucket, BASELINE)
    good = _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")
    fields = assert_error(_put_raw(server, bucket, good, md5=False), "InvalidRequest", 400)
    assert "Content-MD5" in fields["Message"]
    other_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    assert_error(_put_raw(server, bucket, good, md5=False, headers={"Content-MD5": other_md5}), "BadDigest", 400)
    assert _rules(s3, bucket) == BASELINE
    assert _put_raw(server, bucket, good).status_code == 200  # the same document with its MD5
    assert _rules(s3, bucket) == [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]


def test_bucket_cors_owner_only(server, s3, s3_other, bucket):
    _put(s3, bucket, BASELINE)
    assert _error(s3_other.put_bucket_cors, Bucket=bucket,
                  CORSConfiguration={"CORSRules": [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"]}]}
                  ) == ("AccessDenied", 403)
    assert _error(s3_other.get_bucket_cors, Bucket=bucket) == ("AccessDenied", 403)
    assert _error(s3_other.delete_bucket_cors, Bucket=bucket) == ("AccessDenied", 403)
    body = _doc("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>")
    assert_error(_put_raw(server, bucket, body, sign=False), "AccessDenied", 403)  # anonymous
    assert_error(signed_request(server, "DELETE", f"/{bucket}", query="cors", sign=False), "AccessDenied", 403)
    assert _rules(s3, bucket) == BASELINE


def test_bucket_cors_as_the_bucket_policy_says(s3, s3_other, bucket):
    """s3:PutBucketCORS (which also covers DeleteBucketCors) and s3:GetBucketCORS granted
    to another user let it in; an explicit Deny shuts out even the owner."""
    arn = f"arn:aws:s3:::{bucket}"
    grant = {"Effect": "Allow", "Principal": {"AWS": default_owner_id(OTHER_ACCESS_KEY)},
             "Action": ["s3:PutBucketCORS", "s3:GetBucketCORS"], "Resource": arn}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    _put(s3_other, bucket, BASELINE)
    assert _rules(s3_other, bucket) == BASELINE
    s3_other.delete_bucket_cors(Bucket=bucket)
    assert _rules(s3, bucket) is None
    deny = {"Effect": "Deny", "Principal": {"AWS": default_owner_id(ACCESS_KEY)}, "Action": "s3:PutBucketCORS",
            "Resource": arn}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]}))
    assert _error(s3.put_bucket_cors, Bucket=bucket, CORSConfiguration={"CORSRules": BASELINE}) == ("AccessDenied", 403)
    assert _rules(s3, bucket) is None
    s3.delete_bucket_policy(Bucket=bucket)
    _put(s3, bucket, BASELINE)
    assert _rules(s3, bucket) == BASELINE


def test_bucket_cors_missing_bucket(s3):
    name = "no-such-cors-bucket-7a1"
    assert _error(s3.get_bucket_cors, Bucket=name) == ("NoSuchBucket", 404)
    assert _error(s3.put_bucket_cors, Bucket=name, CORSConfiguration={"CORSRules": BASELINE}) == ("NoSuchBucket", 404)
    assert _error(s3.delete_bucket_cors, Bucket=name) == ("NoSuchBucket", 404)


# -- preflight -----------------------------------------------------------------------------------

def test_preflight_allowed(server, s3, bucket):
    _put(s3, bucket, [FULL_RULE])
    resp = _options(server, f"/{bucket}/photos/cat.jpg", method="PUT", request_headers="content-type,X-Amz-Meta-Kind")
    assert resp.status_code == 200 and resp.content == b""
    assert _cors_headers(resp) == {
        "access-control-allow-origin": ORIGIN, "access-control-allow-methods": "PUT, GET",
        "access-control-allow-headers": "content-type, x-amz-meta-kind",
        "access-control-expose-headers": "ETag, x-amz-request-id", "access-control-max-age": "3000",
        "access-control-allow-credentials": "true", "vary": VARY}
    assert resp.headers["x-amz-request-id"]
    # on the bucket itself, and without requested headers: no Allow-Headers
    resp = _options(server, f"/{bucket}", method="GET")
    assert resp.status_code == 200 and "access-control-allow-headers" not in _cors_headers(resp)


def test_preflight_is_never_authenticated(server, s3, bucket):
    """A preflight carrying a bogus signature, or sent to a presigned URL, is
    answered from the rules alone."""
    _put(s3, bucket, [FULL_RULE])
    bogus = {"Authorization": "AWS4-HMAC-SHA256 Credential=NOPE/20200101/us-east-1/s3/aws4_request, "
                              "SignedHeaders=host, Signature=00"}
    assert _options(server, f"/{bucket}/k", extra=bogus).status_code == 200
    url = presign("PUT", f"http://127.0.0.1:{server.port}/{bucket}/k")
    resp = requests.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}, timeout=30)
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert _options(server, f"/{bucket}", query="uploads").status_code == 200  # any subresource


@pytest.mark.parametrize("origin, method, request_headers, path_kind", [
    ("https://evil.example.com", "PUT", None, "object"),       # origin not listed
    ("https://APP.example.com", "PUT", None, "object"),        # origins are case-sensitive
    ("http://app.example.com", "PUT", None, "bucket"),         # another scheme
    (ORIGIN + "/", "PUT", None, "object"),                     # not the serialized origin
    (ORIGIN, "DELETE", None, "object"),                        # method not allowed
    (ORIGIN, "put", None, "object"),                           # methods are case-sensitive
    (ORIGIN, "PUT", "content-type, x-custom", "object"),       # one header not allowed
    (ORIGIN, "PUT", "authorization", "bucket"),
])
def test_preflight_refused(server, s3, bucket, origin, method, request_headers, path_kind):
    _put(s3, bucket, [FULL_RULE])
    path = f"/{bucket}/k" if path_kind == "object" else f"/{bucket}"
    resp = _options(server, path, origin=origin, method=method, request_headers=request_headers)
    fields = assert_error(resp, "AccessForbidden", 403)
    assert fields["Message"] == NOT_ALLOWED
    assert fields["Method"] == method and fields["ResourceType"] == path_kind.upper()
    assert _cors_headers(resp) == {}


def test_preflight_malformed(server, s3, bucket):
    _put(s3, bucket, [FULL_RULE])
    for resp in (_options(server, f"/{bucket}/k", origin=None), _options(server, f"/{bucket}", origin=None, method=None)):
        fields = assert_error(resp, "BadRequest", 400)
        assert fields["Message"] == "Insufficient information. Origin request header needed."
    fields = assert_error(_options(server, f"/{bucket}/k", method=None), "BadRequest", 400)
    assert fields["Message"] == "Invalid Access-Control-Request-Method: null"
    # no Origin is refused first, even where there is no bucket
    assert_error(_options(server, "/no-such-bucket-cors-1/k", origin=None), "BadRequest", 400)


def test_preflight_without_configuration_or_bucket(server, s3, bucket):
    fields = assert_error(_options(server, f"/{bucket}/k"), "AccessForbidden", 403)
    assert fields["Message"] == "CORSResponse: CORS is not enabled for this bucket."
    assert (fields["Method"], fields["ResourceType"]) == ("PUT", "BUCKET")
    fields = assert_error(_options(server, f"/{bucket}", method=None), "AccessForbidden", 403)
    assert fields["Method"] == "OPTIONS"
    fields = assert_error(_options(server, "/no-such-bucket-cors-1/k"), "AccessForbidden", 403)
    assert fields["Message"] == "CORSResponse: Bucket not found"
    assert_error(_options(server, "/"), "AccessForbidden", 403)


def test_preflight_wildcard_origins(server, s3, bucket):
    _put(s3, bucket, [{"AllowedMethods": ["GET"], "AllowedOrigins": ["http://*.example.org"], "MaxAgeSeconds": 1},
                      {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*"], "MaxAgeSeconds": 2},
                      {"AllowedMethods": ["PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"]}])
    sub = _options(server, f"/{bucket}/k", origin="http://a.b.example.org", method="GET")
    assert sub.status_code == 200 and sub.headers["Access-Control-Allow-Origin"] == "http://a.b.example.org"
    assert sub.headers["Access-Control-Max-Age"] == "1"  # the first matching rule
    assert sub.headers["Access-Control-Allow-Credentials"] == "true"
    assert _options(server, f"/{bucket}/k", origin="http://.example.org", method="GET").status_code == 200
    second = _options(server, f"/{bucket}/k", origin="https://a.example.org", method="GET")
    assert second.status_code == 200 and second.headers["Access-Control-Max-Age"] == "2"
    # anchored at both ends: no rule allows these for GET
    for origin in ("http://example.org", "http://a.example.org.evil.net", "ftp://a.example.org"):
        assert_error(_options(server, f"/{bucket}/k", origin=origin, method="GET"), "AccessForbidden", 403)
    anyone = _options(server, f"/{bucket}/k", origin="http://localhost:8000", method="PUT",
                      request_headers="x-amz-date,authorization,Content-Type")
    assert anyone.status_code == 200
    assert anyone.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in anyone.headers
    assert anyone.headers["Access-Control-Allow-Headers"] == "x-amz-date, authorization, content-type"


def test_preflight_header_matching(server, s3, bucket):
    _put(s3, bucket, [{"AllowedMethods": ["PUT"], "AllowedOrigins": [ORIGIN],
                       "AllowedHeaders": ["X-AMZ-*", "content-TYPE"]},
                      {"AllowedMethods": ["GET"], "AllowedOrigins": [ORIGIN]}])
    ok = _options(server, f"/{bucket}/k", request_headers="x-amz-meta-a, Content-Type ,, X-Amz-Acl")
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Headers"] == "x-amz-meta-a, content-type, x-amz-acl"
    assert_error(_options(server, f"/{bucket}/k", request_headers="x-amz-meta-a,content-md5"), "AccessForbidden", 403)
    # a rule without AllowedHeader allows no requested header
    assert _options(server, f"/{bucket}/k", method="GET").status_code == 200
    assert_error(_options(server, f"/{bucket}/k", method="GET", request_headers="range"), "AccessForbidden", 403)


def test_delete_bucket_cors_then_preflight_refused(server, s3, bucket):
    _put(s3, bucket, [FULL_RULE])
    assert _options(server, f"/{bucket}/k").status_code == 200
    s3.delete_bucket_cors(Bucket=bucket)
    fields = assert_error(_options(server, f"/{bucket}/k"), "AccessForbidden", 403)
    assert fields["Message"] == "CORSResponse: CORS is not enabled for this bucket."


# -- actual requests -------------------------------------------------------------------------------

ACTUAL_HEADERS = {"access-control-allow-origin": ORIGIN, "access-control-allow-methods": "PUT, GET",
                  "access-control-expose-headers": "ETag, x-amz-request-id", "access-control-max-age": "3000",
                  "access-control-allow-credentials": "true", "vary": VARY}


def test_actual_requests_carry_cors_headers(server, s3, bucket):
    _put(s3, bucket, [FULL_RULE])
    origin = {"Origin": ORIGIN}
    put = signed_request(server, "PUT", f"/{bucket}/k", body=b"payload", headers=origin)
    assert put.status_code == 200 and _cors_headers(put) == ACTUAL_HEADERS
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"
    get = signed_request(server, "GET", f"/{bucket}/k", headers=origin)
    assert get.status_code == 200 and get.content == b"payload" and _cors_headers(get) == ACTUAL_HEADERS
    presigned = requests.get(presign("GET", f"http://127.0.0.1:{server.port}/{bucket}/k"), headers=origin, timeout=30)
    assert presigned.status_code == 200 and _cors_headers(presigned) == ACTUAL_HEADERS
    # errors too: a missing key, an anonymous read of a private object, a bad signature
    missing = signed_request(server, "GET", f"/{bucket}/absent", headers=origin)
    assert_error(missing, "NoSuchKey", 404)
    assert _cors_headers(missing) == ACTUAL_HEADERS
    anonymous = requests.get(f"{server.endpoint}/{bucket}/k", headers=origin, timeout=30)
    assert_error(anonymous, "AccessDenied", 403)
    assert _cors_headers(anonymous) == ACTUAL_HEADERS
    forged = requests.get(presign("GET", f"http://127.0.0.1:{server.port}/{bucket}/k", secret_key="wrong"),
                          headers=origin, timeout=30)
    assert_error(forged, "SignatureDoesNotMatch", 403)
    assert _cors_headers(forged) == ACTUAL_HEADERS
    # the bucket's own URL (a listing) matches the same rules
    listing = signed_request(server, "GET", f"/{bucket}", headers=origin)
    assert listing.status_code == 200 and _cors_headers(listing) == ACTUAL_HEADERS


def test_actual_request_match_rules(server, s3, bucket):
    _put(s3, bucket, [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ExposeHeaders": ["ETag"]}])
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    anyone = signed_request(server, "GET", f"/{bucket}/k", headers={"Origin": "http://localhost:1234"})
    assert _cors_headers(anyone) == {"access-control-allow-origin": "*", "access-control-allow-methods": "GET",
                                     "access-control-expose-headers": "ETag", "vary": VARY}
    # a method no rule allows: served as usual, without CORS headers
    put = signed_request(server, "PUT", f"/{bucket}/k2", body=b"y", headers={"Origin": ORIGIN})
    assert put.status_code == 200 and _cors_headers(put) == {}
    assert s3.get_object(Bucket=bucket, Key="k2")["Body"].read() == b"y"
    # Access-Control-Request-Method on an actual request decides the match, as in S3
    asked = signed_request(server, "GET", f"/{bucket}/k",
                           headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert asked.status_code == 200 and _cors_headers(asked) == {}
    head = signed_request(server, "HEAD", f"/{bucket}/k", headers={"Origin": ORIGIN})
    assert head.status_code == 200 and _cors_headers(head) == {}  # HEAD is not GET


def test_no_cors_headers_without_origin_or_configuration(server, s3, bucket):
    _put(s3, bucket, [FULL_RULE])
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    plain = signed_request(server, "GET", f"/{bucket}/k")
    assert plain.status_code == 200 and _cors_headers(plain) == {}
    missing = signed_request(server, "GET", f"/{bucket}/absent")
    assert missing.status_code == 404 and _cors_headers(missing) == {}
    stranger = signed_request(server, "GET", f"/{bucket}/k", headers={"Origin": "https://stranger.example"})
    assert stranger.status_code == 200 and _cors_headers(stranger) == {}
    s3.delete_bucket_cors(Bucket=bucket)
    after = signed_request(server, "GET", f"/{bucket}/k", headers={"Origin": ORIGIN})
    assert after.status_code == 200 and _cors_headers(after) == {}
    service = signed_request(server, "GET", "/", headers={"Origin": ORIGIN})
    assert service.status_code == 200 and _cors_headers(service) == {}
