"""Condition operators: how one condition key's request values meet the policy's values.

Within one key, the policy's values are alternatives (any may match); a negated
operator (StringNotEquals, NotIpAddress, ...) matches when none does. A key the
request lacks fails a positive operator and passes a negated one, unless the
operator ends in IfExists (then a missing key passes); Null tests presence.
ForAnyValue / ForAllValues compare each of a multi-valued key's request values.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from functools import lru_cache

from .document import Condition

_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals",
            "NotIpAddress": "IpAddress", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z",
                      re.DOTALL)


def glob_match(pattern: str, text: str) -> bool:
    """IAM wildcards: ``*`` any run of characters, ``?`` one character."""
    if "*" not in pattern and "?" not in pattern:
        return pattern == text
    return _glob_regex(pattern).match(text) is not None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _date(value: str) -> datetime | None:
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


def _network(value: str):
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def valid_value(operator: str, value: str) -> bool:
    """Whether a policy value is well-formed for its operator (checked at PutBucketPolicy)."""
    base = _NEGATED.get(operator, operator)
    if base.startswith("Numeric"):
        return _number(value) is not None
    if base.startswith("Date"):
        return _date(value) is not None
    if base == "IpAddress":
        return _network(value) is not None
    if base in ("Bool", "Null"):
        return value.lower() in ("true", "false")
    return True


def _one(operator: str, request_value: str, policy_value: str) -> bool:
    """A positive operator on one request value and one policy value."""
    if operator == "StringEquals" or operator == "ArnEquals":
        return request_value == policy_value
    if operator == "StringEqualsIgnoreCase":
        return request_value.lower() == policy_value.lower()
    if operator == "StringLike" or operator == "ArnLike":
        return glob_match(policy_value, request_value)
    if operator == "Bool":
        return request_value.lower() == policy_value.lower()
    if operator == "IpAddress":
        try:
            address = ipaddress.ip_address(request_value)
        except ValueError:
            return False
        network = _network(policy_value)
        return network is not None and address.version == network.version and address in network
    if operator.startswith("Numeric"):
        left, right = _number(request_value), _number(policy_value)
        return left is not None and right is not None and _compare(operator[len("Numeric"):], left, right)
    if operator.startswith("Date"):
        left, right = _date(request_value), _date(policy_value)
        return left is not None and right is not None and _compare(operator[len("Date"):], left, right)
    raise AssertionError(operator)  # parse() admits no other operator


def _compare(relation: str, left, right) -> bool:
    return {"Equals": left == right, "LessThan": left < right, "LessThanEquals": left <= right,
            "GreaterThan": left > right, "GreaterThanEquals": left >= right}[relation]


def holds(condition: Condition, request_values: tuple[str, ...] | None) -> bool:
    """Does the request (its values for the condition's key; None: key absent) meet it?"""
    operator = condition.operator
    if operator == "Null":
        return (request_values is None) == (condition.values[0].lower() == "true")
    if request_values is None:
        if condition.if_exists:
            return True
        if condition.qualifier == "ForAllValues":
            return True  # vacuously: no request value fails
        return operator in _NEGATED
    positive = _NEGATED.get(operator, operator)

    def matches(value: str) -> bool:
        return any(_one(positive, value, policy_value) for policy_value in condition.values)

    if condition.qualifier == "ForAllValues":
        result = all(matches(v) for v in request_values)
    else:
        result = any(matches(v) for v in request_values)
    return not result if operator in _NEGATED else result
