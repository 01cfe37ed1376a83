"""ACLs: Get/Put Bucket/Object ACL in their three input forms, and their enforcement.

AWS S3 User Guide "Access control list (ACL) overview" (grantees, permissions, canned ACLs)
and API Reference PutBucketAcl / PutObjectAcl / GetBucketAcl / GetObjectAcl. This models
classic ACL behaviour (Object Ownership "ObjectWriter"): the writer of an object owns it.
Since 2023 new AWS buckets default to BucketOwnerEnforced, where ACLs are disabled; these
tests assume ACLs are enabled, as the server is meant to implement them.
"""
from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from .support_issue4 import (ALL_USERS, AUTH_USERS, LARGE, NS, SMALL, acl_xml, anonymous, assert_error,
                             canonical_id, client_error, describe, grant_set, group_grant, object_path, raw,
                             user_grant)

SIZES = pytest.mark.parametrize("size", [SMALL, LARGE], ids=["inline", "file"])
MAIN_NAME, OTHER_NAME = "main-user", "other-user"


@pytest.fixture(scope="module")
def ids(s3, s3_other):
    return canonical_id(s3), canonical_id(s3_other)


@pytest.fixture
def fresh_bucket(s3):
    """A bucket name to create in the test (with options); emptied and deleted afterwards."""
    name = "acl-" + uuid.uuid4().hex[:16]
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def _denied(call, *args, **kwargs):
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    assert client_error(exc) == ("AccessDenied", 403)


def _canned_grants(canned: str, owner: str, bucket_owner: str | None = None) -> set:
    fc = user_grant(owner, "FULL_CONTROL")
    return {
        "private": {fc},
        "public-read": {fc, group_grant(ALL_USERS, "READ")},
        "public-read-write": {fc, group_grant(ALL_USERS, "READ"), group_grant(ALL_USERS, "WRITE")},
        "authenticated-read": {fc, group_grant(AUTH_USERS, "READ")},
        "bucket-owner-read": {fc, user_grant(bucket_owner or owner, "READ")},
        "bucket-owner-full-control": {fc, user_grant(bucket_owner or owner, "FULL_CONTROL")},
    }[canned]


CANNED = ["private", "public-read", "public-read-write", "authenticated-read", "bucket-owner-read",
          "bucket-owner-full-control"]


# -- defaults ---------------------------------------------------------------------------------------

def test_get_bucket_acl_default_owner_full_control(s3, bucket, ids):
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"] == {"ID": ids[0], "DisplayName": MAIN_NAME}
    assert acl["Grants"] == [{"Grantee": {"ID": ids[0], "DisplayName": MAIN_NAME, "Type": "CanonicalUser"},
                              "Permission": "FULL_CONTROL"}]


@SIZES
def test_get_object_acl_default_owner_full_control(s3, bucket, ids, size):
    s3.put_object(Bucket=bucket, Key="k", Body=os.urandom(size))
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    assert acl["Owner"] == {"ID": ids[0], "DisplayName": MAIN_NAME}
    assert acl["Grants"] == [{"Grantee": {"ID": ids[0], "DisplayName": MAIN_NAME, "Type": "CanonicalUser"},
                              "Permission": "FULL_CONTROL"}]


def test_get_bucket_acl_raw_xml(server, bucket, ids):
    resp = raw(server, "GET", f"/{bucket}", query="acl")
    assert resp.status_code == 200, describe(resp)
    root = ET.fromstring(resp.content)
    assert root.tag == f"{NS}AccessControlPolicy"
    assert root.find(f"{NS}Owner/{NS}ID").text == ids[0]
    grant = root.find(f"{NS}AccessControlList/{NS}Grant")
    grantee = grant.find(f"{NS}Grantee")
    assert grantee.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "CanonicalUser"
    assert grantee.find(f"{NS}ID").text == ids[0]
    assert grant.find(f"{NS}Permission").text == "FULL_CONTROL"


