"""A bucket policy document: parsed, validated, and reduced to plain statements.

Everything a user may write that BleepStore would not enforce is refused with
the reason (PolicyError carries AWS's MalformedPolicy message), never stored and
ignored: an unknown action, condition operator or condition key, a principal
that names no user here, a resource outside the bucket.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .actions import RESOURCE_TYPE, BUCKET, OBJECT

MAX_SIZE = 20 * 1024  # bytes, as AWS limits a bucket policy
VERSIONS = ("2012-10-17", "2008-10-17")
ANYONE = "*"

_STATEMENT_FIELDS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                               "Resource", "NotResource", "Condition"})
_BASE_OPERATORS = frozenset({
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
    "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "IpAddress", "NotIpAddress",
    "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
})
# Condition keys BleepStore fills in from the request (s3/authorize.py), lower-cased.
CONDITION_KEYS = frozenset({
    "aws:sourceip", "aws:securetransport", "aws:currenttime", "aws:epochtime", "aws:referer", "aws:useragent",
    "aws:username", "aws:userid", "aws:principaltype", "s3:prefix", "s3:delimiter", "s3:max-keys",
    "s3:versionid", "s3:signatureversion", "s3:authtype", "s3:x-amz-acl", "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source", "s3:x-amz-metadata-directive", "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "s3:x-amz-storage-class", "s3:x-amz-grant-read",
    "s3:x-amz-grant-write", "s3:x-amz-grant-read-acp", "s3:x-amz-grant-write-acp",
    "s3:x-amz-grant-full-control", "s3:object-lock-mode", "s3:object-lock-legal-hold",
    "s3:requestobjecttagkeys",
})
CONDITION_KEY_PREFIXES = ("s3:existingobjecttag/", "s3:requestobjecttag/")


class PolicyError(ValueError):
    """The policy is refused; the message says why (MalformedPolicy's Message)."""


@dataclass(frozen=True)
class Condition:
    operator: str            # the base operator, e.g. "StringLike"
    key: str                 # lower-cased condition key
    values: tuple[str, ...]
    if_exists: bool = False
    qualifier: str = ""      # "", "ForAnyValue" or "ForAllValues"


@dataclass(frozen=True)
class Statement:
    effect: str                              # "Allow" or "Deny"
    principals: frozenset[str] | None        # owner ids or ANYONE; None when NotPrincipal is used
    not_principals: frozenset[str] | None
    actions: tuple[str, ...] | None          # lower-cased patterns
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None        # ARN patterns
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...]
    sid: str = ""


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


def parse(text: str, bucket: str, principal_known) -> Policy:
    """Validate a policy for ``bucket``; ``principal_known(owner_id)`` says whether
    an owner id names a user of this server."""
    if len(text.encode("utf-8")) > MAX_SIZE:
        raise PolicyError("Policy exceeds the maximum allowed document size.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise PolicyError("This policy contains invalid Json") from None
    if not isinstance(doc, dict):
        raise PolicyError("This policy contains invalid Json")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"Unknown field {sorted(unknown)[0]}")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise PolicyError("The policy must contain a valid version string")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Missing required field Statement")
    return Policy(tuple(_statement(s, bucket, principal_known) for s in raw))


