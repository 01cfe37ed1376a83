"""HTTP headers of S3: object attributes in, object headers out, ranges, dates."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote
from datetime import datetime, timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import Mapping

from .. import errors
from ..metadata.records import ObjectRecord
from ..service.conditions import Conditions
from ..service.object_lock import MODES as LOCK_MODES, LockRequest
from ..service.objects import ObjectAttributes
from ..service.tagging import validate as validate_tags

# Stored as sent and returned on GET/HEAD (besides Content-Type).
CONTENT_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires")
META_PREFIX = "x-amz-meta-"
MAX_USER_METADATA_BYTES = 2 * 1024
DEFAULT_CONTENT_TYPE = "binary/octet-stream"

# GetObject query parameters that override response headers.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def http_date(us: int) -> str:
    """RFC 7231 date (Last-Modified), second resolution."""
    return formatdate(us // 1_000_000, usegmt=True)


def copy_source(value: str) -> tuple[str, str, str | None]:
    """x-amz-copy-source: URL-encoded ``bucket/key``, leading slash optional,
    then optionally ``?versionId=<id>``: (bucket, key, version id or None)."""
    path, asked, version = value.partition("?versionId=")
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    if not bucket or not key or (asked and not version):
        raise errors.InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                                     ArgumentName="x-amz-copy-source", ArgumentValue=value)
    return bucket, key, (version or None)


def iso_time(value: str, argument: str) -> int:
    """An ISO 8601 timestamp (Object Lock dates) as microseconds since the epoch."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise errors.InvalidArgument("The retain until date is not valid", ArgumentName=argument,
                                     ArgumentValue=value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1_000_000)


