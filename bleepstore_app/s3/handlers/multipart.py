"""Multipart operations: CreateMultipartUpload, UploadPart, UploadPartCopy,
CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

CompleteMultipartUpload answers at once: completion is one metadata transaction
and copies no data (see service/multipart.py), so there is no long silence for
a client to time out on and no need for S3's early-200-then-error-in-body reply.
"""
from __future__ import annotations

from urllib.parse import quote

from ... import errors
from ...auth.payload import CHECKSUM_ALGORITHMS
from ...metadata.tables import NULL_VERSION
from ...service import copy, multipart
from ...service.conditions import check_read
from .. import headers as h
from .. import sse as encryption_headers
from .. import xml
from ..responses import S3Result
from . import handles
from .listing import _encoder
from .objects import header_acl, require_writable_bucket

MAX_LIST = 1000


def _checksum_algorithm(req) -> str | None:
    value = req.headers.get("x-amz-checksum-algorithm")
    if value is None:
        return None
    if value.upper() not in CHECKSUM_ALGORITHMS:
        raise errors.InvalidRequest("Checksum algorithm provided is unsupported. Please try again with any of the "
                                    "valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
    return value.upper()


@handles("CreateMultipartUpload")
def create_multipart_upload(svc, req) -> S3Result:
    sse = encryption_headers.sse_request(svc, req)
    upload = multipart.create_multipart_upload(
        svc, req.caller, req.bucket, req.key, h.object_attributes(req.headers), header_acl(svc, req),
        _checksum_algorithm(req), req.headers.get("x-amz-checksum-type"), h.lock_request(req.headers), sse=sse)
    out = encryption_headers.response_headers(svc, upload.encryption, sse and sse.customer, sse)
    if upload.checksum_algorithm:
        out.update({"x-amz-checksum-algorithm": upload.checksum_algorithm,
                    "x-amz-checksum-type": upload.checksum_type})
    return S3Result(headers=out, xml=xml.document("InitiateMultipartUploadResult", [
        xml.el("Bucket", upload.bucket), xml.el("Key", upload.key), xml.el("UploadId", upload.upload_id)]))


@handles("UploadPart")
def upload_part(svc, req) -> S3Result:
    number = multipart.parse_part_number(req.query.get("partNumber"))
    upload = multipart.open_upload(svc, req.caller, req.bucket, req.key, req.query["uploadId"])
    if upload.checksum_algorithm:
        sent = _sent_checksum_algorithm(req)
        if sent is not None and sent != upload.checksum_algorithm:
            raise errors.InvalidRequest(f"Checksum Type mismatch occurred, expected checksum Type: "
                                        f"{upload.checksum_algorithm.lower()}, actual checksum Type: {sent.lower()}")
    customer = encryption_headers.customer_key(svc, req)
    multipart.upload_key(svc, upload, customer)  # a missing or wrong SSE-C key: refused before the body
    body = req.body(also_compute=upload.checksum_algorithm)
    part = multipart.upload_part(svc, req.caller, upload, number, body, body.length, customer)
    out = {"ETag": f'"{part.etag}"'}
    out.update(encryption_headers.response_headers(svc, upload.encryption, customer))
    for algorithm, value in part.checksums.items():
        out[f"x-amz-checksum-{algorithm.lower()}"] = value
    return S3Result(headers=out)


def _sent_checksum_algorithm(req) -> str | None:
    """The checksum algorithm a request body carries (header, trailer or SDK hint)."""
    trailers = {n.strip().lower() for n in req.headers.get("x-amz-trailer", "").split(",")}
    for algorithm in CHECKSUM_ALGORITHMS:
        name = f"x-amz-checksum-{algorithm.lower()}"
        if name in req.headers or name in trailers:
            return algorithm
    hint = req.headers.get("x-amz-sdk-checksum-algorithm")
    return hint.upper() if hint else None


@handles("UploadPartCopy")
def upload_part_copy(svc, req) -> S3Result:
    number = multipart.parse_part_number(req.query.get("partNumber"))
    upload = multipart.open_upload(svc, req.caller, req.bucket, req.key, req.query["uploadId"])
    src_bucket, src_key, src_version = h.copy_source(req.headers["x-amz-copy-source"])
    customer = encryption_headers.customer_key(svc, req)
    multipart.upload_key(svc, upload, customer)
    read = copy.open_source(svc, req.caller, src_bucket, src_key, src_version,
                            encryption_headers.customer_key(svc, req, copy_source=True))
    try:
        check_read(h.conditions(req.headers, prefix="x-amz-copy-source-"), read.record.etag,
                   read.record.last_modified, copy_source=True)
        span = _copy_range(req.headers.get("x-amz-copy-source-range"), read.record.size)
        part = multipart.upload_part_copy(svc, req.caller, upload, number, read.record, read.blob, span, customer)
    finally:
        read.blob.close()
    out = encryption_headers.response_headers(svc, upload.encryption, customer)
    if src_version is not None or read.record.version_id != NULL_VERSION:
        out["x-amz-copy-source-version-id"] = read.record.version_id
    return S3Result(headers=out, xml=xml.document("CopyPartResult", [
        xml.el("LastModified", xml.iso8601(part.last_modified)), f"<ETag>&quot;{part.etag}&quot;</ETag>"]))


def _copy_range(value: str | None, size: int) -> tuple[int, int] | None:
    """x-amz-copy-source-range: bytes=first-last, both required and inside the object."""
    if value is None:
        return None
    try:
        if not value.strip().startswith("bytes="):
            raise ValueError(value)
        first, last = (int(v) for v in value.strip()[len("bytes="):].split("-"))
    except ValueError:
        raise errors.InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last "
                                     "where first and last are the zero-based offsets of the first and last bytes "
                                     "to copy", ArgumentName="x-amz-copy-source-range", ArgumentValue=value) from None
    if first > last or last >= size:
        raise errors.InvalidRange(ActualObjectSize=size, RangeRequested=value)
    return first, last + 1