def test_get_object_acl_missing_key(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_object_acl(Bucket=bucket, Key="missing")
    assert client_error(exc) == ("NoSuchKey", 404)


def test_get_bucket_acl_missing_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_acl(Bucket="no-such-" + uuid.uuid4().hex[:12])
    assert client_error(exc) == ("NoSuchBucket", 404)


# -- canned ACLs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("canned", CANNED)
def test_put_bucket_acl_canned(s3, bucket, ids, canned):
    s3.put_bucket_acl(Bucket=bucket, ACL=canned)
    got = grant_set(s3.get_bucket_acl(Bucket=bucket))
    if canned.startswith("bucket-owner-"):
        # Object-only canned ACLs: for a bucket AWS ignores them ("If you specify this canned
        # ACL when creating a bucket, Amazon S3 ignores it"); the owner keeps FULL_CONTROL.
        assert user_grant(ids[0], "FULL_CONTROL") in got and all(g[1] == ids[0] for g in got), got
    else:
        assert got == _canned_grants(canned, ids[0])


@pytest.mark.parametrize("canned", CANNED)
def test_put_object_acl_canned(s3, bucket, ids, canned):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_acl(Bucket=bucket, Key="k", ACL=canned)
    got = grant_set(s3.get_object_acl(Bucket=bucket, Key="k"))
    if canned.startswith("bucket-owner-"):
        # Object owner == bucket owner here: UNCERTAIN whether AWS lists the duplicate grant
        # to the same user; only grants to the owner, including FULL_CONTROL.
        assert user_grant(ids[0], "FULL_CONTROL") in got and all(g[1] == ids[0] for g in got), got
    else:
        assert got == _canned_grants(canned, ids[0])


@pytest.mark.parametrize("canned", ["private", "public-read", "public-read-write", "authenticated-read"])
def test_create_bucket_canned_acl(s3, fresh_bucket, ids, canned):
    s3.create_bucket(Bucket=fresh_bucket, ACL=canned)
    assert grant_set(s3.get_bucket_acl(Bucket=fresh_bucket)) == _canned_grants(canned, ids[0])


@pytest.mark.parametrize("canned", ["private", "public-read", "authenticated-read", "public-read-write"])
def test_put_object_canned_acl(s3, bucket, ids, canned):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL=canned)
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == _canned_grants(canned, ids[0])


def test_put_object_canned_acl_bucket_owner_full_control_by_other_writer(s3, s3_other, fresh_bucket, ids):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    s3_other.put_object(Bucket=fresh_bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    acl = s3_other.get_object_acl(Bucket=fresh_bucket, Key="k")
    assert acl["Owner"]["ID"] == ids[1]
    assert grant_set(acl) == {user_grant(ids[1], "FULL_CONTROL"), user_grant(ids[0], "FULL_CONTROL")}
    assert s3.get_object(Bucket=fresh_bucket, Key="k")["Body"].read() == b"x"


def test_put_object_canned_acl_bucket_owner_read_by_other_writer(s3, s3_other, fresh_bucket, ids):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    s3_other.put_object(Bucket=fresh_bucket, Key="k", Body=b"x", ACL="bucket-owner-read")
    assert grant_set(s3_other.get_object_acl(Bucket=fresh_bucket, Key="k")) == \
        {user_grant(ids[1], "FULL_CONTROL"), user_grant(ids[0], "READ")}
    assert s3.get_object(Bucket=fresh_bucket, Key="k")["Body"].read() == b"x"


def test_copy_object_canned_acl(server, s3, bucket, ids):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, ACL="public-read")
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="dst")) == _canned_grants("public-read", ids[0])
    resp = anonymous(server, "GET", bucket, "dst")
    assert resp.status_code == 200 and resp.content == b"copy me"


def test_copy_object_does_not_copy_source_acl(server, s3, bucket, ids):
    # AWS: the ACL is not copied; a copy without ACL headers is private.
    s3.put_object(Bucket=bucket, Key="src", Body=b"public", ACL="public-read")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="dst")) == {user_grant(ids[0], "FULL_CONTROL")}
    assert_error(anonymous(server, "GET", bucket, "dst"), "AccessDenied", 403)


