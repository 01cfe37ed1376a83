"""AWS Signature Version 4 for S3: header and presigned (query) forms.

Pure functions over the request's method, raw path, raw query string and headers.
References: AWS "Authenticating Requests (AWS Signature Version 4)" for S3 —
"Signature Calculations for the Authorization Header" and "Query Parameters".
S3 differs from other services: the path is URI-encoded once (not twice) and
the payload hash is sent in ``x-amz-content-sha256``. Generic SigV4 signers
(botocore's plain SigV4Auth, requests-aws4auth, curl --aws-sigv4) may not send
that header: the canonical request then ends with the SHA-256 of the body, which
only the body itself can tell, so the signature is checked once the body has
been hashed (``SignedRequest.verify_payload``). The timestamp is X-Amz-Date, or
the Date header (RFC 1123) when that is absent, as AWS accepts.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Callable, Iterable, Mapping
from urllib.parse import quote, unquote

from .. import errors

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# payload_hash of a request whose signer sent no x-amz-content-sha256 (never a
# value a client can send: it is not a hex digest).
BODY_SHA256 = "(sha256 of the body received)"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
STREAMING_MODES = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
)

HEADERS_NOT_SIGNED = "There were headers present in the request which were not signed"
# Bound by the signature without being listed: the payload hash is the canonical
# request's last line; with header authentication the date is the string to sign's
# second line (with a presigned URL, X-Amz-Date in the query is, and the header is not).
HEADER_AUTH_IMPLIED = frozenset({"x-amz-content-sha256", "x-amz-date"})
PRESIGNED_IMPLIED = frozenset({"x-amz-content-sha256"})

_AUTH_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)\s*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a verified signature tells the rest of the request."""
    access_key: str
    signing_key: bytes
    scope: str
    amz_date: str
    signature: str
    # The x-amz-content-sha256 value: a hex digest the body must match,
    # UNSIGNED-PAYLOAD, or one of STREAMING_MODES.
    payload_hash: str
    presigned: bool
    # Lower-case header names the signature covers; None: every x-amz-* header
    # present is in the string to sign (SigV2).
    covered_headers: frozenset[str] | None = None
    # No x-amz-content-sha256 was sent: the signature is NOT verified yet. Call this
    # with the hex SHA-256 of the body received; it raises SignatureDoesNotMatch
    # unless the signature matches. payload_hash is then BODY_SHA256.
    verify_payload: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class _Parsed:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


_CANONICAL_PATH = re.compile(r"[A-Za-z0-9\-_.~/]*")


@lru_cache(maxsize=4096)
def _canonical_component(raw: str) -> str:
    """A query name or value as sent -> decoded, then encoded once. Cached: most
    of them (credential, algorithm, expiry, list parameters) repeat request after
    request."""
    return _uri_encode(unquote(raw))


def canonical_uri(raw_path: str) -> str:
    """The path as AWS canonicalises it for S3: each segment decoded, then encoded once."""
    if _CANONICAL_PATH.fullmatch(raw_path):  # nothing to decode or encode
        return raw_path or "/"
    return "/".join(_uri_encode(unquote(seg)) for seg in raw_path.split("/")) or "/"


def canonical_query(raw_query: str, exclude: str | None = None) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _canonical_component(name)
        if name == exclude:
            continue
        pairs.append((name, _canonical_component(value)))
    pairs.sort()
    return "&".join([f"{k}={v}" for k, v in pairs])


def canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> str:
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise errors.SignatureDoesNotMatch()
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def canonical_request(method: str, uri: str, query: str, headers: Mapping[str, str],
                      signed: tuple[str, ...], payload_hash: str) -> str:
    return "\n".join((method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash))


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(request.encode("utf-8")).hexdigest()))


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key; cached, since it changes once a day per credential."""
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def date_header_timestamp(value: str) -> str:
    """An RFC 1123 Date header as the string to sign's ISO 8601 basic timestamp."""
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None or when.tzinfo is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    return when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def parse_amz_date(value: str) -> datetime:
    """``20130524T000000Z`` as an aware datetime (by hand: strptime is slow)."""
    try:
        if len(value) != 16 or value[8] != "T" or value[15] != "Z":
            raise ValueError(value)
        return datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]),
                         int(value[11:13]), int(value[13:15]), tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header") from None


