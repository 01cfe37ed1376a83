"""Conditional reads (GetObject/HeadObject) and conditional writes (PutObject).

AWS S3 API Reference GetObject/HeadObject: If-Match (else 412), If-None-Match (else 304),
If-Modified-Since (else 304), If-Unmodified-Since (else 412), with the documented
combinations; RFC 7232 for list and '*' semantics. PutObject: If-None-Match: * and
If-Match: <etag> (User Guide, "Conditional writes").
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from email.utils import format_datetime

import pytest
from botocore.exceptions import ClientError

from ..conftest import make_client
from .support_issue4 import LARGE, SMALL, assert_error, client_error, describe, md5_etag, object_path, raw

SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["inline", "file"])
METHODS = pytest.mark.parametrize("method", ["GET", "HEAD"])
OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'
HOUR = dt.timedelta(hours=1)


def http_date(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return format_datetime(when.astimezone(dt.timezone.utc), usegmt=True)


@pytest.fixture
def obj(s3, bucket, request):
    size = getattr(request, "param", SMALL)
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="obj", Body=data)
    head = s3.head_object(Bucket=bucket, Key="obj")
    return {"bucket": bucket, "data": data, "etag": head["ETag"], "lm": head["LastModified"]}


def _req(server, obj, method, headers):
    return raw(server, method, object_path(obj["bucket"], "obj"), headers=headers)


def _assert_200(resp, obj, method):
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["ETag"] == obj["etag"]
    if method == "GET":
        assert resp.content == obj["data"]


def _assert_304(resp, obj):
    assert resp.status_code == 304, describe(resp)
    assert resp.content == b""
    assert resp.headers.get("ETag") == obj["etag"]


def _assert_412(resp, method, condition: str | None = None):
    if method == "HEAD":
        assert resp.status_code == 412, describe(resp)
        assert resp.content == b""
    else:
        fields = assert_error(resp, "PreconditionFailed", 412)
        if condition:
            # AWS: <Condition>If-Match</Condition> (the header that failed)
            assert fields.get("Condition") == condition, fields


# -- If-Match -------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [SMALL, LARGE], indirect=True, ids=["inline", "file"])
@METHODS
def test_get_object_if_match_true_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Match": obj["etag"]}), obj, method)


@METHODS
def test_get_object_if_match_false_412(server, obj, method):
    _assert_412(_req(server, obj, method, {"If-Match": OTHER_ETAG}), method, "If-Match")


def test_get_object_if_match_false_412_boto3(s3, obj):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=obj["bucket"], Key="obj", IfMatch=OTHER_ETAG)
    assert client_error(exc) == ("PreconditionFailed", 412)


def test_head_object_if_match_false_412_boto3(s3, obj):
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=obj["bucket"], Key="obj", IfMatch=OTHER_ETAG)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


@METHODS
def test_get_object_if_match_star_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Match": "*"}), obj, method)


@METHODS
def test_get_object_if_match_unquoted_etag_200(server, obj, method):
    # AWS compares the entity tag without its quotes; boto3 users commonly pass the bare hex.
    _assert_200(_req(server, obj, method, {"If-Match": obj["etag"].strip('"')}), obj, method)


@METHODS
def test_get_object_if_match_list_containing_etag_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Match": f'{OTHER_ETAG}, {obj["etag"]}'}), obj, method)


@METHODS
def test_get_object_if_match_list_without_etag_412(server, obj, method):
    _assert_412(_req(server, obj, method, {"If-Match": f'{OTHER_ETAG}, "ffffffffffffffffffffffffffffffff"'}),
                method)


def test_get_object_if_match_missing_key_404(server, s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="missing", IfMatch=OTHER_ETAG)
    assert client_error(exc) == ("NoSuchKey", 404)


# -- If-None-Match ----------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [SMALL, LARGE], indirect=True, ids=["inline", "file"])
@METHODS
def test_get_object_if_none_match_matching_304(server, obj, method):
    _assert_304(_req(server, obj, method, {"If-None-Match": obj["etag"]}), obj)


@METHODS
def test_get_object_not_modified_304_has_last_modified(server, obj, method):
    """UNCERTAIN: RFC 7232 4.1 only requires ETag (and Date, Cache-Control, Expires...) on a 304;
    AWS S3 is observed to send Last-Modified on 304 as well, which caches use."""
    resp = _req(server, obj, method, {"If-None-Match": obj["etag"]})
    assert resp.status_code == 304, describe(resp)
    assert resp.headers.get("Last-Modified") == http_date(obj["lm"])


@METHODS
def test_get_object_if_none_match_other_etag_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-None-Match": OTHER_ETAG}), obj, method)


@METHODS
def test_get_object_if_none_match_star_304(server, obj, method):
    _assert_304(_req(server, obj, method, {"If-None-Match": "*"}), obj)


@METHODS
def test_get_object_if_none_match_unquoted_etag_304(server, obj, method):
    _assert_304(_req(server, obj, method, {"If-None-Match": obj["etag"].strip('"')}), obj)


@METHODS
def test_get_object_if_none_match_list_containing_etag_304(server, obj, method):
    _assert_304(_req(server, obj, method, {"If-None-Match": f'{OTHER_ETAG}, {obj["etag"]}'}), obj)


def test_get_object_if_none_match_304_boto3(s3, obj):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=obj["bucket"], Key="obj", IfNoneMatch=obj["etag"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == obj["etag"]


# -- If-Modified-Since / If-Unmodified-Since -----------------------------------------------------------

@METHODS
def test_get_object_if_modified_since_earlier_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Modified-Since": http_date(obj["lm"] - HOUR)}), obj, method)


@pytest.mark.parametrize("obj", [SMALL, LARGE], indirect=True, ids=["inline", "file"])
@METHODS
def test_get_object_if_modified_since_equal_last_modified_304(server, obj, method):
    # Last-Modified has one-second precision: "not modified since <its own Last-Modified>".
    _assert_304(_req(server, obj, method, {"If-Modified-Since": http_date(obj["lm"])}), obj)


def test_get_object_if_modified_since_304_boto3(s3, obj):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=obj["bucket"], Key="obj", IfModifiedSince=obj["lm"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


@METHODS
def test_get_object_if_modified_since_invalid_date_ignored_200(server, obj, method):
    # RFC 7232 3.3: an invalid HTTP-date is ignored.
    _assert_200(_req(server, obj, method, {"If-Modified-Since": "not a date"}), obj, method)


@METHODS
def test_get_object_if_unmodified_since_earlier_412(server, obj, method):
    _assert_412(_req(server, obj, method, {"If-Unmodified-Since": http_date(obj["lm"] - HOUR)}), method,
                "If-Unmodified-Since")


def test_get_object_if_unmodified_since_412_boto3(s3, obj):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=obj["bucket"], Key="obj", IfUnmodifiedSince=obj["lm"] - HOUR)
    assert client_error(exc) == ("PreconditionFailed", 412)


@pytest.mark.parametrize("obj", [SMALL, LARGE], indirect=True, ids=["inline", "file"])
@METHODS
def test_get_object_if_unmodified_since_equal_last_modified_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Unmodified-Since": http_date(obj["lm"])}), obj, method)


@METHODS
def test_get_object_if_unmodified_since_later_200(server, obj, method):
    _assert_200(_req(server, obj, method, {"If-Unmodified-Since": http_date(obj["lm"] + HOUR)}), obj, method)


# -- documented combinations ----------------------------------------------------------------------------

@METHODS
def test_get_object_if_match_true_and_if_unmodified_since_false_200(server, obj, method):
    # AWS GetObject/HeadObject: If-Match true + If-Unmodified-Since false -> 200 OK.
    resp = _req(server, obj, method, {"If-Match": obj["etag"],
                                      "If-Unmodified-Since": http_date(obj["lm"] - HOUR)})
    _assert_200(resp, obj, method)


@METHODS
def test_get_object_if_none_match_false_and_if_modified_since_true_304(server, obj, method):
    # AWS GetObject/HeadObject: If-None-Match false + If-Modified-Since true -> 304 Not Modified.
    resp = _req(server, obj, method, {"If-None-Match": obj["etag"],
                                      "If-Modified-Since": http_date(obj["lm"] - HOUR)})
    _assert_304(resp, obj)


@METHODS
def test_get_object_if_match_false_and_if_unmodified_since_true_412(server, obj, method):
    resp = _req(server, obj, method, {"If-Match": OTHER_ETAG,
                                      "If-Unmodified-Since": http_date(obj["lm"] + HOUR)})
    _assert_412(resp, method)


@METHODS
def test_get_object_if_match_false_and_if_none_match_false_412(server, obj, method):
    # RFC 7232 section 6: If-Match is evaluated before If-None-Match, so 412 wins over 304.
    resp = _req(server, obj, method, {"If-Match": OTHER_ETAG, "If-None-Match": obj["etag"]})
    _assert_412(resp, method)


# -- conditional PutObject ----------------------------------------------------------------------------------

@SIZES
def test_put_object_if_none_match_star_absent_200(s3, bucket, size):
    data = os.urandom(size)
    resp = s3.put_object(Bucket=bucket, Key="new", Body=data, IfNoneMatch="*")
    assert resp["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == data


@SIZES
def test_put_object_if_none_match_star_present_412(s3, bucket, size):
    first = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=first)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(size), IfNoneMatch="*")
    assert client_error(exc) == ("PreconditionFailed", 412)
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == first and got["ETag"] == md5_etag(first)


def test_put_object_if_none_match_star_after_delete_200(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"


@SIZES
def test_put_object_if_match_matching_200(s3, bucket, size):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    data = os.urandom(size)
    resp = s3.put_object(Bucket=bucket, Key="k", Body=data, IfMatch=etag)
    assert resp["ETag"] == md5_etag(data)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


@SIZES
def test_put_object_if_match_mismatch_412(s3, bucket, size):
    first = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=first)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(size), IfMatch=OTHER_ETAG)
    assert client_error(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == first


def test_put_object_if_match_absent_key_404_no_such_key(s3, bucket):
    # AWS User Guide (conditional writes): with If-Match, "if there's no current object version
    # with the same name ... the operation fails with a 404 Not Found error" (NoSuchKey).
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=OTHER_ETAG)
    assert client_error(exc) == ("NoSuchKey", 404)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_put_object_if_match_stale_etag_after_overwrite_412(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    etag1 = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag1)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v3", IfMatch=etag1)
    assert client_error(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"


def test_put_object_if_none_match_star_raw_412_body(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    resp = raw(server, "PUT", object_path(bucket, "k"), headers={"If-None-Match": "*"}, body=b"v2")
    assert_error(resp, "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"


@SIZES
def test_put_object_if_none_match_star_concurrent_exactly_one_wins(server, s3, bucket, size):
    # AWS may also answer a racing conditional write 409 ConditionalRequestConflict; here
    # every loser must see 412 (the key exists by the time it is decided).
    n = 20
    clients = [make_client(server.endpoint) for _ in range(4)]
    bodies = [os.urandom(size) for _ in range(n)]
    results: list = [None] * n
    barrier = threading.Barrier(n)

    def worker(i):
        barrier.wait()
        try:
            resp = clients[i % 4].put_object(Bucket=bucket, Key="race", Body=bodies[i], IfNoneMatch="*")
            results[i] = (200, resp["ETag"])
        except ClientError as e:
            results[i] = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [i for i, r in enumerate(results) if r and r[0] == 200]
    assert len(winners) == 1, results
    losers = [r for i, r in enumerate(results) if i not in winners]
    assert all(r == (412, "PreconditionFailed") for r in losers), results
    got = s3.get_object(Bucket=bucket, Key="race")
    assert got["Body"].read() == bodies[winners[0]]
    assert got["ETag"] == results[winners[0]][1] == md5_etag(bodies[winners[0]])
    for c in clients:
        c._endpoint.http_session.close()
