"""Access control lists: what they hold, the canned ones, and who may do what.

An ACL is stored as JSON text on its bucket or object row:
``{"owner": {"id", "display_name"}, "grants": [{"grantee": {...}, "permission": P}]}``
where a grantee is ``{"type": "CanonicalUser", "id", "display_name"}`` or
``{"type": "Group", "uri"}``. A row without an ACL is private (owner FULL_CONTROL).
AWS S3 User Guide, "Access control list (ACL) overview" is the reference:
FULL_CONTROL implies every permission, and a resource's owner may always read
and write its ACL.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .. import errors
from . import Caller, access

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)

READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL = "READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)

CANNED = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
          "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")


@dataclass(frozen=True)
class Grantee:
    type: str                     # "CanonicalUser" or "Group"
    id: str | None = None
    display_name: str | None = None
    uri: str | None = None


@dataclass(frozen=True)
class Grant:
    grantee: Grantee
    permission: str


@dataclass
class Acl:
    owner_id: str
    owner_display_name: str
    grants: list[Grant] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({
            "owner": {"id": self.owner_id, "display_name": self.owner_display_name},
            "grants": [{"grantee": {k: v for k, v in vars(g.grantee).items() if v is not None},
                        "permission": g.permission} for g in self.grants],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Acl":
        data = json.loads(text)
        return cls(data["owner"]["id"], data["owner"]["display_name"],
                   [Grant(Grantee(**g["grantee"]), g["permission"]) for g in data["grants"]])


ANONYMOUS = Caller(access_key="", owner_id="65a011a29cdf8ec533ec3d1ccaae921c", display_name="anonymous")


@dataclass
class AclRequest:
    """An ACL as a request states it: a canned name, or explicit grants."""
    canned: str | None = None
    grants: list[Grant] | None = None

    def build(self, owner_id: str, display_name: str, bucket_owner: tuple[str, str] | None = None) -> Acl | None:
        """The ACL for a resource owned by ``owner_id``; None when the request named none."""
        if self.canned is not None:
            return canned(self.canned, owner_id, display_name, bucket_owner)
        if self.grants is not None:
            return Acl(owner_id, display_name, list(self.grants))
        return None


def private(owner_id: str, display_name: str) -> Acl:
    return Acl(owner_id, display_name, [Grant(Grantee("CanonicalUser", owner_id, display_name), FULL_CONTROL)])


def load(text: str | None, owner_id: str, display_name: str) -> Acl:
    """The ACL stored on a row (private when none was ever set)."""
    return Acl.from_json(text) if text else private(owner_id, display_name)


def canned(name: str, owner_id: str, display_name: str,
           bucket_owner: tuple[str, str] | None = None) -> Acl:
    """A canned ACL (x-amz-acl) for a resource owned by ``owner_id``."""
    acl = private(owner_id, display_name)
    add = acl.grants.append
    if name == "private":
        pass
    elif name == "public-read":
        add(Grant(Grantee("Group", uri=ALL_USERS), READ))
    elif name == "public-read-write":
        add(Grant(Grantee("Group", uri=ALL_USERS), READ))
        add(Grant(Grantee("Group", uri=ALL_USERS), WRITE))
    elif name in ("authenticated-read", "aws-exec-read"):
        add(Grant(Grantee("Group", uri=AUTHENTICATED_USERS), READ))
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        if bucket_owner and bucket_owner[0] != owner_id:
            permission = READ if name == "bucket-owner-read" else FULL_CONTROL
            add(Grant(Grantee("CanonicalUser", bucket_owner[0], bucket_owner[1]), permission))
    elif name == "log-delivery-write":
        add(Grant(Grantee("Group", uri=LOG_DELIVERY), WRITE))
        add(Grant(Grantee("Group", uri=LOG_DELIVERY), READ_ACP))
    else:
        raise errors.InvalidArgument(f"{name} is not a valid canned ACL", ArgumentName="x-amz-acl",
                                     ArgumentValue=name)
    return acl


def allows(acl_text: str | None, owner_id: str, caller: Caller | None, permission: str,
           resource: tuple[str, str | None] | None = None) -> bool:
    """May ``caller`` (None: anonymous) exercise ``permission`` on a resource owned
    by ``owner_id``? ``resource`` (bucket, key or None) names it for the request's
    policy decision (service/access.py): a policy Allow on it is enough."""
    state = access.current()
    if resource is not None and resource in state.allowed:
        return True
    settings = state.of(resource[0] if resource is not None else None)
    if settings is not None and settings.acls_disabled:
        # BucketOwnerEnforced: the bucket owner owns everything; ACLs grant nothing
        return caller is not None and caller.owner_id == settings.owner
    is_owner = caller is not None and caller.owner_id == owner_id
    if acl_text is None:
        return is_owner  # private
    if is_owner and permission in (READ_ACP, WRITE_ACP):
        return True
    for grant in Acl.from_json(acl_text).grants:
        if grant.permission != permission and grant.permission != FULL_CONTROL:
            continue
        grantee = grant.grantee
        if grantee.type == "CanonicalUser":
            if caller is not None and grantee.id == caller.owner_id:
                return True
        elif settings is not None and settings.ignore_public_acls:
            continue  # PublicAccessBlock IgnorePublicAcls: grants to groups count for nothing
        elif grantee.uri == ALL_USERS or (grantee.uri == AUTHENTICATED_USERS and caller is not None):
            return True
    return False


def require(acl_text: str | None, owner_id: str, caller: Caller | None, permission: str,
            resource: tuple[str, str | None] | None = None) -> None:
    if not allows(acl_text, owner_id, caller, permission, resource):
        raise errors.AccessDenied()


def is_public(acl: Acl) -> bool:
    """Grants anything to everyone or to every signed-in user (what BlockPublicAcls refuses)."""
    return any(g.grantee.type == "Group" and g.grantee.uri in (ALL_USERS, AUTHENTICATED_USERS) for g in acl.grants)


def only_owner_full_control(acl: Acl, bucket_owner: str) -> bool:
    """The one ACL a bucket with ACLs disabled (BucketOwnerEnforced) accepts: the
    bucket owner with FULL_CONTROL and nothing else."""
    return all(g.grantee.type == "CanonicalUser" and g.grantee.id == bucket_owner and g.permission == FULL_CONTROL
               for g in acl.grants)


def resolve_grants(svc, grants: list[Grant]) -> list[Grant]:
    """Check each grantee names a known user or group, and fill in display names."""
    resolved = []
    for grant in grants:
        grantee = grant.grantee
        if grant.permission not in PERMISSIONS:
            raise errors.MalformedACLError()
        if grantee.type == "CanonicalUser":
            name = svc.meta.owner_display_name(grantee.id or "")
            if name is None:
                raise errors.InvalidArgument("Invalid id", ArgumentName="CanonicalUser/ID", ArgumentValue=grantee.id)
            grantee = Grantee("CanonicalUser", grantee.id, name)
        elif grantee.type == "AmazonCustomerByEmail":
            raise errors.UnresolvableGrantByEmailAddress(EmailAddress=grantee.id)
        elif grantee.type != "Group" or grantee.uri not in GROUPS:
            raise errors.InvalidArgument("Invalid group uri", ArgumentName="Group/URI", ArgumentValue=grantee.uri)
        resolved.append(Grant(grantee, grant.permission))
    return resolved
