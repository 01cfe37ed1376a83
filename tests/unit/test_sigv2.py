"""SigV2 (HMAC-SHA1) verification against botocore's own V1 signers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.datastructures import Headers

from bleepstore_app import errors
from bleepstore_app.auth import sigv2

CREDS = Credentials("AKID", "secret-key")


def lookup(key):
    return "secret-key" if key == "AKID" else None


def _signed(method, url, headers=None, auth_path=None):
    request = AWSRequest(method=method, url=url, headers=headers or {})
    request.auth_path = auth_path
    HmacV1Auth(CREDS).add_auth(request)
    parts = urlsplit(request.url)
    return parts.path, parts.query, Headers(list(request.headers.items()))


@pytest.mark.parametrize("method, url, headers, auth_path", [
    ("GET", "http://h/bucket/key", {}, None),
    ("PUT", "http://h/bucket/a%20b%2Bc", {"Content-Type": "text/plain", "x-amz-meta-Color": "red"}, None),
    ("PUT", "http://h/bucket", {}, "/bucket/"),
    ("GET", "http://h/bucket?acl", {}, None),
    ("GET", "http://h/bucket/key?uploadId=abc&partNumber=2", {}, None),
    ("GET", "http://h/bucket?encoding-type=url&prefix=a", {}, "/bucket/"),
])
def test_verify_header_auth_accepts_botocore_signatures(method, url, headers, auth_path):
    path, query, signed = _signed(method, url, headers, auth_path)
    result = sigv2.verify_header_auth(method, path, query, signed, lookup, datetime.now(timezone.utc), None)
    assert result.access_key == "AKID"


def test_verify_header_auth_tampered_is_signature_does_not_match():
    path, query, signed = _signed("GET", "http://h/bucket/key")
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv2.verify_header_auth("GET", "/bucket/other", query, signed, lookup, datetime.now(timezone.utc), None)


def test_verify_header_auth_unknown_key_is_invalid_access_key_id():
    path, query, signed = _signed("GET", "http://h/bucket/key")
    with pytest.raises(errors.InvalidAccessKeyId):
        sigv2.verify_header_auth("GET", path, query, signed, lambda k: None, datetime.now(timezone.utc), None)


def test_verify_header_auth_skewed_date_is_request_time_too_skewed():
    path, query, signed = _signed("GET", "http://h/bucket/key")
    later = datetime.now(timezone.utc) + timedelta(minutes=20)
    with pytest.raises(errors.RequestTimeTooSkewed):
        sigv2.verify_header_auth("GET", path, query, signed, lookup, later, None)


def test_verify_header_auth_virtual_host_uses_bucket_in_resource():
    request = AWSRequest(method="GET", url="http://bucket.s3.example/key", headers={})
    request.auth_path = "/bucket/key"
    HmacV1Auth(CREDS).add_auth(request)
    signed = Headers(list(request.headers.items()))
    sigv2.verify_header_auth("GET", "/key", "", signed, lookup, datetime.now(timezone.utc), "bucket")


def _presigned(url, expires=3600):
    request = AWSRequest(method="GET", url=url, headers={})
    HmacV1QueryAuth(CREDS, expires=expires).add_auth(request)
    parts = urlsplit(request.url)
    return parts.path, parts.query, dict(parse_qsl(parts.query))


def test_verify_presigned_accepts_botocore_url():
    path, raw_query, query = _presigned("http://h/bucket/a%20key?response-content-type=text%2Fplain")
    result = sigv2.verify_presigned("GET", path, raw_query, query, Headers(), lookup, datetime.now(timezone.utc), None)
    assert result.presigned


def test_verify_presigned_expired_is_access_denied():
    path, raw_query, query = _presigned("http://h/bucket/key", expires=1)
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    with pytest.raises(errors.AccessDenied) as exc:
        sigv2.verify_presigned("GET", path, raw_query, query, Headers(), lookup, later, None)
    assert exc.value.message == "Request has expired"


def test_verify_presigned_wrong_method_is_signature_does_not_match():
    path, raw_query, query = _presigned("http://h/bucket/key")
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv2.verify_presigned("PUT", path, raw_query, query, Headers(), lookup, datetime.now(timezone.utc), None)


def test_verify_header_auth_keeps_commas_inside_amz_header_values():
    """s3cmd signs x-amz-date ("Wed, 25 Nov ...") and metadata may hold ", "."""
    from email.utils import formatdate
    path, query, signed = _signed("PUT", "http://h/bucket/key",
                                  {"x-amz-date": formatdate(usegmt=True), "x-amz-meta-note": "a, b ,c"})
    sigv2.verify_header_auth("PUT", path, query, signed, lookup, datetime.now(timezone.utc), None)


# --- what the string to sign must cover ----------------------------------------------------------

def test_verify_header_auth_added_amz_header_is_signature_does_not_match():
    path, query, signed = _signed("PUT", "http://h/bucket/key")
    signed.set("x-amz-acl", "public-read")
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv2.verify_header_auth("PUT", path, query, signed, lookup, datetime.now(timezone.utc), None)


@pytest.mark.parametrize("raw_query, expected", [
    ("uploadId=u1&partNumber=2", "/b/k?partNumber=2&uploadId=u1"),
    ("%75ploadId=u1&%70artNumber=2", "/b/k?partNumber=2&uploadId=u1"),
    ("%61cl", "/b/k?acl"),
    ("prefix=a&%76ersionId=v%3D", "/b/k?versionId=v="),
    ("x-id=PutObject&list-type=2", "/b/k"),
])
def test_canonical_resource_matches_subresources_decoded(raw_query, expected):
    """The router decodes parameter names; the string to sign must see the same names."""
    assert sigv2.canonical_resource("/b/k", raw_query) == expected


def test_verify_presigned_encoded_subresource_added_is_signature_does_not_match():
    path, raw_query, query = _presigned("http://h/bucket/key")
    raw_query += "&%75ploadId=u1&%70artNumber=1"
    query = dict(parse_qsl(raw_query))
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv2.verify_presigned("GET", path, raw_query, query, Headers(), lookup, datetime.now(timezone.utc), None)


def _presigned_with(url, headers):
    request = AWSRequest(method="PUT", url=url, headers=headers)
    HmacV1QueryAuth(CREDS, expires=3600).add_auth(request)
    parts = urlsplit(request.url)
    return parts.path, parts.query, dict(parse_qsl(parts.query))


def test_verify_presigned_hoisted_values_and_matching_headers_accepted():
    path, raw_query, query = _presigned_with("http://h/bucket/key", {"x-amz-acl": "private",
                                                                     "Content-Type": "text/plain"})
    assert query["x-amz-acl"] == "private" and query["content-type"] == "text/plain"
    now = datetime.now(timezone.utc)
    sigv2.verify_presigned("PUT", path, raw_query, query, Headers(), lookup, now, None)
    same = Headers([("x-amz-acl", "private"), ("Content-Type", "text/plain")])
    sigv2.verify_presigned("PUT", path, raw_query, query, same, lookup, now, None)


@pytest.mark.parametrize("name, value", [("x-amz-acl", "public-read"), ("Content-Type", "text/html"),
                                         ("x-amz-meta-a", "1")])
def test_verify_presigned_header_differing_from_signed_value_is_signature_does_not_match(name, value):
    """The header is what the request acts on, so it, not the hoisted query value, is signed."""
    path, raw_query, query = _presigned_with("http://h/bucket/key", {"x-amz-acl": "private",
                                                                     "Content-Type": "text/plain"})
    with pytest.raises(errors.SignatureDoesNotMatch):
        sigv2.verify_presigned("PUT", path, raw_query, query, Headers([(name, value)]), lookup,
                               datetime.now(timezone.utc), None)


def test_signed_requests_leave_no_header_uncovered():
    path, query, signed = _signed("GET", "http://h/bucket/key")
    result = sigv2.verify_header_auth("GET", path, query, signed, lookup, datetime.now(timezone.utc), None)
    assert result.covered_headers is None  # every x-amz-* header present is in the string to sign
