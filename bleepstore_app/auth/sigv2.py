"""AWS Signature Version 2 for S3 (HMAC-SHA1): header and presigned forms.

Still what boto3's ``generate_presigned_url`` produces for a custom endpoint
unless told ``signature_version="s3v4"``, and what older tools (s3cmd's default,
s3fs's ``sigv2``) send. Reference: Amazon S3 "Signing and authenticating REST
requests" (the legacy V2 page): StringToSign = method, Content-MD5, Content-Type,
Date (or Expires), canonical x-amz-* headers, canonical resource.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Mapping
from urllib.parse import unquote

from .. import errors
from .sigv4 import MAX_SKEW_SECONDS, UNSIGNED_PAYLOAD, SecretLookup, SignedRequest

# Query parameters that are part of the signed resource (as S3 and botocore define them).
SIGNED_SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId",
    "response-content-type", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
    "storageClass", "notification", "replication", "analytics", "metrics", "inventory", "select",
    "select-type", "object-lock",
})


def canonical_resources(raw_path: str, raw_query: str, vhost_bucket: str | None) -> list[str]:
    """The canonical resource, and for a bucket-level request also the form with a
    trailing slash (``/bucket/``), which botocore signs for bucket operations."""
    path = f"/{vhost_bucket}{raw_path}" if vhost_bucket else raw_path
    forms = [path]
    if path.count("/") == 1 and len(path) > 1:
        forms.append(path + "/")
    elif path.count("/") == 2 and path.endswith("/"):
        forms.append(path[:-1])
    return [canonical_resource(form, raw_query) for form in forms]


def canonical_resource(path: str, raw_query: str) -> str:
    resource = path
    pairs = []
    for part in raw_query.split("&"):
        name, eq, value = part.partition("=")
        # Decoded as the router decodes it: "%75ploadId" must not pass as unsigned.
        name = unquote(name)
        if name in SIGNED_SUBRESOURCES:
            pairs.append((name, f"{name}={unquote(value)}" if eq else name))
    if pairs:
        pairs.sort(key=lambda p: p[0])
        resource += "?" + "&".join(p[1] for p in pairs)
    return resource


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lower-cased, values trimmed (never edited inside: a date's
    ", " stays); a header given twice has its values joined with a comma."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lower, value = name.lower(), value.strip()
        found[lower] = f"{found[lower]},{value}" if lower in found else value
    return found


def string_to_sign(method: str, headers: dict[str, str], date_line: str, resource: str) -> str:
    """``headers`` as returned by _lower()."""
    amz = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-amz-"))
    return (f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
            f"{date_line}\n{amz}{resource}")


def _sign(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode("utf-8"), hashlib.sha1).digest()).decode()


def _check(secret: str, texts: list[str], signature: str, access_key: str) -> None:
    given = signature.encode("utf-8", "surrogateescape")
    for text in texts:
        if hmac.compare_digest(_sign(secret, text).encode(), given):
            return
    raise errors.SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=texts[0])


def verify_header_auth(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                       lookup_secret: SecretLookup, now: datetime, vhost_bucket: str | None) -> SignedRequest:
    """``Authorization: AWS <access key>:<signature>``."""
    credential = headers["authorization"].strip()[4:]
    access_key, sep, signature = credential.rpartition(":")
    if not sep or not access_key:
        raise errors.AuthorizationHeaderMalformed("The authorization header is malformed.")
    date_text = headers.get("x-amz-date") or headers.get("Date")
    try:
        when = parsedate_to_datetime(date_text) if date_text else None
    except (TypeError, ValueError):
        when = None
    if when is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        raise errors.RequestTimeTooSkewed(RequestTime=date_text, MaxAllowedSkewMilliseconds=MAX_SKEW_SECONDS * 1000)
    secret = lookup_secret(access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    lower = _lower(headers)
    date_line = lower.get("date", "")
    texts = []
    for resource in canonical_resources(raw_path, raw_query, vhost_bucket):
        texts.append(string_to_sign(method, lower, date_line, resource))
        if "x-amz-date" in lower and date_line:
            texts.append(string_to_sign(method, lower, "", resource))  # the spec's form
    _check(secret, texts, signature, access_key)
    return SignedRequest(access_key, b"", "", "", signature, UNSIGNED_PAYLOAD, False)


def verify_presigned(method: str, raw_path: str, raw_query: str, query: Mapping[str, str],
                     headers: Mapping[str, str], lookup_secret: SecretLookup, now: datetime,
                     vhost_bucket: str | None) -> SignedRequest:
    """``?AWSAccessKeyId=...&Expires=<epoch>&Signature=...``."""
    access_key, signature, expires = query.get("AWSAccessKeyId"), query.get("Signature"), query.get("Expires")
    if not access_key or not signature or not expires:
        raise errors.AccessDenied("Query-string authentication requires the Signature, Expires and "
                                  "AWSAccessKeyId parameters")
    try:
        deadline = int(expires)
    except ValueError:
        raise errors.AccessDenied("Invalid date (should be seconds since epoch)") from None
    if now.timestamp() > deadline:
        raise errors.AccessDenied("Request has expired", Expires=expires)
    secret = lookup_secret(access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    # Presigners move x-amz-*, Content-MD5 and Content-Type into the query. A header
    # sent under the same name is what the request acts on, so its value is the one
    # that must have been signed; the query value stands in only when it is absent.
    signed_headers = {name.lower(): value for name, value in query.items()
                      if name.lower().startswith("x-amz-") or name.lower() in ("content-md5", "content-type")}
    signed_headers.update(_lower(headers))
    texts = [string_to_sign(method, signed_headers, expires, resource)
             for resource in canonical_resources(raw_path, raw_query, vhost_bucket)]
    _check(secret, texts, signature, access_key)
    return SignedRequest(access_key, b"", "", "", signature, UNSIGNED_PAYLOAD, True)
