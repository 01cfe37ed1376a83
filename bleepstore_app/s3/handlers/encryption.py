"""Bucket default encryption: PutBucketEncryption, GetBucketEncryption,
DeleteBucketEncryption (the per-object headers are read in s3/sse.py)."""
from __future__ import annotations

from ... import errors
from ...service import encryption
from .. import xml
from ..responses import S3Result
from . import handles
from .objects import require_integrity_header

_ROOT = "ServerSideEncryptionConfiguration"


@handles("GetBucketEncryption")
def get_bucket_encryption(svc, req) -> S3Result:
    config = encryption.get_bucket_encryption(svc, req.caller, req.bucket)
    inner = xml.el("SSEAlgorithm", config["algorithm"])
    if config.get("kms_key"):
        inner += xml.el("KMSMasterKeyID", encryption.kms_arn(svc, config["kms_key"]))
    rule = (f"<Rule><ApplyServerSideEncryptionByDefault>{inner}</ApplyServerSideEncryptionByDefault>"
            f"{xml.el('BucketKeyEnabled', 'true' if config.get('bucket_key') else 'false')}</Rule>")
    return S3Result(xml=xml.document(_ROOT, rule))


@handles("PutBucketEncryption")
def put_bucket_encryption(svc, req) -> S3Result:
    require_integrity_header(req, "Put Bucket Encryption requests")
    root = xml.parse(req.small_body())
    if xml.local(root.tag) != _ROOT:
        raise errors.MalformedXML()
    rules = [node for node in root if xml.local(node.tag) == "Rule"]
    if len(rules) != 1:
        raise errors.MalformedXML()
    by_default = next((c for c in rules[0] if xml.local(c.tag) == "ApplyServerSideEncryptionByDefault"), None)
    if by_default is None:
        raise errors.MalformedXML()
    algorithm = xml.child_text(by_default, "SSEAlgorithm")
    if algorithm is None:
        raise errors.MalformedXML()
    bucket_key = (xml.child_text(rules[0], "BucketKeyEnabled") or "false").strip().lower()
    if bucket_key not in ("true", "false"):
        raise errors.MalformedXML()
    encryption.put_bucket_encryption(svc, req.caller, req.bucket, algorithm.strip(),
                                     xml.child_text(by_default, "KMSMasterKeyID"), bucket_key == "true")
    return S3Result()


@handles("DeleteBucketEncryption")
def delete_bucket_encryption(svc, req) -> S3Result:
    encryption.delete_bucket_encryption(svc, req.caller, req.bucket)
    return S3Result(status=204)
