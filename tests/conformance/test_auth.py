"""Authentication and authorisation: SigV4 headers, presigned URLs, ownership."""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from botocore.exceptions import ClientError

from ..conftest import make_client
from ..servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY
from .helpers import (UNSIGNED_PAYLOAD, assert_client_error, assert_error, key_path, presign, sign_headers,
                      signed_request, utcnow)


# -- header authentication ------------------------------------------------------------------

def test_list_buckets_unknown_access_key(server):
    client = make_client(server.endpoint, "NOSUCHACCESSKEY", SECRET_KEY)
    with pytest.raises(ClientError) as exc:
        client.list_buckets()
    assert_client_error(exc, "InvalidAccessKeyId", 403)
    fields = assert_error(signed_request(server, "GET", "/", access_key="NOSUCHACCESSKEY"),
                          "InvalidAccessKeyId", 403)
    assert fields.get("AWSAccessKeyId") == "NOSUCHACCESSKEY"


def test_put_object_unknown_access_key(server, s3, bucket):
    client = make_client(server.endpoint, "NOSUCHACCESSKEY", SECRET_KEY)
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_client_error(exc, "InvalidAccessKeyId", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_list_buckets_wrong_secret(server):
    client = make_client(server.endpoint, ACCESS_KEY, "wrong-secret")
    with pytest.raises(ClientError) as exc:
        client.list_buckets()
    assert_client_error(exc, "SignatureDoesNotMatch", 403)


def test_put_object_wrong_secret_not_stored(server, s3, bucket):
    client = make_client(server.endpoint, ACCESS_KEY, "wrong-secret")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="k", Body=b"x" * 20000)
    assert_client_error(exc, "SignatureDoesNotMatch", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_get_object_tampered_request_signature_does_not_match(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/{bucket}/a")
    resp = requests.get(f"{server.endpoint}/{bucket}/b", headers=headers, timeout=30)
    assert_error(resp, "SignatureDoesNotMatch", 403)


def test_get_object_signed_header_changed_signature_does_not_match(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"abcdef")
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/{bucket}/a", headers={"Range": "bytes=0-1"})
    headers["Range"] = "bytes=2-3"
    resp = requests.get(f"{server.endpoint}/{bucket}/a", headers=headers, timeout=30)
    assert_error(resp, "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("method,path_kind", [("GET", "service"), ("GET", "bucket"), ("GET", "object"),
                                              ("PUT", "object"), ("DELETE", "object"), ("DELETE", "bucket"),
                                              ("GET", "location")])
def test_anonymous_request_access_denied(server, s3, bucket, method, path_kind):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"secret")
    path, query = {"service": ("/", ""), "bucket": (f"/{bucket}", ""), "object": (f"/{bucket}/obj", ""),
                   "location": (f"/{bucket}", "location")}[path_kind]
    resp = signed_request(server, method, path, query=query, sign=False, body=b"anon" if method == "PUT" else b"")
    assert_error(resp, "AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"secret"
    s3.head_bucket(Bucket=bucket)


def test_head_object_anonymous_403(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"secret")
    resp = signed_request(server, "HEAD", f"/{bucket}/obj", sign=False)
    assert resp.status_code == 403
    assert resp.content == b""


def test_get_object_anonymous_missing_key_access_denied(server, bucket):
    resp = signed_request(server, "GET", f"/{bucket}/no-such-key", sign=False)
    assert_error(resp, "AccessDenied", 403)


@pytest.mark.parametrize("offset", [-20, 20], ids=["past", "future"])
def test_list_buckets_request_time_too_skewed(server, offset):
    when = utcnow() + dt.timedelta(minutes=offset)
    resp = signed_request(server, "GET", "/", when=when)
    fields = assert_error(resp, "RequestTimeTooSkewed", 403)
    assert fields.get("MaxAllowedSkewMilliseconds") == "900000"
    assert fields.get("RequestTime") == when.strftime("%Y%m%dT%H%M%SZ")


def test_list_buckets_small_skew_accepted(server):
    resp = signed_request(server, "GET", "/", when=utcnow() - dt.timedelta(minutes=10))
    assert resp.status_code == 200


def test_put_object_time_too_skewed_not_stored(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket, "k"), body=b"x",
                          when=utcnow() - dt.timedelta(minutes=20))
    assert_error(resp, "RequestTimeTooSkewed", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("size", [10, 20000, 3 * 1024 * 1024])
def test_put_object_payload_sha256_mismatch(server, s3, bucket, size):
    signed_body = b"a" * size
    sent_body = b"b" * size
    resp = signed_request(server, "PUT", key_path(bucket, "k"), body=sent_body, signed_body=signed_body)
    fields = assert_error(resp, "XAmzContentSHA256Mismatch", 400)
    assert fields.get("ClientComputedContentSHA256") == hashlib.sha256(signed_body).hexdigest()
    assert fields.get("S3ComputedContentSHA256") == hashlib.sha256(sent_body).hexdigest()
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert_client_error(exc, "404", 404)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("size", [10, 20000])
def test_put_object_payload_sha256_mismatch_keeps_previous_version(server, s3, bucket, size):
    s3.put_object(Bucket=bucket, Key="k", Body=b"o" * size)
    resp = signed_request(server, "PUT", key_path(bucket, "k"), body=b"n" * size, signed_body=b"x" * size)
    assert_error(resp, "XAmzContentSHA256Mismatch", 400)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"o" * size


def test_put_object_unsigned_payload_accepted(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket, "u"), body=b"unsigned body", payload_hash=UNSIGNED_PAYLOAD)
    assert resp.status_code == 200, resp.content
    assert s3.get_object(Bucket=bucket, Key="u")["Body"].read() == b"unsigned body"


