"""Listing operations: ListObjects (v1) and ListObjectsV2."""
from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import quote

from ... import errors
from ...service import listing
from .. import xml
from ..responses import S3Result
from . import handles


_URL_SAFE = "-_.~/"
_URL_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.~/-]*")  # what quote(safe=_URL_SAFE) leaves as it is


def _plain(s: str) -> str:
    return s


def _url(s: str) -> str:
    return quote(s, safe=_URL_SAFE)


def _encoder(req):
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return _plain
    if encoding != "url":
        raise errors.InvalidArgument("Invalid Encoding Method specified in Request",
                                     ArgumentName="encoding-type", ArgumentValue=encoding)
    return _url


def key_texts(keys: list[str], enc) -> list[str]:
    """Each key as the text of its <Key> element: encoded by ``enc``, then
    escaped. The keys of a page usually need neither (boto3 always asks for
    encoding-type=url): that is one check over their concatenation, instead of a
    quote() and an escape check per key. A URL-encoded key holds nothing to escape."""
    joined = "".join(keys)
    if enc is _plain:
        return keys if xml.is_plain(joined) else [xml.text(k) for k in keys]
    if enc is _url:
        return keys if _URL_SAFE_TEXT.fullmatch(joined) else [_url(k) for k in keys]
    return [xml.text(enc(k)) for k in keys]


def _contents(page, enc, with_owner: bool) -> list[str]:
    parts = []
    iso8601, owner_xml = xml.iso8601, xml.owner
    for key, o in zip(key_texts([o.key for o in page.objects], enc), page.objects):
        owner = owner_xml(o.owner_id, o.owner_display_name) if with_owner else ""
        parts.append(
            f"<Contents><Key>{key}</Key><LastModified>{iso8601(o.last_modified)}</LastModified>"
            f"<ETag>&quot;{o.etag}&quot;</ETag><Size>{o.size}</Size>{owner}"
            f"<StorageClass>{o.storage_class}</StorageClass></Contents>")
    parts.extend(f"<CommonPrefixes>{xml.el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes)
    return parts


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
    return S3Result(xml=xml.document("ListBucketResult", head + _contents(page, enc, True)))


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
    return S3Result(xml=xml.document("ListBucketResult", head + _contents(page, enc, fetch_owner)))


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
