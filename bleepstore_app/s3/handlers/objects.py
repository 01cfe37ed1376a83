"""Object operations: PutObject, CopyObject, GetObject, HeadObject, DeleteObject, DeleteObjects."""
from __future__ import annotations

from ... import errors
from ...service import buckets, copy, lifecycle_rules, multipart, objects
from ...service.conditions import NotModified
from .. import headers as h
from .. import sse as encryption_headers
from .. import xml
from ..acl import acl_from_headers
from ...service import acl as acls
from ...metadata.tables import NULL_VERSION
from ..responses import S3Result
from . import handles


@handles("PutObject")
def put_object(svc, req) -> S3Result:
    attrs = h.object_attributes(req.headers)
    lock = h.lock_request(req.headers)
    if lock is not None:
        require_integrity_header(req, "Put Object requests with Object Lock parameters")
    sse = encryption_headers.sse_request(svc, req)
    body = req.body(default_checksum="CRC64NVME")
    record = objects.put_object(svc, req.caller, req.bucket, req.key, body, body.length, attrs,
                                if_none_match=req.headers.get("If-None-Match"),
                                if_match=req.headers.get("If-Match"), acl=header_acl(svc, req), lock=lock,
                                sse=sse)
    out = {"ETag": f'"{record.etag}"'}
    out.update(encryption_headers.response_headers(svc, record.encryption, sse and sse.customer, sse))
    for algorithm, value in record.checksums.items():
        out[f"x-amz-checksum-{algorithm.lower()}"] = value
    if record.version_id != NULL_VERSION:
        out["x-amz-version-id"] = record.version_id
    out.update(lifecycle_rules.expiration_headers(svc, record))
    return S3Result(headers=out)


def require_integrity_header(req, what: str) -> None:
    """Content-MD5 or a checksum (header, trailer or SDK hint), which S3 requires
    for DeleteObjects and for writes that set Object Lock."""
    if "Content-MD5" not in req.headers and not any(
            name.lower().startswith(("x-amz-checksum-", "x-amz-sdk-checksum-algorithm", "x-amz-trailer"))
            for name in req.headers.keys()):
        raise errors.InvalidRequest(f"Content-MD5 OR x-amz-checksum- HTTP header is required for {what}",
                                    ArgumentName="Content-MD5")


def _version_param(req) -> str | None:
    return req.query.get("versionId")


@handles("GetObject")
def get_object(svc, req) -> S3Result:
    overrides = h.response_overrides(req.query, anonymous=req.caller is None)
    customer = encryption_headers.customer_key(svc, req)
    try:
        read = objects.get_object(svc, req.caller, req.bucket, req.key, h.conditions(req.headers),
                                  part_map="partNumber" in req.query, version_id=_version_param(req),
                                  customer=customer)
    except NotModified as nm:
        return _not_modified(nm)
    record, blob = read.record, read.blob
    try:
        span, out = _span_and_headers(req, record, read.parts)
    except errors.S3Error:
        blob.close()
        raise
    out.update(overrides)
    out.update(encryption_headers.response_headers(svc, record.encryption, customer))
    out.update(lifecycle_rules.expiration_headers(svc, record))
    start, end = span if span is not None else (0, record.size)
    stream = blob.iter_range(start, end)
    if record.encryption is not None:
        stream = _first_chunk_checked(stream)
    return S3Result(status=200 if span is None else 206, headers=out, stream=stream, length=end - start)


def _first_chunk_checked(stream):
    """An encrypted body whose first chunk is already decrypted, so authenticated:
    a tampered small object (or start of one) is a 500 before the response starts,
    not a connection cut after its headers."""
    first = next(stream, None)  # raises BlobTampered (a StorageError: 500 InternalError)

    def rest():
        try:
            if first is not None:
                yield first
            yield from stream
        finally:
            stream.close()
    return rest()


@handles("HeadObject")
def head_object(svc, req) -> S3Result:
    customer = encryption_headers.customer_key(svc, req)
    try:
        record, _, parts = objects.head_object(svc, req.caller, req.bucket, req.key, h.conditions(req.headers),
                                               part_map="partNumber" in req.query, version_id=_version_param(req),
                                               customer=customer)
    except NotModified as nm:
        return _not_modified(nm)
    span, out = _span_and_headers(req, record, parts)
    out.update(h.response_overrides(req.query, anonymous=req.caller is None))
    out.update(encryption_headers.response_headers(svc, record.encryption, customer))
    out.update(lifecycle_rules.expiration_headers(svc, record))
    if span is None:
        return S3Result(headers=out, length=record.size)
    return S3Result(status=206, headers=out, length=span[1] - span[0])


def _span_and_headers(req, record, parts) -> tuple[tuple[int, int] | None, dict]:
    """The byte span to send (Range, or partNumber=N of a multipart object) and
    the object's response headers for it."""
    number = req.query.get("partNumber")
    if number is not None:
        if "Range" in req.headers:
            raise errors.InvalidRequest("Cannot specify both Range header and partNumber query parameter")
        n = multipart.parse_part_number(number)
        count = record.parts_count or 1
        if n > count:
            raise errors.InvalidPartNumber(PartNumberRequested=n, ActualPartCount=count)
        out = h.object_headers(record, False)
        if "versionId" in req.query:
            out["x-amz-version-id"] = record.version_id
        if record.parts_count:
            out["x-amz-mp-parts-count"] = str(record.parts_count)
            _, offset, size = parts[n - 1][:3]
            span = (offset, offset + size)
        else:
            span = (0, record.size)
        out["Content-Range"] = f"bytes {span[0]}-{max(span[1] - 1, 0)}/{record.size}"
        return span, out
    span = h.parse_range(req.headers.get("Range"), record.size)
    out = h.object_headers(record, _checksum_mode(req) and span is None)
    if "versionId" in req.query:
        out["x-amz-version-id"] = record.version_id
    if span is not None:
        out["Content-Range"] = f"bytes {span[0]}-{span[1] - 1}/{record.size}"
    return span, out


