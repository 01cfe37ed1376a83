"""Bucket CORS: PutBucketCors, GetBucketCors, DeleteBucketCors.

The preflight (OPTIONS) and the Access-Control-* headers on other responses are
not operations with handlers: s3/cors.py answers them.
"""
from __future__ import annotations

import re

from ... import errors
from ...service import buckets, cors
from .. import xml
from ..responses import S3Result
from . import handles
from .lifecycle import require_content_md5

MAX_DOCUMENT = 64 * 1024  # "The document is limited to 64 KB in size" (API_PutBucketCors)
MAX_AGE_LIMIT = 2**31 - 1  # an xs:int
_LISTS = {"AllowedOrigin": "allowed_origins", "AllowedMethod": "allowed_methods",
          "AllowedHeader": "allowed_headers", "ExposeHeader": "expose_headers"}
_INTEGER = re.compile(r"-?[0-9]{1,10}")


def _rule(node) -> cors.CorsRule:
    """One <CORSRule> as plain values; an unknown or repeated single element is MalformedXML."""
    lists: dict[str, list[str]] = {field: [] for field in _LISTS.values()}
    singles: dict[str, str] = {}
    for child in node:
        name, value = xml.local(child.tag), (child.text or "").strip()
        if len(child):
            raise errors.MalformedXML()
        if name in _LISTS:
            lists[_LISTS[name]].append(value)
        elif name in ("ID", "MaxAgeSeconds") and name not in singles:
            singles[name] = value
        else:
            raise errors.MalformedXML()
    max_age = singles.get("MaxAgeSeconds")
    if max_age is not None:
        if not _INTEGER.fullmatch(max_age) or int(max_age) > MAX_AGE_LIMIT:
            raise errors.MalformedXML()
    return cors.CorsRule(allowed_origins=tuple(lists["allowed_origins"]),
                         allowed_methods=tuple(lists["allowed_methods"]),
                         allowed_headers=tuple(lists["allowed_headers"]),
                         expose_headers=tuple(lists["expose_headers"]),
                         max_age_seconds=int(max_age) if max_age is not None else None,
                         id=singles.get("ID"))


def _configuration(body: bytes) -> list[cors.CorsRule]:
    if len(body) > MAX_DOCUMENT:
        raise errors.MaxMessageLengthExceeded()
    root = xml.parse(body)
    if xml.local(root.tag) != "CORSConfiguration":
        raise errors.MalformedXML()
    rules = []
    for child in root:
        if xml.local(child.tag) != "CORSRule":
            raise errors.MalformedXML()
        rules.append(_rule(child))
    return rules


def _document(rules: list[cors.CorsRule]) -> str:
    """GetBucketCors's answer: each rule's members in S3's order, only those set."""
    parts = []
    for rule in rules:
        inner = [xml.el("ID", rule.id)] if rule.id is not None else []
        inner += [xml.el("AllowedHeader", v) for v in rule.allowed_headers]
        inner += [xml.el("AllowedMethod", v) for v in rule.allowed_methods]
        inner += [xml.el("AllowedOrigin", v) for v in rule.allowed_origins]
        inner += [xml.el("ExposeHeader", v) for v in rule.expose_headers]
        if rule.max_age_seconds is not None:
            inner.append(xml.el("MaxAgeSeconds", rule.max_age_seconds))
        parts.append(f"<CORSRule>{''.join(inner)}</CORSRule>")
    return xml.document("CORSConfiguration", parts)


@handles("PutBucketCors")
def put_bucket_cors(svc, req) -> S3Result:
    # Owner first: a refused client that sent Expect: 100-continue never sends its body.
    buckets.require_owner(buckets.require_bucket(svc, req.bucket), req.caller)
    require_content_md5(req)
    if (req.content_length() or 0) > MAX_DOCUMENT:
        raise errors.MaxMessageLengthExceeded()
    cors.put_bucket_cors(svc, req.caller, req.bucket, _configuration(req.small_body()))
    return S3Result()


@handles("GetBucketCors")
def get_bucket_cors(svc, req) -> S3Result:
    return S3Result(xml=_document(cors.get_bucket_cors(svc, req.caller, req.bucket)))


@handles("DeleteBucketCors")
def delete_bucket_cors(svc, req) -> S3Result:
    cors.delete_bucket_cors(svc, req.caller, req.bucket)
    return S3Result(status=204)
