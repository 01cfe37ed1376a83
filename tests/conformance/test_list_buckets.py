"""ListBuckets paging and narrowing against a real server: max-buckets,
continuation-token, prefix and bucket-region (boto3, its paginator, raw XML and
the AWS CLI), and the errors, as AWS answers."""
from __future__ import annotations

import base64
import json
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

from .helpers import S3_NS, assert_error, signed_request
from .support_issue4 import aws_cli
from .support_versioning import purge_bucket

COUNT, PAGE = 25, 7


@pytest.fixture(scope="module")
def many(s3):
    """COUNT buckets under one fresh prefix (their names sort as created), plus
    neighbours that share the prefix's first characters but not the prefix."""
    prefix = "lbp-" + uuid.uuid4().hex[:8] + "-"
    names = [f"{prefix}{i:02d}" for i in range(COUNT)]
    neighbours = [prefix[:-1] + ".x", prefix[:-1] + "0", prefix[:-2]]
    for name in names + neighbours:
        s3.create_bucket(Bucket=name)
    yield prefix, names
    for name in names + neighbours:
        purge_bucket(s3, name)


def _names(resp) -> list[str]:
    return [b["Name"] for b in resp["Buckets"]]


def test_pages_of_seven(s3, many):
    prefix, names = many
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        resp = s3.list_buckets(Prefix=prefix, MaxBuckets=PAGE, **kwargs)
        pages += 1
        assert resp["Prefix"] == prefix
        assert len(resp["Buckets"]) == min(PAGE, COUNT - len(seen))
        assert all(b["BucketRegion"] == "us-east-1" and "CreationDate" in b for b in resp["Buckets"])
        seen += _names(resp)
        token = resp.get("ContinuationToken")
        if token is None:
            break
    assert seen == names and pages == 4  # 7 + 7 + 7 + 4, the last page with no token


def test_paginator_and_exact_fit(s3, many):
    prefix, names = many
    paged = [n for page in s3.get_paginator("list_buckets").paginate(Prefix=prefix, MaxBuckets=5)
             for n in _names(page)]
    assert paged == names
    # A page that ends exactly at the last bucket has no token.
    assert "ContinuationToken" not in s3.list_buckets(Prefix=prefix, MaxBuckets=COUNT)
    assert "ContinuationToken" in s3.list_buckets(Prefix=prefix, MaxBuckets=COUNT - 1)


def test_without_max_buckets_all_at_once(s3, many):
    prefix, names = many
    resp = s3.list_buckets(Prefix=prefix)
    assert _names(resp) == names and "ContinuationToken" not in resp
    everything = _names(s3.list_buckets())
    assert [n for n in everything if n.startswith(prefix)] == names
    assert everything == sorted(everything)


def test_prefix_is_a_prefix(s3, many):
    prefix, names = many
    assert _names(s3.list_buckets(Prefix=prefix + "1")) == [n for n in names if n.startswith(prefix + "1")]
    assert _names(s3.list_buckets(Prefix=names[3])) == [names[3]]
    assert s3.list_buckets(Prefix=prefix + "9")["Buckets"] == []
    # Byte order: "-" < "." < "0"; the shorter neighbour is outside the prefix.
    assert _names(s3.list_buckets(Prefix=prefix[:-1])) == names + [prefix[:-1] + ".x", prefix[:-1] + "0"]


def test_bucket_region(s3, many):
    prefix, names = many
    assert _names(s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1")) == names
    assert s3.list_buckets(Prefix=prefix, BucketRegion="eu-west-1")["Buckets"] == []
    first = s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1", MaxBuckets=20)
    rest = s3.list_buckets(Prefix=prefix, BucketRegion="us-east-1", MaxBuckets=20,
                           ContinuationToken=first["ContinuationToken"])
    assert _names(first) + _names(rest) == names


def test_other_user_sees_only_their_own(s3_other, many):
    prefix, _ = many
    assert s3_other.list_buckets(Prefix=prefix)["Buckets"] == []


def test_raw_xml_order(server, many):
    prefix, names = many
    resp = signed_request(server, "GET", "/", query=f"max-buckets=2&prefix={prefix}")
    assert resp.status_code == 200, resp.content
    root = ET.fromstring(resp.content)
    assert root.tag == f"{S3_NS}ListAllMyBucketsResult"
    assert [c.tag.removeprefix(S3_NS) for c in root] == ["Buckets", "Owner", "ContinuationToken", "Prefix"]
    assert [b.findtext(f"{S3_NS}Name") for b in root.find(f"{S3_NS}Buckets")] == names[:2]


@pytest.mark.parametrize("value", ["0", "10001", "-1", "x", "", "1.5"])
def test_max_buckets_out_of_range(server, value):
    assert_error(signed_request(server, "GET", "/", query=f"max-buckets={value}"), "InvalidArgument", 400)


@pytest.mark.parametrize("value", ["1", "10000"])
def test_max_buckets_bounds_accepted(server, value):
    assert signed_request(server, "GET", "/", query=f"max-buckets={value}").status_code == 200


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


# Not base64, not UTF-8, or no bucket name at all (a token is only ever a name this server wrote).
@pytest.mark.parametrize("token", ["", "!!!", "not base64", _b64(b"\xff\xfe"), _b64(b"a\x00b"), _b64(b"x" * 300),
                                   _b64(b"a/b")])
def test_bad_continuation_token(server, token):
    encoded = quote(token, safe="")
    resp = signed_request(server, "GET", "/", query=f"continuation-token={encoded}&max-buckets=5")
    assert_error(resp, "InvalidArgument", 400)


def test_anonymous_refused(server):
    assert_error(signed_request(server, "GET", "/", query="max-buckets=5", sign=False), "AccessDenied", 403)


def test_aws_cli_pages(server, many):
    """The AWS CLI follows the tokens itself (--page-size is max-buckets)."""
    prefix, names = many
    result = aws_cli(server, "s3api", "list-buckets", "--prefix", prefix, "--page-size", str(PAGE),
                     "--output", "json")
    assert result.returncode == 0, result.stderr
    assert [b["Name"] for b in json.loads(result.stdout)["Buckets"]] == names
