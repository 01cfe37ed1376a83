"""The policy package alone: parsing refusals, condition operators, evaluation order, variables."""
from __future__ import annotations

import json

import pytest

from bleepstore_app.policy import PolicyError, Request, evaluate, is_public, parse
from bleepstore_app.policy.conditions import glob_match, holds
from bleepstore_app.policy.document import Condition

KNOWN = {"alice", "bob"}


def _parse(*statements):
    return parse(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), "bkt", KNOWN.__contains__)


def _stmt(effect="Allow", principal="*", action="s3:GetObject", resource="arn:aws:s3:::bkt/*", **extra):
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource, **extra}


def _ask(policy, principal="alice", action="s3:getobject", resource="arn:aws:s3:::bkt/k", **context):
    return evaluate(policy, Request(principal, action, resource, {k: v for k, v in context.items()}))


def test_deny_wins_over_allow_and_silence_is_none():
    policy = _parse(_stmt(), _stmt("Deny", {"AWS": "bob"}))
    assert _ask(policy, "alice") == "Allow"
    assert _ask(policy, "bob") == "Deny"
    assert _ask(policy, None) == "Allow"  # "*" includes anonymous
    assert _ask(policy, "alice", "s3:putobject") is None


def test_not_action_not_resource_not_principal():
    policy = _parse({"Effect": "Deny", "NotPrincipal": {"AWS": "alice"}, "NotAction": "s3:Get*",
                     "NotResource": "arn:aws:s3:::bkt/public/*"})
    assert _ask(policy, "bob", "s3:putobject", "arn:aws:s3:::bkt/private/x") == "Deny"
    assert _ask(policy, "bob", "s3:getobject", "arn:aws:s3:::bkt/private/x") is None
    assert _ask(policy, "bob", "s3:putobject", "arn:aws:s3:::bkt/public/x") is None
    assert _ask(policy, "alice", "s3:putobject", "arn:aws:s3:::bkt/private/x") is None


def test_actions_are_case_insensitive_and_wildcards_match():
    policy = _parse(_stmt(action=["S3:GETOBJECT*", "s3:List*"], resource=["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"]))
    assert _ask(policy, action="s3:getobjectversion") == "Allow"
    assert _ask(policy, action="s3:listbucket", resource="arn:aws:s3:::bkt") == "Allow"
    assert _ask(policy, action="s3:putobject") is None


@pytest.mark.parametrize("statement, message", [
    (_stmt(action="s3:Nope"), "invalid action"),
    (_stmt(action="s3:Nope*"), "invalid action"),
    (_stmt(resource="arn:aws:s3:::other/*"), "invalid resource"),
    (_stmt(principal={"AWS": "mallory"}), "invalid principal"),
    (_stmt(principal={"AWS": "arn:aws:iam::mallory:root"}), "invalid principal"),
    (_stmt(Condition={"StringEqualsIfExistsNope": {"s3:prefix": "a"}}), "condition type"),
    (_stmt(Condition={"NullIfExists": {"s3:prefix": "true"}}), "condition type"),
    (_stmt(Condition={"NumericLessThan": {"s3:max-keys": "ten"}}), "invalid value"),
    (_stmt(Condition={"DateLessThan": {"aws:CurrentTime": "yesterday"}}), "invalid value"),
    (_stmt(Condition={"StringLike": {"s3:madeup": "a"}}), "condition key"),
    (_stmt(action="s3:ListBucket"), "does not apply"),
    ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}, "resource"),
    ({"Effect": "Allow", "Principal": "*", "Resource": "*"}, "action"),
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, "principal"),
])
def test_refusals_name_the_problem(statement, message):
    with pytest.raises(PolicyError) as exc:
        _parse(statement)
    assert message in str(exc.value).lower()


def test_principal_forms():
    for principal in ({"AWS": "alice"}, {"AWS": "arn:aws:iam::alice:root"}, {"AWS": ["arn:aws:iam::alice:user/x"]},
                      {"CanonicalUser": "alice"}):
        assert _ask(_parse(_stmt(principal=principal)), "alice") == "Allow"
        assert _ask(_parse(_stmt(principal=principal)), "bob") is None
        assert _ask(_parse(_stmt(principal=principal)), None) is None


