"""CORS on the wire: the preflight (S3's "OPTIONS object") and the
Access-Control-* headers of actual cross-origin requests.

A browser never signs a preflight, so ``preflight`` runs before the request is
resolved or authenticated, and answers from the bucket's rules alone. An
actual request (signed, presigned or anonymous) that carries ``Origin`` gets the
matching rule's headers on whatever it is answered, errors included, so a page
can read why a request failed: ``add_headers`` runs on the finished response.
A request without ``Origin`` costs one dictionary look-up.

S3's observed behaviour (the API reference documents none of the errors):
- no Origin: 400 BadRequest; the bucket missing: 403 AccessForbidden
  "CORSResponse: Bucket not found"; no rules: 403 AccessForbidden "CORSResponse:
  CORS is not enabled for this bucket."; no Access-Control-Request-Method:
  400 BadRequest; no rule matching: 403 AccessForbidden. The 403s carry Method
  (the requested one) and ResourceType.
- Access-Control-Allow-Origin is ``*`` when the rule's origin is ``*`` (and then
  no Access-Control-Allow-Credentials), else the request's origin; Allow-Methods
  lists the rule's methods; Allow-Headers the requested names, lowercased.
- An actual request is matched on its origin and its method (or the
  Access-Control-Request-Method it carries); its headers are not checked. No
  match: no CORS headers at all, and the request is served as usual.
"""
from __future__ import annotations

import logging

from .. import errors
from ..logsafe import escape
from ..service import cors
from .responses import S3Result, render

log = logging.getLogger(__name__)

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
OPERATION = "OptionsObject"  # the metric / access-log name of a preflight


def preflight(svc, req):
    """The answer to ``OPTIONS /bucket[/key]``: 200 with the matching rule's
    headers, or the S3 error saying why the cross-origin request is refused."""
    req.operation = req.environ["bleepstore.operation"] = OPERATION
    origin = req.headers.get("Origin")
    if origin is None:
        raise errors.BadRequest("Insufficient information. Origin request header needed.")
    method = req.headers.get("Access-Control-Request-Method")
    record = svc.meta.get_bucket(req.bucket) if req.bucket else None
    if record is None:
        raise errors.AccessForbidden("CORSResponse: Bucket not found")
    rules = cors.rules_of(record.cors)
    if not rules:
        raise errors.AccessForbidden("CORSResponse: CORS is not enabled for this bucket.",
                                     Method=method or "OPTIONS", ResourceType="BUCKET")
    if not method:
        raise errors.BadRequest(f"Invalid Access-Control-Request-Method: {method or 'null'}")
    requested = _header_names(req.headers.get("Access-Control-Request-Headers", ""))
    found = cors.match(rules, origin, method, requested)
    if found is None:
        raise errors.AccessForbidden(Method=method, ResourceType="OBJECT" if req.key else "BUCKET")
    headers = _rule_headers(*found, origin)
    if requested:
        headers["Access-Control-Allow-Headers"] = ", ".join(requested)
    return render(S3Result(headers=headers), "OPTIONS", req.request_id)


def add_headers(svc, environ: dict, response):
    """``response`` with the Access-Control-* headers of the rule that allows this
    cross-origin request, if any (unchanged for a same-origin request)."""
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return response
    bucket = environ.get("bleepstore.bucket")
    if not bucket or environ["REQUEST_METHOD"] == "OPTIONS":
        return response  # a preflight wrote its own headers
    method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD") or environ["REQUEST_METHOD"]
    try:
        record = svc.meta.get_bucket(bucket)
    except Exception as exc:  # the response itself stands; only its CORS headers are lost
        log.warning("CORS rules of bucket %s unreadable: %s", escape(bucket), escape(str(exc)))
        return response
    if record is None or not record.cors:
        return response
    found = cors.match(cors.rules_of(record.cors), origin, method)
    if found is not None:
        response.headers.update(_rule_headers(*found, origin))
    return response


def _rule_headers(rule: cors.CorsRule, pattern: str, origin: str) -> dict[str, str]:
    any_origin = pattern == "*"
    headers = {"Access-Control-Allow-Origin": "*" if any_origin else origin,
               "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods)}
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_seconds is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age_seconds)
    if not any_origin:
        headers["Access-Control-Allow-Credentials"] = "true"
    headers["Vary"] = VARY
    return headers


def _header_names(value: str) -> list[str]:
    """Access-Control-Request-Headers as lowercase names, in the order sent."""
    return [name.strip().lower() for name in value.split(",") if name.strip()]
