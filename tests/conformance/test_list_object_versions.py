"""ListObjectVersions (GET /bucket?versions), and ListObjects/ListObjectsV2 on a
versioned bucket, per the AWS S3 API Reference: versions and delete markers of a
key newest first, keys in UTF-8 binary order, one IsLatest per key; prefix,
delimiter and CommonPrefixes; encoding-type=url; key-marker / version-id-marker
pagination (MaxKeys counts versions and delete markers alike).
"""
from __future__ import annotations

import datetime as _dt
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from .helpers import utf8_sorted
from .support_issue4 import NS, canonical_id
from .support_versioning import (LARGE, SMALL, all_versions, entries, error_of, list_versions_raw, make_bucket,
                                 md5_etag, payload, set_versioning, versioned_bucket)

__all__ = ["make_bucket", "versioned_bucket"]  # fixtures


def _put(s3, bucket, key, body=b"x") -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


def _delete(s3, bucket, key) -> str:
    resp = s3.delete_object(Bucket=bucket, Key=key)
    assert resp["DeleteMarker"] is True
    return resp["VersionId"]


class Model:
    """What the bucket holds: per key, (kind, version id) oldest first."""

    def __init__(self, s3, bucket):
        self.s3, self.bucket, self.keys = s3, bucket, {}

    def put(self, key, body=b"x"):
        self.keys.setdefault(key, []).append(("Version", _put(self.s3, self.bucket, key, body)))

    def delete(self, key):
        self.keys.setdefault(key, []).append(("DeleteMarker", _delete(self.s3, self.bucket, key)))

    def listing(self, prefix=""):
        """[(kind, key, vid, is_latest)] as ListObjectVersions must give them."""
        out = []
        for key in utf8_sorted(self.keys):
            if key.startswith(prefix):
                out += [(kind, key, vid, i == 0) for i, (kind, vid) in enumerate(reversed(self.keys[key]))]
        return out


def _boto_entries(resp_or_lists) -> tuple[list, list]:
    versions, markers = resp_or_lists
    return ([("Version", v["Key"], v["VersionId"], v["IsLatest"]) for v in versions],
            [("DeleteMarker", m["Key"], m["VersionId"], m["IsLatest"]) for m in markers])


def _split(listing):
    return [e for e in listing if e[0] == "Version"], [e for e in listing if e[0] == "DeleteMarker"]


# -- ListObjects / ListObjectsV2: the current versions only --------------------------------------------

@pytest.mark.parametrize("max_keys", [1000, 1])
def test_list_objects_shows_only_current_versions(s3, versioned_bucket, max_keys):
    b = versioned_bucket
    for body in (b"a1", b"a2", b"a3"):
        _put(s3, b, "a", body)
    _put(s3, b, "b", b"b1")
    _delete(s3, b, "b")                                       # current: a delete marker
    c1 = _put(s3, b, "c", b"c1")
    c2 = _put(s3, b, "c", b"c2")
    s3.delete_object(Bucket=b, Key="c", VersionId=c2)         # current: c1 again
    _put(s3, b, "d", b"d1")
    _delete(s3, b, "d")
    _put(s3, b, "d", b"d2")                                   # current: put after a marker
    _put(s3, b, "e", b"e1")
    _delete(s3, b, "e")
    expected = {"a": md5_etag(b"a3"), "c": md5_etag(b"c1"), "d": md5_etag(b"d2")}
    got = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": max_keys}):
        got.update({o["Key"]: (o["ETag"], o["Size"]) for o in page.get("Contents", [])})
    assert got == {k: (etag, 2) for k, etag in expected.items()}
    got_v1 = {}
    for page in s3.get_paginator("list_objects").paginate(Bucket=b, PaginationConfig={"PageSize": max_keys}):
        got_v1.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    assert got_v1 == expected
    assert s3.get_object(Bucket=b, Key="c")["VersionId"] == c1


# -- entries -----------------------------------------------------------------------------------------------

def test_never_versioned_bucket_lists_null_versions(s3, bucket):
    bodies = {"a": b"a" * SMALL, "b": b"b" * LARGE}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    resp = s3.list_object_versions(Bucket=bucket)
    assert "DeleteMarkers" not in resp
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in resp["Versions"]] == [("a", "null", True),
                                                                                   ("b", "null", True)]
    for v in resp["Versions"]:
        assert v["ETag"] == md5_etag(bodies[v["Key"]]) and v["Size"] == len(bodies[v["Key"]])
        assert v["StorageClass"] == "STANDARD"