def test_put_object_invalid_content_sha256_value(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket, "k"), body=b"x", payload_hash="not-a-hash")
    assert_error(resp, "InvalidArgument", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_list_buckets_signed_content_sha256_header_missing(server):
    """The header is in SignedHeaders but was not sent: the signature cannot match.
    (A signer that neither sends nor signs it is a generic one: test_generic_sigv4.)"""
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/")
    assert "x-amz-content-sha256" in headers["Authorization"]
    del headers["X-Amz-Content-SHA256"]
    resp = requests.get(f"{server.endpoint}/", headers=headers, timeout=30)
    assert_error(resp, "SignatureDoesNotMatch", 403)
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/")
    assert requests.get(f"{server.endpoint}/", headers=headers, timeout=30).status_code == 200


def test_list_buckets_authorization_header_malformed(server):
    resp = requests.get(f"{server.endpoint}/", timeout=30, headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/us-east-1/s3",
        "x-amz-date": utcnow().strftime("%Y%m%dT%H%M%SZ"), "x-amz-content-sha256": UNSIGNED_PAYLOAD})
    assert_error(resp, "AuthorizationHeaderMalformed", 400)


def test_list_buckets_wrong_region_in_scope(server):
    resp = signed_request(server, "GET", "/", region="eu-west-1")
    fields = assert_error(resp, "AuthorizationHeaderMalformed", 400)
    assert fields.get("Region") == "us-east-1"


def test_list_buckets_wrong_service_in_scope(server):
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/")
    headers["Authorization"] = headers["Authorization"].replace("/s3/aws4_request", "/ec2/aws4_request")
    resp = requests.get(f"{server.endpoint}/", headers=headers, timeout=30)
    assert_error(resp, "AuthorizationHeaderMalformed", 400)


# -- presigned URLs -----------------------------------------------------------------------------

def test_get_object_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="dir/pre signed+ü.txt", Body=b"presigned content", ContentType="text/plain")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/pre signed+ü.txt"},
                                    ExpiresIn=300)
    assert "X-Amz-Signature=" in url
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.content
    assert resp.content == b"presigned content"
    assert resp.headers["Content-Type"] == "text/plain"


def test_get_object_presigned_url_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": "k", "ResponseContentDisposition": 'attachment; filename="d.bin"',
        "ResponseContentType": "application/x-test"}, ExpiresIn=300)
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.content
    assert resp.headers["Content-Disposition"] == 'attachment; filename="d.bin"'
    assert resp.headers["Content-Type"] == "application/x-test"


def test_get_object_presigned_url_with_range_header(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.get(url, headers={"Range": "bytes=2-4"}, timeout=30)
    assert resp.status_code == 206
    assert resp.content == b"234"


@pytest.mark.parametrize("size", [11, 40000])
def test_put_object_presigned_url(s3, bucket, size):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    resp = requests.put(url, data=data, timeout=30)
    assert resp.status_code == 200, resp.content
    assert resp.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == data


def test_head_object_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.head(url, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "5"


def test_list_objects_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket, "Prefix": "k"}, ExpiresIn=300)
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200
    assert b"<Key>k</Key>" in resp.content


