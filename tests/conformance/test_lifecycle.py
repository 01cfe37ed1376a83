"""Bucket lifecycle: PutBucketLifecycleConfiguration (and the older PutBucketLifecycle
document), GetBucketLifecycleConfiguration, DeleteBucketLifecycle, x-amz-expiration on
PutObject/GetObject/HeadObject, and the rules really running (test_lifecycle_runs.py).

AWS S3 API Reference PutBucketLifecycleConfiguration / LifecycleRule / LifecycleRuleFilter /
LifecycleExpiration / NoncurrentVersionExpiration / AbortIncompleteMultipartUpload, and the
User Guide "Setting lifecycle configuration" and "Lifecycle configuration elements":
- the document needs Content-MD5 (or a checksum): else 400 InvalidRequest;
- up to 1000 rules, unique IDs (InvalidArgument), ID up to 255 characters, generated when
  absent; Status Enabled or Disabled; Filter (Prefix, Tag, And, ObjectSizeGreaterThan/LessThan)
  or, in the older document, a top-level Prefix; at least one action;
- Days must be a positive integer, Date at midnight UTC, not both; ExpiredObjectDeleteMarker
  neither with Days/Date nor with a Tag filter; AbortIncompleteMultipartUpload not with tags;
- only the bucket owner may read or change the configuration;
- x-amz-expiration: expiry-date (creation + Days, rounded up to the next midnight UTC, or the
  rule's Date) and rule-id.
BleepStore has one storage class: Transition rules are refused with 400 InvalidStorageClass.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
from email.utils import parsedate_to_datetime

import pytest
from botocore.exceptions import ClientError

from .helpers import assert_error, signed_request
from .support_issue4 import client_error

UTC = _dt.timezone.utc
NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def put_raw(server, bucket: str, rules: str, md5: bool = True, root: str = "LifecycleConfiguration"):
    body = f'<?xml version="1.0" encoding="UTF-8"?><{root} {NS}>{rules}</{root}>'.encode()
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if md5 else {}
    return signed_request(server, "PUT", f"/{bucket}", query="lifecycle=", headers=headers, body=body)


def get_rules(s3, bucket: str) -> list[dict]:
    return s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]


# -- configuration round trip ------------------------------------------------------------

FULL_RULES = [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
    {"ID": "dated", "Filter": {"Prefix": "tmp/"}, "Status": "Disabled",
     "Expiration": {"Date": _dt.datetime(2030, 1, 1, tzinfo=UTC)}},
    {"ID": "tagged", "Filter": {"Tag": {"Key": "class", "Value": "scratch"}}, "Status": "Enabled",
     "Expiration": {"Days": 1}},
    {"ID": "and", "Filter": {"And": {"Prefix": "big/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
                                     "ObjectSizeGreaterThan": 100, "ObjectSizeLessThan": 10_000}},
     "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3}},
    {"ID": "size", "Filter": {"ObjectSizeGreaterThan": 1000}, "Status": "Enabled", "Expiration": {"Days": 2}},
    {"ID": "markers", "Filter": {}, "Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
]


def test_round_trip(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FULL_RULES})
    assert get_rules(s3, bucket) == FULL_RULES


def test_put_replaces_the_whole_configuration(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FULL_RULES})
    one = [{"ID": "only", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 5}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": one})
    assert get_rules(s3, bucket) == one


def test_older_document_with_top_level_prefix(server, s3, bucket):
    resp = put_raw(server, bucket, "<Rule><ID>old</ID><Prefix>docs/</Prefix><Status>Enabled</Status>"
                                   "<Expiration><Days>10</Days></Expiration></Rule>")
    assert resp.status_code == 200, resp.content
    assert get_rules(s3, bucket) == [{"ID": "old", "Prefix": "docs/", "Status": "Enabled",
                                      "Expiration": {"Days": 10}}]


def test_missing_id_is_generated(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"Filter": {"Prefix": "a/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
        {"Filter": {"Prefix": "b/"}, "Status": "Enabled", "Expiration": {"Days": 1}}]})
    ids = [r["ID"] for r in get_rules(s3, bucket)]
    assert all(0 < len(i) <= 255 for i in ids) and len(set(ids)) == 2


def test_never_configured_and_deleted(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert client_error(exc) == ("NoSuchLifecycleConfiguration", 404)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FULL_RULES[:1]})
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert client_error(exc) == ("NoSuchLifecycleConfiguration", 404)
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_missing_bucket(s3):
    for call in (lambda: s3.get_bucket_lifecycle_configuration(Bucket="no-such-bucket-lc"),
                 lambda: s3.delete_bucket_lifecycle(Bucket="no-such-bucket-lc"),
                 lambda: s3.put_bucket_lifecycle_configuration(Bucket="no-such-bucket-lc",
                                                               LifecycleConfiguration={"Rules": FULL_RULES[:1]})):
        with pytest.raises(ClientError) as exc:
            call()
        assert client_error(exc) == ("NoSuchBucket", 404)


def test_owner_only(s3, s3_other, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")  # grants do not cover lifecycle
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FULL_RULES[:1]})
    for call in (lambda: s3_other.get_bucket_lifecycle_configuration(Bucket=bucket),
                 lambda: s3_other.delete_bucket_lifecycle(Bucket=bucket),
                 lambda: s3_other.put_bucket_lifecycle_configuration(Bucket=bucket,
                                                                     LifecycleConfiguration={"Rules": FULL_RULES})):
        with pytest.raises(ClientError) as exc:
            call()
        assert client_error(exc) == ("AccessDenied", 403)
    assert get_rules(s3, bucket) == FULL_RULES[:1]


def test_content_md5_required(server, s3, bucket):
    rule = "<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
    fields = assert_error(put_raw(server, bucket, rule, md5=False), "InvalidRequest", 400)
    assert "Content-MD5" in fields["Message"]
    assert put_raw(server, bucket, rule).status_code == 200


# -- validation errors ------------------------------------------------------------------

F, S = "<Filter><Prefix>p/</Prefix></Filter>", "<Status>Enabled</Status>"
EXP = "<Expiration><Days>1</Days></Expiration>"


def _rule(inner: str, rule_id: str = "r") -> str:
    return f"<Rule><ID>{rule_id}</ID>{inner}</Rule>"


INVALID = {
    "not-xml": ("<Rule><ID>", "MalformedXML"),
    "no-rules": ("", "MalformedXML"),
    "no-status": (_rule(F + EXP), "MalformedXML"),
    "bad-status": (_rule(F + "<Status>On</Status>" + EXP), "MalformedXML"),
    "no-filter-nor-prefix": (_rule(S + EXP), "MalformedXML"),
    "filter-and-prefix": (_rule("<Prefix>a</Prefix>" + F + S + EXP), "MalformedXML"),
    "filter-two-conditions": (_rule("<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>"
                                    + S + EXP), "MalformedXML"),
    "unknown-element": (_rule(F + S + EXP + "<Bogus/>"), "MalformedXML"),
    "no-action": (_rule(F + S), "InvalidRequest"),
    "id-too-long": (_rule(F + S + EXP, "x" * 256), "InvalidArgument"),
    "duplicate-ids": (_rule(F + S + EXP) + _rule(F + S + EXP), "InvalidArgument"),
    "days-zero": (_rule(F + S + "<Expiration><Days>0</Days></Expiration>"), "InvalidArgument"),
    "days-negative": (_rule(F + S + "<Expiration><Days>-3</Days></Expiration>"), "InvalidArgument"),
    "days-not-a-number": (_rule(F + S + "<Expiration><Days>soon</Days></Expiration>"), "MalformedXML"),
    "date-not-midnight": (_rule(F + S + "<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>"),
                          "InvalidArgument"),
    "days-and-date": (_rule(F + S + "<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>"),
                      "InvalidArgument"),
    "marker-with-days": (_rule(F + S + "<Expiration><Days>1</Days>"
                                       "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
                         "InvalidArgument"),
    "marker-with-tag": (_rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" + S +
                              "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
                        "InvalidArgument"),
    "abort-with-tag": (_rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" + S +
                             "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
                             "</AbortIncompleteMultipartUpload>"), "InvalidArgument"),
    "abort-days-zero": (_rule(F + S + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0"
                                      "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"), "InvalidArgument"),
    "noncurrent-days-zero": (_rule(F + S + "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
                                           "</NoncurrentVersionExpiration>"), "InvalidArgument"),
    "newer-noncurrent-zero": (_rule(F + S + "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                                            "<NewerNoncurrentVersions>0</NewerNoncurrentVersions>"
                                            "</NoncurrentVersionExpiration>"), "InvalidArgument"),
    "sizes-crossed": (_rule("<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
                            "<ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter>" + S + EXP),
                      "InvalidArgument"),
    "duplicate-tag-keys": (_rule("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key>"
                                 "<Value>2</Value></Tag></And></Filter>" + S + EXP), "InvalidArgument"),
    "transition": (_rule(F + S + "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"),
                   "InvalidStorageClass"),
    "noncurrent-transition": (_rule(F + S + EXP + "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
                                    "<StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>"),
                              "InvalidStorageClass"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_configuration(server, s3, bucket, case):
    rules, code = INVALID[case]
    assert_error(put_raw(server, bucket, rules), code, 400)
    with pytest.raises(ClientError) as exc:  # nothing was stored
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert client_error(exc) == ("NoSuchLifecycleConfiguration", 404)


def test_too_many_rules(server, bucket):
    rules = "".join(_rule(F + S + EXP, f"r{i}") for i in range(1001))
    assert_error(put_raw(server, bucket, rules), "MalformedXML", 400)
    rules = "".join(_rule(F + S + EXP, f"r{i}") for i in range(1000))
    assert put_raw(server, bucket, rules).status_code == 200


def test_wrong_root_element(server, bucket):
    assert_error(put_raw(server, bucket, _rule(F + S + EXP), root="Lifecycle"), "MalformedXML", 400)


# -- x-amz-expiration ----------------------------------------------------------------------

def _expected_days(last_modified: _dt.datetime, days: int) -> _dt.datetime:
    """S3: creation time + days, rounded up to the next midnight UTC."""
    end = last_modified + _dt.timedelta(days=days)
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == end else midnight + _dt.timedelta(days=1)


def _header(resp) -> str | None:
    return resp["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")


def _parse(header: str) -> tuple[_dt.datetime, str]:
    date_part, rule_part = header.split('", rule-id="')
    assert date_part.startswith('expiry-date="') and rule_part.endswith('"'), header
    return parsedate_to_datetime(date_part[len('expiry-date="'):]), rule_part[:-1]


def test_expiration_header(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "thirty", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
        {"ID": "three", "Filter": {"Prefix": "logs/short/"}, "Status": "Enabled", "Expiration": {"Days": 3}},
        {"ID": "off", "Filter": {"Prefix": "off/"}, "Status": "Disabled", "Expiration": {"Days": 1}},
        {"ID": "dated", "Filter": {"Prefix": "dated/"}, "Status": "Enabled",
         "Expiration": {"Date": _dt.datetime(2031, 5, 4, tzinfo=UTC)}},
        {"ID": "big", "Filter": {"ObjectSizeGreaterThan": 100}, "Status": "Enabled", "Expiration": {"Days": 9}},
        {"ID": "uploads", "Filter": {"Prefix": ""}, "Status": "Enabled",
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]})
    cases = {"logs/a": (30, "thirty"), "logs/short/a": (3, "three"), "dated/a": (None, "dated"),
             "other": None, "off/a": None}
    for key, expected in cases.items():
        put = s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        head = s3.head_object(Bucket=bucket, Key=key)
        get = s3.get_object(Bucket=bucket, Key=key)
        get["Body"].read()
        headers = {_header(put), _header(head), _header(get)}
        assert len(headers) == 1, (key, headers)
        header = headers.pop()
        if expected is None:
            assert header is None, (key, header)
            continue
        when, rule_id = _parse(header)
        days, want_id = expected
        assert rule_id == want_id
        if days is None:
            assert when == _dt.datetime(2031, 5, 4, tzinfo=UTC)
        else:
            assert when in (_expected_days(head["LastModified"], days),
                            _expected_days(head["LastModified"] + _dt.timedelta(seconds=1), days)), (key, header)
    # A size filter: a larger object takes the rule.
    s3.put_object(Bucket=bucket, Key="sized", Body=b"x" * 200)
    assert _parse(_header(s3.head_object(Bucket=bucket, Key="sized")))[1] == "big"
    s3.delete_bucket_lifecycle(Bucket=bucket)
    assert _header(s3.head_object(Bucket=bucket, Key="logs/a")) is None