def iso_date(us: int) -> str:
    """Microseconds as the ISO 8601 form S3 uses in Object Lock headers."""
    return datetime.fromtimestamp(us / 1_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{(us // 1000) % 1000:03d}Z"


def lock_request(headers: Mapping[str, str]) -> LockRequest | None:
    """x-amz-object-lock-mode / -retain-until-date / -legal-hold on a write."""
    mode = headers.get("x-amz-object-lock-mode")
    until = headers.get("x-amz-object-lock-retain-until-date")
    hold = headers.get("x-amz-object-lock-legal-hold")
    if mode is None and until is None and hold is None:
        return None
    if mode is not None and mode not in LOCK_MODES:
        raise errors.InvalidArgument("Unknown wormMode directive.", ArgumentName="x-amz-object-lock-mode",
                                     ArgumentValue=mode)
    if hold is not None and hold not in ("ON", "OFF"):
        raise errors.InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'",
                                     ArgumentName="x-amz-object-lock-legal-hold", ArgumentValue=hold)
    return LockRequest(mode=mode,
                       retain_until=iso_time(until, "x-amz-object-lock-retain-until-date") if until else None,
                       legal_hold=None if hold is None else hold == "ON")


def lock_headers(record: ObjectRecord) -> dict[str, str]:
    """The Object Lock headers of GetObject/HeadObject."""
    out = {}
    if record.lock_mode is not None and record.lock_until is not None:
        out["x-amz-object-lock-mode"] = record.lock_mode
        out["x-amz-object-lock-retain-until-date"] = iso_date(record.lock_until)
    if record.legal_hold is not None:
        out["x-amz-object-lock-legal-hold"] = "ON" if record.legal_hold else "OFF"
    return out


def _http_time(value: str | None) -> int | None:
    """An HTTP date as epoch seconds; an unparsable date is ignored, as S3 does."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def conditions(headers: Mapping[str, str], prefix: str = "") -> Conditions:
    """If-* headers (``prefix`` "x-amz-copy-source-" for CopyObject's source)."""
    return Conditions(
        if_match=headers.get(prefix + "If-Match"),
        if_none_match=headers.get(prefix + "If-None-Match"),
        if_modified_since=_http_time(headers.get(prefix + "If-Modified-Since")),
        if_unmodified_since=_http_time(headers.get(prefix + "If-Unmodified-Since")),
    )


def object_attributes(headers: Mapping[str, str]) -> ObjectAttributes:
    """Content-Type, the other content headers, x-amz-meta-* and storage class."""
    content_headers = {}
    for name in CONTENT_HEADERS:
        value = headers.get(name)
        if value is not None:
            content_headers[name] = value
    encoding = content_headers.get("Content-Encoding")
    if encoding is not None and "aws-chunked" in encoding.lower():
        # aws-chunked describes the transfer, not the object; S3 drops it.
        kept = [e.strip() for e in encoding.split(",") if e.strip() and e.strip().lower() != "aws-chunked"]
        if kept:
            content_headers["Content-Encoding"] = ",".join(kept)
        else:
            del content_headers["Content-Encoding"]
    user_metadata = {}
    size = 0
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(META_PREFIX):
            meta_name = lower[len(META_PREFIX):]
            user_metadata[meta_name] = value
            size += len(meta_name.encode()) + len(value.encode())
    if size > MAX_USER_METADATA_BYTES:
        raise errors.MetadataTooLarge(Size=size, MaxSizeAllowed=MAX_USER_METADATA_BYTES)
    return ObjectAttributes(
        content_type=headers.get("Content-Type") or None,
        content_headers=content_headers,
        user_metadata=user_metadata,
        storage_class=headers.get("x-amz-storage-class") or "STANDARD",
        tags=tagging(headers.get("x-amz-tagging")),
    )


def tagging(value: str | None) -> dict:
    """The tag set of an ``x-amz-tagging`` header: URL query encoding of UTF-8."""
    if not value:
        return {}
    try:
        pairs = parse_qsl(value, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.InvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                                     "query parameters without tag name duplicates.",
                                     ArgumentName="x-amz-tagging", ArgumentValue=value) from None
    return validate_tags(pairs)


def object_headers(record: ObjectRecord, checksum_mode: bool = False) -> dict[str, str]:
    """The headers GetObject and HeadObject return for an object."""
    out = {
        "Content-Type": record.content_type or DEFAULT_CONTENT_TYPE,
        "ETag": f'"{record.etag}"',
        "Last-Modified": http_date(record.last_modified),
        "Accept-Ranges": "bytes",
    }
    out.update(record.content_headers)
    for name, value in record.user_metadata.items():
        out[META_PREFIX + name] = value
    if record.storage_class != "STANDARD":
        out["x-amz-storage-class"] = record.storage_class
    if record.version_id != "null":
        out["x-amz-version-id"] = record.version_id
    if record.lock_mode is not None or record.legal_hold is not None:
        out.update(lock_headers(record))
    if record.tags:
        out["x-amz-tagging-count"] = str(len(record.tags))
    if checksum_mode:
        for algorithm, value in record.checksums.items():
            out[f"x-amz-checksum-{algorithm.lower()}"] = value
            # A composite (checksum-of-part-checksums) value ends in "-<parts>".
            out["x-amz-checksum-type"] = "COMPOSITE" if "-" in value else "FULL_OBJECT"
    return out


def response_overrides(query: Mapping[str, str], anonymous: bool) -> dict[str, str]:
    """GetObject's response-* query parameters (not allowed anonymously)."""
    found = {header: query[param] for param, header in RESPONSE_OVERRIDES.items() if param in query}
    if found and anonymous:
        raise errors.InvalidRequest("Request specific response headers cannot be used for anonymous GET requests.")
    return found


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A Range header as [start, end) within ``size``, or None for the whole object.

    Like S3: a syntactically invalid or multi-range header is ignored (whole object);
    a range that starts past the end is InvalidRange (416).
    """
    if not value:
        return None
    m = _RANGE.fullmatch(value.strip())
    if m is None:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> errors.S3Error:
    err = errors.InvalidRange(ActualObjectSize=size, RangeRequested=None)
    err.headers["Content-Range"] = f"bytes */{size}"
    return err
