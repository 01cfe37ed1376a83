"""Object operations: PutObject, GetObject, HeadObject, DeleteObject."""
from __future__ import annotations

from ... import errors
from ...service import objects
from .. import headers as h
from ..responses import S3Result
from . import handles


@handles("PutObject")
def put_object(svc, req) -> S3Result:
    attrs = h.object_attributes(req.headers)
    body = req.body()
    record = objects.put_object(svc, req.caller, req.bucket, req.key, body, body.length, attrs)
    out = {"ETag": f'"{record.etag}"'}
    for algorithm, value in record.checksums.items():
        out[f"x-amz-checksum-{algorithm.lower()}"] = value
    return S3Result(headers=out)


@handles("GetObject")
def get_object(svc, req) -> S3Result:
    overrides = h.response_overrides(req.query, anonymous=req.caller is None)
    read = objects.get_object(svc, req.caller, req.bucket, req.key)
    record, blob = read.record, read.blob
    try:
        span = h.parse_range(req.headers.get("Range"), record.size)
    except errors.S3Error:
        blob.close()
        raise
    out = h.object_headers(record, _checksum_mode(req) and span is None)
    out.update(overrides)
    if span is None:
        return S3Result(headers=out, stream=blob.iter_range(0, record.size), length=record.size)
    start, end = span
    out["Content-Range"] = f"bytes {start}-{end - 1}/{record.size}"
    return S3Result(status=206, headers=out, stream=blob.iter_range(start, end), length=end - start)


@handles("HeadObject")
def head_object(svc, req) -> S3Result:
    record = objects.head_object(svc, req.caller, req.bucket, req.key)
    span = h.parse_range(req.headers.get("Range"), record.size)
    out = h.object_headers(record, _checksum_mode(req) and span is None)
    out.update(h.response_overrides(req.query, anonymous=req.caller is None))
    if span is None:
        return S3Result(headers=out, length=record.size)
    start, end = span
    out["Content-Range"] = f"bytes {start}-{end - 1}/{record.size}"
    return S3Result(status=206, headers=out, length=end - start)


@handles("DeleteObject")
def delete_object(svc, req) -> S3Result:
    objects.delete_object(svc, req.caller, req.bucket, req.key)
    return S3Result(status=204)


def _checksum_mode(req) -> bool:
    return (req.headers.get("x-amz-checksum-mode") or "").upper() == "ENABLED"
