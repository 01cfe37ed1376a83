"""Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus.

The document is JSON, not XML: stored and returned as sent.
"""
from __future__ import annotations

from ... import errors
from ...service import policy
from .. import xml
from ..responses import S3Result
from . import handles


@handles("PutBucketPolicy")
def put_bucket_policy(svc, req) -> S3Result:
    body = req.small_body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.MalformedPolicy("This policy contains invalid Json") from None
    # x-amz-confirm-remove-self-bucket-access needs no handling: the bucket owner can
    # never be locked out of the policy operations here (s3/authorize.py).
    policy.put_bucket_policy(svc, req.caller, req.bucket, text)
    return S3Result(status=204)


@handles("GetBucketPolicy")
def get_bucket_policy(svc, req) -> S3Result:
    body = policy.get_bucket_policy(svc, req.caller, req.bucket).encode("utf-8")
    return S3Result(headers={"Content-Type": "application/json"}, stream=[body], length=len(body))


@handles("DeleteBucketPolicy")
def delete_bucket_policy(svc, req) -> S3Result:
    policy.delete_bucket_policy(svc, req.caller, req.bucket)
    return S3Result(status=204)


@handles("GetBucketPolicyStatus")
def get_bucket_policy_status(svc, req) -> S3Result:
    public = policy.get_bucket_policy_status(svc, req.caller, req.bucket)
    return S3Result(xml=xml.document("PolicyStatus", xml.el("IsPublic", "true" if public else "false")))
