"""Service-level operations: ListBuckets."""
from __future__ import annotations

from ...service import buckets
from .. import xml
from ..responses import S3Result
from . import handles


@handles("ListBuckets")
def list_buckets(svc, req) -> S3Result:
    if req.caller is None:
        from ... import errors
        raise errors.AccessDenied()
    found = buckets.list_buckets(svc, req.caller)
    entries = "".join(
        f"<Bucket>{xml.el('Name', b.name)}{xml.el('CreationDate', xml.iso8601(b.created_at))}"
        f"{xml.el('BucketRegion', b.region)}</Bucket>" for b in found)
    return S3Result(xml=xml.document("ListAllMyBucketsResult", [
        xml.owner(req.caller.owner_id, req.caller.display_name), f"<Buckets>{entries}</Buckets>"]))
