"""Bucket operations: CreateBucket, ListBuckets, HeadBucket, DeleteBucket, GetBucketLocation."""
from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from .helpers import S3_NS, assert_client_error, assert_error, signed_request


def new_name(prefix: str = "bkt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def names(s3, s3_other):
    """Bucket names to create in a test; whichever user owns them deletes them afterwards."""
    created: list[str] = []
    yield created
    for name in created:
        for client in (s3, s3_other):
            try:
                client.delete_bucket(Bucket=name)
                break
            except ClientError:
                continue


def test_create_bucket_then_head_and_delete(s3, names):
    name = new_name()
    names.append(name)
    resp = s3.create_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Location"] == f"/{name}"
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    resp = s3.delete_bucket(Bucket=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert_client_error(exc, "404", 404)


def test_list_buckets_contains_created_bucket(s3, names):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    created = sorted(new_name() for _ in range(3))
    for name in created:
        names.append(name)
        s3.create_bucket(Bucket=name)
    resp = s3.list_buckets()
    listed = [b["Name"] for b in resp["Buckets"]]
    assert [n for n in listed if n in created] == created
    assert listed == sorted(listed), "ListBuckets is sorted by name"
    for b in resp["Buckets"]:
        if b["Name"] in created:
            assert before <= b["CreationDate"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert resp["Owner"]["DisplayName"] == "main-user"
    assert resp["Owner"]["ID"]


def test_list_buckets_shows_each_user_only_their_own(s3, s3_other, names):
    mine, theirs = new_name("mine"), new_name("theirs")
    names.extend([mine, theirs])
    s3.create_bucket(Bucket=mine)
    s3_other.create_bucket(Bucket=theirs)
    listed_mine = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    listed_theirs = {b["Name"] for b in s3_other.list_buckets()["Buckets"]}
    assert mine in listed_mine and theirs not in listed_mine
    assert theirs in listed_theirs and mine not in listed_theirs
    assert s3_other.list_buckets()["Owner"]["DisplayName"] == "other-user"
    assert s3.list_buckets()["Owner"]["ID"] != s3_other.list_buckets()["Owner"]["ID"]


@pytest.mark.parametrize("name", [
    "ab",                              # too short
    "a" * 64,                          # too long
    "Upper-Case-Bucket",               # upper case
    "under_score_bucket",              # underscore
    "-leading-hyphen",
    "trailing-hyphen-",
    ".leading-dot",
    "trailing-dot.",
    "double..dots",
    "dot.-hyphen",
    "hyphen-.dot",
    "192.168.5.4",                     # IP address
    "xn--punycode-prefix",             # reserved prefix
    "sthree-reserved",
    "bucket-name-s3alias",             # reserved suffix
    "bucket-name--ol-s3",
])
def test_create_bucket_invalid_name(s3, name):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert_client_error(exc, "InvalidBucketName", 400)


@pytest.mark.parametrize("shape", ["min-length", "max-length", "dots", "digits-first"])
def test_create_bucket_valid_edge_names(s3, names, shape):
    suffix = uuid.uuid4().hex
    name = {
        "min-length": suffix[:3],
        "max-length": (suffix * 2)[:63],
        "dots": f"a.{suffix[:10]}.b",
        "digits-first": f"0{suffix[:10]}9",
    }[shape]
    names.append(name)
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_create_bucket_invalid_name_raw_has_xml_error(server):
    resp = signed_request(server, "PUT", "/Bad_Name")
    fields = assert_error(resp, "InvalidBucketName", 400)
    assert fields.get("BucketName") == "Bad_Name"


def test_create_bucket_again_by_same_owner_returns_200(s3, names):
    name = new_name()
    names.append(name)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="keep", Body=b"kept")
    resp = s3.create_bucket(Bucket=name)  # us-east-1 legacy behaviour: 200 OK
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=name, Key="keep")["Body"].read() == b"kept"
    s3.delete_object(Bucket=name, Key="keep")


def test_create_bucket_owned_by_other_user_bucket_already_exists(s3, s3_other, names):
    name = new_name()
    names.append(name)
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3_other.create_bucket(Bucket=name)
    assert_client_error(exc, "BucketAlreadyExists", 409)
    # Still the first user's bucket.
    assert name in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert name not in {b["Name"] for b in s3_other.list_buckets()["Buckets"]}


def test_delete_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert_client_error(exc, "BucketNotEmpty", 409)
    s3.head_bucket(Bucket=bucket)


def test_delete_bucket_missing(s3):
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=new_name("missing"))
    assert_client_error(exc, "NoSuchBucket", 404)