@handles("CompleteMultipartUpload")
def complete_multipart_upload(svc, req) -> S3Result:
    require_writable_bucket(svc, req)
    # Its x-amz-checksum-* headers describe the whole object, not this XML body.
    root = xml.parse(req.small_body(verify_checksums=False))
    if xml.local(root.tag) != "CompleteMultipartUpload":
        raise errors.MalformedXML()
    requested = []
    for node in root:
        if xml.local(node.tag) != "Part":
            continue
        number, etag = xml.child_text(node, "PartNumber"), xml.child_text(node, "ETag")
        if number is None or etag is None:
            raise errors.MalformedXML()
        checksums = {alg: value for alg in CHECKSUM_ALGORITHMS
                     if (value := xml.child_text(node, f"Checksum{alg}")) is not None}
        try:
            requested.append(multipart.RequestedPart(int(number), etag, checksums))
        except ValueError:
            raise errors.MalformedXML() from None
    object_checksum = {alg: req.headers[f"x-amz-checksum-{alg.lower()}"] for alg in CHECKSUM_ALGORITHMS
                       if f"x-amz-checksum-{alg.lower()}" in req.headers}
    _check_object_size(svc, req, requested)
    customer = encryption_headers.customer_key(svc, req)  # optional here; checked when sent
    if customer is not None:
        multipart.upload_key(svc, multipart.open_upload(svc, req.caller, req.bucket, req.key,
                                                        req.query["uploadId"]), customer)
    done = multipart.complete_multipart_upload(svc, req.caller, req.bucket, req.key, req.query["uploadId"],
                                               requested, object_checksum)
    base = svc.settings.public_url or f"{req.environ['wsgi.url_scheme']}://{req.headers.get('Host', '')}"
    fields = [xml.el("Location", f"{base}/{done.bucket}/{quote(done.key, safe='/')}"), xml.el("Bucket", done.bucket),
              xml.el("Key", done.key), f"<ETag>&quot;{done.etag}&quot;</ETag>"]
    if done.checksum is not None:
        fields += [xml.el(f"Checksum{done.checksum_algorithm}", done.checksum),
                   xml.el("ChecksumType", done.checksum_type)]
    out = encryption_headers.response_headers(svc, done.encryption, customer)
    if done.version_id not in (None, NULL_VERSION):
        out["x-amz-version-id"] = done.version_id
    return S3Result(headers=out, xml=xml.document("CompleteMultipartUploadResult", fields))


def _check_object_size(svc, req, requested: list) -> None:
    """x-amz-mp-object-size: the parts named must add up to it, else InvalidRequest
    (before completing). Parts are matched by number and ETag, as completion does."""
    value = req.headers.get("x-amz-mp-object-size")
    if value is None:
        return
    if not value.strip().isdigit():
        raise errors.InvalidArgument("x-amz-mp-object-size must be a non-negative integer",
                                     ArgumentName="x-amz-mp-object-size", ArgumentValue=value)
    wanted = {p.part_number: p.etag.strip().strip('"') for p in requested}
    sizes, marker = {}, 0
    try:
        while True:
            _, parts, truncated = multipart.list_parts(svc, req.caller, req.bucket, req.key, req.query["uploadId"],
                                                       marker, MAX_LIST)
            sizes.update((p.part_number, p.size) for p in parts if wanted.get(p.part_number) == p.etag)
            if not truncated or not parts:
                break
            marker = parts[-1].part_number
    except errors.NoSuchUpload:
        return  # gone (or a retry of a finished completion): completing says which
    except errors.AccessDenied:
        raise errors.NotImplemented("x-amz-mp-object-size is only checked for callers who may list the parts.",
                                    Header="x-amz-mp-object-size") from None
    if len(sizes) == len(wanted) and sum(sizes.values()) != int(value):
        raise errors.InvalidRequest(f"The x-amz-mp-object-size header ({int(value)}) does not match the size of "
                                    f"the parts listed ({sum(sizes.values())} bytes).")
    # A part not found: completing answers InvalidPart.