def test_put_object_overwrite_resets_acl(server, s3, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == {user_grant(ids[0], "FULL_CONTROL")}
    assert_error(anonymous(server, "GET", bucket, "k"), "AccessDenied", 403)


# -- grant headers -------------------------------------------------------------------------------------

def test_put_bucket_acl_grant_headers(s3, bucket, ids):
    u1, u2 = ids
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{u1}"', GrantRead=f'uri="{ALL_USERS}"',
                      GrantWrite=f'id="{u2}"', GrantReadACP=f'uri="{AUTH_USERS}"', GrantWriteACP=f'id="{u2}"')
    assert grant_set(s3.get_bucket_acl(Bucket=bucket)) == {
        user_grant(u1, "FULL_CONTROL"), group_grant(ALL_USERS, "READ"), user_grant(u2, "WRITE"),
        group_grant(AUTH_USERS, "READ_ACP"), user_grant(u2, "WRITE_ACP")}


def test_put_object_acl_grant_headers_several_grantees(s3, bucket, ids):
    u1, u2 = ids
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_acl(Bucket=bucket, Key="k", GrantFullControl=f'id="{u1}"',
                      GrantRead=f'id="{u2}", uri="{ALL_USERS}"', GrantReadACP=f'id="{u2}"',
                      GrantWriteACP=f'uri="{AUTH_USERS}"')
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    assert grant_set(acl) == {user_grant(u1, "FULL_CONTROL"), user_grant(u2, "READ"),
                              group_grant(ALL_USERS, "READ"), user_grant(u2, "READ_ACP"),
                              group_grant(AUTH_USERS, "WRITE_ACP")}
    names = {g["Grantee"].get("ID"): g["Grantee"].get("DisplayName") for g in acl["Grants"]
             if g["Grantee"]["Type"] == "CanonicalUser"}
    assert names == {u1: MAIN_NAME, u2: OTHER_NAME}


def test_put_object_grant_headers_on_create(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"for two", GrantRead=f'id="{ids[1]}"',
                  GrantFullControl=f'id="{ids[0]}"')
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == {user_grant(ids[0], "FULL_CONTROL"),
                                                                    user_grant(ids[1], "READ")}
    assert s3_other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"for two"


def test_create_bucket_grant_headers(s3, s3_other, fresh_bucket, ids):
    s3.create_bucket(Bucket=fresh_bucket, GrantRead=f'id="{ids[1]}"', GrantFullControl=f'id="{ids[0]}"')
    assert grant_set(s3.get_bucket_acl(Bucket=fresh_bucket)) == {user_grant(ids[0], "FULL_CONTROL"),
                                                                 user_grant(ids[1], "READ")}
    s3.put_object(Bucket=fresh_bucket, Key="k", Body=b"x")
    assert [o["Key"] for o in s3_other.list_objects_v2(Bucket=fresh_bucket)["Contents"]] == ["k"]


# -- AccessControlPolicy XML body ------------------------------------------------------------------------

