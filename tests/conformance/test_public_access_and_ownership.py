"""Public access block, object ownership and the expected bucket owner, against a running server.

Each setting is stored, read back and enforced: BlockPublicAcls refuses public
ACLs (nothing stored), IgnorePublicAcls makes existing public grants count for
nothing, BlockPublicPolicy refuses a public policy, RestrictPublicBuckets keeps a
public policy to the owner; BucketOwnerEnforced disables ACLs (the bucket owner
owns every new object, ACL writes refused), BucketOwnerPreferred hands over
objects written with bucket-owner-full-control, ObjectWriter stays the default.
"""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from bleepstore_app.config import default_owner_id
from tests.servers import ACCESS_KEY, OTHER_ACCESS_KEY

from .helpers import client_error, error_of, key_path, signed_request

OWNER = default_owner_id(ACCESS_KEY)
OTHER = default_owner_id(OTHER_ACCESS_KEY)
ALL_FLAGS = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}


def _error(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return client_error(exc)


def _anon(server, method, bucket, key=None, query="", body=b""):
    return signed_request(server, method, key_path(bucket, key), query=query, body=body, sign=False)


def _pab(s3, bucket, **flags):
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        name: flags.get(name, False) for name in ALL_FLAGS})


def _public_read_policy(bucket) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})


def _owner_of(s3, bucket, key) -> str:
    return s3.get_object_acl(Bucket=bucket, Key=key)["Owner"]["ID"]


# -- public access block -------------------------------------------------------------------

def test_public_access_block_round_trip(s3, s3_other, bucket):
    assert _error(s3.get_public_access_block, Bucket=bucket) == ("NoSuchPublicAccessBlockConfiguration", 404)
    _pab(s3, bucket, BlockPublicAcls=True, RestrictPublicBuckets=True)
    got = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert got == {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                   "RestrictPublicBuckets": True}
    assert _error(s3_other.get_public_access_block, Bucket=bucket) == ("AccessDenied", 403)
    assert _error(s3_other.delete_public_access_block, Bucket=bucket) == ("AccessDenied", 403)
    assert _error(s3_other.put_public_access_block, Bucket=bucket,
                  PublicAccessBlockConfiguration={}) == ("AccessDenied", 403)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == got
    assert s3.delete_public_access_block(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(s3.get_public_access_block, Bucket=bucket) == ("NoSuchPublicAccessBlockConfiguration", 404)


@pytest.mark.parametrize("body", [
    b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
    b"<PublicAccessBlockConfiguration><BlockEverything>true</BlockEverything></PublicAccessBlockConfiguration>",
    b"<Other/>",
    b"<PublicAccessBlockConfiguration><BlockPublicAcls>\xff</BlockPublicAcls></PublicAccessBlockConfiguration>",
    b'<!DOCTYPE x [<!ENTITY e "true">]><PublicAccessBlockConfiguration><BlockPublicAcls>&e;</BlockPublicAcls>'
    b'</PublicAccessBlockConfiguration>',
], ids=["not-boolean", "unknown-flag", "wrong-root", "not-utf8", "entity"])
def test_malformed_public_access_block_refused(server, s3, bucket, body):
    resp = signed_request(server, "PUT", key_path(bucket), query="publicAccessBlock", body=body)
    assert resp.status_code == 400 and error_of(resp)["Code"] == "MalformedXML"
    assert _error(s3.get_public_access_block, Bucket=bucket) == ("NoSuchPublicAccessBlockConfiguration", 404)


def test_block_public_acls_refuses_public_acl_writes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    _pab(s3, bucket, BlockPublicAcls=True)
    assert _error(s3.put_object, Bucket=bucket, Key="new", Body=b"x", ACL="public-read") == ("AccessDenied", 403)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="new")
    assert _error(s3.put_object_acl, Bucket=bucket, Key="k", ACL="public-read") == ("AccessDenied", 403)
    assert _error(s3.put_bucket_acl, Bucket=bucket, ACL="authenticated-read") == ("AccessDenied", 403)
    assert _error(s3.create_multipart_upload, Bucket=bucket, Key="mp", ACL="public-read-write") == \
        ("AccessDenied", 403)
    assert len(s3.get_object_acl(Bucket=bucket, Key="k")["Grants"]) == 1
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 1
    s3.put_object(Bucket=bucket, Key="private-ok", Body=b"x", ACL="private")  # not public: fine


