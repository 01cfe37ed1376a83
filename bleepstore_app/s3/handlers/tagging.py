"""Tagging operations: GetObjectTagging, PutObjectTagging, DeleteObjectTagging,
GetBucketTagging, PutBucketTagging, DeleteBucketTagging."""
from __future__ import annotations

from ... import errors
from ...metadata.tables import NULL_VERSION
from ...service import tagging
from .. import xml
from ..responses import S3Result
from . import handles
from .objects import require_integrity_header


def _tag_set(req, for_bucket: bool) -> dict:
    """The ``<Tagging><TagSet><Tag><Key/><Value/></Tag>...`` document, validated."""
    root = xml.parse(req.small_body())
    sets = [child for child in root if xml.local(child.tag) == "TagSet"]
    if xml.local(root.tag) != "Tagging" or len(sets) != 1:
        raise errors.MalformedXML()
    pairs = []
    for tag in sets[0]:
        if xml.local(tag.tag) != "Tag":
            raise errors.MalformedXML()
        names = [xml.local(child.tag) for child in tag]
        key, value = xml.child_text(tag, "Key"), xml.child_text(tag, "Value")
        if key is None or value is None or len(names) != 2:
            raise errors.MalformedXML()
        pairs.append((key, value))
    return tagging.validate(pairs, for_bucket=for_bucket)


def _document(tags: dict) -> str:
    inner = "".join(f"<Tag>{xml.el('Key', k)}{xml.el('Value', v)}</Tag>" for k, v in tags.items())
    return xml.document("Tagging", f"<TagSet>{inner}</TagSet>")


def _version_header(svc, req, version_id: str) -> dict:
    """x-amz-version-id: every version of a versioned (or suspended) bucket has one,
    "null" included; a never-versioned bucket's objects have none."""
    if version_id != NULL_VERSION or req.query.get("versionId") is not None:
        return {"x-amz-version-id": version_id}
    bucket = svc.meta.get_bucket(req.bucket)
    return {"x-amz-version-id": version_id} if bucket is not None and bucket.versioning else {}


@handles("GetObjectTagging")
def get_object_tagging(svc, req) -> S3Result:
    tags, version_id = tagging.get_object_tagging(svc, req.caller, req.bucket, req.key, req.query.get("versionId"))
    return S3Result(headers=_version_header(svc, req, version_id), xml=_document(tags))


@handles("PutObjectTagging")
def put_object_tagging(svc, req) -> S3Result:
    version = req.query.get("versionId")
    tagging.check_object_tagging(svc, req.caller, req.bucket, req.key, version)  # before the body is read
    require_integrity_header(req, "Put Object Tagging requests")
    tags = _tag_set(req, for_bucket=False)
    tagged = tagging.put_object_tagging(svc, req.caller, req.bucket, req.key, version, tags)
    return S3Result(headers=_version_header(svc, req, tagged))


@handles("DeleteObjectTagging")
def delete_object_tagging(svc, req) -> S3Result:
    tagged = tagging.put_object_tagging(svc, req.caller, req.bucket, req.key, req.query.get("versionId"), {})
    return S3Result(status=204, headers=_version_header(svc, req, tagged))


@handles("GetBucketTagging")
def get_bucket_tagging(svc, req) -> S3Result:
    return S3Result(xml=_document(tagging.get_bucket_tagging(svc, req.caller, req.bucket)))


@handles("PutBucketTagging")
def put_bucket_tagging(svc, req) -> S3Result:
    tagging.check_bucket_tagging(svc, req.caller, req.bucket)  # before the body is read
    require_integrity_header(req, "Put Bucket Tagging requests")
    tagging.put_bucket_tagging(svc, req.caller, req.bucket, _tag_set(req, for_bucket=True))
    return S3Result(status=204)


@handles("DeleteBucketTagging")
def delete_bucket_tagging(svc, req) -> S3Result:
    tagging.put_bucket_tagging(svc, req.caller, req.bucket, None)
    return S3Result(status=204)
