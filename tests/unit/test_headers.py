"""Unit tests for bleepstore_app.s3.headers.

References: AWS S3 API Reference, GetObject (Range, response-* overrides),
PutObject (Content-* headers, x-amz-meta-*, Content-Encoding aws-chunked) and
"Working with object metadata" (user metadata limited to 2 KB); RFC 9110 §14.
"""
from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from bleepstore_app import errors
from bleepstore_app.metadata.records import ObjectRecord
from bleepstore_app.s3.headers import (http_date, object_attributes, object_headers, parse_range,
                                       response_overrides)

# --- parse_range ---------------------------------------------------------------------


@pytest.mark.parametrize("value, size, expected", [
    ("bytes=0-9", 100, (0, 10)),
    ("bytes=0-0", 100, (0, 1)),
    ("bytes=10-19", 100, (10, 20)),
    ("bytes=99-99", 100, (99, 100)),
    ("bytes=50-", 100, (50, 100)),
    ("bytes=0-", 100, (0, 100)),
    ("bytes=99-", 100, (99, 100)),
    ("bytes=-10", 100, (90, 100)),
    ("bytes=-1", 100, (99, 100)),
    ("bytes=-100", 100, (0, 100)),
    ("bytes=-500", 100, (0, 100)),        # suffix longer than the object: the whole object
    ("bytes=90-200", 100, (90, 100)),     # end beyond size clamps
    ("bytes=0-1000000", 1, (0, 1)),
    (" bytes=1-2 ", 100, (1, 3)),
])
def test_parse_range_valid(value, size, expected):
    assert parse_range(value, size) == expected


@pytest.mark.parametrize("value", [
    None, "", "bytes=", "bytes=-", "bytes=a-b", "bytes=1-a", "bytes 0-9", "bytes:0-9", "items=0-9",
    "0-9", "bytes=0-1,3-4", "bytes=0-1, 3-4", "bytes=-1,-2", "bytes=5-3", "bytes=1--2", "bytes=--1",
    "bytes=0x1-2",
])
def test_parse_range_ignored(value):
    assert parse_range(value, 100) is None


@pytest.mark.parametrize("value, size", [
    ("bytes=100-", 100),
    ("bytes=100-200", 100),
    ("bytes=1000-2000", 100),
    ("bytes=0-", 0),
    ("bytes=0-0", 0),
    ("bytes=-0", 100),
])
def test_parse_range_unsatisfiable(value, size):
    with pytest.raises(errors.InvalidRange) as exc:
        parse_range(value, size)
    assert exc.value.status == 416
    assert exc.value.headers == {"Content-Range": f"bytes */{size}"}
    assert exc.value.fields == {"ActualObjectSize": str(size)}


def test_parse_range_invalid_order_beyond_size_is_ignored_not_416():
    # last < first is a syntactically invalid range: ignored even past the end.
    assert parse_range("bytes=200-150", 100) is None


# --- object_attributes ---------------------------------------------------------------

def test_object_attributes_defaults():
    attrs = object_attributes(Headers())
    assert attrs.content_type is None
    assert attrs.content_headers == {}
    assert attrs.user_metadata == {}
    assert attrs.storage_class == "STANDARD"


def test_object_attributes_content_headers_and_type():
    headers = Headers([
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "max-age=60"),
        ("Content-Disposition", 'attachment; filename="a b.txt"'),
        ("Content-Encoding", "gzip"),
        ("Content-Language", "en-US"),
        ("Expires", "Thu, 01 Dec 1994 16:00:00 GMT"),
        ("Content-Length", "10"),
        ("Authorization", "secret"),
        ("x-amz-storage-class", "STANDARD_IA"),
    ])
    attrs = object_attributes(headers)
    assert attrs.content_type == "text/plain; charset=utf-8"
    assert attrs.content_headers == {
        "Cache-Control": "max-age=60",
        "Content-Disposition": 'attachment; filename="a b.txt"',
        "Content-Encoding": "gzip",
        "Content-Language": "en-US",
        "Expires": "Thu, 01 Dec 1994 16:00:00 GMT",
    }
    assert attrs.user_metadata == {}
    assert attrs.storage_class == "STANDARD_IA"


def test_object_attributes_lowercase_header_names():
    attrs = object_attributes(Headers([("content-type", "a/b"), ("cache-control", "no-cache")]))
    assert attrs.content_type == "a/b"
    assert attrs.content_headers == {"Cache-Control": "no-cache"}


def test_object_attributes_empty_content_type_is_none():
    assert object_attributes(Headers([("Content-Type", "")])).content_type is None


def test_object_attributes_user_metadata_lowercased_names():
    headers = Headers([("X-Amz-Meta-Color", "Blue"), ("x-amz-meta-size", "10"), ("x-amz-meta-", "empty-name"),
                       ("x-amz-metadata-directive", "COPY"), ("x-amz-meta-Ünï", "ü")])
    attrs = object_attributes(headers)
    assert attrs.user_metadata == {"color": "Blue", "size": "10", "": "empty-name", "ünï": "ü"}