def test_put_bucket_acl_xml_body_boto3(s3, bucket, ids):
    u1, u2 = ids
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
        "Owner": {"ID": u1},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": u1}, "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "CanonicalUser", "ID": u2}, "Permission": "READ"},
                   {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ_ACP"}]})
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"]["ID"] == u1
    assert grant_set(acl) == {user_grant(u1, "FULL_CONTROL"), user_grant(u2, "READ"),
                              group_grant(AUTH_USERS, "READ_ACP")}


def test_put_object_acl_xml_body_raw(server, s3, bucket, ids):
    u1, u2 = ids
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = acl_xml(u1, [("CanonicalUser", u1, "FULL_CONTROL"), ("Group", ALL_USERS, "READ"),
                        ("CanonicalUser", u2, "WRITE_ACP")])
    resp = raw(server, "PUT", object_path(bucket, "k"), query="acl", body=body)
    assert resp.status_code == 200, describe(resp)
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == {
        user_grant(u1, "FULL_CONTROL"), group_grant(ALL_USERS, "READ"), user_grant(u2, "WRITE_ACP")}


def test_put_bucket_acl_xml_body_round_trip_of_get(s3, bucket, ids):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    acl = s3.get_bucket_acl(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": acl["Grants"]})
    assert grant_set(s3.get_bucket_acl(Bucket=bucket)) == _canned_grants("public-read", ids[0])


# -- invalid input ----------------------------------------------------------------------------------------

def test_put_bucket_acl_canned_and_grant_headers_invalid_request(s3, bucket, ids):
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read", GrantRead=f'id="{ids[1]}"')
    # AWS: 400 InvalidRequest "Specifying both Canned ACLs and Header Grants is not allowed"
    assert client_error(exc) == ("InvalidRequest", 400)
    assert grant_set(s3.get_bucket_acl(Bucket=bucket)) == {user_grant(ids[0], "FULL_CONTROL")}


def test_put_object_acl_canned_and_grant_headers_invalid_request(s3, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read", GrantRead=f'id="{ids[1]}"')
    assert client_error(exc) == ("InvalidRequest", 400)
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == {user_grant(ids[0], "FULL_CONTROL")}


def test_put_object_canned_and_grant_headers_invalid_request(s3, bucket, ids):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read", GrantRead=f'id="{ids[1]}"')
    assert client_error(exc) == ("InvalidRequest", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("body", [b"<AccessControlPolicy><Owner>", b"garbage",
                                  b"<AccessControlPolicy><AccessControlList><Grant><Grantee>"
                                  b"<ID>x</ID></Grantee></Grant></AccessControlList>"],
                         ids=["unclosed", "not-xml", "grant-without-permission"])
@pytest.mark.parametrize("level", ["bucket", "object"])
def test_put_acl_malformed_xml_malformed_acl_error(server, s3, bucket, ids, body, level):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    path = f"/{bucket}" if level == "bucket" else object_path(bucket, "k")
    resp = raw(server, "PUT", path, query="acl", body=body)
    # AWS: 400 MalformedACLError "The XML you provided was not well-formed or did not validate
    # against our published schema"
    assert_error(resp, "MalformedACLError", 400)
    acl = s3.get_bucket_acl(Bucket=bucket) if level == "bucket" else s3.get_object_acl(Bucket=bucket, Key="k")
    assert grant_set(acl) == {user_grant(ids[0], "FULL_CONTROL")}


@pytest.mark.parametrize("level", ["bucket", "object"])
def test_put_acl_invalid_canned_value_invalid_argument(server, s3, bucket, level):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    path = f"/{bucket}" if level == "bucket" else object_path(bucket, "k")
    resp = raw(server, "PUT", path, query="acl", headers={"x-amz-acl": "world-writable"})
    assert_error(resp, "InvalidArgument", 400)


# -- enforcement: anonymous ----------------------------------------------------------------------------

@SIZES
def test_get_object_anonymous_public_read_200(server, s3, bucket, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="pub lic", Body=data, ACL="public-read")
    resp = anonymous(server, "GET", bucket, "pub lic")
    assert resp.status_code == 200, describe(resp)
    assert resp.content == data
    head = anonymous(server, "HEAD", bucket, "pub lic")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(size)


@SIZES
def test_get_object_anonymous_private_access_denied(server, s3, bucket, size):
    s3.put_object(Bucket=bucket, Key="priv", Body=os.urandom(size))
    assert_error(anonymous(server, "GET", bucket, "priv"), "AccessDenied", 403)


def test_get_object_anonymous_after_acl_made_private_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert anonymous(server, "GET", bucket, "k").status_code == 200
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="private")
    assert_error(anonymous(server, "GET", bucket, "k"), "AccessDenied", 403)


def test_get_object_anonymous_authenticated_read_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="authenticated-read")
    assert_error(anonymous(server, "GET", bucket, "k"), "AccessDenied", 403)


def test_get_object_anonymous_public_bucket_private_object_access_denied(server, s3, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read")
    s3.put_object(Bucket=fresh_bucket, Key="k", Body=b"x")
    assert_error(anonymous(server, "GET", fresh_bucket, "k"), "AccessDenied", 403)


def test_list_objects_anonymous_public_read_bucket_200(server, s3, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read")
    s3.put_object(Bucket=fresh_bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=fresh_bucket, Key="b/c", Body=b"2")
    for query in ("", "list-type=2"):
        resp = anonymous(server, "GET", fresh_bucket, query=query)
        assert resp.status_code == 200, describe(resp)
        root = ET.fromstring(resp.content)
        assert root.tag == f"{NS}ListBucketResult"
        assert [k.text for k in root.iter(f"{NS}Key")] == ["a", "b/c"]


def test_list_objects_anonymous_private_bucket_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    assert_error(anonymous(server, "GET", bucket), "AccessDenied", 403)


def test_put_object_anonymous_public_read_bucket_access_denied(server, s3, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read")
    assert_error(anonymous(server, "PUT", fresh_bucket, "anon", body=b"x"), "AccessDenied", 403)
    assert s3.list_objects_v2(Bucket=fresh_bucket)["KeyCount"] == 0


def test_put_object_anonymous_public_read_write_bucket_200(server, s3, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    resp = anonymous(server, "PUT", fresh_bucket, "anon", body=b"anonymous data")
    assert resp.status_code == 200, describe(resp)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=fresh_bucket)["Contents"]] == ["anon"]


def test_get_bucket_acl_anonymous_access_denied(server, s3, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read")
    assert_error(anonymous(server, "GET", fresh_bucket, query="acl"), "AccessDenied", 403)


# -- enforcement: another user -----------------------------------------------------------------------

def test_get_object_other_user_authenticated_read_200(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"auth", ACL="authenticated-read")
    assert s3_other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"auth"
    assert s3_other.head_object(Bucket=bucket, Key="k")["ContentLength"] == 4


@SIZES
def test_get_object_other_user_granted_read_by_id_200(server, s3, s3_other, bucket, ids, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="k", Body=data)
    s3.put_object_acl(Bucket=bucket, Key="k", GrantRead=f'id="{ids[1]}"', GrantFullControl=f'id="{ids[0]}"')
    assert s3_other.get_object(Bucket=bucket, Key="k")["Body"].read() == data
    assert_error(anonymous(server, "GET", bucket, "k"), "AccessDenied", 403)
    # READ on the object is not WRITE on the bucket, nor READ_ACP on the object.
    _denied(s3_other.put_object, Bucket=bucket, Key="k", Body=b"overwrite")
    _denied(s3_other.get_object_acl, Bucket=bucket, Key="k")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_get_object_other_user_private_access_denied(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    _denied(s3_other.get_object, Bucket=bucket, Key="k")
    _denied(s3_other.put_object, Bucket=bucket, Key="new", Body=b"x")
    _denied(s3_other.list_objects_v2, Bucket=bucket)


def test_get_object_other_user_granted_read_to_someone_else_denied(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantRead=f'id="{ids[0]}"')
    _denied(s3_other.get_object, Bucket=bucket, Key="k")


def test_put_object_other_user_public_read_write_bucket_owns_object(s3, s3_other, fresh_bucket, ids):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    s3_other.put_object(Bucket=fresh_bucket, Key="theirs", Body=b"by user 2")
    listing = s3.list_objects_v2(Bucket=fresh_bucket, FetchOwner=True)["Contents"]
    assert [(o["Key"], o["Owner"]["ID"]) for o in listing] == [("theirs", ids[1])]
    acl = s3_other.get_object_acl(Bucket=fresh_bucket, Key="theirs")
    assert acl["Owner"] == {"ID": ids[1], "DisplayName": OTHER_NAME}
    assert grant_set(acl) == {user_grant(ids[1], "FULL_CONTROL")}
    assert s3_other.get_object(Bucket=fresh_bucket, Key="theirs")["Body"].read() == b"by user 2"


def test_get_object_bucket_owner_cannot_read_other_writers_private_object(s3, s3_other, fresh_bucket):
    """Classic ACLs (ObjectWriter): the bucket owner gets no access to an object another
    account wrote without granting it, but may still delete it."""
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    s3_other.put_object(Bucket=fresh_bucket, Key="theirs", Body=b"x")
    _denied(s3.get_object, Bucket=fresh_bucket, Key="theirs")
    s3.delete_object(Bucket=fresh_bucket, Key="theirs")
    assert s3.list_objects_v2(Bucket=fresh_bucket)["KeyCount"] == 0


def test_put_object_acl_other_user_without_write_acp_denied(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    _denied(s3_other.put_object_acl, Bucket=bucket, Key="k", ACL="public-read-write")
    _denied(s3_other.get_object_acl, Bucket=bucket, Key="k")
    assert grant_set(s3.get_object_acl(Bucket=bucket, Key="k")) == _canned_grants("public-read", ids[0])


def test_put_bucket_acl_other_user_without_write_acp_denied(s3, s3_other, fresh_bucket, ids):
    s3.create_bucket(Bucket=fresh_bucket, ACL="public-read-write")
    _denied(s3_other.put_bucket_acl, Bucket=fresh_bucket, ACL="private")
    _denied(s3_other.get_bucket_acl, Bucket=fresh_bucket)
    assert grant_set(s3.get_bucket_acl(Bucket=fresh_bucket)) == _canned_grants("public-read-write", ids[0])


def test_put_object_acl_other_user_with_write_acp_allowed(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantFullControl=f'id="{ids[0]}"',
                  GrantWriteACP=f'id="{ids[1]}"', GrantReadACP=f'id="{ids[1]}"')
    assert grant_set(s3_other.get_object_acl(Bucket=bucket, Key="k")) == {
        user_grant(ids[0], "FULL_CONTROL"), user_grant(ids[1], "WRITE_ACP"), user_grant(ids[1], "READ_ACP")}
    s3_other.put_object_acl(Bucket=bucket, Key="k", GrantFullControl=f'id="{ids[0]}"', GrantRead=f'id="{ids[1]}"')
    assert s3_other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    assert acl["Owner"]["ID"] == ids[0]  # changing the ACL does not change the owner
    assert grant_set(acl) == {user_grant(ids[0], "FULL_CONTROL"), user_grant(ids[1], "READ")}


def test_put_bucket_acl_other_user_with_write_acp_allowed(s3, s3_other, bucket, ids):
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{ids[0]}"', GrantWriteACP=f'id="{ids[1]}"',
                      GrantReadACP=f'id="{ids[1]}"')
    assert grant_set(s3_other.get_bucket_acl(Bucket=bucket)) == {
        user_grant(ids[0], "FULL_CONTROL"), user_grant(ids[1], "WRITE_ACP"), user_grant(ids[1], "READ_ACP")}
    s3_other.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert grant_set(s3.get_bucket_acl(Bucket=bucket)) == _canned_grants("public-read", ids[0])


def test_object_other_user_full_control_read_and_acl(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"fc", GrantFullControl=f'id="{ids[0]}", id="{ids[1]}"')
    assert s3_other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"fc"
    s3_other.get_object_acl(Bucket=bucket, Key="k")
    s3_other.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert s3.get_object_acl(Bucket=bucket, Key="k")["Owner"]["ID"] == ids[0]


def test_bucket_read_grant_lets_other_user_list_not_read_objects(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{ids[0]}"', GrantRead=f'id="{ids[1]}"')
    assert [o["Key"] for o in s3_other.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    assert [o["Key"] for o in s3_other.list_objects(Bucket=bucket)["Contents"]] == ["k"]
    _denied(s3_other.get_object, Bucket=bucket, Key="k")
    _denied(s3_other.put_object, Bucket=bucket, Key="new", Body=b"x")


def test_bucket_write_grant_lets_other_user_put_and_delete(s3, s3_other, bucket, ids):
    s3.put_object(Bucket=bucket, Key="owners", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{ids[0]}"', GrantWrite=f'id="{ids[1]}"')
    s3_other.put_object(Bucket=bucket, Key="new", Body=b"from user 2")
    s3_other.delete_object(Bucket=bucket, Key="owners")
    _denied(s3_other.list_objects_v2, Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["new"]


def test_authenticated_read_bucket_other_user_lists_anonymous_denied(server, s3, s3_other, fresh_bucket):
    s3.create_bucket(Bucket=fresh_bucket, ACL="authenticated-read")
    s3.put_object(Bucket=fresh_bucket, Key="k", Body=b"x")
    assert [o["Key"] for o in s3_other.list_objects_v2(Bucket=fresh_bucket)["Contents"]] == ["k"]
    assert_error(anonymous(server, "GET", fresh_bucket), "AccessDenied", 403)


def test_head_bucket_other_user_with_read_grant_200(s3, s3_other, bucket, ids):
    s3.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{ids[0]}"', GrantRead=f'id="{ids[1]}"')
    assert s3_other.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
