"""Bucket operations: CreateBucket, DeleteBucket, HeadBucket, ListBuckets, GetBucketLocation."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar

from .. import errors
from ..metadata.records import BucketRecord, now_us
from ..metadata.store import ObjectVersion
from . import Caller, Services, access, ownership_controls, public_access_block
from . import acl as acls
from .names import check_bucket_name

log = logging.getLogger(__name__)


class _RequestReads:
    """What one request has read once: bucket rows by name, and the one object
    version it said it would read (``object_read``: bucket, key, with_bytes),
    read with its bucket's row."""
    __slots__ = ("buckets", "object_read", "object_version")

    def __init__(self, object_read: tuple[str, str, bool] | None) -> None:
        self.buckets: dict[str, BucketRecord | None] = {}
        self.object_read = object_read
        self.object_version: ObjectVersion | None = None


_request_reads: ContextVar[_RequestReads | None] = ContextVar("bleepstore_request_reads", default=None)
NOT_READ_WITH_BUCKET = object()  # what read_with_bucket answers for an object this request did not announce


@contextmanager
def rows_read_once(object_read: tuple[str, str, bool] | None = None):
    """Within this block each bucket's row is read from the metadata once, however
    many checks ask for it (the policy decision, the handler, the x-amz-expiration
    header): a HeadObject read it three times. For requests that never change a
    bucket row (dispatch.py decides which), so the first read stays the truth for the
    whole request, as one read would have been.

    ``object_read`` (bucket, key, with_bytes) announces the current version the
    request will read (GetObject, HeadObject): the bucket's first read fetches it
    too, in the same statement, and ``read_with_bucket`` hands it over."""
    token = _request_reads.set(_RequestReads(object_read))
    try:
        yield
    finally:
        _request_reads.reset(token)


def lookup(svc: Services, name: str) -> BucketRecord | None:
    """The bucket's row (None: no such bucket), read once per request where allowed."""
    reads = _request_reads.get()
    if reads is None:
        return svc.meta.get_bucket(name)
    if name not in reads.buckets:
        announced = reads.object_read
        if announced is not None and announced[0] == name:
            reads.buckets[name], reads.object_version = svc.meta.read_bucket_and_object(*announced)
        else:
            reads.buckets[name] = svc.meta.get_bucket(name)
    return reads.buckets[name]


def read_with_bucket(svc: Services, bucket: str, key: str, with_bytes: bool):
    """The current version of ``key`` as read with its bucket's row, when this
    request announced that read (``rows_read_once``); NOT_READ_WITH_BUCKET when it
    did not, and the caller reads it itself. Handed over once: a later read in the
    same request reads afresh."""
    reads = _request_reads.get()
    if reads is None or reads.object_read != (bucket, key, with_bytes):
        return NOT_READ_WITH_BUCKET
    if bucket not in reads.buckets:
        lookup(svc, bucket)
    version, reads.object_read, reads.object_version = reads.object_version, None, None
    return version


def require_bucket(svc: Services, name: str) -> BucketRecord:
    bucket = lookup(svc, name)
    if bucket is None:
        raise errors.NoSuchBucket(BucketName=name)
    return bucket


def require_owned_bucket(svc: Services, caller: Caller | None, name: str) -> BucketRecord:
    """The bucket, for an operation only its owner (or whom its policy allows) may run."""
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    return bucket


def require_owner(bucket: BucketRecord, caller: Caller | None) -> None:
    """Operations only a bucket's owner may perform (DeleteBucket, GetBucketLocation),
    unless the bucket policy allows the caller."""
    if access.policy_allows(bucket.name):
        return
    if caller is None or caller.owner_id != bucket.owner_id:
        raise errors.AccessDenied()


def require_bucket_permission(bucket: BucketRecord, caller: Caller | None, permission: str) -> None:
    """The bucket's ACL must grant ``permission`` (READ: list, WRITE: put/delete keys)."""
    acls.require(bucket.acl, bucket.owner_id, caller, permission, (bucket.name, None))


