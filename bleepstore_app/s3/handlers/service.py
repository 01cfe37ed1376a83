"""Service-level operations: ListBuckets."""
from __future__ import annotations

import re

from ... import errors
from ...service import buckets
from .. import xml
from ..responses import S3Result
from . import handles
from .listing import _decode_token, _encode_token

MAX_BUCKETS = 10_000
_TOKEN_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # generous: any name a bucket may ever have had


@handles("ListBuckets")
def list_buckets(svc, req) -> S3Result:
    """The caller's buckets by name; prefix, bucket-region, max-buckets and
    continuation-token narrow and page them (a client that pages must not get
    every bucket at once with no token)."""
    if req.caller is None:
        raise errors.AccessDenied()
    q = req.query
    prefix, region = q.get("prefix", ""), q.get("bucket-region")
    limit = _max_buckets(q.get("max-buckets"))
    token = q.get("continuation-token")
    after = _decode_token(token) if token is not None else ""
    if token is not None and not _TOKEN_NAME.fullmatch(after):  # we only ever hand out bucket names
        raise errors.InvalidArgument("The continuation token provided is incorrect",
                                     ArgumentName="continuation-token", ArgumentValue=token)
    page, more = buckets.list_buckets(svc, req.caller, prefix=prefix, region=region, after=after, limit=limit)
    entries = "".join(
        f"<Bucket>{xml.el('Name', b.name)}{xml.el('CreationDate', xml.iso8601(b.created_at))}"
        f"{xml.el('BucketRegion', b.region)}</Bucket>" for b in page)
    fields = [f"<Buckets>{entries}</Buckets>", xml.owner(req.caller.owner_id, req.caller.display_name)]
    if more:
        fields.append(xml.el("ContinuationToken", _encode_token(page[-1].name)))
    if "prefix" in q:
        fields.append(xml.el("Prefix", prefix))
    return S3Result(xml=xml.document("ListAllMyBucketsResult", fields))


def _max_buckets(value: str | None) -> int:
    if value is None:
        return MAX_BUCKETS
    if not value.isdigit() or not 1 <= int(value) <= MAX_BUCKETS:
        raise errors.InvalidArgument(f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}",
                                     ArgumentName="max-buckets", ArgumentValue=value)
    return int(value)
