"""The bucket's public access block: PutPublicAccessBlock, GetPublicAccessBlock, DeletePublicAccessBlock."""
from __future__ import annotations

from ... import errors
from ...service import public_access_block as pab
from .. import xml
from ..responses import S3Result
from . import handles

_ROOT = "PublicAccessBlockConfiguration"


@handles("PutPublicAccessBlock")
def put_public_access_block(svc, req) -> S3Result:
    root = xml.parse(req.small_body())
    if xml.local(root.tag) != _ROOT:
        raise errors.MalformedXML()
    settings = {}
    for node in root:
        name = xml.local(node.tag)
        value = (node.text or "").strip().lower()
        if name not in pab.FLAGS or name in settings or value not in ("true", "false"):
            raise errors.MalformedXML()
        settings[name] = value == "true"
    pab.put_public_access_block(svc, req.caller, req.bucket, settings)
    return S3Result()


@handles("GetPublicAccessBlock")
def get_public_access_block(svc, req) -> S3Result:
    flags = pab.get_public_access_block(svc, req.caller, req.bucket)
    return S3Result(xml=xml.document(_ROOT, "".join(xml.el(f, "true" if flags[f] else "false") for f in pab.FLAGS)))


@handles("DeletePublicAccessBlock")
def delete_public_access_block(svc, req) -> S3Result:
    pab.delete_public_access_block(svc, req.caller, req.bucket)
    return S3Result(status=204)
