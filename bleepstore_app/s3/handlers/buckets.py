"""Bucket operations: CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""
from __future__ import annotations

from ... import errors
from ...service import buckets
from .. import xml
from ..responses import S3Result
from . import handles
from .objects import header_acl


def _caller(req):
    if req.caller is None:
        raise errors.AccessDenied()
    return req.caller


@handles("CreateBucket")
def create_bucket(svc, req) -> S3Result:
    caller = _caller(req)
    constraint = None
    body = req.small_body()
    if body.strip():
        root = xml.parse(body)
        if xml.local(root.tag) != "CreateBucketConfiguration":
            raise errors.MalformedXML()
        constraint = xml.child_text(root, "LocationConstraint")
    request = header_acl(svc, req)
    acl = request.build(caller.owner_id, caller.display_name) if request else None
    object_lock = (req.headers.get("x-amz-bucket-object-lock-enabled") or "").strip().lower() == "true"
    bucket = buckets.create_bucket(svc, caller, req.bucket, constraint, acl, object_lock,
                                   req.headers.get("x-amz-object-ownership"))
    return S3Result(headers={"Location": f"/{bucket.name}"})


@handles("DeleteBucket")
def delete_bucket(svc, req) -> S3Result:
    buckets.delete_bucket(svc, _caller(req), req.bucket)
    return S3Result(status=204)


@handles("HeadBucket")
def head_bucket(svc, req) -> S3Result:
    bucket = buckets.head_bucket(svc, req.caller, req.bucket)
    return S3Result(headers={"x-amz-bucket-region": bucket.region})


@handles("GetBucketLocation")
def get_bucket_location(svc, req) -> S3Result:
    region = buckets.get_bucket_location(svc, req.caller, req.bucket)  # owner, or as the policy allows
    return S3Result(xml=xml.document("LocationConstraint", xml.text(region)))