@handles("DeleteObject")
def delete_object(svc, req) -> S3Result:
    done = objects.delete_object(svc, req.caller, req.bucket, req.key, _version_param(req), _bypass(req))
    out = {}
    if done.delete_marker:
        out["x-amz-delete-marker"] = "true"
    version = done.marker_version_id or done.version_id
    if version is not None:
        out["x-amz-version-id"] = version
    return S3Result(status=204, headers=out)


def _bypass(req) -> bool:
    return (req.headers.get("x-amz-bypass-governance-retention") or "").strip().lower() == "true"


def _checksum_mode(req) -> bool:
    return (req.headers.get("x-amz-checksum-mode") or "").upper() == "ENABLED"


def _not_modified(nm: NotModified) -> S3Result:
    """304: the object's ETag and Last-Modified, no body."""
    return S3Result(status=304, headers={"ETag": f'"{nm.etag}"', "Last-Modified": h.http_date(nm.last_modified_us)})


@handles("CopyObject")
def copy_object(svc, req) -> S3Result:
    src_bucket, src_key, src_version = h.copy_source(req.headers["x-amz-copy-source"])
    directive = (req.headers.get("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument("Unknown metadata directive.", ArgumentName="x-amz-metadata-directive",
                                     ArgumentValue=directive)
    tagging_directive = (req.headers.get("x-amz-tagging-directive") or "COPY").strip().upper()
    if tagging_directive not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument("Unknown tagging directive.", ArgumentName="x-amz-tagging-directive",
                                     ArgumentValue=tagging_directive)
    lock = h.lock_request(req.headers)
    sse = encryption_headers.sse_request(svc, req)
    record, source = copy.copy_object(
        svc, req.caller, src_bucket, src_key, req.bucket, req.key, directive == "REPLACE",
        h.object_attributes(req.headers), req.headers.get("x-amz-storage-class"),
        h.conditions(req.headers, prefix="x-amz-copy-source-"), acl=header_acl(svc, req),
        source_version_id=src_version, lock=lock, sse=sse,
        source_customer=encryption_headers.customer_key(svc, req, copy_source=True),
        tags=h.tagging(req.headers.get("x-amz-tagging")) if tagging_directive == "REPLACE" else None)
    checksums = "".join(xml.el(f"Checksum{alg}", value) for alg, value in record.checksums.items())
    out = encryption_headers.response_headers(svc, record.encryption, sse and sse.customer, sse)
    if src_version is not None or source.version_id != NULL_VERSION:
        out["x-amz-copy-source-version-id"] = source.version_id
    if record.version_id != NULL_VERSION:
        out["x-amz-version-id"] = record.version_id
    return S3Result(headers=out, xml=xml.document("CopyObjectResult", [
        xml.el("LastModified", xml.iso8601(record.last_modified)), f"<ETag>&quot;{record.etag}&quot;</ETag>",
        checksums]))


MAX_DELETE_KEYS = 1000


@handles("DeleteObjects")
def delete_objects(svc, req) -> S3Result:
    require_integrity_header(req, "this request")
    bucket = buckets.require_bucket(svc, req.bucket)
    if bucket.policy is None:  # with a policy each key is decided apart (service/copy.py)
        buckets.require_bucket_permission(bucket, req.caller, acls.WRITE)
    root = xml.parse(req.small_body())
    if xml.local(root.tag) != "Delete":
        raise errors.MalformedXML()
    quiet = (xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    entries = []
    for node in root:
        if xml.local(node.tag) == "Object":
            key = xml.child_text(node, "Key")
            if key is None:
                raise errors.MalformedXML()
            for condition in ("ETag", "LastModifiedTime", "Size"):  # refused before anything is deleted
                if xml.child_text(node, condition) is not None:
                    raise errors.NotImplemented(f"A conditional delete ({condition} in DeleteObjects) is not "
                                                f"implemented.")
            entries.append((key, xml.child_text(node, "VersionId")))
    if not entries or len(entries) > MAX_DELETE_KEYS:
        raise errors.MalformedXML()
    parts = []
    for key, version, outcome in copy.delete_objects(svc, req.caller, req.bucket, entries, _bypass(req)):
        asked = xml.el("VersionId", version) if version is not None else ""
        if isinstance(outcome, errors.S3Error):
            parts.append(f"<Error>{xml.el('Key', key)}{asked}{xml.el('Code', outcome.code)}"
                         f"{xml.el('Message', outcome.message)}</Error>")
        elif not quiet:
            marker = ""
            if outcome.delete_marker:
                marker = "<DeleteMarker>true</DeleteMarker>" + xml.el("DeleteMarkerVersionId",
                                                                     outcome.marker_version_id)
            parts.append(f"<Deleted>{xml.el('Key', key)}{asked}{marker}</Deleted>")
    return S3Result(xml=xml.document("DeleteResult", parts))


def require_writable_bucket(svc, req) -> None:
    """The bucket exists and the caller may write in it, checked before a handler
    reads a request document: a refused client that sent ``Expect: 100-continue``
    then never sends its body. (The service checks again: one more bucket lookup.)"""
    buckets.require_bucket_permission(buckets.require_bucket(svc, req.bucket), req.caller, acls.WRITE)


def header_acl(svc, req) -> acls.AclRequest | None:
    """x-amz-acl / x-amz-grant-* on a write, with grantees checked."""
    request = acl_from_headers(req.headers)
    if request is not None and request.grants is not None:
        request = acls.AclRequest(grants=acls.resolve_grants(svc, request.grants))
    return request
