"""ACL operations: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl."""
from __future__ import annotations

from ...service import acl as acls
from ...service import buckets, objects
from ..acl import acl_from_request, policy_document
from ..responses import S3Result
from . import handles


def _resolved(svc, req) -> acls.AclRequest:
    request = acl_from_request(req)
    if request.grants is not None:
        request = acls.AclRequest(grants=acls.resolve_grants(svc, request.grants))
    return request


@handles("GetBucketAcl")
def get_bucket_acl(svc, req) -> S3Result:
    return S3Result(xml=policy_document(buckets.get_bucket_acl(svc, req.caller, req.bucket)))


@handles("PutBucketAcl")
def put_bucket_acl(svc, req) -> S3Result:
    bucket = buckets.require_bucket(svc, req.bucket)
    acls.require(bucket.acl, bucket.owner_id, req.caller, acls.WRITE_ACP, (bucket.name, None))  # before the body is read (Expect)
    request = _resolved(svc, req)
    acl = request.build(bucket.owner_id, bucket.owner_display_name)
    buckets.put_bucket_acl(svc, req.caller, req.bucket, acl, request)
    return S3Result()


@handles("GetObjectAcl")
def get_object_acl(svc, req) -> S3Result:
    version = req.query.get("versionId")
    out = {"x-amz-version-id": version} if version is not None else {}
    return S3Result(headers=out, xml=policy_document(
        objects.get_object_acl(svc, req.caller, req.bucket, req.key, version)))


@handles("PutObjectAcl")
def put_object_acl(svc, req) -> S3Result:
    version = req.query.get("versionId")
    objects.writable_acl_object(svc, req.caller, req.bucket, req.key, version)  # before the body is read (Expect)
    objects.put_object_acl(svc, req.caller, req.bucket, req.key, _resolved(svc, req), version)
    return S3Result(headers={"x-amz-version-id": version} if version is not None else {})