def test_get_object_presigned_url_expired(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = presign("GET", f"http://127.0.0.1:{server.port}/{bucket}/k", expires=60,
                  when=utcnow() - dt.timedelta(minutes=5))
    resp = requests.get(url, timeout=30)
    fields = assert_error(resp, "AccessDenied", 403)
    assert "expired" in fields.get("Message", "").lower()


def test_put_object_presigned_url_expired_not_stored(server, s3, bucket):
    url = presign("PUT", f"http://127.0.0.1:{server.port}/{bucket}/k", expires=1,
                  when=utcnow() - dt.timedelta(seconds=30))
    resp = requests.put(url, data=b"late", timeout=30)
    assert_error(resp, "AccessDenied", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def _replace_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_get_object_presigned_url_tampered_signature(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    bad = _replace_query(url, **{"X-Amz-Signature": ("0" if sig[0] != "0" else "1") + sig[1:]})
    assert_error(requests.get(bad, timeout=30), "SignatureDoesNotMatch", 403)


def test_get_object_presigned_url_extended_expiry_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    assert_error(requests.get(_replace_query(url, **{"X-Amz-Expires": "600"}), timeout=30),
                 "SignatureDoesNotMatch", 403)


def test_get_object_presigned_url_for_other_key_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    assert_error(requests.get(url.replace(f"/{bucket}/a?", f"/{bucket}/b?"), timeout=30),
                 "SignatureDoesNotMatch", 403)


def test_put_object_presigned_get_url_used_for_put_rejected(s3, bucket):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    assert_error(requests.put(url, data=b"x", timeout=30), "SignatureDoesNotMatch", 403)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_get_object_presigned_url_unknown_access_key(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = presign("GET", f"http://127.0.0.1:{server.port}/{bucket}/k", access_key="NOSUCHKEY")
    assert_error(requests.get(url, timeout=30), "InvalidAccessKeyId", 403)


@pytest.mark.parametrize("expires", ["0", "604801", "abc"])
def test_get_object_presigned_url_invalid_expires(s3, bucket, expires):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    resp = requests.get(_replace_query(url, **{"X-Amz-Expires": expires}), timeout=30)
    assert_error(resp, "AuthorizationQueryParametersError", 400)


def test_get_object_header_and_query_auth_both_rejected(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    headers = sign_headers("GET", f"http://127.0.0.1:{server.port}/{bucket}/k")
    resp = requests.get(url, headers={"Authorization": headers["Authorization"],
                                      "X-Amz-Date": headers["X-Amz-Date"],
                                      "X-Amz-Content-SHA256": headers["X-Amz-Content-SHA256"]}, timeout=30)
    assert_error(resp, "InvalidArgument", 400)


# -- other users ---------------------------------------------------------------------------------

def test_get_object_other_user_access_denied(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"mine")
    with pytest.raises(ClientError) as exc:
        s3_other.get_object(Bucket=bucket, Key="private")
    assert_client_error(exc, "AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.head_object(Bucket=bucket, Key="private")
    assert_client_error(exc, "403", 403)


def test_put_object_other_user_access_denied(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="existing", Body=b"mine")
    with pytest.raises(ClientError) as exc:
        s3_other.put_object(Bucket=bucket, Key="new", Body=b"theirs")
    assert_client_error(exc, "AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.put_object(Bucket=bucket, Key="existing", Body=b"theirs" * 5000)
    assert_client_error(exc, "AccessDenied", 403)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["existing"]
    assert s3.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"mine"


def test_delete_object_other_user_access_denied(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"mine")
    with pytest.raises(ClientError) as exc:
        s3_other.delete_object(Bucket=bucket, Key="k")
    assert_client_error(exc, "AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"mine"


def test_get_object_other_user_missing_key_access_denied(s3_other, bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.get_object(Bucket=bucket, Key="no-such-key")
    assert_client_error(exc, "AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.head_object(Bucket=bucket, Key="no-such-key")
    assert_client_error(exc, "403", 403)


def test_get_object_other_user_presigned_url_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"mine")
    other = make_client(server.endpoint, OTHER_ACCESS_KEY, OTHER_SECRET_KEY)
    url = other.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    assert_error(requests.get(url, timeout=30), "AccessDenied", 403)


def test_put_object_own_bucket_each_user(s3_other):
    name = "other-" + uuid.uuid4().hex[:16]
    s3_other.create_bucket(Bucket=name)
    try:
        s3_other.put_object(Bucket=name, Key="k", Body=b"theirs")
        assert s3_other.get_object(Bucket=name, Key="k")["Body"].read() == b"theirs"
        s3_other.delete_object(Bucket=name, Key="k")
    finally:
        s3_other.delete_bucket(Bucket=name)
