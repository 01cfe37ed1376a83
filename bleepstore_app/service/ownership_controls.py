"""Object ownership: PutBucketOwnershipControls, GetBucketOwnershipControls, DeleteBucketOwnershipControls.

One setting per bucket, stored as JSON in ``buckets.ownership_controls``; NULL is
ObjectWriter, the default for new buckets unless ``buckets.default_object_ownership``
says otherwise (CreateBucket then stores it), so classic ACL clients keep working:
- ObjectWriter: the writer owns what it uploads (classic S3);
- BucketOwnerPreferred: an upload with the bucket-owner-full-control ACL belongs
  to the bucket owner;
- BucketOwnerEnforced: ACLs are disabled. The bucket owner owns every object,
  ACLs grant nothing, and a request setting any ACL other than
  bucket-owner-full-control (or its equivalent) is refused with
  AccessControlListNotSupported.
"""
from __future__ import annotations

import json

from .. import errors
from ..metadata.records import BucketRecord
from . import Caller, Services
from . import acl as acls
from . import buckets  # (a module reference: buckets imports this module too)

SETTINGS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
ENFORCED, PREFERRED, WRITER = SETTINGS


def effective(bucket: BucketRecord) -> str:
    """The bucket's setting; NULL is ObjectWriter (a bucket created under another
    configured default has it stored)."""
    return json.loads(bucket.ownership_controls)["ObjectOwnership"] if bucket.ownership_controls else WRITER


def stored(setting: str) -> str:
    return json.dumps({"ObjectOwnership": setting})


def put_bucket_ownership_controls(svc: Services, caller: Caller | None, name: str, setting: str) -> None:
    bucket = buckets.require_owned_bucket(svc, caller, name)
    if setting not in SETTINGS:
        raise errors.MalformedXML()
    if setting == ENFORCED and bucket.acl and not acls.only_owner_full_control(
            acls.Acl.from_json(bucket.acl), bucket.owner_id):
        raise errors.InvalidBucketAclWithObjectOwnership()
    svc.meta.set_bucket_config(name, "ownership_controls", stored(setting))


def get_bucket_ownership_controls(svc: Services, caller: Caller | None, name: str) -> str:
    bucket = buckets.require_owned_bucket(svc, caller, name)
    if bucket.ownership_controls is None:
        raise errors.OwnershipControlsNotFoundError(BucketName=name)
    return effective(bucket)


def delete_bucket_ownership_controls(svc: Services, caller: Caller | None, name: str) -> None:
    buckets.require_owned_bucket(svc, caller, name)
    svc.meta.set_bucket_config(name, "ownership_controls", None)


def check_acl_request(bucket: BucketRecord, request: acls.AclRequest | None) -> None:
    """An ACL a request sets on the bucket or an object: refused when ACLs are
    disabled, unless it is bucket-owner-full-control or grants just that."""
    if request is None or effective(bucket) != ENFORCED:
        return
    if request.canned in (None, "bucket-owner-full-control") and request.grants is None:
        return
    if request.grants is not None and acls.only_owner_full_control(
            acls.Acl(bucket.owner_id, bucket.owner_display_name, request.grants), bucket.owner_id):
        return
    raise errors.AccessControlListNotSupported()


def object_owner(bucket: BucketRecord, writer: Caller, acl_request: acls.AclRequest | None) -> Caller | None:
    """Who owns an object ``writer`` uploads: the bucket owner under
    BucketOwnerEnforced, and under BucketOwnerPreferred when the upload names the
    bucket-owner-full-control ACL; None: the writer."""
    setting = effective(bucket)
    if setting == ENFORCED or (setting == PREFERRED and acl_request is not None
                               and acl_request.canned == "bucket-owner-full-control"):
        if writer.owner_id != bucket.owner_id:
            return Caller("", bucket.owner_id, bucket.owner_display_name)
    return None