def test_version_and_delete_marker_fields(s3, versioned_bucket):
    b = versioned_bucket
    owner = canonical_id(s3)
    bodies = [payload("one", SMALL), payload("two", LARGE)]
    vids = [_put(s3, b, "k", body) for body in bodies]
    marker = _delete(s3, b, "k")
    resp = s3.list_object_versions(Bucket=b)
    assert resp["Name"] == b and resp["IsTruncated"] is False and resp["MaxKeys"] == 1000
    versions, markers = resp["Versions"], resp["DeleteMarkers"]
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [("k", vids[1], False),
                                                                           ("k", vids[0], False)]
    for v, body in zip(versions, reversed(bodies)):
        assert v["ETag"] == md5_etag(body) and v["Size"] == len(body)
        assert v["StorageClass"] == "STANDARD"
        assert v["Owner"]["ID"] == owner
        assert isinstance(v["LastModified"], _dt.datetime)
    [m] = markers
    assert (m["Key"], m["VersionId"], m["IsLatest"]) == ("k", marker, True)
    assert m["Owner"]["ID"] == owner and isinstance(m["LastModified"], _dt.datetime)
    assert "ETag" not in m and "Size" not in m
    assert m["LastModified"] >= versions[0]["LastModified"] >= versions[1]["LastModified"]


KEYS = ["a", "B", "b", "Z", "z", "a b", "a/b", "ab", "a-b", "é", "ae", "aé", "中", "Ａ", "😀", "b/ü"]


def test_keys_in_utf8_order_versions_newest_first(server, s3, versioned_bucket):
    model = Model(s3, versioned_bucket)
    for i, key in enumerate(KEYS):
        for j in range(1 + i % 3):
            model.put(key, f"{key}-{j}".encode())
        if i % 4 == 1:
            model.delete(key)                   # current: a marker
        elif i % 4 == 2:
            model.delete(key)
            model.put(key)                      # a marker between versions
    expected = model.listing()
    assert entries(list_versions_raw(server, versioned_bucket)) == expected
    assert _boto_entries(all_versions(s3, versioned_bucket)) == _split(expected)
    latest = {}
    for _, key, _, is_latest in expected:
        latest[key] = latest.get(key, 0) + is_latest
    assert set(latest.values()) == {1}


def test_prefix_and_delimiter(s3, versioned_bucket):
    b = versioned_bucket
    model = Model(s3, b)
    for key in ("dir/a", "dir/b", "dir/sub/c", "dir/sub/d", "dir/only-marker/x", "dir/gone", "other"):
        model.put(key)
        model.put(key)
    model.delete("dir/gone")
    model.delete("dir/only-marker/x")
    resp = s3.list_object_versions(Bucket=b, Prefix="dir/", Delimiter="/")
    expected = [e for e in model.listing("dir/") if "/" not in e[1][len("dir/"):]]
    assert _boto_entries((resp.get("Versions", []), resp.get("DeleteMarkers", []))) == _split(expected)
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/only-marker/", "dir/sub/"]
    assert resp["Prefix"] == "dir/" and resp["Delimiter"] == "/"
    resp = s3.list_object_versions(Bucket=b, Prefix="dir/sub/")
    assert _boto_entries((resp["Versions"], resp.get("DeleteMarkers", []))) == _split(model.listing("dir/sub/"))
    assert "CommonPrefixes" not in resp
    resp = s3.list_object_versions(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/"]
    assert _boto_entries((resp["Versions"], resp.get("DeleteMarkers", []))) == _split(model.listing("other"))
    # Paged one entry at a time (a common prefix counts as one): the same, each once.
    versions, markers, prefixes = [], [], []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=b, Prefix="dir/", Delimiter="/",
                                                                   PaginationConfig={"PageSize": 1}):
        assert len(page.get("Versions", [])) + len(page.get("DeleteMarkers", [])) + \
            len(page.get("CommonPrefixes", [])) <= 1
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert _boto_entries((versions, markers)) == _split(expected)
    assert prefixes == ["dir/only-marker/", "dir/sub/"]


ENCODED_KEYS = ["plain", "with space", "plus+sign", "percent%sign", "ü/中", "amp&lt", "d/e f/g"]