def test_delete_bucket_by_other_user_access_denied(s3, s3_other, bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.delete_bucket(Bucket=bucket)
    assert_client_error(exc, "AccessDenied", 403)
    s3.head_bucket(Bucket=bucket)


def test_head_bucket_missing_404(s3):
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=new_name("missing"))
    assert_client_error(exc, "404", 404)


def test_head_bucket_other_user_403(s3_other, bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.head_bucket(Bucket=bucket)
    assert_client_error(exc, "403", 403)


def test_head_bucket_has_region_header_and_no_body(server, bucket):
    resp = signed_request(server, "HEAD", f"/{bucket}")
    assert resp.status_code == 200
    assert resp.headers["x-amz-bucket-region"] == "us-east-1"
    assert resp.content == b""


def test_get_bucket_location_us_east_1_is_empty(s3, server, bucket):
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None
    resp = signed_request(server, "GET", f"/{bucket}", query="location")
    assert resp.status_code == 200
    root = ET.fromstring(resp.content)
    assert root.tag == f"{S3_NS}LocationConstraint"
    assert (root.text or "") == ""


def test_get_bucket_location_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_location(Bucket=new_name("missing"))
    assert_client_error(exc, "NoSuchBucket", 404)


def test_get_bucket_location_other_user_access_denied(s3_other, bucket):
    with pytest.raises(ClientError) as exc:
        s3_other.get_bucket_location(Bucket=bucket)
    assert_client_error(exc, "AccessDenied", 403)


def test_create_bucket_location_constraint_other_region_illegal(s3):
    name = new_name()
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert_client_error(exc, "IllegalLocationConstraintException", 400)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_create_bucket_location_constraint_us_east_1_invalid(server, s3):
    # boto3 refuses to send LocationConstraint=us-east-1 itself, so send it raw.
    name = new_name()
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>")
    resp = signed_request(server, "PUT", f"/{name}", body=body)
    assert_error(resp, "InvalidLocationConstraint", 400)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_create_bucket_empty_configuration_accepted(server, s3, names):
    name = new_name()
    names.append(name)
    body = b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    resp = signed_request(server, "PUT", f"/{name}", body=body)
    assert resp.status_code == 200, resp.content
    s3.head_bucket(Bucket=name)


def test_create_bucket_malformed_xml(server, s3):
    name = new_name()
    resp = signed_request(server, "PUT", f"/{name}", body=b"<CreateBucketConfiguration><oops")
    assert_error(resp, "MalformedXML", 400)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_create_bucket_anonymous_access_denied(server, s3):
    name = new_name()
    resp = signed_request(server, "PUT", f"/{name}", sign=False)
    assert_error(resp, "AccessDenied", 403)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_delete_bucket_then_recreate(s3, names):
    name = new_name()
    names.append(name)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="old", Body=b"old")
    s3.delete_object(Bucket=name, Key="old")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0


def test_delete_bucket_lets_other_user_take_name(s3, s3_other, names):
    name = new_name()
    names.append(name)
    s3.create_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)
    s3_other.create_bucket(Bucket=name)
    assert name in {b["Name"] for b in s3_other.list_buckets()["Buckets"]}
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert_client_error(exc, "403", 403)
