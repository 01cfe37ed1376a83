"""One request's authorization state, as the permission checks in service/ see it.

The wire (s3/authorize.py) evaluates the bucket policy once per request, before
the handler runs. An explicit Deny has then already answered AccessDenied; what
the policy allowed, and the bucket's public access block and object ownership
settings, are recorded here, and the owner and ACL checks of service/ honour
them (buckets.require_owner, acl.allows ...). It lives in a context variable:
every greenlet has its own, and code outside a request (jobs, service tests)
sees the default, which changes nothing.
"""
from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Callable, Mapping


@dataclass(frozen=True)
class BucketAccess:
    """What a bucket's settings change in the ACL checks of its objects."""
    owner: str
    ignore_public_acls: bool = False    # PublicAccessBlock IgnorePublicAcls
    acls_disabled: bool = False         # ObjectOwnership BucketOwnerEnforced


@dataclass(frozen=True)
class Access:
    # (bucket, key or None) the policy allowed this request's action on. An object
    # operation lists its object and its bucket (whose WRITE or READ the service
    # checks); a copy lists the destination bucket and, apart, the source object.
    allowed: frozenset = frozenset()
    # The settings of the request's bucket and a copy's source bucket, by name;
    # ``primary`` names the request's own.
    buckets: Mapping[str, BucketAccess] = field(default_factory=dict)
    primary: str | None = None
    # The policy's answer for another action of the same caller: (action, bucket,
    # key) -> "Allow", "Deny" or None (DeleteObjects asks per key).
    decide: Callable[[str, str, str | None], str | None] | None = None

    def of(self, bucket: str | None = None) -> BucketAccess | None:
        """The settings of ``bucket`` (the request's own when None or unknown here)."""
        found = self.buckets.get(bucket) if bucket is not None else None
        return found or self.buckets.get(self.primary)


NOTHING = Access()
_current: ContextVar[Access] = ContextVar("bleepstore_access", default=NOTHING)


def current() -> Access:
    return _current.get()


def use(access: Access) -> Token:
    return _current.set(access)


def reset(token: Token) -> None:
    _current.reset(token)


def policy_allows(bucket: str, key: str | None = None) -> bool:
    """Did the bucket policy explicitly allow this request on the bucket (key None)
    or on the object?"""
    return (bucket, key) in _current.get().allowed


def policy_decision(action: str, bucket: str, key: str | None = None) -> str | None:
    """The policy's answer for another action: "Allow" or None (a Deny raises
    AccessDenied, as for the request's own action)."""
    decide = _current.get().decide
    return decide(action, bucket, key) if decide is not None else None


def policy_decision_or_deny(action: str, bucket: str, key: str | None = None) -> str | None:
    """The same, with a Deny returned as "Deny" (for per-key answers)."""
    from .. import errors
    try:
        return policy_decision(action, bucket, key)
    except errors.AccessDenied:
        return "Deny"