@pytest.mark.parametrize("sent, stored", [
    ("aws-chunked", None),
    ("AWS-Chunked", None),
    ("aws-chunked,gzip", "gzip"),
    ("aws-chunked, gzip", "gzip"),
    ("gzip,aws-chunked", "gzip"),
    ("gzip, aws-chunked, br", "gzip,br"),
    ("gzip", "gzip"),
    ("identity", "identity"),
])
def test_object_attributes_content_encoding_aws_chunked_stripped(sent, stored):
    attrs = object_attributes(Headers([("Content-Encoding", sent)]))
    assert attrs.content_headers.get("Content-Encoding") == stored
    if stored is None:
        assert "Content-Encoding" not in attrs.content_headers


def test_object_attributes_content_encoding_without_aws_chunked_kept_verbatim():
    attrs = object_attributes(Headers([("Content-Encoding", "gzip, br")]))
    assert attrs.content_headers["Content-Encoding"] == "gzip, br"


def test_object_attributes_metadata_exactly_2kb_allowed():
    # name "k" (1 byte) + value 2047 bytes = 2048 bytes
    attrs = object_attributes(Headers([("x-amz-meta-k", "v" * 2047)]))
    assert attrs.user_metadata == {"k": "v" * 2047}


def test_object_attributes_metadata_too_large():
    with pytest.raises(errors.MetadataTooLarge) as exc:
        object_attributes(Headers([("x-amz-meta-k", "v" * 2048)]))
    assert exc.value.status == 400
    assert exc.value.fields == {"Size": "2049", "MaxSizeAllowed": "2048"}


def test_object_attributes_metadata_too_large_summed_over_headers():
    headers = Headers([(f"x-amz-meta-key{i}", "v" * 100) for i in range(20)])  # 20 * (4..5 + 100) > 2048
    with pytest.raises(errors.MetadataTooLarge):
        object_attributes(headers)
    small = Headers([(f"x-amz-meta-key{i}", "v" * 100) for i in range(19)])  # 19*104 + 9 = 1985
    assert len(object_attributes(small).user_metadata) == 19


def test_object_attributes_metadata_size_counts_utf8_bytes():
    # "é" is 2 bytes: 1 + 1024 * 2 = 2049 bytes although only 1025 characters.
    with pytest.raises(errors.MetadataTooLarge):
        object_attributes(Headers([("x-amz-meta-k", "é" * 1024)]))


# --- response_overrides --------------------------------------------------------------

def test_response_overrides_all():
    query = {
        "response-content-type": "text/html",
        "response-content-language": "fr",
        "response-expires": "Wed, 21 Oct 2015 07:28:00 GMT",
        "response-cache-control": "no-store",
        "response-content-disposition": "inline",
        "response-content-encoding": "identity",
        "prefix": "ignored",
    }
    assert response_overrides(query, anonymous=False) == {
        "Content-Type": "text/html",
        "Content-Language": "fr",
        "Expires": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Cache-Control": "no-store",
        "Content-Disposition": "inline",
        "Content-Encoding": "identity",
    }


def test_response_overrides_none():
    assert response_overrides({"versionId": "x"}, anonymous=False) == {}
    assert response_overrides({}, anonymous=True) == {}


def test_response_overrides_empty_value_kept():
    assert response_overrides({"response-content-type": ""}, anonymous=False) == {"Content-Type": ""}


def test_response_overrides_anonymous_refused():
    with pytest.raises(errors.InvalidRequest) as exc:
        response_overrides({"response-content-type": "text/html"}, anonymous=True)
    assert exc.value.status == 400
    assert "anonymous" in exc.value.message


# --- object_headers / http_date ---------------------------------------------------------

def record(**kw) -> ObjectRecord:
    base = dict(bucket="b", key="k", size=3, etag="900150983cd24fb0d6963f7d28e17f72",
                last_modified=784111777_000_000, owner_id="o", owner_display_name="O", data_location="loc")
    base.update(kw)
    return ObjectRecord(**base)


def test_http_date_rfc7231():
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(784111777_999_999) == "Sun, 06 Nov 1994 08:49:37 GMT"


def test_object_headers_defaults():
    assert object_headers(record()) == {
        "Content-Type": "binary/octet-stream",
        "ETag": '"900150983cd24fb0d6963f7d28e17f72"',
        "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT",
        "Accept-Ranges": "bytes",
    }


def test_object_headers_full():
    rec = record(content_type="text/plain", content_headers={"Cache-Control": "no-cache"},
                 user_metadata={"color": "blue"}, storage_class="REDUCED_REDUNDANCY",
                 checksums={"CRC32": "NSRBwg=="})
    out = object_headers(rec)
    assert out["Content-Type"] == "text/plain"
    assert out["Cache-Control"] == "no-cache"
    assert out["x-amz-meta-color"] == "blue"
    assert out["x-amz-storage-class"] == "REDUCED_REDUNDANCY"
    assert "x-amz-checksum-crc32" not in out
    assert object_headers(rec, checksum_mode=True)["x-amz-checksum-crc32"] == "NSRBwg=="
