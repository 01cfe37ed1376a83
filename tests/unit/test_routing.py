"""Unit tests for bleepstore_app.s3.routing.resolve().

Reference: the AWS S3 API Reference request syntax of each operation (mirrored by
botocore's S3 service model, whose ``requestUri`` fields are used below).
"""
from __future__ import annotations

import pytest
from botocore.loaders import Loader
from werkzeug.datastructures import Headers

from bleepstore_app import errors
from bleepstore_app.s3.routing import ROUTES, SUBRESOURCES, level_of, resolve


def q(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            out.setdefault(name, value)
    return out


# (method, bucket, key, query, headers) -> operation
OPERATIONS = [
    ("GET", None, None, "", {}, "ListBuckets"),
    ("GET", None, None, "max-buckets=10&prefix=a", {}, "ListBuckets"),
    ("GET", "b", None, "", {}, "ListObjects"),
    ("GET", "b", None, "prefix=a&delimiter=%2F&marker=x&max-keys=5", {}, "ListObjects"),
    ("GET", "b", None, "list-type=2", {}, "ListObjectsV2"),
    ("GET", "b", None, "list-type=2&prefix=a&continuation-token=t&start-after=s", {}, "ListObjectsV2"),
    ("GET", "b", None, "prefix=a&list-type=2", {}, "ListObjectsV2"),
    ("GET", "b", None, "list-type=1", {}, "ListObjects"),
    ("GET", "b", None, "encoding-type=url", {}, "ListObjects"),
    ("GET", "b", None, "location", {}, "GetBucketLocation"),
    ("GET", "b", None, "location=", {}, "GetBucketLocation"),
    ("PUT", "b", None, "", {}, "CreateBucket"),
    ("PUT", "b", None, "", {"x-amz-acl": "private"}, "CreateBucket"),
    ("DELETE", "b", None, "", {}, "DeleteBucket"),
    ("HEAD", "b", None, "", {}, "HeadBucket"),
    ("PUT", "b", "k", "", {}, "PutObject"),
    ("PUT", "b", "dir/sub/k", "", {"Content-Type": "text/plain"}, "PutObject"),
    ("GET", "b", "k", "", {}, "GetObject"),
    ("GET", "b", "k", "response-content-type=text%2Fplain", {}, "GetObject"),
    ("GET", "b", "k", "x-id=GetObject", {}, "GetObject"),
    ("GET", "b", "k", "partNumber=1", {}, "GetObject"),
    ("GET", "b", "k", "list-type=2", {}, "GetObject"),
    ("HEAD", "b", "k", "", {}, "HeadObject"),
    ("DELETE", "b", "k", "", {}, "DeleteObject"),
    ("GET", "b", None, "acl", {}, "GetBucketAcl"),
    ("PUT", "b", None, "acl", {}, "PutBucketAcl"),
    ("GET", "b", None, "uploads", {}, "ListMultipartUploads"),
    ("POST", "b", None, "delete", {}, "DeleteObjects"),
    ("POST", "b", None, "", {}, "PostObject"),
    ("POST", "b", None, "x-id=PostObject", {}, "PostObject"),
    ("GET", "b", "k", "acl", {}, "GetObjectAcl"),
    ("PUT", "b", "k", "acl", {}, "PutObjectAcl"),
    ("PUT", "b", "k", "", {"x-amz-copy-source": "/src-bucket/src-key"}, "CopyObject"),
    ("POST", "b", "k", "uploads", {}, "CreateMultipartUpload"),
    ("PUT", "b", "k", "partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "b", "k", "partNumber=1&uploadId=u", {"x-amz-copy-source": "/s/k"}, "UploadPartCopy"),
    ("POST", "b", "k", "uploadId=u", {}, "CompleteMultipartUpload"),
    ("DELETE", "b", "k", "uploadId=u", {}, "AbortMultipartUpload"),
    ("GET", "b", "k", "uploadId=u", {}, "ListParts"),
    # Versioning and Object Lock.
    ("PUT", "b", None, "versioning", {}, "PutBucketVersioning"),
    ("GET", "b", None, "versions", {}, "ListObjectVersions"),
    ("GET", "b", None, "versions&prefix=a&key-marker=k", {}, "ListObjectVersions"),
    ("PUT", "b", None, "object-lock", {}, "PutObjectLockConfiguration"),
    ("GET", "b", "k", "retention", {}, "GetObjectRetention"),
    ("PUT", "b", "k", "retention&versionId=v", {}, "PutObjectRetention"),
    ("GET", "b", "k", "legal-hold", {}, "GetObjectLegalHold"),
    ("PUT", "b", "k", "legal-hold", {}, "PutObjectLegalHold"),
    ("GET", "b", "k", "versionId=v", {}, "GetObject"),
    # Reads of configurations that are never set (s3/handlers/bucket_config.py).
    ("GET", "b", None, "versioning", {}, "GetBucketVersioning"),
    ("GET", "b", None, "versioning=", {}, "GetBucketVersioning"),
    ("GET", "b", None, "list-type=2&versioning", {}, "GetBucketVersioning"),  # the subresource decides
    ("GET", "b", None, "cors", {}, "GetBucketCors"),
    ("PUT", "b", None, "cors", {}, "PutBucketCors"),
    ("DELETE", "b", None, "cors", {}, "DeleteBucketCors"),
    ("PUT", "b", None, "policy", {}, "PutBucketPolicy"),
    ("DELETE", "b", None, "policy", {}, "DeleteBucketPolicy"),
    ("PUT", "b", None, "ownershipControls", {}, "PutBucketOwnershipControls"),
    ("DELETE", "b", None, "ownershipControls", {}, "DeleteBucketOwnershipControls"),
    ("PUT", "b", None, "publicAccessBlock", {}, "PutPublicAccessBlock"),
    ("DELETE", "b", None, "publicAccessBlock", {}, "DeletePublicAccessBlock"),
    ("GET", "b", None, "tagging", {}, "GetBucketTagging"),
    ("GET", "b", "k", "tagging", {}, "GetObjectTagging"),
    ("GET", "b", "k", "tagging&versionId=null", {}, "GetObjectTagging"),
    ("GET", "b", None, "policy", {}, "GetBucketPolicy"),
    ("GET", "b", None, "policyStatus", {}, "GetBucketPolicyStatus"),
    ("PUT", "b", None, "policy", {}, "PutBucketPolicy"),
    ("DELETE", "b", None, "policy", {}, "DeleteBucketPolicy"),
    ("PUT", "b", None, "publicAccessBlock", {}, "PutPublicAccessBlock"),
    ("DELETE", "b", None, "publicAccessBlock", {}, "DeletePublicAccessBlock"),
    ("PUT", "b", None, "ownershipControls", {}, "PutBucketOwnershipControls"),
    ("DELETE", "b", None, "ownershipControls", {}, "DeleteBucketOwnershipControls"),
    ("GET", "b", None, "lifecycle", {}, "GetBucketLifecycleConfiguration"),
    ("PUT", "b", None, "lifecycle", {}, "PutBucketLifecycleConfiguration"),
    ("DELETE", "b", None, "lifecycle", {}, "DeleteBucketLifecycle"),
    ("PUT", "b", None, "tagging", {}, "PutBucketTagging"),
    ("DELETE", "b", None, "tagging", {}, "DeleteBucketTagging"),
    ("PUT", "b", "k", "tagging&versionId=v1", {}, "PutObjectTagging"),
    ("DELETE", "b", "k", "tagging", {}, "DeleteObjectTagging"),
    ("GET", "b", "k", "attributes&versionId=v1", {}, "GetObjectAttributes"),
    ("GET", "b", None, "encryption", {}, "GetBucketEncryption"),
    ("PUT", "b", None, "encryption", {}, "PutBucketEncryption"),
    ("DELETE", "b", None, "encryption", {}, "DeleteBucketEncryption"),
    ("GET", "b", None, "website", {}, "GetBucketWebsite"),
    ("GET", "b", None, "object-lock", {}, "GetObjectLockConfiguration"),
    ("GET", "b", None, "replication", {}, "GetBucketReplication"),
    ("GET", "b", None, "publicAccessBlock", {}, "GetPublicAccessBlock"),
    ("GET", "b", None, "ownershipControls", {}, "GetBucketOwnershipControls"),
    ("GET", "b", None, "logging", {}, "GetBucketLogging"),
    ("GET", "b", None, "notification", {}, "GetBucketNotificationConfiguration"),
    ("GET", "b", None, "requestPayment", {}, "GetBucketRequestPayment"),
    ("GET", "b", None, "accelerate", {}, "GetBucketAccelerateConfiguration"),
    # Presigned URLs carry X-Amz-* parameters, which are not subresources.
    ("GET", "b", "k", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc", {}, "GetObject"),
    ("GET", "b", None, "X-Amz-Algorithm=AWS4-HMAC-SHA256&list-type=2", {}, "ListObjectsV2"),
]


@pytest.mark.parametrize("method, bucket, key, query, headers, operation", OPERATIONS,
                         ids=[f"{m} /{b or ''}{'/' + k if k else ''}?{qs}" for m, b, k, qs, _, __ in OPERATIONS])
def test_resolve_operation(method, bucket, key, query, headers, operation):
    assert resolve(method, bucket, key, q(query), Headers(list(headers.items()))) == operation


NOT_IMPLEMENTED = [
    # The Put/Delete of each configuration whose Get answers "not configured" (and other subresources).
    ("PUT", "b", None, "website"),
    ("DELETE", "b", None, "website"),
    ("PUT", "b", None, "notification"),
    ("PUT", "b", None, "logging"),
    ("PUT", "b", None, "replication"),
    ("DELETE", "b", None, "replication"),
    ("PUT", "b", None, "requestPayment"),
    ("PUT", "b", None, "accelerate"),
    ("HEAD", "b", None, "versioning"),
    ("DELETE", "b", None, "versioning"),
    ("DELETE", "b", "k", "retention"),
    ("GET", "b", None, "location&acl"),
    ("GET", "b", None, "versioning&cors"),
    ("GET", "b", None, "inventory"),
    ("GET", "b", None, "analytics"),
    ("GET", "b", None, "metrics"),
    ("GET", "b", None, "intelligent-tiering"),
    ("GET", "b", "k", "torrent"),
    ("HEAD", "b", "k", "acl"),
    ("GET", None, None, "session"),
]


@pytest.mark.parametrize("method, bucket, key, query", NOT_IMPLEMENTED,
                         ids=[f"{m} /{b or ''}{'/' + k if k else ''}?{qs}" for m, b, k, qs in NOT_IMPLEMENTED])
def test_resolve_known_subresource_not_implemented(method, bucket, key, query):
    with pytest.raises(errors.NotImplemented) as exc:
        resolve(method, bucket, key, q(query), Headers())
    assert exc.value.status == 501
    present = sorted(name for name in q(query) if name in SUBRESOURCES)
    assert exc.value.message == (f"The {', '.join(present)} subresource is not implemented "
                                 f"for {method} requests.")


METHOD_NOT_ALLOWED = [
    ("POST", "b", "k", "", "OBJECT"),
    ("POST", None, None, "", "SERVICE"),
    ("PUT", None, None, "", "SERVICE"),
    ("DELETE", None, None, "", "SERVICE"),
    ("HEAD", None, None, "", "SERVICE"),
    ("PATCH", "b", "k", "", "OBJECT"),
    ("OPTIONS", "b", "k", "", "OBJECT"),
]


@pytest.mark.parametrize("method, bucket, key, query, level", METHOD_NOT_ALLOWED)
def test_resolve_method_not_allowed(method, bucket, key, query, level):
    with pytest.raises(errors.MethodNotAllowed) as exc:
        resolve(method, bucket, key, q(query), Headers())
    assert exc.value.status == 405
    assert exc.value.fields == {"Method": method, "ResourceType": level}


# POST operations that exist in S3 but have no route: NotImplemented, never 405.
POST_SUBRESOURCES = [
    ("POST", "b", "k", "restore"),              # RestoreObject
    ("POST", "b", "k", "select&select-type=2"),  # SelectObjectContent
    ("POST", "b", None, "metadataTable"),       # CreateBucketMetadataTableConfiguration
]


@pytest.mark.parametrize("method, bucket, key, query", POST_SUBRESOURCES)
def test_resolve_post_subresource_not_implemented(method, bucket, key, query):
    with pytest.raises(errors.NotImplemented):
        resolve(method, bucket, key, q(query), Headers())


def _botocore_subresources() -> dict[str, list[tuple[str, str, str]]]:
    model = Loader().load_service_model("s3", "service-2")
    found: dict[str, list[tuple[str, str, str]]] = {}
    for name, op in model["operations"].items():
        uri = op["http"]["requestUri"]
        if "?" not in uri:
            continue
        for part in uri.split("?", 1)[1].split("&"):
            param, _, value = part.partition("=")
            if not value:  # literal subresources; list-type=2 / select-type=2 are selectors
                found.setdefault(param, []).append((name, op["http"]["method"], uri))
    return found


BOTOCORE_SUBRESOURCES = _botocore_subresources()
# Subresources that recent botocore S3 models (1.44) added and the table once lacked,
# which let e.g. DELETE /b/k?annotation fall through to DeleteObject.
NEWER_SUBRESOURCES = ["abac", "annotation", "metadataAnnotationTable", "metadataInventoryTable",
                      "metadataJournalTable"]


def test_botocore_model_has_the_newer_subresources():
    assert set(NEWER_SUBRESOURCES) <= set(BOTOCORE_SUBRESOURCES)


def test_subresources_cover_every_botocore_subresource():
    assert set(BOTOCORE_SUBRESOURCES) - SUBRESOURCES == set()


def test_subresources_cover_most_botocore_operations():
    # Sanity check of the oracle: the classic subresources are all in the table.
    for name in ("acl", "tagging", "versioning", "uploads", "delete", "location", "lifecycle", "policy"):
        assert name in BOTOCORE_SUBRESOURCES
        assert name in SUBRESOURCES


# Deprecated operations that share their request with the current one.
DEPRECATED_ALIASES = {"GetBucketLifecycle": "GetBucketLifecycleConfiguration",
                      "PutBucketLifecycle": "PutBucketLifecycleConfiguration",
                      "GetBucketNotification": "GetBucketNotificationConfiguration"}


@pytest.mark.parametrize("subresource", [s for s in sorted(BOTOCORE_SUBRESOURCES) if s in SUBRESOURCES])
def test_resolve_botocore_subresource_never_falls_through(subresource):
    """Every S3 operation addressed by a known subresource resolves to itself or NotImplemented."""
    for op_name, method, uri in BOTOCORE_SUBRESOURCES[subresource]:
        key = "k" if "{Key+}" in uri else None
        try:
            got = resolve(method, "b", key, {subresource: ""}, Headers())
        except errors.NotImplemented:
            continue
        assert got == DEPRECATED_ALIASES.get(op_name, op_name), (op_name, method, uri)


def test_every_route_is_a_botocore_operation_with_its_request():
    """Each routed name is the AWS operation of that method and subresource (so the
    OpenAPI document and metrics use AWS's names)."""
    model = Loader().load_service_model("s3", "service-2")["operations"]
    for route in ROUTES:
        if route.operation == "PostObject":  # AWS's name for the browser form upload, which SDKs do not send
            assert (route.method, route.level, route.subresources) == ("POST", "bucket", frozenset())
            continue
        assert route.operation in model, route.operation
        http = model[route.operation]["http"]
        assert http["method"] == route.method, route.operation
        query = http["requestUri"].partition("?")[2]
        assert {p.partition("=")[0] for p in query.split("&") if p and "=" not in p} == set(route.subresources) - {
            "uploadId"}, route.operation


@pytest.mark.parametrize("subresource", NEWER_SUBRESOURCES)
def test_resolve_newer_subresource_in_table(subresource):
    assert subresource in SUBRESOURCES


def test_resolve_delete_object_annotation_not_delete_object():
    with pytest.raises(errors.NotImplemented):
        resolve("DELETE", "b", "k", {"annotation": ""}, Headers())


def test_resolve_put_bucket_abac_not_create_bucket():
    with pytest.raises(errors.NotImplemented):
        resolve("PUT", "b", None, {"abac": ""}, Headers())


def test_routes_operations_unique_per_target():
    seen = set()
    for route in ROUTES:
        key = (route.level, route.method, route.subresources, route.header, route.query_equals)
        assert key not in seen
        seen.add(key)


@pytest.mark.parametrize("bucket, key, level", [
    (None, None, "service"), ("", None, "service"), ("b", None, "bucket"), ("b", "", "bucket"),
    ("b", "k", "object"), ("b", "a/b", "object"),
])
def test_level_of(bucket, key, level):
    assert level_of(bucket, key) == level