def parse_credential(value: str, error: type[errors.S3Error]) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise error("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                    "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    if parts[3] != "s3":
        raise error(f"Error parsing the X-Amz-Credential parameter; incorrect service \"{parts[3]}\". "
                    f"This endpoint belongs to \"s3\".")
    return parts[0], parts[1], parts[2], parts[3]


def parse_authorization(value: str) -> _Parsed:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS":
            raise errors.InvalidRequest("The authorization mechanism you have provided is not supported. "
                                        "Please use AWS4-HMAC-SHA256.")
        raise errors.AuthorizationHeaderMalformed(f"Unsupported Authorization Type: {algorithm}")
    fields = {}
    for item in rest.split(","):
        m = _AUTH_FIELD.fullmatch(item)
        if m:
            fields[m.group(1)] = m.group(2)
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise errors.AuthorizationHeaderMalformed(
            "The authorization header is malformed; the authorization header requires three components: "
            "Credential, SignedHeaders, and Signature.")
    access_key, date, region, service = parse_credential(fields["Credential"], errors.AuthorizationHeaderMalformed)
    signed = tuple(fields["SignedHeaders"].split(";"))
    return _Parsed(access_key, date, region, service, signed, fields["Signature"])


SecretLookup = Callable[[str], "str | None"]


def verify_header_auth(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                       lookup_secret: SecretLookup, now: datetime, region: str) -> SignedRequest:
    """Verify an Authorization-header SigV4 request. ``headers`` keys are lower-case."""
    parsed = parse_authorization(headers["authorization"])
    if "host" not in parsed.signed_headers:
        raise errors.AccessDenied("Host header is not signed")
    amz_date = headers.get("x-amz-date")
    if amz_date is None:
        date = headers.get("date")
        if date is None:
            raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
        amz_date = date_header_timestamp(date)
    when = parse_amz_date(amz_date)
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        err = errors.RequestTimeTooSkewed(RequestTime=amz_date, ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                          MaxAllowedSkewMilliseconds=MAX_SKEW_SECONDS * 1000)
        raise err
    if parsed.date != amz_date[:8]:
        raise errors.SignatureDoesNotMatch()
    check_region(parsed.region, region, errors.AuthorizationHeaderMalformed)
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is not None:
        _check_payload_hash(payload_hash)
    secret = lookup_secret(parsed.access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=parsed.access_key)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    key = signing_key(secret, parsed.date, parsed.region, parsed.service)
    query = canonical_query(raw_query)
    covered = _covered(parsed.signed_headers, HEADER_AUTH_IMPLIED)
    if payload_hash is None:  # a generic signer: the body's own hash is the last line
        def verify_payload(body_sha256: str) -> None:
            _match(method, raw_path, query, headers, parsed, body_sha256, amz_date, scope, key)
        return SignedRequest(parsed.access_key, key, scope, amz_date, parsed.signature, BODY_SHA256, False,
                             covered, verify_payload)
    _match(method, raw_path, query, headers, parsed, payload_hash, amz_date, scope, key)
    return SignedRequest(parsed.access_key, key, scope, amz_date, parsed.signature, payload_hash, False,
                         covered)


def verify_presigned(method: str, raw_path: str, raw_query: str, query: Mapping[str, str],
                     headers: Mapping[str, str], lookup_secret: SecretLookup, now: datetime,
                     region: str) -> SignedRequest:
    """Verify a presigned URL (X-Amz-* query parameters)."""
    qerr = errors.AuthorizationQueryParametersError
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise qerr("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    for name in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date", "X-Amz-Expires"):
        if not query.get(name):
            raise qerr("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                       "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    access_key, date, req_region, service = parse_credential(query["X-Amz-Credential"], qerr)
    amz_date = query["X-Amz-Date"]
    when = parse_amz_date(amz_date)
    try:
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        raise qerr("X-Amz-Expires should be a number") from None
    if expires < 1:
        raise qerr("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise qerr("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    if date != amz_date[:8]:
        raise errors.SignatureDoesNotMatch()
    if (now - when).total_seconds() > expires:
        raise errors.AccessDenied("Request has expired", Expires=_iso(when.timestamp() + expires),
                                  ServerTime=_iso(now.timestamp()), **{"X-Amz-Expires": expires})
    if (when - now).total_seconds() > MAX_SKEW_SECONDS:
        raise errors.AccessDenied("Request is not valid yet")
    check_region(req_region, region, qerr)
    signed = tuple(query["X-Amz-SignedHeaders"].split(";"))
    if "host" not in signed:
        raise errors.AccessDenied("Host header is not signed")
    secret = lookup_secret(access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)
    scope = f"{date}/{req_region}/{service}/aws4_request"
    key = signing_key(secret, date, req_region, service)
    # The payload line: an x-amz-content-sha256 header when one is sent (botocore and
    # aws-sdk-go sign presigned requests so), else the query parameter some presigners
    # use, else UNSIGNED-PAYLOAD.
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is not None:
        _check_payload_hash(payload_hash)
    else:
        payload_hash = query.get("X-Amz-Content-Sha256") or UNSIGNED_PAYLOAD
    parsed = _Parsed(access_key, date, req_region, service, signed, query["X-Amz-Signature"])
    _match(method, raw_path, canonical_query(raw_query, exclude="X-Amz-Signature"), headers, parsed,
           payload_hash, amz_date, scope, key)
    return SignedRequest(access_key, key, scope, amz_date, parsed.signature, payload_hash, True,
                         _covered(signed, PRESIGNED_IMPLIED))


def require_signed_headers(header_names: Iterable[str], covered: frozenset[str]) -> None:
    """Refuse any x-amz-* header the signature does not cover, as AWS does: a header
    added to a signed request (x-amz-acl, x-amz-copy-source...) must not change what
    the request means. ``covered`` comes from SignedRequest.covered_headers."""
    present = [name.lower() for name in header_names if name[:6].lower() == "x-amz-"]
    unsigned = set(present) - covered
    if unsigned:
        names = ", ".join(dict.fromkeys(name for name in present if name in unsigned))
        raise errors.AccessDenied(HEADERS_NOT_SIGNED, HeadersNotSigned=names)


def _covered(signed_headers: tuple[str, ...], implied: frozenset[str]) -> frozenset[str]:
    return implied.union(name.lower() for name in signed_headers)


def _check_payload_hash(value: str) -> None:
    if value not in (UNSIGNED_PAYLOAD, *STREAMING_MODES) and not _HEX64.fullmatch(value):
        raise errors.InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-*, "
                                     "or a valid sha256 value.", ArgumentName="x-amz-content-sha256",
                                     ArgumentValue=value)


def _match(method, raw_path, query, headers, parsed: _Parsed, payload_hash, amz_date, scope, key) -> None:
    """Compare signatures in constant time; tolerate clients that sign the path as sent."""
    uris = [canonical_uri(raw_path)]
    if raw_path != uris[0]:
        uris.append(raw_path)
    for uri in uris:
        request = canonical_request(method, uri, query, headers, parsed.signed_headers, payload_hash)
        expected = sign(key, string_to_sign(amz_date, scope, request))
        if hmac.compare_digest(expected.encode(), parsed.signature.encode("utf-8", "surrogateescape")):
            return
    raise errors.SignatureDoesNotMatch(AWSAccessKeyId=parsed.access_key, StringToSign=string_to_sign(
        amz_date, scope, canonical_request(method, uris[0], query, headers, parsed.signed_headers, payload_hash)))


def check_region(requested: str, ours: str, error: type[errors.S3Error]) -> None:
    # S3 clients sign us-east-1 by default for path-style requests; accept it as well
    # as the configured region (AWS answers wrong regions with a redirect hint).
    if requested not in (ours, "us-east-1"):
        raise error(f"The authorization header is malformed; the region '{requested}' is wrong; "
                    f"expecting '{ours}'", Region=ours)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