def _statement(raw, bucket: str, principal_known) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Statement is not an object")
    unknown = set(raw) - _STATEMENT_FIELDS
    if unknown:
        raise PolicyError(f"Unknown field {sorted(unknown)[0]}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError("Invalid effect: " + str(effect) if effect is not None else "Missing required field Effect")
    principals = not_principals = None
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise PolicyError("Missing required field Principal" if "Principal" not in raw
                          else "Statement can not have both Principal and NotPrincipal")
    if "Principal" in raw:
        principals = _principals(raw["Principal"], principal_known)
    else:
        not_principals = _principals(raw["NotPrincipal"], principal_known)
    actions, not_actions = _pair(raw, "Action", "NotAction", _action)
    resources, not_resources = _pair(raw, "Resource", "NotResource", lambda r: _resource(r, bucket))
    if actions is not None and resources is not None:
        _check_actions_fit(actions, resources)
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise PolicyError("Statement IDs (SID) must be strings")
    return Statement(effect, principals, not_principals, actions, not_actions, resources, not_resources,
                     _conditions(raw.get("Condition", {})), sid)


def _strings(value, field: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"{field} must be a string or a list of strings")
    return items


def _pair(raw: dict, name: str, not_name: str, check) -> tuple[tuple | None, tuple | None]:
    if (name in raw) == (not_name in raw):
        if name in raw:
            raise PolicyError(f"Statement can not have both {name} and {not_name}")
        raise PolicyError(f"Missing required field {name}")
    field = name if name in raw else not_name
    values = tuple(check(v) for v in _strings(raw[field], field))
    return (values, None) if field == name else (None, values)


_USER_ARN = re.compile(r"arn:aws:iam::([^:]+):(root|user/.+)\Z")


def _principals(value, principal_known) -> frozenset[str]:
    if value == ANYONE:
        return frozenset({ANYONE})
    if not isinstance(value, dict) or not value:
        raise PolicyError("Invalid principal in policy")
    found = set()
    for kind, ids in value.items():
        if kind not in ("AWS", "CanonicalUser"):
            raise PolicyError("Invalid principal in policy")
        for item in _strings(ids, "Principal"):
            if item == ANYONE and kind == "AWS":
                found.add(ANYONE)
                continue
            match = _USER_ARN.match(item) if kind == "AWS" else None
            owner_id = match.group(1) if match else item
            if not principal_known(owner_id):
                raise PolicyError("Invalid principal in policy")
            found.add(owner_id)
    return frozenset(found)


def _action(action: str) -> str:
    lowered = action.lower()
    if lowered == "*":
        return lowered
    if not lowered.startswith("s3:"):
        raise PolicyError("Policy has invalid action")
    if "*" in lowered or "?" in lowered:
        if not any(_glob(lowered, known) for known in RESOURCE_TYPE):
            raise PolicyError("Policy has invalid action")
    elif lowered not in RESOURCE_TYPE:
        raise PolicyError("Policy has invalid action")
    return lowered


def _resource(arn: str, bucket: str) -> str:
    if arn == "*":
        return arn
    if not arn.startswith("arn:aws:s3:::"):
        raise PolicyError("Policy has invalid resource")
    name, _, _ = arn[len("arn:aws:s3:::"):].partition("/")
    if not _glob(name, bucket):
        raise PolicyError("Policy has invalid resource")
    return arn


def _check_actions_fit(actions: tuple[str, ...], resources: tuple[str, ...]) -> None:
    kinds = set()
    for resource in resources:
        if resource == "*":
            kinds |= {BUCKET, OBJECT}
        else:
            path = resource[len("arn:aws:s3:::"):]
            kinds.add(OBJECT if "/" in path else BUCKET)
            if "*" in path.partition("/")[0] or "?" in path.partition("/")[0]:
                kinds.add(OBJECT)  # "bucket*" also covers "bucket/key"
    fitting = {kind for action in actions for name, kind in RESOURCE_TYPE.items() if _glob(action, name)}
    if not fitting & kinds:
        raise PolicyError("Action does not apply to any resource(s) in statement")


def _conditions(raw) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError("Condition must be an object")
    found = []
    for operator, block in raw.items():
        qualifier, _, base = operator.rpartition(":")
        if qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise PolicyError(f"Invalid Condition type : {operator}")
        if_exists = base.endswith("IfExists") and base != "IfExists"
        if if_exists:
            base = base[:-len("IfExists")]
        if base not in _BASE_OPERATORS or (if_exists and base == "Null"):
            raise PolicyError(f"Invalid Condition type : {operator}")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"Invalid Condition block: {operator}")
        for key, values in block.items():
            lowered = key.lower()
            if lowered not in CONDITION_KEYS and not lowered.startswith(CONDITION_KEY_PREFIXES):
                raise PolicyError(f"Policy has an invalid condition key: {key}")
            items = values if isinstance(values, list) else [values]
            if not items or not all(isinstance(v, (str, int, float, bool)) for v in items):
                raise PolicyError(f"Invalid Condition value for {key}")
            texts = tuple(_text(v) for v in items)
            _check_values(base, key, texts)
            found.append(Condition(base, lowered, texts, if_exists, qualifier))
    return tuple(found)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_values(operator: str, key: str, values: tuple[str, ...]) -> None:
    from . import conditions  # the operators know their own value syntax
    for value in values:
        if not conditions.valid_value(operator, value):
            raise PolicyError(f"Invalid value for {operator} on {key}: {value}")


def _glob(pattern: str, text: str) -> bool:
    from .conditions import glob_match
    return glob_match(pattern, text)
