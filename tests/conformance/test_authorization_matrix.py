"""The authorization matrix: caller x bucket policy x ACL, for each operation, both sides asserted.

Callers: the bucket owner, another user, anonymous. Policies: none, one that
allows the caller the operation's action, one that denies it. ACLs: private, or
public-read on the bucket and the object. The expected answer follows AWS's
order: an explicit Deny refuses (the owner too), an Allow grants, otherwise the
owner may and others only what a public-read ACL grants (READ: list the bucket,
read the object; never its ACL, never a write, never an owner-only setting).
Every refused write is checked to have stored nothing.
"""
from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass

import pytest

from bleepstore_app.config import default_owner_id
from tests.servers import ACCESS_KEY, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, SECRET_KEY

from .helpers import key_path, signed_request

CALLERS = {"owner": (ACCESS_KEY, SECRET_KEY), "other": (OTHER_ACCESS_KEY, OTHER_SECRET_KEY), "anonymous": None}
OBJECT = "m/object"


@dataclass(frozen=True)
class Op:
    name: str
    action: str
    method: str
    key: str | None          # None: the bucket; "new": a fresh key per request
    query: str = ""
    public_read: bool = False  # does a public-read ACL grant it?
    writes: bool = False
    body: bytes = b""
    headers: tuple = ()
    owner_only: bool = False   # the policy operations: the owner's alone, whatever the policy says


TAGS = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"


OPS = [
    Op("GetObject", "s3:GetObject", "GET", OBJECT, public_read=True),
    Op("HeadObject", "s3:GetObject", "HEAD", OBJECT, public_read=True),
    Op("PutObject", "s3:PutObject", "PUT", "new", writes=True),
    Op("DeleteObject", "s3:DeleteObject", "DELETE", OBJECT, writes=True),
    Op("ListObjectsV2", "s3:ListBucket", "GET", None, "list-type=2", public_read=True),
    Op("HeadBucket", "s3:ListBucket", "HEAD", None, public_read=True),
    Op("GetObjectAcl", "s3:GetObjectAcl", "GET", OBJECT, "acl"),
    Op("GetBucketAcl", "s3:GetBucketAcl", "GET", None, "acl"),
    Op("GetObjectTagging", "s3:GetObjectTagging", "GET", OBJECT, "tagging"),
    Op("GetBucketVersioning", "s3:GetBucketVersioning", "GET", None, "versioning"),
    Op("GetBucketLocation", "s3:GetBucketLocation", "GET", None, "location"),
    Op("ListMultipartUploads", "s3:ListBucketMultipartUploads", "GET", None, "uploads", public_read=True),
    Op("CreateMultipartUpload", "s3:PutObject", "POST", "new", "uploads", writes=True),
    Op("PutObjectAcl", "s3:PutObjectAcl", "PUT", OBJECT, "acl", headers=(("x-amz-acl", "private"),)),
    Op("PutObjectTagging", "s3:PutObjectTagging", "PUT", OBJECT, "tagging", body=TAGS),
    Op("DeleteObjectTagging", "s3:DeleteObjectTagging", "DELETE", OBJECT, "tagging"),
    Op("ListObjectVersions", "s3:ListBucketVersions", "GET", None, "versions", public_read=True),
    Op("PutBucketAcl", "s3:PutBucketAcl", "PUT", None, "acl", headers=(("x-amz-acl", "private"),)),
    Op("GetBucketTagging", "s3:GetBucketTagging", "GET", None, "tagging"),
    Op("PutBucketTagging", "s3:PutBucketTagging", "PUT", None, "tagging", body=TAGS),
    Op("DeleteBucketTagging", "s3:PutBucketTagging", "DELETE", None, "tagging"),
    Op("GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", "GET", None, "lifecycle"),
    Op("GetBucketEncryption", "s3:GetEncryptionConfiguration", "GET", None, "encryption"),
    Op("GetBucketCors", "s3:GetBucketCORS", "GET", None, "cors"),
    Op("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", "GET", None, "publicAccessBlock"),
    Op("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", "GET", None, "ownershipControls"),
    Op("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", "GET", None, "policyStatus", owner_only=True),
    Op("GetBucketPolicy", "s3:GetBucketPolicy", "GET", None, "policy", owner_only=True),
]


