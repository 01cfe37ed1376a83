"""ACLs on the wire: x-amz-acl, x-amz-grant-* headers and AccessControlPolicy XML."""
from __future__ import annotations

import re
from typing import Mapping

from .. import errors
from ..service import acl as acls
from . import xml

XSI = "http://www.w3.org/2001/XMLSchema-instance"
GRANT_HEADERS = {
    "x-amz-grant-read": acls.READ,
    "x-amz-grant-write": acls.WRITE,
    "x-amz-grant-read-acp": acls.READ_ACP,
    "x-amz-grant-write-acp": acls.WRITE_ACP,
    "x-amz-grant-full-control": acls.FULL_CONTROL,
}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*', re.IGNORECASE)


def acl_from_headers(headers: Mapping[str, str]) -> acls.AclRequest | None:
    """The ACL a request states in headers (None: it states none)."""
    canned = headers.get("x-amz-acl")
    grants = []
    for header, permission in GRANT_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        for item in value.split(","):
            m = _GRANTEE.fullmatch(item)
            if m is None:
                raise errors.InvalidArgument(f"Invalid grant: {item.strip()}", ArgumentName=header, ArgumentValue=value)
            kind, who = m.group(1).lower(), m.group(2)
            grantee = {"id": acls.Grantee("CanonicalUser", id=who), "uri": acls.Grantee("Group", uri=who),
                       "emailaddress": acls.Grantee("AmazonCustomerByEmail", id=who)}[kind]
            grants.append(acls.Grant(grantee, permission))
    if canned is not None and grants:
        raise errors.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        if canned not in acls.CANNED:
            raise errors.InvalidArgument(None, ArgumentName="x-amz-acl", ArgumentValue=canned)
        return acls.AclRequest(canned=canned)
    return acls.AclRequest(grants=grants) if grants else None


def acl_from_request(req) -> acls.AclRequest:
    """Put*Acl: exactly one of the headers or an AccessControlPolicy body."""
    from_headers = acl_from_headers(req.headers)
    body = req.small_body()
    if body.strip():
        if from_headers is not None:
            raise errors.UnexpectedContent("This request does not support content when ACL headers are given.")
        return acls.AclRequest(grants=_parse_policy(body))
    if from_headers is None:
        raise errors.MissingSecurityHeader("Your request was missing a required header", MissingHeaderName="x-amz-acl")
    return from_headers


def _parse_policy(body: bytes) -> list[acls.Grant]:
    root = xml.parse(body, errors.MalformedACLError)
    if xml.local(root.tag) != "AccessControlPolicy":
        raise errors.MalformedACLError()
    grants = []
    for node in root:
        if xml.local(node.tag) != "AccessControlList":
            continue
        for grant in node:
            if xml.local(grant.tag) != "Grant":
                raise errors.MalformedACLError()
            grantee_node = next((c for c in grant if xml.local(c.tag) == "Grantee"), None)
            permission = xml.child_text(grant, "Permission")
            if grantee_node is None or permission not in acls.PERMISSIONS:
                raise errors.MalformedACLError()
            kind = grantee_node.get(f"{{{XSI}}}type")
            if kind == "CanonicalUser":
                grantee = acls.Grantee("CanonicalUser", id=(xml.child_text(grantee_node, "ID") or "").strip())
            elif kind == "Group":
                grantee = acls.Grantee("Group", uri=(xml.child_text(grantee_node, "URI") or "").strip())
            elif kind == "AmazonCustomerByEmail":
                grantee = acls.Grantee("AmazonCustomerByEmail", id=xml.child_text(grantee_node, "EmailAddress"))
            else:
                raise errors.MalformedACLError()
            grants.append(acls.Grant(grantee, permission))
    return grants


def policy_document(acl: acls.Acl) -> str:
    """AccessControlPolicy XML, as GetBucketAcl / GetObjectAcl answer."""
    grants = []
    for g in acl.grants:
        if g.grantee.type == "CanonicalUser":
            who = (f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser">{xml.el("ID", g.grantee.id)}'
                   f'{xml.el("DisplayName", g.grantee.display_name or "")}</Grantee>')
        else:
            who = f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group">{xml.el("URI", g.grantee.uri)}</Grantee>'
        grants.append(f"<Grant>{who}{xml.el('Permission', g.permission)}</Grant>")
    return xml.document("AccessControlPolicy", [
        xml.owner(acl.owner_id, acl.owner_display_name), f"<AccessControlList>{''.join(grants)}</AccessControlList>"])