def create_bucket(svc: Services, caller: Caller, name: str, location_constraint: str | None,
                  acl: acls.Acl | None = None, object_lock: bool = False,
                  object_ownership: str | None = None) -> BucketRecord:
    """CreateBucket. ``location_constraint`` comes from CreateBucketConfiguration;
    ``acl`` from x-amz-acl / x-amz-grant-* (private when None); ``object_lock``
    (x-amz-bucket-object-lock-enabled) enables Object Lock, and with it versioning;
    ``object_ownership`` (x-amz-object-ownership) defaults to the configured one."""
    check_bucket_name(name)
    ownership = object_ownership or svc.settings.default_object_ownership
    if ownership not in ownership_controls.SETTINGS:
        raise errors.InvalidArgument("Invalid x-amz-object-ownership header", ArgumentName="x-amz-object-ownership",
                                     ArgumentValue=ownership)
    if ownership == ownership_controls.ENFORCED and acl is not None and \
            not acls.only_owner_full_control(acl, caller.owner_id):
        raise errors.InvalidBucketAclWithObjectOwnership()
    region = svc.settings.region
    if location_constraint:
        if location_constraint == "us-east-1":
            raise errors.InvalidLocationConstraint(LocationConstraint=location_constraint)
        if location_constraint != region:
            raise errors.IllegalLocationConstraintException(
                f"The {location_constraint} location constraint is incompatible for the region "
                f"specific endpoint this request was sent to.")
    record = BucketRecord(name=name, owner_id=caller.owner_id, owner_display_name=caller.display_name,
                          region=region, created_at=now_us(), acl=acl.to_json() if acl else None,
                          versioning="Enabled" if object_lock else None,
                          object_lock='{"enabled": true}' if object_lock else None,
                          ownership_controls=None if ownership == ownership_controls.WRITER and not object_ownership
                          else ownership_controls.stored(ownership))
    existing = svc.meta.create_bucket(record)
    if existing is None:
        return record
    if existing.owner_id != caller.owner_id:
        raise errors.BucketAlreadyExists(BucketName=name)
    if region == "us-east-1":
        return existing  # AWS's legacy us-east-1 behaviour: 200 OK again
    raise errors.BucketAlreadyOwnedByYou(BucketName=name)


def delete_bucket(svc: Services, caller: Caller, name: str) -> None:
    """DeleteBucket: only when empty; unfinished multipart uploads go with it."""
    require_owner(require_bucket(svc, name), caller)
    if not svc.meta.delete_bucket(name):  # its uploads' parts go to the sweeper
        raise errors.BucketNotEmpty(BucketName=name)


def head_bucket(svc: Services, caller: Caller | None, name: str) -> BucketRecord:
    """HeadBucket."""
    bucket = require_bucket(svc, name)
    require_bucket_permission(bucket, caller, acls.READ)
    return bucket


def get_bucket_location(svc: Services, caller: Caller, name: str) -> str:
    """GetBucketLocation: empty for us-east-1, as AWS answers."""
    bucket = require_bucket(svc, name)
    require_owner(bucket, caller)
    return "" if bucket.region == "us-east-1" else bucket.region


def get_bucket_acl(svc: Services, caller: Caller | None, name: str) -> acls.Acl:
    """GetBucketAcl."""
    bucket = require_bucket(svc, name)
    acls.require(bucket.acl, bucket.owner_id, caller, acls.READ_ACP, (name, None))
    if ownership_controls.effective(bucket) == ownership_controls.ENFORCED:
        return acls.private(bucket.owner_id, bucket.owner_display_name)  # ACLs disabled
    return acls.load(bucket.acl, bucket.owner_id, bucket.owner_display_name)


def put_bucket_acl(svc: Services, caller: Caller | None, name: str, acl: acls.Acl,
                   request: acls.AclRequest | None = None) -> None:
    """PutBucketAcl (``request``: the ACL as the request stated it, for the
    ownership check)."""
    bucket = require_bucket(svc, name)
    acls.require(bucket.acl, bucket.owner_id, caller, acls.WRITE_ACP, (name, None))
    ownership_controls.check_acl_request(bucket, request or acls.AclRequest(grants=acl.grants))
    public_access_block.refuse_public_acl(bucket, acl)
    svc.meta.set_bucket_acl(name, acl.to_json())


def list_buckets(svc: Services, caller: Caller, *, prefix: str = "", region: str | None = None,
                 after: str = "", limit: int | None = None) -> tuple[list[BucketRecord], bool]:
    """ListBuckets: the caller's own buckets by name, those after ``after`` (a
    continuation), starting with ``prefix``, in ``region`` (any when None), at most
    ``limit``; (buckets, whether more follow)."""
    if "\x00" in prefix + after:  # no bucket name has one (nor can PostgreSQL compare it)
        return [], False
    found = svc.meta.list_buckets(caller.owner_id, after=after, prefix=prefix, region=region,
                                  limit=None if limit is None else limit + 1)
    if limit is not None and len(found) > limit:
        return found[:limit], True
    return found, False