@handles("AbortMultipartUpload")
def abort_multipart_upload(svc, req) -> S3Result:
    multipart.abort_multipart_upload(svc, req.caller, req.bucket, req.key, req.query["uploadId"])
    return S3Result(status=204)


def _bounded_int(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise errors.InvalidArgument(f"Provided {name} not an integer or within integer range",
                                     ArgumentName=name, ArgumentValue=value) from None
    if number < 0:
        raise errors.InvalidArgument(f"Argument {name} must be an integer between 0 and 2147483647",
                                     ArgumentName=name, ArgumentValue=value)
    return min(number, MAX_LIST)


@handles("ListParts")
def list_parts(svc, req) -> S3Result:
    marker = _bounded_int(req.query.get("part-number-marker"), "part-number-marker", 0)
    max_parts = _bounded_int(req.query.get("max-parts"), "max-parts", MAX_LIST)
    upload, parts, truncated = multipart.list_parts(svc, req.caller, req.bucket, req.key, req.query["uploadId"],
                                                    marker, max_parts)
    people = xml.owner(upload.owner_id, upload.owner_display_name)
    fields = [xml.el("Bucket", upload.bucket), xml.el("Key", upload.key), xml.el("UploadId", upload.upload_id),
              people.replace("Owner>", "Initiator>"), people, xml.el("StorageClass", upload.storage_class),
              xml.el("PartNumberMarker", marker)]
    if parts:
        fields.append(xml.el("NextPartNumberMarker", parts[-1].part_number))
    fields += [xml.el("MaxParts", max_parts), xml.el("IsTruncated", "true" if truncated else "false")]
    if upload.checksum_algorithm:
        fields += [xml.el("ChecksumAlgorithm", upload.checksum_algorithm),
                   xml.el("ChecksumType", upload.checksum_type)]
    for p in parts:
        sums = "".join(xml.el(f"Checksum{alg}", v) for alg, v in p.checksums.items())
        fields.append(f"<Part>{xml.el('PartNumber', p.part_number)}{xml.el('LastModified', xml.iso8601(p.last_modified))}"
                      f"<ETag>&quot;{p.etag}&quot;</ETag>{xml.el('Size', p.size)}{sums}</Part>")
    return S3Result(xml=xml.document("ListPartsResult", fields))


@handles("ListMultipartUploads")
def list_multipart_uploads(svc, req) -> S3Result:
    q = req.query
    enc = _encoder(req)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    max_uploads = _bounded_int(q.get("max-uploads"), "max-uploads", MAX_LIST)
    page = multipart.list_multipart_uploads(svc, req.caller, req.bucket, prefix, delimiter, key_marker,
                                            id_marker if key_marker else "", max_uploads)
    fields = [xml.el("Bucket", req.bucket), xml.el("KeyMarker", enc(key_marker)), xml.el("UploadIdMarker", id_marker)]
    if page.is_truncated:
        fields += [xml.el("NextKeyMarker", enc(page.next_key_marker or "")),
                   xml.el("NextUploadIdMarker", page.next_upload_id_marker or "")]
    if delimiter:
        fields.append(xml.el("Delimiter", enc(delimiter)))
    fields += [xml.el("Prefix", enc(prefix)), xml.el("MaxUploads", max_uploads),
               xml.el("IsTruncated", "true" if page.is_truncated else "false")]
    if "encoding-type" in q:
        fields.append(xml.el("EncodingType", "url"))
    for key, upload_id, initiated, owner_id, owner_name, storage_class in page.uploads:
        people = xml.owner(owner_id, owner_name)
        fields.append(f"<Upload>{xml.el('Key', enc(key))}{xml.el('UploadId', upload_id)}"
                      f"{people.replace('Owner>', 'Initiator>')}{people}{xml.el('StorageClass', storage_class)}"
                      f"{xml.el('Initiated', xml.iso8601(initiated))}</Upload>")
    fields += [f"<CommonPrefixes>{xml.el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes]
    return S3Result(xml=xml.document("ListMultipartUploadsResult", fields))
