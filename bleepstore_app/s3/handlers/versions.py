"""Versioning operations: GetBucketVersioning, PutBucketVersioning, ListObjectVersions."""
from __future__ import annotations

from ... import errors
from ...service import listing, versions
from .. import xml
from ..responses import S3Result
from . import handles
from .listing import _encoder


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
    return S3Result(xml=xml.document("ListVersionsResult", head + [_entries(page, enc)]))


def _entries(page, enc) -> str:
    parts = []
    text, iso8601, owner = xml.text, xml.iso8601, xml.owner  # owner is cached
    for v in page.versions:
        common = (f"<Key>{text(enc(v.key))}</Key><VersionId>{v.version_id}</VersionId>"  # ids need no escaping
                  f"<IsLatest>{'true' if v.is_latest else 'false'}</IsLatest>"
                  f"<LastModified>{iso8601(v.last_modified)}</LastModified>")
        if v.delete_marker:
            parts.append(f"<DeleteMarker>{common}{owner(v.owner_id, v.owner_display_name)}</DeleteMarker>")
        else:
            parts.append(f"<Version>{common}<ETag>&quot;{v.etag}&quot;</ETag><Size>{v.size}</Size>"
                         f"{owner(v.owner_id, v.owner_display_name)}<StorageClass>{v.storage_class}</StorageClass>"
                         f"</Version>")
    parts.extend(f"<CommonPrefixes>{xml.el('Prefix', enc(p))}</CommonPrefixes>" for p in page.common_prefixes)
    return "".join(parts)
