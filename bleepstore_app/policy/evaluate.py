"""Evaluating a bucket policy for one request, as AWS documents it.

An explicit Deny in any matching statement decides; otherwise an Allow in any
matching statement allows; otherwise the policy says nothing (None) and the
ACLs decide. A statement matches when its principal, action, resource and every
condition match.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from .conditions import glob_match, holds
from .document import ANYONE, Policy, Statement

@dataclass
class Request:
    """What a policy is asked about. ``principal`` is the caller's owner id (None:
    anonymous); ``action`` is lower-cased (``s3:getobject``); ``context`` maps
    lower-cased condition keys to their values, or to a function computing them
    on first use (an object's tags, say)."""
    principal: str | None
    action: str
    resource: str
    context: Mapping[str, object] = field(default_factory=dict)
    _resolved: dict = field(default_factory=dict, repr=False)

    def values(self, key: str) -> tuple[str, ...] | None:
        if key in self._resolved:
            return self._resolved[key]
        value = self.context.get(key)
        if callable(value):
            value = value()
        self._resolved[key] = value
        return value


def evaluate(policy: Policy, request: Request) -> str | None:
    """"Deny", "Allow" or None (no statement matches)."""
    allowed = False
    for statement in policy.statements:
        if _matches(statement, request):
            if statement.effect == "Deny":
                return "Deny"
            allowed = True
    return "Allow" if allowed else None


def _matches(statement: Statement, request: Request) -> bool:
    if statement.principals is not None:
        if not _principal_in(statement.principals, request.principal):
            return False
    elif _principal_in(statement.not_principals, request.principal):
        return False
    if statement.actions is not None:
        if not any(glob_match(a, request.action) for a in statement.actions):
            return False
    elif any(glob_match(a, request.action) for a in statement.not_actions):
        return False
    if statement.resources is not None:
        if not any(_resource_match(r, request) for r in statement.resources):
            return False
    elif any(_resource_match(r, request) for r in statement.not_resources):
        return False
    return all(holds(_substituted(c, request), request.values(c.key)) for c in statement.conditions)


def _principal_in(principals: frozenset[str], principal: str | None) -> bool:
    return ANYONE in principals or (principal is not None and principal in principals)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _expand(text: str, request: Request) -> str:
    """Policy variables: ${aws:username} and friends, ${*} ${?} ${$} for the literal
    characters. A variable the request lacks matches nothing (AWS leaves the
    statement unable to match)."""
    if "${" not in text:
        return text

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in ("*", "?", "$"):
            return "\x00lit" + name + "\x00"
        values = request.values(name.lower())
        return values[0] if values else "\x00missing\x00"
    return _VARIABLE.sub(value, text)


def _resource_match(pattern: str, request: Request) -> bool:
    if pattern == "*":
        return True
    expanded = _expand(pattern, request)
    if "\x00missing\x00" in expanded:
        return False
    if "\x00lit" in expanded:  # ${*} and ${?}: literal characters, not wildcards
        parts = re.split(r"\x00lit(.)\x00", expanded)
        regex = "".join(re.escape(p) if i % 2 else "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                                                           for c in p)
                        for i, p in enumerate(parts))
        return re.fullmatch(regex, request.resource, re.DOTALL) is not None
    return glob_match(expanded, request.resource)


def _substituted(condition, request: Request):
    if not any("${" in v for v in condition.values):
        return condition
    from dataclasses import replace
    values = tuple(re.sub(r"\x00lit(.)\x00", r"\1", _expand(v, request)) for v in condition.values)
    return replace(condition, values=values)


# Condition keys that narrow who may use a public-looking grant: a statement for
# Principal "*" limited by one of these (to fixed values) is not public.
_NARROWING_KEYS = frozenset({"aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount",
                             "aws:sourcearn", "aws:sourceowner", "aws:principalaccount", "aws:principalarn",
                             "aws:principalorgid", "aws:userid", "aws:username"})


def is_public(policy: Policy) -> bool:
    """AWS's "public" test, in its simple form: an Allow for every principal that
    no narrowing condition (a source address range, an account...) limits."""
    for statement in policy.statements:
        if statement.effect != "Allow":
            continue
        everyone = (statement.principals is not None and ANYONE in statement.principals) or \
            statement.not_principals is not None
        if not everyone:
            continue
        narrowed = any(c.key in _NARROWING_KEYS and c.operator in ("StringEquals", "IpAddress", "ArnEquals")
                       and not c.if_exists and not any("*" in v or v in ("0.0.0.0/0", "::/0") for v in c.values)
                       for c in statement.conditions)
        if not narrowed:
            return True
    return False