def _principal(caller: str):
    if caller == "anonymous":
        return "*"
    return {"AWS": default_owner_id(ACCESS_KEY if caller == "owner" else OTHER_ACCESS_KEY)}


def _expected(op: Op, caller: str, policy: str, acl: str) -> bool:
    if op.owner_only:  # GetBucketPolicy: the owner even against a Deny; GetBucketPolicyStatus: not then
        return caller == "owner" and (policy != "deny" or op.name == "GetBucketPolicy")
    if policy == "deny":
        return False
    if policy == "allow" or caller == "owner":
        return True
    return acl == "public-read" and op.public_read


def _send(server, op: Op, caller: str, bucket: str, key: str | None):
    credentials = CALLERS[caller]
    body = op.body or (b"matrix body" if op.method == "PUT" and not op.query else b"")
    headers = dict(op.headers)
    if op.body:
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(op.body).digest()).decode()
    kwargs = {"access_key": credentials[0], "secret_key": credentials[1]} if credentials else {}
    return signed_request(server, op.method, key_path(bucket, key), query=op.query, body=body, headers=headers,
                          sign=credentials is not None, **kwargs)


def _keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize("acl", ["private", "public-read"])
@pytest.mark.parametrize("policy", ["none", "allow", "deny"])
@pytest.mark.parametrize("caller", list(CALLERS))
def test_matrix(server, s3, caller, policy, acl):
    bucket = "matrix-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=bucket, ACL=acl)
    try:
        failures = []
        for op in OPS:
            s3.delete_bucket_policy(Bucket=bucket)
            s3.put_bucket_acl(Bucket=bucket, ACL=acl)
            s3.put_object(Bucket=bucket, Key=OBJECT, Body=b"object body", ACL=acl)
            if policy != "none":
                resource = f"arn:aws:s3:::{bucket}" + ("/*" if op.key is not None else "")
                statement = {"Effect": policy.capitalize(), "Principal": _principal(caller), "Action": op.action,
                             "Resource": resource}
                if caller == "anonymous":  # "*" is everyone: narrow it to the unsigned
                    statement["Condition"] = {"StringEquals": {"aws:PrincipalType": "Anonymous"}}
                s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                                       "Statement": [statement]}))
            before = _keys_as_owner(s3, bucket)
            key = f"m/new-{uuid.uuid4().hex[:8]}" if op.key == "new" else op.key
            resp = _send(server, op, caller, bucket, key)
            allowed = _expected(op, caller, policy, acl)
            # allowed: any answer but 403 (a Get of a configuration never set is its 404)
            ok = resp.status_code < 300 or resp.status_code == 404
            if ok != allowed:
                failures.append(f"{op.name}: {resp.status_code} (expected {'allowed' if allowed else 'refused'})")
            if not allowed:
                if resp.status_code != 403:
                    failures.append(f"{op.name}: refused with {resp.status_code}, not 403")
                if op.writes and _keys_as_owner(s3, bucket) != before:
                    failures.append(f"{op.name}: a refused write changed the bucket")
                if op.name == "CreateMultipartUpload" and _uploads(s3, bucket):
                    failures.append(f"{op.name}: a refused upload was created")
            _cleanup_uploads(s3, bucket)
        assert not failures, failures
    finally:
        s3.delete_bucket_policy(Bucket=bucket)
        for key in _keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
        _cleanup_uploads(s3, bucket)
        s3.delete_bucket(Bucket=bucket)


def _keys_as_owner(s3, bucket) -> list[str]:
    # a deny-the-owner policy may forbid listing: look with the policy out of the way
    policy = None
    try:
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except s3.exceptions.ClientError:
        pass
    if policy:
        s3.delete_bucket_policy(Bucket=bucket)
    try:
        return _keys(s3, bucket)
    finally:
        if policy:
            s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def _uploads(s3, bucket) -> list:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _cleanup_uploads(s3, bucket) -> None:
    policy = None
    try:
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        s3.delete_bucket_policy(Bucket=bucket)
    except s3.exceptions.ClientError:
        pass
    for upload in _uploads(s3, bucket):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    if policy:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