def test_encoding_type_url(server, s3, versioned_bucket):
    b = versioned_bucket
    model = Model(s3, b)
    for key in ENCODED_KEYS:
        model.put(key)
    model.delete("percent%sign")
    model.delete("with space")
    root = list_versions_raw(server, b, **{"encoding-type": "url"})
    assert root.findtext(f"{NS}EncodingType") == "url"
    got = entries(root)
    assert [(kind, unquote_plus(key), vid, latest) for kind, key, vid, latest in got] == model.listing()
    for _, key, _, _ in got:
        assert all(c.isascii() and c.isprintable() and c not in " +&<" for c in key), key
    # Without encoding-type the XML carries the keys themselves.
    assert entries(list_versions_raw(server, b)) == model.listing()
    # Prefix, Delimiter, CommonPrefixes, KeyMarker and NextKeyMarker are encoded too.
    root = list_versions_raw(server, b, **{"encoding-type": "url", "delimiter": " ", "prefix": "d/"})
    assert [unquote_plus(p.text) for p in root.findall(f"{NS}CommonPrefixes/{NS}Prefix")] == ["d/e "]
    assert unquote_plus(root.findtext(f"{NS}Delimiter")) == " "
    assert unquote_plus(root.findtext(f"{NS}Prefix")) == "d/"
    root = list_versions_raw(server, b, **{"encoding-type": "url", "key-marker": "d/e f/g", "max-keys": "1"})
    assert root.findtext(f"{NS}IsTruncated") == "true"
    key_marker = root.findtext(f"{NS}KeyMarker")
    assert " " not in key_marker and unquote_plus(key_marker) == "d/e f/g"
    next_key = root.findtext(f"{NS}NextKeyMarker")      # percent%sign's marker is the one entry
    assert next_key != "percent%sign" and unquote_plus(next_key) == "percent%sign"
    # boto3 asks for url encoding and decodes it.
    assert _boto_entries(all_versions(s3, b)) == _split(model.listing())


# -- pagination ----------------------------------------------------------------------------------------------

@pytest.fixture
def paged(s3, make_bucket):
    """a: one null version; b: 7 versions (the oldest "null", from before versioning);
    c: 2 versions and a delete marker on top; d: one version. 12 entries."""
    b = make_bucket(None)
    model = Model(s3, b)
    for key in ("a", "b"):
        s3.put_object(Bucket=b, Key=key, Body=key.encode())
        model.keys[key] = [("Version", "null")]
    set_versioning(s3, b, "Enabled")
    for i in range(6):
        model.put("b", f"b{i}".encode())
    model.put("c")
    model.put("c")
    model.delete("c")
    model.put("d")
    assert len(model.listing()) == 12
    return b, model


def _walk(server, bucket, max_keys):
    got, marker = [], {}
    for _ in range(50):
        root = list_versions_raw(server, bucket, **{"max-keys": str(max_keys)}, **marker)
        page = entries(root)
        got += page
        if root.findtext(f"{NS}IsTruncated") != "true":
            assert len(page) <= max_keys
            return got
        assert len(page) == max_keys
        marker = {"key-marker": root.findtext(f"{NS}NextKeyMarker")}
        assert marker["key-marker"], "truncated without a NextKeyMarker"
        if root.findtext(f"{NS}NextVersionIdMarker"):
            marker["version-id-marker"] = root.findtext(f"{NS}NextVersionIdMarker")
    raise AssertionError("more than 50 pages")


def test_unpaged_listing(server, paged):
    bucket, model = paged
    assert entries(list_versions_raw(server, bucket)) == model.listing()


@pytest.mark.parametrize("max_keys", [1, 2, 3, 5, 7, 8])
def test_markers_walk_every_version_once_in_order(server, paged, max_keys):
    bucket, model = paged
    assert _walk(server, bucket, max_keys) == model.listing()


def test_max_keys_2_within_one_key(s3, paged):
    bucket, model = paged
    resp = s3.list_object_versions(Bucket=bucket, MaxKeys=2, KeyMarker="a")      # b's 7 versions follow
    assert resp["IsTruncated"] is True and resp["MaxKeys"] == 2
    assert [(v["Key"], v["VersionId"]) for v in resp["Versions"]] == [("b", vid) for _, vid in
                                                                      reversed(model.keys["b"][-2:])]
    assert resp["NextKeyMarker"] == "b" and resp["NextVersionIdMarker"]
    resp = s3.list_object_versions(Bucket=bucket, MaxKeys=2, KeyMarker="b",
                                   VersionIdMarker=resp["NextVersionIdMarker"])
    assert [(v["Key"], v["VersionId"]) for v in resp["Versions"]] == [("b", vid) for _, vid in
                                                                      reversed(model.keys["b"][-4:-2])]


