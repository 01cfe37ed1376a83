"""Bucket lifecycle: PutBucketLifecycleConfiguration (also the older
PutBucketLifecycle document), GetBucketLifecycleConfiguration, DeleteBucketLifecycle."""
from __future__ import annotations

from ... import errors
from ...service import buckets, lifecycle
from .. import xml
from ..responses import S3Result
from . import handles


def require_content_md5(req) -> None:
    """S3 requires Content-MD5 (or, from newer SDKs, a checksum) on this Put (and on PutBucketCors)."""
    if "Content-MD5" not in req.headers and not any(
            name.lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum-algorithm", "x-amz-trailer"))
            for name in req.headers.keys()):
        raise errors.InvalidRequest("Missing required header for this request: Content-MD5",
                                    ArgumentName="Content-MD5")


@handles("PutBucketLifecycleConfiguration")
def put_bucket_lifecycle_configuration(svc, req) -> S3Result:
    # Owner first: a refused client that sent Expect: 100-continue never sends its body.
    buckets.require_owner(buckets.require_bucket(svc, req.bucket), req.caller)
    require_content_md5(req)
    lifecycle.put_bucket_lifecycle_configuration(svc, req.caller, req.bucket, xml.parse(req.small_body()))
    return S3Result()


@handles("GetBucketLifecycleConfiguration")
def get_bucket_lifecycle_configuration(svc, req) -> S3Result:
    rules = lifecycle.get_bucket_lifecycle_configuration(svc, req.caller, req.bucket)
    return S3Result(xml=xml.document("LifecycleConfiguration", [lifecycle.render_rule(r) for r in rules]))


@handles("DeleteBucketLifecycle")
def delete_bucket_lifecycle(svc, req) -> S3Result:
    lifecycle.delete_bucket_lifecycle(svc, req.caller, req.bucket)
    return S3Result(status=204)
