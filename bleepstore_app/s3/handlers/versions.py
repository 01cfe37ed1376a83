"""Versioning operations: GetBucketVersioning, PutBucketVersioning, ListObjectVersions."""
from __future__ import annotations

from ... import errors
from ...service import listing, versions
from .. import xml
from ..responses import S3Result
from . import handles
from .listing import _encoder, key_texts


@handles("GetBucketVersioning")
def get_bucket_versioning(svc, req) -> S3Result:
    status = versions.get_bucket_versioning(svc, req.caller, req.bucket)
    # Never versioned: no Status element (neither Enabled nor Suspended).
    if status is None:
        return S3Result(xml=xml.empty_document("VersioningConfiguration"))
    return S3Result(xml=xml.document("VersioningConfiguration", xml.el("Status", status)))


@handles("PutBucketVersioning")
def put_bucket_versioning(svc, req) -> S3Result:
    root = xml.parse(req.small_body())
    if xml.local(root.tag) != "VersioningConfiguration":
        raise errors.MalformedXML()
    versions.put_bucket_versioning(svc, req.caller, req.bucket, xml.child_text(root, "Status"),
                                   xml.child_text(root, "MfaDelete"), req.headers.get("x-amz-mfa"))
    return S3Result()


@handles("ListObjectVersions")
def list_object_versions(svc, req) -> S3Result:
    q = req.query
    enc = _encoder(req)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, version_id_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    max_keys = listing.parse_max_keys(q.get("max-keys"))
    page = versions.list_object_versions(svc, req.caller, req.bucket, prefix, delimiter, key_marker,
                                         version_id_marker, max_keys)
    head = [xml.el("Name", req.bucket), xml.el("Prefix", enc(prefix)), xml.el("KeyMarker", enc(key_marker)),
            xml.el("VersionIdMarker", version_id_marker)]
    if page.is_truncated:
        head.append(xml.el("NextKeyMarker", enc(page.next_key_marker)))
        if page.next_version_id_marker is not None:
            head.append(xml.el("NextVersionIdMarker", page.next_version_id_marker))
    head.append(xml.el("MaxKeys", max_keys))
    if delimiter:
        head.append(xml.el("Delimiter", enc(delimiter)))
    if "encoding-type" in q:
        head.append(xml.el("EncodingType", "url"))
    head.append(xml.el("IsTruncated", "true" if page.is_truncated else "false"))
    return S3Result(xml=xml.document("ListVersionsResult", head + _entries(page, enc)))


def _entries(page, enc) -> list[str]:
    """The Version, DeleteMarker and CommonPrefixes elements, one string each
    from f-strings (a page is a thousand entries, the hot path of this
    operation). Repeating fragments (an owner, a second's timestamp) come from
    caches; version ids and ETags are hex and storage classes are names, which
    need no escaping."""
    parts = []
    append = parts.append
    iso8601, owner = xml.iso8601, xml.owner  # owner is cached
    rows = page.versions
    for key, (_key, version_id, _seq, is_latest, marker, size, etag, modified, storage_class, owner_id,
              owner_name) in zip(key_texts([r[0] for r in rows], enc), rows):
        latest = "true" if is_latest else "false"
        if marker:
            append(f"<DeleteMarker><Key>{key}</Key><VersionId>{version_id}</VersionId><IsLatest>{latest}</IsLatest>"
                   f"<LastModified>{iso8601(modified)}</LastModified>{owner(owner_id, owner_name)}</DeleteMarker>")
        else:
            append(f"<Version><Key>{key}</Key><VersionId>{version_id}</VersionId><IsLatest>{latest}</IsLatest>"
                   f"<LastModified>{iso8601(modified)}</LastModified><ETag>&quot;{etag}&quot;</ETag>"
                   f"<Size>{size}</Size>{owner(owner_id, owner_name)}<StorageClass>{storage_class}</StorageClass>"
                   f"</Version>")
    parts.extend(f"<CommonPrefixes>{xml.el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes)
    return parts
