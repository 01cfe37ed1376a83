"""Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy, GetBucketPolicyStatus.

The document is validated by ``policy.parse`` (anything BleepStore would not
enforce is refused as MalformedPolicy) and stored as sent, in ``buckets.policy``.
Only the bucket owner manages it, whatever the policy says (AWS's rule: the
owning account's root is never locked out of its own bucket policy).
"""
from __future__ import annotations

from functools import lru_cache

from .. import errors, policy
from ..metadata.records import BucketRecord
from . import Caller, Services, public_access_block
from .buckets import require_bucket


def _owned(svc: Services, caller: Caller | None, name: str) -> BucketRecord:
    bucket = require_bucket(svc, name)
    if caller is None or caller.owner_id != bucket.owner_id:
        raise errors.AccessDenied()
    return bucket


def put_bucket_policy(svc: Services, caller: Caller | None, name: str, text: str) -> None:
    bucket = _owned(svc, caller, name)
    try:
        parsed = policy.parse(text, name, lambda owner_id: svc.meta.owner_display_name(owner_id) is not None)
    except policy.PolicyError as exc:
        raise errors.MalformedPolicy(str(exc)) from None
    if public_access_block.flags(bucket)["BlockPublicPolicy"] and policy.is_public(parsed):
        raise errors.AccessDenied("Access Denied: the bucket's public access block forbids a public policy.")
    if not svc.meta.set_bucket_config(name, "policy", text):
        raise errors.NoSuchBucket(BucketName=name)


def get_bucket_policy(svc: Services, caller: Caller | None, name: str) -> str:
    bucket = _owned(svc, caller, name)
    if bucket.policy is None:
        raise errors.NoSuchBucketPolicy(BucketName=name)
    return bucket.policy


def delete_bucket_policy(svc: Services, caller: Caller | None, name: str) -> None:
    _owned(svc, caller, name)
    svc.meta.set_bucket_config(name, "policy", None)


def get_bucket_policy_status(svc: Services, caller: Caller | None, name: str) -> bool:
    """Whether the bucket's policy makes it public (NoSuchBucketPolicy without one)."""
    bucket = _owned(svc, caller, name)
    if bucket.policy is None:
        raise errors.NoSuchBucketPolicy(BucketName=name)
    return policy.is_public(loaded(bucket))


def loaded(bucket: BucketRecord) -> policy.Policy:
    """The bucket's stored policy, parsed (once per text and worker)."""
    return _parse_stored(bucket.name, bucket.policy)


@lru_cache(maxsize=256)
def _parse_stored(name: str, text: str) -> policy.Policy:
    # Validated when stored; principals are not looked up again (a removed user's id
    # simply matches nobody).
    return policy.parse(text, name, lambda _owner_id: True)
