"""Object ownership: PutBucketOwnershipControls, GetBucketOwnershipControls, DeleteBucketOwnershipControls."""
from __future__ import annotations

from ... import errors
from ...service import ownership_controls
from .. import xml
from ..responses import S3Result
from . import handles

_ROOT = "OwnershipControls"


@handles("PutBucketOwnershipControls")
def put_bucket_ownership_controls(svc, req) -> S3Result:
    root = xml.parse(req.small_body())
    rules = [node for node in root if xml.local(node.tag) == "Rule"]
    if xml.local(root.tag) != _ROOT or len(rules) != 1 or len(root) != 1:
        raise errors.MalformedXML()
    setting = xml.child_text(rules[0], "ObjectOwnership")
    if setting is None or setting.strip() not in ownership_controls.SETTINGS:
        raise errors.MalformedXML()
    ownership_controls.put_bucket_ownership_controls(svc, req.caller, req.bucket, setting.strip())
    return S3Result()


@handles("GetBucketOwnershipControls")
def get_bucket_ownership_controls(svc, req) -> S3Result:
    setting = ownership_controls.get_bucket_ownership_controls(svc, req.caller, req.bucket)
    return S3Result(xml=xml.document(_ROOT, f"<Rule>{xml.el('ObjectOwnership', setting)}</Rule>"))


@handles("DeleteBucketOwnershipControls")
def delete_bucket_ownership_controls(svc, req) -> S3Result:
    ownership_controls.delete_bucket_ownership_controls(svc, req.caller, req.bucket)
    return S3Result(status=204)
