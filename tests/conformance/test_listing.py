"""ListObjects (v1) and ListObjectsV2 against a brute-force model of S3 listing."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from .helpers import (S3_NS, assert_client_error, assert_error, model_page, signed_request, utf8_sorted)


def _make_keys() -> list[str]:
    keys = []
    for d in range(10):
        for s in range(5):
            for f in range(45):
                keys.append(f"dir{d}/sub{s}/file{f:03d}.txt")
    for i in range(150):
        keys.append(f"top-{i:04d}")
    keys += [
        "a", "B", "a/b", "a/b/c", "a//double", "a/", "ä", "~", "中", "中/文", "😀", "\ue000",
        "dir1", "dir1.txt", "dir1/", "dir1/sub2", "dir1/sub2/", "dir10/x",
        "space key", "space/ key", "plus+key", "percent%key", "z/y/x/w/v", "zz",
    ]
    return keys


ALL_KEYS = _make_keys()
SORTED = utf8_sorted(ALL_KEYS)


@pytest.fixture(scope="module")
def listing_bucket(s3):
    """A bucket holding ALL_KEYS (~2500 keys), filled in parallel; deleted at the end."""
    name = "list-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k.encode()[:7]), ALL_KEYS))
    yield name
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: s3.delete_object(Bucket=name, Key=k), ALL_KEYS))
    s3.delete_bucket(Bucket=name)


def test_list_objects_v2_fixture_count(s3, listing_bucket):
    assert len(ALL_KEYS) == len(set(ALL_KEYS)) > 2400
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=listing_bucket))
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == SORTED
    assert [p["KeyCount"] for p in pages] == [1000, 1000, len(ALL_KEYS) - 2000]


CASES = [
    # (prefix, delimiter, max_keys)
    ("", "", 1000),
    ("", "", 777),
    ("", "/", 1000),
    ("", "/", 3),
    ("dir1/", "/", 2),
    ("dir1/", "", 100),
    ("dir1/sub2/", "/", 10),
    ("dir1/sub2/", "", 13),
    ("dir1", "/", 1),
    ("dir", "/", 4),
    ("d", "sub", 7),
    ("", "1", 50),
    ("a", "/", 1),
    ("a/", "/", 1),
    ("top-00", "", 33),
    ("z", "/", 1000),
    ("nonexistent", "/", 10),
    ("中", "/", 1),
    ("", "中", 1000),
    ("dir2/sub3/file044.txt", "/", 1000),
    ("space", " ", 1),
]


def _ids(case):
    prefix, delimiter, max_keys = case
    return f"prefix={prefix!r}-delim={delimiter!r}-max={max_keys}"


@pytest.mark.parametrize("prefix,delimiter,max_keys", CASES, ids=[_ids(c) for c in CASES])
def test_list_objects_v2_matches_model(s3, listing_bucket, prefix, delimiter, max_keys):
    token = None
    after = None
    pages = 0
    while True:
        kwargs = dict(Bucket=listing_bucket, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys)
        if token:
            kwargs["ContinuationToken"] = token
        resp = s3.list_objects_v2(**kwargs)
        keys, prefixes, truncated = model_page(SORTED, prefix, delimiter, after, max_keys)
        assert [o["Key"] for o in resp.get("Contents", [])] == keys, f"page {pages}"
        assert [p["Prefix"] for p in resp.get("CommonPrefixes", [])] == prefixes, f"page {pages}"
        assert resp["IsTruncated"] == truncated
        assert resp["KeyCount"] == len(keys) + len(prefixes)
        assert resp["MaxKeys"] == max_keys
        assert resp["Prefix"] == prefix
        assert resp.get("Delimiter", "") == delimiter
        if token:
            assert resp["ContinuationToken"] == token
        pages += 1
        if not truncated:
            assert "NextContinuationToken" not in resp
            break
        token = resp["NextContinuationToken"]
        after = max(keys[-1:] + prefixes[-1:], key=lambda s: s.encode())
        assert pages < 1000


@pytest.mark.parametrize("prefix,delimiter,max_keys", CASES, ids=[_ids(c) for c in CASES])
def test_list_objects_v1_matches_model(s3, listing_bucket, prefix, delimiter, max_keys):
    marker = ""
    pages = 0
    while True:
        resp = s3.list_objects(Bucket=listing_bucket, Prefix=prefix, Delimiter=delimiter, MaxKeys=max_keys,
                               Marker=marker)
        keys, prefixes, truncated = model_page(SORTED, prefix, delimiter, marker or None, max_keys)
        assert [o["Key"] for o in resp.get("Contents", [])] == keys, f"page {pages}"
        assert [p["Prefix"] for p in resp.get("CommonPrefixes", [])] == prefixes, f"page {pages}"
        assert resp["IsTruncated"] == truncated
        assert resp["Marker"] == marker
        assert resp["MaxKeys"] == max_keys
        pages += 1
        if not truncated:
            assert "NextMarker" not in resp
            break
        last = max(keys[-1:] + prefixes[-1:], key=lambda s: s.encode())
        if delimiter:
            assert resp["NextMarker"] == last
        else:
            # "This element is returned only if you have the delimiter request parameter specified."
            assert "NextMarker" not in resp
        marker = last
        assert pages < 1000


@pytest.mark.parametrize("start_after", ["", "dir4/sub4/file044.txt", "top-0100", "dir9", "~", "a", "zzzz",
                                         "\U0010ffff"])
def test_list_objects_v2_start_after(s3, listing_bucket, start_after):
    resp = s3.list_objects_v2(Bucket=listing_bucket, StartAfter=start_after, MaxKeys=50)
    keys, _, truncated = model_page(SORTED, "", "", start_after or None, 50)
    assert [o["Key"] for o in resp.get("Contents", [])] == keys
    assert resp["IsTruncated"] == truncated
    if start_after:
        assert resp["StartAfter"] == start_after
    else:
        assert "StartAfter" not in resp


def test_list_objects_v2_start_after_with_prefix_and_continuation(s3, listing_bucket):
    first = s3.list_objects_v2(Bucket=listing_bucket, Prefix="dir3/", StartAfter="dir3/sub1/file020.txt",
                               MaxKeys=10)
    expected, _, _ = model_page(SORTED, "dir3/", "", "dir3/sub1/file020.txt", 10)
    assert [o["Key"] for o in first["Contents"]] == expected
    # The continuation token wins over StartAfter on later pages.
    second = s3.list_objects_v2(Bucket=listing_bucket, Prefix="dir3/", StartAfter="dir3/sub1/file020.txt",
                                ContinuationToken=first["NextContinuationToken"], MaxKeys=10)
    expected2, _, _ = model_page(SORTED, "dir3/", "", expected[-1], 10)
    assert [o["Key"] for o in second["Contents"]] == expected2


def test_list_objects_v1_marker_arbitrary(s3, listing_bucket):
    resp = s3.list_objects(Bucket=listing_bucket, Marker="dir5/sub0/file010.txt", MaxKeys=20)
    expected, _, truncated = model_page(SORTED, "", "", "dir5/sub0/file010.txt", 20)
    assert [o["Key"] for o in resp["Contents"]] == expected
    assert resp["IsTruncated"] is truncated is True


def test_list_objects_v2_max_keys_above_1000_capped(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=5000)
    assert len(resp["Contents"]) == 1000
    assert resp["IsTruncated"] is True


def test_list_objects_v2_max_keys_zero(s3, listing_bucket):
    resp = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=0)
    assert resp["KeyCount"] == 0
    assert "Contents" not in resp and "CommonPrefixes" not in resp


def test_list_objects_v2_fetch_owner(s3, listing_bucket):
    without = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=3)
    assert all("Owner" not in o for o in without["Contents"])
    with_owner = s3.list_objects_v2(Bucket=listing_bucket, MaxKeys=3, FetchOwner=True)
    owner_id = s3.list_buckets()["Owner"]["ID"]
    for o in with_owner["Contents"]:
        assert o["Owner"]["ID"] == owner_id
        assert o["Owner"]["DisplayName"] == "main-user"


def test_list_objects_v1_includes_owner_and_fields(s3, listing_bucket):
    resp = s3.list_objects(Bucket=listing_bucket, Prefix="dir0/sub0/file000", MaxKeys=1)
    (obj,) = resp["Contents"]
    assert obj["Key"] == "dir0/sub0/file000.txt"
    assert obj["Owner"]["DisplayName"] == "main-user"
    assert obj["Size"] == 7
    assert obj["StorageClass"] == "STANDARD"
    assert obj["ETag"].startswith('"') and len(obj["ETag"]) == 34
    assert resp["Name"] == listing_bucket


def _raw_list(server, bucket, query):
    resp = signed_request(server, "GET", f"/{bucket}", query=query)
    assert resp.status_code == 200, resp.content
    return ET.fromstring(resp.content)


def _texts(root, path):
    return [e.text or "" for e in root.findall(path)]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_list_objects_encoding_type_url(server, s3, bucket, version):
    keys = ["plain", "with space", "plus+sign", "percent%sign", "ü/中", "amp&lt", "ctl\x01char", "d/e f/g"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    query = "encoding-type=url" + ("&list-type=2" if version == "v2" else "")
    root = _raw_list(server, bucket, query)
    assert _texts(root, f"{S3_NS}EncodingType") == ["url"]
    raw_keys = _texts(root, f"{S3_NS}Contents/{S3_NS}Key")
    assert [unquote_plus(k) for k in raw_keys] == utf8_sorted(keys)
    for raw in raw_keys:
        assert all(c.isascii() and c.isprintable() and c not in " +&<" for c in raw), raw
    # With a delimiter and prefix, those are encoded too.
    root = _raw_list(server, bucket, query + "&delimiter=%20&prefix=d%2F")
    assert [unquote_plus(p) for p in _texts(root, f"{S3_NS}CommonPrefixes/{S3_NS}Prefix")] == ["d/e "]
    assert [unquote_plus(p) for p in _texts(root, f"{S3_NS}Delimiter")] == [" "]
    assert [unquote_plus(p) for p in _texts(root, f"{S3_NS}Prefix")] == ["d/"]
    # boto3 asks for url encoding and decodes it transparently.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == utf8_sorted(keys)


def test_list_objects_invalid_encoding_type(server, bucket):
    assert_error(signed_request(server, "GET", f"/{bucket}", query="list-type=2&encoding-type=base64"),
                 "InvalidArgument", 400)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_list_objects_invalid_max_keys(server, bucket, value):
    assert_error(signed_request(server, "GET", f"/{bucket}", query=f"list-type=2&max-keys={value}"),
                 "InvalidArgument", 400)
    assert_error(signed_request(server, "GET", f"/{bucket}", query=f"max-keys={value}"),
                 "InvalidArgument", 400)


@pytest.mark.parametrize("token", [
    "abc",
    "%2F%2F%2F%2F",
    "%21%21%21",
])
def test_list_objects_v2_invalid_continuation_token(server, bucket, token):
    resp = signed_request(server, "GET", f"/{bucket}", query=f"list-type=2&continuation-token={token}")
    fields = assert_error(resp, "InvalidArgument", 400)
    assert fields.get("ArgumentName") == "continuation-token"


def test_list_objects_missing_bucket(s3):
    name = "missing-" + uuid.uuid4().hex[:16]
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=name)
    assert_client_error(exc, "NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        s3.list_objects(Bucket=name)
    assert_client_error(exc, "NoSuchBucket", 404)


def test_list_objects_empty_bucket(s3, bucket):
    v2 = s3.list_objects_v2(Bucket=bucket)
    assert v2["KeyCount"] == 0 and v2["IsTruncated"] is False and "Contents" not in v2
    v1 = s3.list_objects(Bucket=bucket)
    assert v1["IsTruncated"] is False and "Contents" not in v1


def test_list_objects_v2_utf8_byte_order(s3, bucket):
    # Code-point (= UTF-8 byte) order; UTF-16 or a locale collation would differ:
    # 'B' < 'a' (case), '\ue000' < '😀' (surrogates), '~' < 'ä' < '中'.
    keys = ["a", "B", "a/b", "ä", "~", "中", "Z", "a b", "a+b", "a~", "😀", "\ue000", "ﬀ", "A", "ab", "a-"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"."), keys))
    expected = utf8_sorted(keys)
    assert expected[:4] == ["A", "B", "Z", "a"]
    assert expected.index("\ue000") < expected.index("😀")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == expected
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == expected
    # One key per page gives the same order.
    paged = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 1}) for o in p.get("Contents", [])]
    assert paged == expected
    # And with a delimiter: "a/" groups "a/b".
    resp = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    keys_model, prefixes_model, _ = model_page(expected, "", "/")
    assert [o["Key"] for o in resp["Contents"]] == keys_model
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == prefixes_model == ["a/"]


def test_list_objects_v2_delimiter_multichar(s3, bucket):
    keys = ["x--y--z", "x--y", "x-y", "x--", "xy--z"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b".")
    resp = s3.list_objects_v2(Bucket=bucket, Delimiter="--")
    k_model, p_model, _ = model_page(utf8_sorted(keys), "", "--")
    assert [o["Key"] for o in resp.get("Contents", [])] == k_model
    assert [p["Prefix"] for p in resp.get("CommonPrefixes", [])] == p_model


def test_list_objects_other_user_access_denied(s3_other, listing_bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.list_objects_v2(Bucket=listing_bucket)
    assert_client_error(exc, "AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3_other.list_objects(Bucket=listing_bucket)
    assert_client_error(exc, "AccessDenied", 403)


def test_list_objects_xml_escaping_without_encoding_type(server, s3, bucket):
    keys = ["a&b", "c<d>e", "quote\"apos'", "cr\rkey", "ü 中"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b".")
    for query in ("list-type=2", ""):
        root = _raw_list(server, bucket, query)  # parses: the document is well-formed XML
        assert _texts(root, f"{S3_NS}Contents/{S3_NS}Key") == utf8_sorted(keys)
    root = _raw_list(server, bucket, "list-type=2&prefix=c%3C&delimiter=%3E")
    assert _texts(root, f"{S3_NS}CommonPrefixes/{S3_NS}Prefix") == ["c<d>"]
    assert _texts(root, f"{S3_NS}Prefix") == ["c<"]