def test_ignore_public_acls_hides_existing_public_grants(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"public bytes", ACL="public-read")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert _anon(server, "GET", bucket, "k").status_code == 200
    assert _anon(server, "GET", bucket, query="list-type=2").status_code == 200
    _pab(s3, bucket, IgnorePublicAcls=True)
    assert _anon(server, "GET", bucket, "k").status_code == 403
    assert _anon(server, "GET", bucket, query="list-type=2").status_code == 403
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"public bytes"  # the owner still reads
    s3.delete_public_access_block(Bucket=bucket)
    assert _anon(server, "GET", bucket, "k").status_code == 200


def test_block_public_policy_and_restrict_public_buckets(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    _pab(s3, bucket, BlockPublicPolicy=True)
    assert _error(s3.put_bucket_policy, Bucket=bucket, Policy=_public_read_policy(bucket)) == ("AccessDenied", 403)
    assert _error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=_public_read_policy(bucket))
    assert _anon(server, "GET", bucket, "k").status_code == 200
    _pab(s3, bucket, RestrictPublicBuckets=True)
    assert _anon(server, "GET", bucket, "k").status_code == 403
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.delete_bucket_policy(Bucket=bucket)


# -- object ownership -----------------------------------------------------------------------

def test_ownership_controls_round_trip_and_owner_only(s3, s3_other, bucket):
    assert _error(s3.get_bucket_ownership_controls, Bucket=bucket) == ("OwnershipControlsNotFoundError", 404)
    for setting in ("BucketOwnerPreferred", "BucketOwnerEnforced", "ObjectWriter"):
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": setting}]})
        got = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        assert got == [{"ObjectOwnership": setting}]
    assert _error(s3_other.put_bucket_ownership_controls, Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}) == ("AccessDenied", 403)
    assert _error(s3_other.get_bucket_ownership_controls, Bucket=bucket) == ("AccessDenied", 403)
    assert s3.delete_bucket_ownership_controls(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(s3.get_bucket_ownership_controls, Bucket=bucket) == ("OwnershipControlsNotFoundError", 404)


def test_malformed_ownership_controls_refused(server, s3, bucket):
    for body in (b"<OwnershipControls><Rule><ObjectOwnership>Everyone</ObjectOwnership></Rule></OwnershipControls>",
                 b"<OwnershipControls></OwnershipControls>",
                 b"<OwnershipControls><Rule><ObjectOwnership>\xff</ObjectOwnership></Rule></OwnershipControls>"):
        resp = signed_request(server, "PUT", key_path(bucket), query="ownershipControls", body=body)
        assert resp.status_code == 400 and error_of(resp)["Code"] == "MalformedXML"
    assert _error(s3.get_bucket_ownership_controls, Bucket=bucket) == ("OwnershipControlsNotFoundError", 404)


def test_bucket_owner_enforced_disables_acls(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="before", Body=b"x")
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"x", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="k")
    assert _error(s3.put_object_acl, Bucket=bucket, Key="before", ACL="public-read") == \
        ("AccessControlListNotSupported", 400)
    assert _error(s3.put_bucket_acl, Bucket=bucket, ACL="public-read") == ("AccessControlListNotSupported", 400)
    s3.put_object(Bucket=bucket, Key="ok", Body=b"x", ACL="bucket-owner-full-control")
    # ACLs grant nothing: the other user, granted WRITE by ACL before, gets nothing from it
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    s3_other.put_object(Bucket=bucket, Key="from-other", Body=b"theirs")
    assert _owner_of(s3, bucket, "from-other") == OWNER  # the bucket owner owns it
    assert s3.get_object(Bucket=bucket, Key="from-other")["Body"].read() == b"theirs"
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in grants] == [(OWNER, "FULL_CONTROL")]
    s3.delete_bucket_policy(Bucket=bucket)


