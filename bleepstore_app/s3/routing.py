"""Which S3 operation a request is: a table plus a pure ``resolve`` function.

A request is classified by method, level (service / bucket / object), the query
subresources present (``?acl``, ``?uploads``, ``?uploadId=``...), and sometimes a
header (``x-amz-copy-source``). A subresource S3 has but this table lacks is
NotImplemented, and so is a routed operation without a handler yet; a request
never falls through to a different operation.
The same table feeds the OpenAPI description, so the two cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .. import errors


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    level: str                         # "service", "bucket" or "object"
    subresources: frozenset[str] = frozenset()
    header: str | None = None          # a header that must be present
    query_equals: tuple[str, str] | None = None  # e.g. ("list-type", "2")


def _r(operation, method, level, *subresources, header=None, query_equals=None) -> Route:
    return Route(operation, method, level, frozenset(subresources), header, query_equals)


ROUTES: tuple[Route, ...] = (
    _r("ListBuckets", "GET", "service"),
    _r("CreateBucket", "PUT", "bucket"),
    _r("DeleteBucket", "DELETE", "bucket"),
    _r("HeadBucket", "HEAD", "bucket"),
    _r("GetBucketLocation", "GET", "bucket", "location"),
    _r("ListObjectsV2", "GET", "bucket", query_equals=("list-type", "2")),
    _r("ListObjects", "GET", "bucket"),
    _r("GetBucketAcl", "GET", "bucket", "acl"),
    _r("PutBucketAcl", "PUT", "bucket", "acl"),
    _r("DeleteObjects", "POST", "bucket", "delete"),
    _r("PostObject", "POST", "bucket"),  # a browser form upload (s3/form.py)
    _r("ListMultipartUploads", "GET", "bucket", "uploads"),
    _r("PutObject", "PUT", "object"),
    _r("CopyObject", "PUT", "object", header="x-amz-copy-source"),
    _r("GetObject", "GET", "object"),
    _r("HeadObject", "HEAD", "object"),
    _r("DeleteObject", "DELETE", "object"),
    _r("GetObjectAcl", "GET", "object", "acl"),
    _r("PutObjectAcl", "PUT", "object", "acl"),
    _r("CreateMultipartUpload", "POST", "object", "uploads"),
    _r("UploadPart", "PUT", "object", "uploadId"),
    _r("UploadPartCopy", "PUT", "object", "uploadId", header="x-amz-copy-source"),
    _r("CompleteMultipartUpload", "POST", "object", "uploadId"),
    _r("AbortMultipartUpload", "DELETE", "object", "uploadId"),
    _r("ListParts", "GET", "object", "uploadId"),
    _r("GetBucketVersioning", "GET", "bucket", "versioning"),
    _r("PutBucketVersioning", "PUT", "bucket", "versioning"),
    _r("ListObjectVersions", "GET", "bucket", "versions"),
    _r("GetObjectLockConfiguration", "GET", "bucket", "object-lock"),
    _r("PutObjectLockConfiguration", "PUT", "bucket", "object-lock"),
    _r("GetObjectRetention", "GET", "object", "retention"),
    _r("PutObjectRetention", "PUT", "object", "retention"),
    _r("GetObjectLegalHold", "GET", "object", "legal-hold"),
    _r("PutObjectLegalHold", "PUT", "object", "legal-hold"),
    _r("GetBucketEncryption", "GET", "bucket", "encryption"),
    _r("PutBucketEncryption", "PUT", "bucket", "encryption"),
    _r("DeleteBucketEncryption", "DELETE", "bucket", "encryption"),
    _r("GetObjectTagging", "GET", "object", "tagging"),
    _r("PutObjectTagging", "PUT", "object", "tagging"),
    _r("DeleteObjectTagging", "DELETE", "object", "tagging"),
    _r("GetBucketTagging", "GET", "bucket", "tagging"),
    _r("PutBucketTagging", "PUT", "bucket", "tagging"),
    _r("DeleteBucketTagging", "DELETE", "bucket", "tagging"),
    # PutBucketLifecycleConfiguration also takes the older PutBucketLifecycle document.
    _r("GetBucketLifecycleConfiguration", "GET", "bucket", "lifecycle"),
    _r("PutBucketLifecycleConfiguration", "PUT", "bucket", "lifecycle"),
    _r("DeleteBucketLifecycle", "DELETE", "bucket", "lifecycle"),
    _r("GetObjectAttributes", "GET", "object", "attributes"),
    _r("GetBucketCors", "GET", "bucket", "cors"),
    _r("PutBucketCors", "PUT", "bucket", "cors"),
    _r("DeleteBucketCors", "DELETE", "bucket", "cors"),
    _r("GetBucketPolicy", "GET", "bucket", "policy"),
    _r("PutBucketPolicy", "PUT", "bucket", "policy"),
    _r("DeleteBucketPolicy", "DELETE", "bucket", "policy"),
    _r("GetBucketPolicyStatus", "GET", "bucket", "policyStatus"),
    _r("GetPublicAccessBlock", "GET", "bucket", "publicAccessBlock"),
    _r("PutPublicAccessBlock", "PUT", "bucket", "publicAccessBlock"),
    _r("DeletePublicAccessBlock", "DELETE", "bucket", "publicAccessBlock"),
    _r("GetBucketOwnershipControls", "GET", "bucket", "ownershipControls"),
    _r("PutBucketOwnershipControls", "PUT", "bucket", "ownershipControls"),
    _r("DeleteBucketOwnershipControls", "DELETE", "bucket", "ownershipControls"),
    # Reads of configurations BleepStore never holds (their Put/Delete stay unrouted,
    # so NotImplemented): the empty answer or the "not found" error S3 defines.
    _r("GetBucketWebsite", "GET", "bucket", "website"),
    _r("GetBucketReplication", "GET", "bucket", "replication"),
    _r("GetBucketLogging", "GET", "bucket", "logging"),
    _r("GetBucketNotificationConfiguration", "GET", "bucket", "notification"),
    _r("GetBucketRequestPayment", "GET", "bucket", "requestPayment"),
    _r("GetBucketAccelerateConfiguration", "GET", "bucket", "accelerate"),
)

# Every query parameter that names a subresource in S3's API. Any of these that
# no route above claims is answered NotImplemented.
SUBRESOURCES = frozenset({
    "abac", "accelerate", "acl", "analytics", "annotation", "attributes", "cors", "delete", "encryption",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
    "metadataAnnotationTable", "metadataConfiguration", "metadataInventoryTable", "metadataJournalTable",
    "metadataTable", "metrics", "notification", "object-lock",
    "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "renameObject",
    "replication", "requestPayment", "restore", "retention", "select", "session", "tagging",
    "torrent", "uploadId", "uploads", "versioning", "versions", "website",
})


def _specificity(route: Route) -> int:
    # Routes with more conditions are tried first; order in ROUTES does not matter.
    return -(len(route.subresources) * 4 + (route.header is not None) * 2 + (route.query_equals is not None))


_BY_TARGET: dict[tuple[str, str], list[Route]] = {}
for _route in sorted(ROUTES, key=_specificity):
    _BY_TARGET.setdefault((_route.level, _route.method), []).append(_route)


def level_of(bucket: str | None, key: str | None) -> str:
    if not bucket:
        return "service"
    return "object" if key else "bucket"


def resolve(method: str, bucket: str | None, key: str | None, query: Mapping[str, str],
            headers: Mapping[str, str]) -> str:
    """The AWS operation name for a request, or an S3Error saying why there is none."""
    level = level_of(bucket, key)
    present = frozenset(name for name in query if name in SUBRESOURCES)
    for route in _BY_TARGET.get((level, method), ()):
        if route.subresources != present:
            continue
        if route.header and route.header not in headers:
            continue
        if route.query_equals and query.get(route.query_equals[0]) != route.query_equals[1]:
            continue
        return route.operation
    if present:
        raise errors.NotImplemented(
            f"The {', '.join(sorted(present))} subresource is not implemented for {method} requests.")
    raise errors.MethodNotAllowed(Method=method, ResourceType=level.upper())

