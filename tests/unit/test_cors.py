"""service/cors.py without a server: validation, the stored JSON, and which rule
answers (origin globs, methods, requested headers)."""
from __future__ import annotations

import pytest

from bleepstore_app import errors
from bleepstore_app.service.cors import CorsRule, dumps, match, rules_of, validate


def rule(origins=("*",), methods=("GET",), **kw) -> CorsRule:
    return CorsRule(tuple(origins), tuple(methods), **kw)


@pytest.mark.parametrize("pattern, value, expected", [
    ("https://a.example", "https://a.example", True),
    ("https://a.example", "https://A.example", False),        # origins: case-sensitive
    ("https://a.example", "https://a.example/", False),
    ("http://*.example.com", "http://x.y.example.com", True),
    ("http://*.example.com", "http://.example.com", True),    # * matches nothing too
    ("http://*.example.com", "http://example.com", False),
    ("http://*.example.com", "http://x.example.com.evil", False),  # anchored at both ends
    ("*", "null", True),
    ("*", "", True),
    ("https://*", "https://anything:8443", True),
    ("*.suffix", "suffix", False),
    ("prefix*", "prefix", True),
    ("ab*ba", "aba", False),                                  # head and tail may not overlap
])
def test_origin_glob(pattern, value, expected):
    assert (rule([pattern]).origin_pattern(value) == pattern) is expected


def test_header_glob_is_case_insensitive():
    r = rule(allowed_headers=("X-Amz-*", "content-type"))
    assert r.allows_header("x-amz-meta-a") and r.allows_header("X-AMZ-DATE") and r.allows_header("Content-Type")
    assert not r.allows_header("content-md5") and not r.allows_header("x-am")
    assert rule(allowed_headers=("*",)).allows_header("authorization")
    assert not rule().allows_header("range")  # no AllowedHeader: none allowed


def test_match_first_rule_and_method_and_headers():
    rules = [rule(["https://a"], ["PUT"], allowed_headers=("content-type",), max_age_seconds=1),
             rule(["https://*"], ["PUT", "GET"], allowed_headers=("*",), max_age_seconds=2),
             rule(["*"], ["DELETE"])]
    assert match(rules, "https://a", "PUT") == (rules[0], "https://a")
    assert match(rules, "https://a", "PUT", ["content-type", "x-amz-acl"]) == (rules[1], "https://*")
    assert match(rules, "http://a", "DELETE") == (rules[2], "*")
    assert match(rules, "http://a", "PUT") is None
    assert match(rules, "https://a", "put") is None  # methods: exact
    assert match(rules, "https://a", "POST") is None
    assert match([], "https://a", "GET") is None


def test_stored_json_round_trip():
    rules = [rule(["https://a", "http://*.b"], ["GET", "PUT"], allowed_headers=("*",), expose_headers=("ETag",),
                  max_age_seconds=0, id="one"), rule(["ünïcode"], ["HEAD"])]
    assert rules_of(dumps(rules)) == rules
    assert rules_of(None) == [] and rules_of("") == []


@pytest.mark.parametrize("rules, code", [
    ([], "MalformedXML"),
    ([rule()] * 101, "MalformedXML"),
    ([rule(origins=())], "MalformedXML"),
    ([rule(methods=())], "MalformedXML"),
    ([rule(methods=("OPTIONS",))], "InvalidRequest"),
    ([rule(methods=("get",))], "InvalidRequest"),
    ([rule(origins=("http://*.*",))], "InvalidRequest"),
    ([rule(origins=("http://a\r\nSet-Cookie: x",))], "InvalidRequest"),
    ([rule(allowed_headers=("x-*-*",))], "InvalidRequest"),
    ([rule(allowed_headers=("bad header",))], "InvalidRequest"),
    ([rule(expose_headers=("x-*",))], "InvalidRequest"),
    ([rule(expose_headers=("ETag\r\nSet-Cookie: a=b",))], "InvalidRequest"),
    ([rule(max_age_seconds=-1)], "MalformedXML"),
    ([rule(id="i" * 256)], "InvalidArgument"),
])
def test_validate_refuses(rules, code):
    with pytest.raises(errors.S3Error) as exc:
        validate(rules)
    assert exc.value.code == code and exc.value.status == 400


def test_validate_accepts_the_limits():
    rules = [rule(["", "*", "http://*.x"], list(("GET", "PUT", "HEAD", "POST", "DELETE")),
                  allowed_headers=("*", "x-amz-*"), expose_headers=("ETag", "x-amz-version-id"),
                  max_age_seconds=0, id="i" * 255)] * 100
    assert validate(rules) == rules
    message = None
    try:
        validate([rule(methods=("PATCH",))])
    except errors.InvalidRequest as err:
        message = err.message
    assert message == "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"