def test_bucket_owner_enforced_refused_over_a_public_bucket_acl(s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert _error(s3.put_bucket_ownership_controls, Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}) == ("InvalidBucketAclWithObjectOwnership", 400)
    assert _error(s3.get_bucket_ownership_controls, Bucket=bucket) == ("OwnershipControlsNotFoundError", 404)


def test_bucket_owner_preferred_takes_over_objects_written_with_full_control(s3, s3_other, bucket):
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"id={OTHER}", GrantFullControl=f"id={OWNER}")
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    s3_other.put_object(Bucket=bucket, Key="handed-over", Body=b"a", ACL="bucket-owner-full-control")
    s3_other.put_object(Bucket=bucket, Key="kept", Body=b"b")
    assert _owner_of(s3, bucket, "handed-over") == OWNER
    assert _error(s3.get_object_acl, Bucket=bucket, Key="kept") == ("AccessDenied", 403)  # the writer's
    s3_other.delete_object(Bucket=bucket, Key="kept")


def test_object_writer_stays_the_default(s3, s3_other, bucket):
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f"id={OTHER}", GrantFullControl=f"id={OWNER}")
    s3_other.put_object(Bucket=bucket, Key="theirs", Body=b"a", ACL="bucket-owner-full-control")
    assert s3_other.get_object_acl(Bucket=bucket, Key="theirs")["Owner"]["ID"] == OTHER


def test_create_bucket_with_object_ownership(s3):
    name = "own-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert _error(s3.put_object, Bucket=name, Key="k", Body=b"x", ACL="public-read") == \
            ("AccessControlListNotSupported", 400)
    finally:
        s3.delete_bucket(Bucket=name)
    refused = "own-" + uuid.uuid4().hex[:12]
    assert _error(s3.create_bucket, Bucket=refused, ObjectOwnership="BucketOwnerEnforced", ACL="public-read") == \
        ("InvalidBucketAclWithObjectOwnership", 400)
    assert _error(s3.head_bucket, Bucket=refused)[1] == 404
    resp_name = "own-" + uuid.uuid4().hex[:12]
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=resp_name, ObjectOwnership="Nobody")
    assert client_error(exc) == ("InvalidArgument", 400)
    assert _error(s3.head_bucket, Bucket=resp_name)[1] == 404


# -- expected bucket owner -------------------------------------------------------------------

def test_expected_bucket_owner(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=OWNER)
    assert _error(s3.put_object, Bucket=bucket, Key="k", Body=b"changed", ExpectedBucketOwner=OTHER) == \
        ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    assert _error(s3.put_bucket_policy, Bucket=bucket, Policy=_public_read_policy(bucket),
                  ExpectedBucketOwner=OTHER) == ("AccessDenied", 403)
    assert _error(s3.copy_object, Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"},
                  ExpectedSourceBucketOwner=OTHER) == ("AccessDenied", 403)
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"},
                   ExpectedSourceBucketOwner=OWNER, ExpectedBucketOwner=OWNER)


def test_each_bucket_of_a_copy_keeps_its_own_ownership_setting(s3, s3_other, bucket):
    """Copying into a bucket with ACLs disabled still reads the source by the source
    bucket's rules (its object's public-read ACL), and the reverse."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"readable by all", ACL="public-read")
    enforced = "own-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=enforced, ObjectOwnership="BucketOwnerEnforced")
    s3.put_bucket_policy(Bucket=enforced, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{enforced}/*"}]}))
    try:
        # the other user writes into the owner's enforced bucket, reading a public source
        s3_other.copy_object(Bucket=enforced, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
        assert s3.get_object(Bucket=enforced, Key="copy")["Body"].read() == b"readable by all"
        # the enforced bucket's objects are its owner's alone, whatever ACL the writer named
        s3_other.put_object(Bucket=enforced, Key="theirs", Body=b"t", ACL="bucket-owner-full-control")
        assert _error(s3_other.get_object, Bucket=enforced, Key="theirs") == ("AccessDenied", 403)
    finally:
        s3.delete_bucket_policy(Bucket=enforced)
        for key in ("copy", "theirs"):
            s3.delete_object(Bucket=enforced, Key=key)
        s3.delete_bucket(Bucket=enforced)
