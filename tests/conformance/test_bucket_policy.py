"""Bucket policies against a running server, with boto3 and unsigned requests.

Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus; every document BleepStore
would not enforce refused as MalformedPolicy with nothing stored; evaluation in
AWS's order (explicit Deny, then Allow from the policy or the ACL) for the owner,
another user and anonymous callers, with the condition keys users write; per-key
decisions in DeleteObjects; a copy's source decided on its own bucket's policy.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from bleepstore_app.config import default_owner_id
from tests.servers import ACCESS_KEY, OTHER_ACCESS_KEY

from .helpers import client_error, error_of, key_path, signed_request

OWNER = default_owner_id(ACCESS_KEY)
OTHER = default_owner_id(OTHER_ACCESS_KEY)


def _error(call, **kwargs) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return client_error(exc)


def _policy(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _stmt(effect, principal, action, resource, condition=None) -> dict:
    statement = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _anon(server, method, bucket, key=None, query="", body=b"", headers=None) -> requests.Response:
    return signed_request(server, method, key_path(bucket, key), query=query, body=body, headers=headers,
                          sign=False)


def _arn(bucket, key=None):
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")


# -- the configuration -------------------------------------------------------------------

def test_put_get_delete_policy_and_status(s3, bucket):
    assert _error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    assert _error(s3.get_bucket_policy_status, Bucket=bucket) == ("NoSuchBucketPolicy", 404)
    private = _policy(_stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "*")))
    assert s3.put_bucket_policy(Bucket=bucket, Policy=private)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(private)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    public = _policy(_stmt("Allow", "*", "s3:GetObject", _arn(bucket, "*")))
    s3.put_bucket_policy(Bucket=bucket, Policy=public)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    narrowed = _policy(_stmt("Allow", "*", "s3:GetObject", _arn(bucket, "*"),
                             {"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}}))
    s3.put_bucket_policy(Bucket=bucket, Policy=narrowed)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    assert s3.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


@pytest.mark.parametrize("document, reason", [
    ("{not json", "invalid Json"),
    ("[]", "invalid Json"),
    (json.dumps({"Version": "2012-10-17"}), "Statement"),
    (json.dumps({"Version": "1999-01-01", "Statement": []}), "version"),
    ("STMT", None),
])
def test_malformed_documents_refused_and_nothing_stored(s3, bucket, document, reason):
    kept = _policy(_stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "*")))
    s3.put_bucket_policy(Bucket=bucket, Policy=kept)
    if document == "STMT":
        document = _policy({"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject",
                            "Resource": _arn(bucket, "*")})
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert client_error(exc) == ("MalformedPolicy", 400)
    if reason:
        assert reason.lower() in exc.value.response["Error"]["Message"].lower()
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(kept)


@pytest.mark.parametrize("statement, reason", [
    ({"Action": "s3:GetObjekt"}, "invalid action"),
    ({"Action": "ec2:RunInstances"}, "invalid action"),
    ({"Resource": "arn:aws:s3:::some-other-bucket/*"}, "invalid resource"),
    ({"Resource": "arn:aws:iam::123:user/x"}, "invalid resource"),
    ({"Principal": {"AWS": "arn:aws:iam::000000000000:root"}}, "invalid principal"),
    ({"Principal": {"Service": "cloudtrail.amazonaws.com"}}, "invalid principal"),
    ({"Condition": {"StringFuzzy": {"s3:prefix": "a"}}}, "condition type"),
    ({"Condition": {"StringEquals": {"aws:MadeUpKey": "a"}}}, "condition key"),
    ({"Condition": {"IpAddress": {"aws:SourceIp": "not-an-address"}}}, "invalid value"),
    ({"Action": "s3:ListBucket"}, "does not apply"),  # a bucket action on object resources only
    ({"Sneaky": "field"}, "unknown field"),
])
def test_statements_it_would_not_enforce_are_refused(s3, bucket, statement, reason):
    base = _stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "*"))
    base.update(statement)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(base))
    assert client_error(exc) == ("MalformedPolicy", 400)
    assert reason in exc.value.response["Error"]["Message"].lower()
    assert _error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


def test_non_utf8_and_oversized_policies_refused(server, s3, bucket):
    resp = signed_request(server, "PUT", key_path(bucket), query="policy", body=b'{"Version": "\xff\xfe"}')
    assert resp.status_code == 400 and error_of(resp)["Code"] == "MalformedPolicy"
    huge = _policy(*[_stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, f"k{i}/*")) for i in range(400)])
    assert len(huge) > 20 * 1024
    assert _error(s3.put_bucket_policy, Bucket=bucket, Policy=huge) == ("MalformedPolicy", 400)
    assert _error(s3.get_bucket_policy, Bucket=bucket) == ("NoSuchBucketPolicy", 404)


def test_only_the_owner_manages_the_policy(s3, s3_other, server, bucket):
    # Even a policy granting the policy actions to the other user does not: AWS keeps
    # them to the bucket owner's account.
    grant = _policy(_stmt("Allow", {"AWS": OTHER}, ["s3:GetBucketPolicy", "s3:PutBucketPolicy",
                                                  "s3:DeleteBucketPolicy"], _arn(bucket)))
    s3.put_bucket_policy(Bucket=bucket, Policy=grant)
    assert _error(s3_other.get_bucket_policy, Bucket=bucket) == ("AccessDenied", 403)
    assert _error(s3_other.put_bucket_policy, Bucket=bucket, Policy=_policy(
        _stmt("Allow", "*", "s3:*", _arn(bucket, "*")))) == ("AccessDenied", 403)
    assert _error(s3_other.delete_bucket_policy, Bucket=bucket) == ("AccessDenied", 403)
    assert _anon(server, "GET", bucket, query="policy").status_code == 403
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(grant)


def test_a_policy_denying_the_owner_everything_still_lets_the_owner_repair_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:*", [_arn(bucket), _arn(bucket, "*")])))
    assert _error(s3.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert _error(s3.delete_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert _error(s3.list_objects_v2, Bucket=bucket) == ("AccessDenied", 403)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Effect"] == "Deny"
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


# -- evaluation ---------------------------------------------------------------------------

def test_anonymous_read_of_a_prefix_granted_by_policy(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="public/a.txt", Body=b"for everyone")
    s3.put_object(Bucket=bucket, Key="private/b.txt", Body=b"secret")
    assert _anon(server, "GET", bucket, "public/a.txt").status_code == 403
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", "*", "s3:GetObject", _arn(bucket, "public/*")),
        _stmt("Allow", "*", "s3:ListBucket", _arn(bucket), {"StringLike": {"s3:prefix": "public/*"}})))
    got = _anon(server, "GET", bucket, "public/a.txt")
    assert got.status_code == 200 and got.content == b"for everyone"
    assert _anon(server, "HEAD", bucket, "public/a.txt").status_code == 200
    assert _anon(server, "GET", bucket, "private/b.txt").status_code == 403
    assert _anon(server, "PUT", bucket, "public/new", body=b"x").status_code == 403
    assert _anon(server, "DELETE", bucket, "public/a.txt").status_code == 403
    listed = _anon(server, "GET", bucket, query="list-type=2&prefix=public/")
    assert listed.status_code == 200 and b"public/a.txt" in listed.content and b"private" not in listed.content
    assert _anon(server, "GET", bucket, query="list-type=2").status_code == 403  # no s3:prefix: no match
    assert _anon(server, "GET", bucket, query="list-type=2&prefix=private/").status_code == 403
    # A missing key under the granted prefix: 403 without s3:ListBucket on it, as AWS answers
    assert _anon(server, "GET", bucket, "public/missing").status_code == 403
    assert s3.get_object(Bucket=bucket, Key="private/b.txt")["Body"].read() == b"secret"


def test_another_user_granted_writes_by_arn_owns_what_it_writes(s3, s3_other, bucket):
    assert _error(s3_other.put_object, Bucket=bucket, Key="in/x", Body=b"1") == ("AccessDenied", 403)
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"AWS": f"arn:aws:iam::{OTHER}:root"}, ["s3:PutObject", "s3:GetObject"], _arn(bucket, "in/*"))))
    s3_other.put_object(Bucket=bucket, Key="in/x", Body=b"from other")
    assert s3_other.get_object(Bucket=bucket, Key="in/x")["Body"].read() == b"from other"
    assert _error(s3_other.put_object, Bucket=bucket, Key="out/x", Body=b"1") == ("AccessDenied", 403)
    assert _error(s3_other.list_objects_v2, Bucket=bucket) == ("AccessDenied", 403)
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
    assert [(o["Key"], o["Owner"]["ID"]) for o in listed] == [("in/x", OTHER)]


def test_explicit_deny_beats_the_acl_and_the_owner(s3, s3_other, server, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", ACL="public-read")
    assert _anon(server, "GET", bucket, "k").status_code == 200
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:GetObject", _arn(bucket, "k")),
        _stmt("Deny", {"AWS": OWNER}, "s3:DeleteObject", _arn(bucket, "*"))))
    assert _anon(server, "GET", bucket, "k").status_code == 403
    assert _error(s3_other.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert _error(s3.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    assert _error(s3.delete_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
    s3.delete_bucket_policy(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"  # nothing was deleted


def test_source_ip_and_secure_transport_conditions(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:GetObject", _arn(bucket, "*"), {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    assert _error(s3.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)  # we come from 127.0.0.1
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:GetObject", _arn(bucket, "*"), {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}})))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    # Behind the trusted proxy, the address it saw (the last X-Forwarded-For entry)
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:GetObject", _arn(bucket, "*"), {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    if not getattr(server, "proxied", False):  # (the cluster's nginx writes X-Forwarded-For itself)
        forwarded = signed_request(server, "GET", key_path(bucket, "k"),
                                   headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
        assert forwarded.status_code == 403


@pytest.mark.direct_only  # the cluster's own nginx, behind this TLS proxy, says X-Forwarded-Proto: http
def test_secure_transport_condition_over_tls(s3, bucket, tls_endpoint):
    import boto3
    from botocore.config import Config
    from tests.servers import SECRET_KEY
    url, ca_bundle = tls_endpoint
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:*", [_arn(bucket), _arn(bucket, "*")], {"Bool": {"aws:SecureTransport": "false"}})))
    try:
        assert _error(s3.get_object, Bucket=bucket, Key="k") == ("AccessDenied", 403)
        tls = boto3.client("s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                           region_name="us-east-1", verify=ca_bundle, config=Config(s3={"addressing_style": "path"}))
        assert tls.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    finally:
        s3.delete_bucket_policy(Bucket=bucket)  # the owner may, even over plain HTTP
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_string_numeric_date_and_ifexists_conditions(server, s3, s3_other, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"AWS": OTHER}, "s3:ListBucket", _arn(bucket),
              {"NumericLessThanEquals": {"s3:max-keys": "10"}, "StringEqualsIfExists": {"s3:delimiter": "/"}}),
        _stmt("Allow", {"AWS": OTHER}, "s3:PutObject", _arn(bucket, "*"),
              {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"},
               "DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}),
        _stmt("Deny", {"AWS": OTHER}, "s3:PutObject", _arn(bucket, "*"),
              {"StringLike": {"aws:Referer": "*evil.example*"}})))
    assert s3_other.list_objects_v2(Bucket=bucket, MaxKeys=5)["KeyCount"] == 0
    assert s3_other.list_objects_v2(Bucket=bucket, MaxKeys=5, Delimiter="/")["KeyCount"] == 0
    assert _error(s3_other.list_objects_v2, Bucket=bucket, MaxKeys=50) == ("AccessDenied", 403)
    assert _error(s3_other.list_objects_v2, Bucket=bucket, MaxKeys=5, Delimiter="-") == ("AccessDenied", 403)
    assert _error(s3_other.put_object, Bucket=bucket, Key="a", Body=b"1") == ("AccessDenied", 403)
    s3_other.put_object(Bucket=bucket, Key="a", Body=b"1", ACL="bucket-owner-full-control")
    from tests.servers import OTHER_SECRET_KEY
    evil = signed_request(server, "PUT", key_path(bucket, "b"), body=b"2",
                          headers={"Referer": "https://evil.example/", "x-amz-acl": "bucket-owner-full-control"},
                          access_key=OTHER_ACCESS_KEY, secret_key=OTHER_SECRET_KEY)
    assert evil.status_code == 403
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["a"]


def test_username_variable_scopes_a_home_prefix(s3, s3_other, bucket):
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"AWS": OTHER}, ["s3:PutObject", "s3:GetObject"], _arn(bucket, "home/${aws:username}/*"))))
    s3_other.put_object(Bucket=bucket, Key="home/other-user/notes", Body=b"mine")
    assert _error(s3_other.put_object, Bucket=bucket, Key="home/main-user/notes", Body=b"x") == ("AccessDenied", 403)
    s3.delete_object(Bucket=bucket, Key="home/other-user/notes")


def test_existing_object_tag_condition(s3, s3_other, bucket):
    s3.put_object(Bucket=bucket, Key="open", Body=b"o", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"c", Tagging="classification=secret")
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "*"),
              {"StringEquals": {"s3:ExistingObjectTag/classification": "public"}})))
    assert s3_other.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
    assert _error(s3_other.get_object, Bucket=bucket, Key="closed") == ("AccessDenied", 403)


def test_delete_objects_decides_each_key(s3, s3_other, bucket):
    for key in ("keep/a", "drop/b", "drop/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Deny", "*", "s3:DeleteObject", _arn(bucket, "keep/*")),
        _stmt("Allow", {"AWS": OTHER}, "s3:DeleteObject", _arn(bucket, "drop/b"))))
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep/a"}, {"Key": "drop/c"}]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["drop/c"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("keep/a", "AccessDenied")]
    out = s3_other.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "drop/b"}, {"Key": "keep/a"}]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["drop/b"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("keep/a", "AccessDenied")]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["keep/a"]
    s3.delete_bucket_policy(Bucket=bucket)


def test_copy_source_is_decided_on_its_own_bucket(s3, s3_other, bucket):
    target = "pol-dst-" + uuid.uuid4().hex[:12]
    s3_other.create_bucket(Bucket=target)
    try:
        s3.put_object(Bucket=bucket, Key="src", Body=b"source bytes")
        assert _error(s3_other.copy_object, Bucket=target, Key="copy",
                      CopySource={"Bucket": bucket, "Key": "src"}) == ("AccessDenied", 403)
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
            _stmt("Allow", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "src"))))
        s3_other.copy_object(Bucket=target, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
        assert s3_other.get_object(Bucket=target, Key="copy")["Body"].read() == b"source bytes"
        # the destination's own policy cannot grant a read of the source
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
            _stmt("Deny", {"AWS": OTHER}, "s3:GetObject", _arn(bucket, "src"))))
        assert _error(s3_other.copy_object, Bucket=target, Key="copy2",
                      CopySource={"Bucket": bucket, "Key": "src"}) == ("AccessDenied", 403)
        assert "Contents" not in s3_other.list_objects_v2(Bucket=target, Prefix="copy2")
    finally:
        for o in s3_other.list_objects_v2(Bucket=target).get("Contents", []):
            s3_other.delete_object(Bucket=target, Key=o["Key"])
        s3_other.delete_bucket(Bucket=target)
        s3.delete_bucket_policy(Bucket=bucket)


def test_bucket_configuration_actions_granted_to_another_user(s3, s3_other, bucket):
    assert _error(s3_other.get_bucket_versioning, Bucket=bucket) == ("AccessDenied", 403)
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"CanonicalUser": OTHER}, ["s3:GetBucketVersioning", "s3:PutBucketTagging"], _arn(bucket))))
    assert s3_other.get_bucket_versioning(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3_other.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "b"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "b"}]
    assert _error(s3_other.get_bucket_tagging, Bucket=bucket) == ("AccessDenied", 403)
    s3.delete_bucket_tagging(Bucket=bucket)


def test_form_uploads_are_decided_for_the_forms_signer(s3, s3_other, bucket):
    """PostObject is s3:PutObject for whoever signed the form, on the form's key."""
    def post(client, key):
        form = client.generate_presigned_post(bucket, key, ExpiresIn=300)
        return requests.post(form["url"], data=form["fields"], files={"file": ("f.txt", b"form bytes")}, timeout=30)
    assert post(s3_other, "uploads/a.txt").status_code == 403
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        _stmt("Allow", {"AWS": OTHER}, "s3:PutObject", _arn(bucket, "uploads/*")),
        _stmt("Deny", "*", "s3:PutObject", _arn(bucket, "uploads/locked/*"))))
    assert post(s3_other, "uploads/a.txt").status_code == 204
    assert post(s3_other, "elsewhere.txt").status_code == 403
    assert post(s3, "uploads/locked/b.txt").status_code == 403  # the Deny holds for the owner too
    assert post(s3, "owner.txt").status_code == 204
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["owner.txt", "uploads/a.txt"]
    s3.delete_bucket_policy(Bucket=bucket)
