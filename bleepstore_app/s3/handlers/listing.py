"""Listing operations: ListObjects (v1) and ListObjectsV2."""
from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from ... import errors
from ...service import listing
from .. import xml
from ..responses import S3Result
from . import handles


def _plain(s: str) -> str:
    return s


def _encoder(req):
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return _plain  # callers may test for it and skip the call
    if encoding != "url":
        raise errors.InvalidArgument("Invalid Encoding Method specified in Request",
                                     ArgumentName="encoding-type", ArgumentValue=encoding)
    return lambda s: quote(s, safe="-_.~/")


def _contents(page, enc, with_owner: bool) -> str:
    parts = []
    text, iso8601, owner_xml = xml.text, xml.iso8601, xml.owner
    for o in page.objects:
        owner = owner_xml(o.owner_id, o.owner_display_name) if with_owner else ""
        parts.append(
            f"<Contents><Key>{text(enc(o.key))}</Key><LastModified>{iso8601(o.last_modified)}</LastModified>"
            f"<ETag>&quot;{o.etag}&quot;</ETag><Size>{o.size}</Size>{owner}"
            f"<StorageClass>{o.storage_class}</StorageClass></Contents>")
    parts.extend(f"<CommonPrefixes>{xml.el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes)
    return "".join(parts)


@handles("ListObjects")
def list_objects(svc, req) -> S3Result:
    q = req.query
    enc = _encoder(req)
    prefix, delimiter, marker = q.get("prefix", ""), q.get("delimiter", ""), q.get("marker", "")
    max_keys = listing.parse_max_keys(q.get("max-keys"))
    page = listing.list_objects(svc, req.caller, req.bucket, prefix, delimiter, marker or None, max_keys)
    head = [xml.el("Name", req.bucket), xml.el("Prefix", enc(prefix)), xml.el("Marker", enc(marker)),
            xml.el("MaxKeys", max_keys)]
    if delimiter:
        head.append(xml.el("Delimiter", enc(delimiter)))
    if "encoding-type" in q:
        head.append(xml.el("EncodingType", "url"))
    head.append(xml.el("IsTruncated", "true" if page.is_truncated else "false"))
    if page.is_truncated and delimiter and page.last_returned is not None:
        head.append(xml.el("NextMarker", enc(page.last_returned)))
    return S3Result(xml=xml.document("ListBucketResult", head + [_contents(page, enc, True)]))


@handles("ListObjectsV2")
def list_objects_v2(svc, req) -> S3Result:
    q = req.query
    enc = _encoder(req)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    max_keys = listing.parse_max_keys(q.get("max-keys"))
    token = q.get("continuation-token")
    start_after = q.get("start-after", "")
    after = _decode_token(token) if token is not None else (start_after or None)
    page = listing.list_objects(svc, req.caller, req.bucket, prefix, delimiter, after, max_keys)
    head = [xml.el("Name", req.bucket), xml.el("Prefix", enc(prefix))]
    if delimiter:
        head.append(xml.el("Delimiter", enc(delimiter)))
    head.append(xml.el("MaxKeys", max_keys))
    if "encoding-type" in q:
        head.append(xml.el("EncodingType", "url"))
    head.append(xml.el("KeyCount", len(page.objects) + len(page.common_prefixes)))
    head.append(xml.el("IsTruncated", "true" if page.is_truncated else "false"))
    if token is not None:
        head.append(xml.el("ContinuationToken", token))
    if start_after:
        head.append(xml.el("StartAfter", enc(start_after)))
    if page.is_truncated and page.last_returned is not None:
        head.append(xml.el("NextContinuationToken", _encode_token(page.last_returned)))
    fetch_owner = q.get("fetch-owner", "").lower() == "true"
    return S3Result(xml=xml.document("ListBucketResult", head + [_contents(page, enc, fetch_owner)]))


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8")).decode()


def _decode_token(token: str) -> str:
    if not token or not all(c.isalnum() or c in "-_=" for c in token):
        raise errors.InvalidArgument("The continuation token provided is incorrect",
                                     ArgumentName="continuation-token", ArgumentValue=token)
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8") if token else ""
    except (binascii.Error, ValueError, UnicodeError):
        raise errors.InvalidArgument("The continuation token provided is incorrect",
                                     ArgumentName="continuation-token", ArgumentValue=token) from None