@pytest.mark.parametrize("operator, policy_values, request_values, expected", [
    ("StringEquals", ("a", "b"), ("b",), True),
    ("StringEquals", ("a",), ("A",), False),
    ("StringNotEquals", ("a", "b"), ("c",), True),
    ("StringNotEquals", ("a", "b"), ("a",), False),
    ("StringNotEquals", ("a",), None, True),          # a missing key passes a negated operator
    ("StringEquals", ("a",), None, False),
    ("StringEqualsIgnoreCase", ("abc",), ("ABC",), True),
    ("StringLike", ("home/*/x?",), ("home/bob/x1",), True),
    ("StringNotLike", ("*.png",), ("a.png",), False),
    ("NumericLessThanEquals", ("10",), ("10",), True),
    ("NumericGreaterThan", ("10",), ("9",), False),
    ("DateLessThan", ("2030-01-01T00:00:00Z",), ("2026-12-01T00:00:00Z",), True),
    ("DateGreaterThan", ("2030-01-01T00:00:00Z",), ("1893456001",), True),  # epoch seconds
    ("DateGreaterThan", ("2030-01-01T00:00:00Z",), ("1893456000",), False),  # exactly then: not greater
    ("Bool", ("true",), ("true",), True),
    ("Bool", ("true",), ("false",), False),
    ("IpAddress", ("10.0.0.0/8", "192.168.1.7"), ("10.2.3.4",), True),
    ("IpAddress", ("10.0.0.0/8",), ("11.0.0.1",), False),
    ("IpAddress", ("2001:db8::/32",), ("10.0.0.1",), False),
    ("NotIpAddress", ("127.0.0.0/8",), ("127.0.0.1",), False),
    ("ArnLike", ("arn:aws:s3:::bkt/*",), ("arn:aws:s3:::bkt/k",), True),
])
def test_operators(operator, policy_values, request_values, expected):
    assert holds(Condition(operator, "k", policy_values), request_values) is expected


def test_if_exists_null_and_set_qualifiers():
    assert holds(Condition("StringEquals", "k", ("a",), if_exists=True), None) is True
    assert holds(Condition("StringEquals", "k", ("a",), if_exists=True), ("b",)) is False
    assert holds(Condition("Null", "k", ("true",)), None) is True
    assert holds(Condition("Null", "k", ("false",)), None) is False
    assert holds(Condition("StringEquals", "k", ("a", "b"), qualifier="ForAllValues"), ("a", "b")) is True
    assert holds(Condition("StringEquals", "k", ("a", "b"), qualifier="ForAllValues"), ("a", "c")) is False
    assert holds(Condition("StringEquals", "k", ("a",), qualifier="ForAnyValue"), ("c", "a")) is True


def test_policy_variables_in_resources_and_conditions():
    policy = _parse(_stmt(resource="arn:aws:s3:::bkt/home/${aws:username}/*"),
                    _stmt(action="s3:ListBucket", resource="arn:aws:s3:::bkt",
                          Condition={"StringLike": {"s3:prefix": "home/${aws:username}/*"}}))
    assert _ask(policy, resource="arn:aws:s3:::bkt/home/alice/x", **{"aws:username": ("alice",)}) == "Allow"
    assert _ask(policy, resource="arn:aws:s3:::bkt/home/bob/x", **{"aws:username": ("alice",)}) is None
    assert _ask(policy, resource="arn:aws:s3:::bkt/home/alice/x") is None  # anonymous: no username
    assert _ask(policy, action="s3:listbucket", resource="arn:aws:s3:::bkt",
                **{"aws:username": ("alice",), "s3:prefix": ("home/alice/",)}) == "Allow"
    literal = _parse(_stmt(resource="arn:aws:s3:::bkt/star${*}"))
    assert _ask(literal, resource="arn:aws:s3:::bkt/star*") == "Allow"
    assert _ask(literal, resource="arn:aws:s3:::bkt/starry") is None


def test_lazy_context_values_are_computed_once():
    calls = []

    def tags():
        calls.append(1)
        return ("public",)
    policy = _parse(_stmt(Condition={"StringEquals": {"s3:ExistingObjectTag/class": "public"}}),
                    _stmt(action="s3:GetObject", Condition={"StringLike": {"s3:ExistingObjectTag/class": "pub*"}}))
    assert _ask(policy, **{"s3:existingobjecttag/class": tags}) == "Allow"
    assert len(calls) == 1


def test_is_public():
    assert is_public(_parse(_stmt()))
    assert not is_public(_parse(_stmt(principal={"AWS": "alice"})))
    assert not is_public(_parse(_stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    assert is_public(_parse(_stmt(Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})))
    assert not is_public(_parse(_stmt("Deny")))


def test_glob():
    assert glob_match("a*c", "abbbc") and glob_match("a?c", "abc") and not glob_match("a?c", "abbc")
    assert glob_match("a.c", "a.c") and not glob_match("a.c", "abc")  # regex characters are literal
