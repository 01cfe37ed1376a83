"""The bucket's public access block: PutPublicAccessBlock, GetPublicAccessBlock, DeletePublicAccessBlock.

Four flags, stored as JSON in ``buckets.public_access_block`` and enforced:
BlockPublicAcls refuses public ACLs on writes (service/ownership checks call
``refuse_public_acl``), IgnorePublicAcls makes grants to AllUsers and
AuthenticatedUsers count for nothing (service/acl.py via service/access.py),
BlockPublicPolicy refuses a public policy (service/policy.py),
RestrictPublicBuckets limits a public policy to the bucket owner (s3/authorize.py).
"""
from __future__ import annotations

import json

from .. import errors
from ..metadata.records import BucketRecord
from . import Caller, Services
from . import acl as acls
from . import buckets  # (a module reference: buckets imports this module too)

FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_NONE = dict.fromkeys(FLAGS, False)


def flags(bucket: BucketRecord) -> dict[str, bool]:
    """The four flags (all False when the bucket has no public access block)."""
    return json.loads(bucket.public_access_block) if bucket.public_access_block else _NONE


def put_public_access_block(svc: Services, caller: Caller | None, name: str, settings: dict[str, bool]) -> None:
    buckets.require_owned_bucket(svc, caller, name)
    svc.meta.set_bucket_config(name, "public_access_block",
                               json.dumps({flag: bool(settings.get(flag, False)) for flag in FLAGS}))


def get_public_access_block(svc: Services, caller: Caller | None, name: str) -> dict[str, bool]:
    bucket = buckets.require_owned_bucket(svc, caller, name)
    if bucket.public_access_block is None:
        raise errors.NoSuchPublicAccessBlockConfiguration(BucketName=name)
    return flags(bucket)


def delete_public_access_block(svc: Services, caller: Caller | None, name: str) -> None:
    buckets.require_owned_bucket(svc, caller, name)
    svc.meta.set_bucket_config(name, "public_access_block", None)


def refuse_public_acl(bucket: BucketRecord, acl: acls.Acl | None) -> None:
    """BlockPublicAcls: a write that would make the bucket or an object public is refused."""
    if acl is not None and acls.is_public(acl) and flags(bucket)["BlockPublicAcls"]:
        raise errors.AccessDenied("Access Denied: the bucket's public access block forbids public ACLs.")
