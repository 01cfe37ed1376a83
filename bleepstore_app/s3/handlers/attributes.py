"""GetObjectAttributes (GET /bucket/key?attributes)."""
from __future__ import annotations

from ...metadata.tables import NULL_VERSION
from ...service import attributes
from .. import headers as h
from .. import sse as encryption_headers
from .. import xml
from ..responses import S3Result
from . import handles
from .multipart import _bounded_int

_CHECKSUM_ORDER = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")  # AWS's element order


@handles("GetObjectAttributes")
def get_object_attributes(svc, req) -> S3Result:
    wanted = attributes.parse_attribute_names(req.headers.getlist("x-amz-object-attributes"))
    marker = _bounded_int(req.headers.get("x-amz-part-number-marker"), "part-number-marker", 0)
    max_parts = _bounded_int(req.headers.get("x-amz-max-parts"), "max-parts", attributes.DEFAULT_MAX_PARTS)
    version_id = req.query.get("versionId")
    result = attributes.get_object_attributes(
        svc, req.caller, req.bucket, req.key, version_id=version_id,
        customer=encryption_headers.customer_key(svc, req), marker=marker, max_parts=max_parts)
    record = result.version.record
    fields = []
    if "ETag" in wanted:
        fields.append(xml.el("ETag", record.etag))  # unquoted, as S3 writes it here
    if "Checksum" in wanted and result.checksums:
        fields.append("<Checksum>" + _checksums(result.checksums)
                      + xml.el("ChecksumType", result.checksum_type) + "</Checksum>")
    if "ObjectParts" in wanted and result.parts is not None:
        fields.append(_object_parts(result.parts))
    if "StorageClass" in wanted:
        fields.append(xml.el("StorageClass", record.storage_class))
    if "ObjectSize" in wanted:
        fields.append(xml.el("ObjectSize", record.size))
    out = {"Last-Modified": h.http_date(record.last_modified)}
    if record.version_id != NULL_VERSION or version_id is not None:
        out["x-amz-version-id"] = record.version_id
    return S3Result(headers=out, xml=xml.document("GetObjectAttributesResponse", fields))


def _checksums(values: dict) -> str:
    return "".join(xml.el(f"Checksum{alg}", values[alg]) for alg in _CHECKSUM_ORDER if alg in values)


def _object_parts(page: attributes.PartsPage) -> str:
    """ObjectParts: only the count when the parts carry no checksum (as S3)."""
    if page.parts is None:
        return f"<ObjectParts>{xml.el('PartsCount', page.total)}</ObjectParts>"
    inner = [xml.el("PartNumberMarker", page.marker)]
    if page.next_marker is not None:
        inner.append(xml.el("NextPartNumberMarker", page.next_marker))
    inner += [xml.el("MaxParts", page.max_parts), xml.el("IsTruncated", "true" if page.truncated else "false")]
    for number, size, checksums in page.parts:
        inner.append(f"<Part>{_checksums(checksums)}{xml.el('PartNumber', number)}{xml.el('Size', size)}</Part>")
    inner.append(xml.el("PartsCount", page.total))
    return "<ObjectParts>" + "".join(inner) + "</ObjectParts>"
