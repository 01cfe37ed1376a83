"""Bucket CORS: PutBucketCors, GetBucketCors, DeleteBucketCors, and which rule
answers a cross-origin request.

The wire (s3/handlers/cors.py) parses the XML into plain ``CorsRule`` values;
here they are validated as S3 validates them and stored as JSON in
``buckets.cors``. ``match`` picks the rule a preflight or an actual request uses
(s3/cors.py writes the Access-Control-* headers from it).

S3's rules (API_PutBucketCors, API_CORSRule, and the user guide's "CORS
configuration" page): at most 100 rules; each has one or more AllowedOrigin and
AllowedMethod (GET, PUT, HEAD, POST, DELETE); AllowedOrigin and AllowedHeader
hold at most one ``*`` each; ExposeHeader holds none; ID is at most 255
characters. The first rule whose origin, method and (preflight) requested
headers all match is used. Origins match case-sensitively, header names
case-insensitively; ``*`` matches any run of characters, the empty one included.

Permission, as in S3 without policies: the bucket owner only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .. import errors
from . import Caller, Services
from .buckets import require_bucket, require_owner

MAX_RULES = 100
MAX_ID = 255
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
# A header name is an RFC 9110 token; anything else (a CR or LF above all) could
# never be sent back in Access-Control-Expose-Headers.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class CorsRule:
    """One CORSRule, as given (order kept: GetBucketCors echoes it)."""
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    id: str | None = None

    def origin_pattern(self, origin: str) -> str | None:
        """The first AllowedOrigin that ``origin`` matches (None: none does)."""
        for pattern in self.allowed_origins:
            if _glob(pattern, origin):
                return pattern
        return None

    def allows_header(self, name: str) -> bool:
        lower = name.lower()
        return any(_glob(pattern.lower(), lower) for pattern in self.allowed_headers)


def _glob(pattern: str, value: str) -> bool:
    """``value`` matches ``pattern``, in which one ``*`` stands for any characters."""
    star = pattern.find("*")
    if star < 0:
        return pattern == value
    head, tail = pattern[:star], pattern[star + 1:]
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def validate(rules: list[CorsRule]) -> list[CorsRule]:
    """``rules`` if S3 would accept them, else the S3 error for the first problem."""
    if not rules or len(rules) > MAX_RULES:
        raise errors.MalformedXML()
    for rule in rules:
        if not rule.allowed_origins or not rule.allowed_methods:
            raise errors.MalformedXML()  # each rule needs at least one origin and one method
        if rule.id is not None and len(rule.id) > MAX_ID:
            raise errors.InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID}",
                                         ArgumentName="ID", ArgumentValue=rule.id)
        for method in rule.allowed_methods:
            if method not in METHODS:
                raise errors.InvalidRequest(
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {method}")
        for origin in rule.allowed_origins:
            if origin.count("*") > 1:
                raise errors.InvalidRequest(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
            if _CONTROL.search(origin):
                raise errors.InvalidRequest("AllowedOrigin may not contain control characters.")
        for header in rule.allowed_headers:
            if header.count("*") > 1:
                raise errors.InvalidRequest(f'AllowedHeader "{header}" can not have more than one wildcard.')
            if not _TOKEN.fullmatch(header):
                raise errors.InvalidRequest(f'AllowedHeader "{_printable(header)}" is not a valid header name.')
        for header in rule.expose_headers:
            if "*" in header:
                raise errors.InvalidRequest(f'ExposeHeader "{header}" contains wildcard. We currently do not '
                                            "support wildcard for ExposeHeader.")
            if not _TOKEN.fullmatch(header):
                raise errors.InvalidRequest(f'ExposeHeader "{_printable(header)}" is not a valid header name.')
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise errors.MalformedXML()
    return rules


def _printable(value: str) -> str:
    return _CONTROL.sub("?", value)


def dumps(rules: list[CorsRule]) -> str:
    """The JSON text stored in ``buckets.cors``."""
    return json.dumps({"rules": [{
        "id": r.id, "origins": list(r.allowed_origins), "methods": list(r.allowed_methods),
        "headers": list(r.allowed_headers), "expose": list(r.expose_headers), "max_age": r.max_age_seconds,
    } for r in rules]}, separators=(",", ":"), ensure_ascii=False)


def rules_of(cors_json: str | None) -> list[CorsRule]:
    """The rules stored in ``buckets.cors`` (none when NULL)."""
    if not cors_json:
        return []
    return [CorsRule(tuple(r["origins"]), tuple(r["methods"]), tuple(r["headers"]), tuple(r["expose"]),
                     r["max_age"], r["id"]) for r in json.loads(cors_json)["rules"]]


def match(rules: list[CorsRule], origin: str, method: str,
          request_headers: list[str] = ()) -> tuple[CorsRule, str] | None:
    """The first rule allowing ``origin`` to use ``method`` (and, for a preflight,
    every one of ``request_headers``), with the AllowedOrigin that matched."""
    for rule in rules:
        if method not in rule.allowed_methods:
            continue
        pattern = rule.origin_pattern(origin)
        if pattern is None:
            continue
        if all(rule.allows_header(name) for name in request_headers):
            return rule, pattern
    return None


def put_bucket_cors(svc: Services, caller: Caller | None, bucket: str, rules: list[CorsRule]) -> None:
    """PutBucketCors: replace the bucket's rules (validated first: a refused
    configuration leaves the old one in place)."""
    require_owner(require_bucket(svc, bucket), caller)
    text = dumps(validate(rules))
    if not svc.meta.set_bucket_config(bucket, "cors", text):
        raise errors.NoSuchBucket(BucketName=bucket)


def get_bucket_cors(svc: Services, caller: Caller | None, bucket: str) -> list[CorsRule]:
    """GetBucketCors: the rules as put; NoSuchCORSConfiguration when there are none."""
    record = require_bucket(svc, bucket)
    require_owner(record, caller)
    rules = rules_of(record.cors)
    if not rules:
        raise errors.NoSuchCORSConfiguration(BucketName=bucket)
    return rules


def delete_bucket_cors(svc: Services, caller: Caller | None, bucket: str) -> None:
    """DeleteBucketCors: remove the rules (nothing to remove is not an error, as in S3)."""
    require_owner(require_bucket(svc, bucket), caller)
    svc.meta.set_bucket_config(bucket, "cors", None)