def test_boto3_paginator_returns_everything(s3, paged):
    bucket, model = paged
    for page_size in (1, 2, 1000):
        got = all_versions(s3, bucket, PaginationConfig={"PageSize": page_size})
        assert _boto_entries(got) == _split(model.listing()), page_size


@pytest.mark.parametrize("key_marker, first", [("a", "b"), ("b", "c"), ("bb", "c"), ("", "a"), ("d", None)])
def test_key_marker_alone_starts_after_that_key(server, paged, key_marker, first):
    bucket, model = paged
    got = entries(list_versions_raw(server, bucket, **{"key-marker": key_marker}))
    assert got == [e for e in model.listing() if e[1].encode() > key_marker.encode()]
    assert (got[0][1] if got else None) == first


def test_version_id_marker_continues_within_the_key(server, paged):
    bucket, model = paged
    b_newest_first = [vid for _, vid in reversed(model.keys["b"])]
    for i, vid in enumerate(b_newest_first):
        got = entries(list_versions_raw(server, bucket, **{"key-marker": "b", "version-id-marker": vid}))
        expected = [e for e in model.listing() if e[1] == "b"][i + 1:] + [e for e in model.listing() if e[1] > "b"]
        assert got == expected, (i, vid)


def test_version_id_marker_without_key_marker_invalid_argument(s3, paged):
    bucket, model = paged
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=model.keys["b"][-1][1])
    assert error_of(exc) == ("InvalidArgument", 400)


# -- access ---------------------------------------------------------------------------------------------------

def test_list_object_versions_non_owner_and_missing_bucket(s3, s3_other, versioned_bucket):
    _put(s3, versioned_bucket, "k")
    with pytest.raises(ClientError) as exc:
        s3_other.list_object_versions(Bucket=versioned_bucket)
    assert error_of(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket="no-such-bucket-versions")
    assert error_of(exc) == ("NoSuchBucket", 404)


# -- one ordered read over current and noncurrent versions ---------------------------------------------

def test_prefix_bound_excludes_the_next_key_and_pages_across_both_tables(server, s3, versioned_bucket):
    """Keys just inside and just past a prefix ("b" is the first key after every "a..."),
    each with current and noncurrent versions and markers: the prefix lists only its
    own keys, newest first, whole or one entry a page; the key right after the prefix
    is neither listed nor given as a marker."""
    b = versioned_bucket
    model = Model(s3, b)
    for key in ("a", "a\U0010ffff", "a/x", "ab", "b", "b/a", "`"):
        model.put(key)
        model.put(key)
    model.delete("a")
    model.delete("b")
    model.put("a")
    expected = model.listing("a")
    assert [e[1] for e in expected] == ["a"] * 4 + ["a/x"] * 2 + ["ab"] * 2 + ["a\U0010ffff"] * 2
    assert entries(list_versions_raw(server, b, prefix="a")) == expected
    got, marker = [], {}
    for _ in range(len(expected) + 1):
        root = list_versions_raw(server, b, prefix="a", **{"max-keys": "1"}, **marker)
        got += entries(root)
        if root.findtext(f"{NS}IsTruncated") != "true":
            break
        marker = {"key-marker": root.findtext(f"{NS}NextKeyMarker"),
                  "version-id-marker": root.findtext(f"{NS}NextVersionIdMarker")}
        assert marker["key-marker"].startswith("a")
    assert got == expected
    # Exactly max-keys entries left: not truncated, no next markers.
    root = list_versions_raw(server, b, prefix="a", **{"max-keys": str(len(expected))})
    assert entries(root) == expected and root.findtext(f"{NS}IsTruncated") == "false"
    assert root.find(f"{NS}NextKeyMarker") is None and root.find(f"{NS}NextVersionIdMarker") is None
    # One fewer: truncated, the markers name the last entry given.
    root = list_versions_raw(server, b, prefix="a", **{"max-keys": str(len(expected) - 1)})
    assert entries(root) == expected[:-1] and root.findtext(f"{NS}IsTruncated") == "true"
    assert (root.findtext(f"{NS}NextKeyMarker"), root.findtext(f"{NS}NextVersionIdMarker")) == expected[-2][1:3]
    # With a delimiter, the same bound: "a/" rolls up, "b/" is not under the prefix.
    root = list_versions_raw(server, b, prefix="a", delimiter="/")
    assert [p.text for p in root.findall(f"{NS}CommonPrefixes/{NS}Prefix")] == ["a/"]
    assert entries(root) == [e for e in expected if e[1] != "a/x"]
