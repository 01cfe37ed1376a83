"""Unit tests for bleepstore_app.service.names.

Reference: AWS S3 User Guide, "General purpose bucket naming rules", and
"Naming Amazon S3 objects" (a key is at most 1024 bytes of UTF-8).
"""
from __future__ import annotations

import pytest

from bleepstore_app import errors
from bleepstore_app.service.names import MAX_KEY_BYTES, check_bucket_name, check_key, is_valid_bucket_name

VALID = [
    "abc",
    "a" * 63,
    "my-bucket",
    "my.bucket",
    "my-bucket.example.com",
    "123",
    "0bucket9",
    "docexamplebucket1",
    "log-delivery-march-2020",
    "my-hosted-content",
    "1.2.3",              # not four octets: not an IP address
    "1.2.3.4.5",
    "256.1.1.a",
    "xn-bucket",          # only the exact prefix xn-- is reserved
    "sthree",
    "bucket-s3alias-x",
    "amzn-s3-demo",
    "my--bucket",         # double hyphens are fine for general purpose buckets
    "x-s3",
    "bucket-s3",
    "mrap.bucket",
]

INVALID = [
    ("", "empty"),
    ("ab", "too short"),
    ("a" * 64, "too long"),
    ("MyBucket", "uppercase"),
    ("my_bucket", "underscore"),
    ("my bucket", "space"),
    ("-bucket", "starts with hyphen"),
    ("bucket-", "ends with hyphen"),
    (".bucket", "starts with period"),
    ("bucket.", "ends with period"),
    ("my..bucket", "adjacent periods"),
    # Not in the documented list, but AWS answers InvalidBucketName for these
    # (ceph/s3-tests test_bucket_create_naming_dns_dot_dash / _dash_dot, checked against AWS).
    ("my.-bucket", "period-hyphen"),
    ("my-.bucket", "hyphen-period"),
    ("192.168.5.4", "IP address"),
    ("10.0.0.1", "IP address"),
    ("xn--bucket", "reserved prefix xn--"),
    ("sthree-bucket", "reserved prefix sthree-"),
    ("sthree-configurator", "reserved prefix sthree-"),
    ("amzn-s3-demo-bucket", "reserved prefix amzn-s3-demo-"),
    ("bucket-s3alias", "reserved suffix -s3alias"),
    ("bucket--ol-s3", "reserved suffix --ol-s3"),
    ("bucket.mrap", "reserved suffix .mrap"),
    ("bucket--x-s3", "reserved suffix --x-s3"),
    ("bucket--table-s3", "reserved suffix --table-s3"),
    ("bücket", "non-ASCII"),
    ("bucket/x", "slash"),
    ("buck\net", "newline"),
]


@pytest.mark.parametrize("name", VALID)
def test_is_valid_bucket_name_accepts(name):
    assert is_valid_bucket_name(name) is True
    check_bucket_name(name)  # does not raise


@pytest.mark.parametrize("name, why", INVALID, ids=[f"{w}:{n[:20]!r}" for n, w in INVALID])
def test_is_valid_bucket_name_rejects(name, why):
    assert is_valid_bucket_name(name) is False


@pytest.mark.parametrize("name, why", INVALID, ids=[f"{w}:{n[:20]!r}" for n, w in INVALID])
def test_check_bucket_name_raises_invalid_bucket_name(name, why):
    with pytest.raises(errors.InvalidBucketName) as exc:
        check_bucket_name(name)
    assert exc.value.status == 400
    assert exc.value.fields == {"BucketName": name}


@pytest.mark.parametrize("length", [3, 4, 62, 63])
def test_is_valid_bucket_name_length_bounds_accepted(length):
    assert is_valid_bucket_name("a" * length)


@pytest.mark.parametrize("length", [0, 1, 2, 64, 100])
def test_is_valid_bucket_name_length_bounds_rejected(length):
    assert not is_valid_bucket_name("a" * length)


def test_check_key_max_ascii_length():
    check_key("k" * MAX_KEY_BYTES)
    assert MAX_KEY_BYTES == 1024


def test_check_key_too_long_ascii():
    with pytest.raises(errors.KeyTooLongError) as exc:
        check_key("k" * 1025)
    assert exc.value.status == 400
    assert exc.value.fields == {"Size": "1025", "MaxSizeAllowed": "1024"}


def test_check_key_counts_utf8_bytes_not_characters():
    check_key("é" * 512)  # 512 characters, 1024 bytes
    with pytest.raises(errors.KeyTooLongError) as exc:
        check_key("é" * 512 + "a")  # 513 characters, 1025 bytes
    assert exc.value.fields["Size"] == "1025"


def test_check_key_four_byte_characters():
    check_key("😀" * 256)  # 1024 bytes
    with pytest.raises(errors.KeyTooLongError) as exc:
        check_key("😀" * 257)
    assert exc.value.fields["Size"] == "1028"


@pytest.mark.parametrize("key", ["a", "a/b/c", "dir/", " lead and trail ", "~!@#$%^&*()", "日本語/キー", "\x7f"])
def test_check_key_accepts(key):
    check_key(key)


def test_check_key_lone_surrogate_is_invalid_argument():
    with pytest.raises(errors.InvalidArgument) as exc:
        check_key("bad\ud800key")
    assert exc.value.status == 400
