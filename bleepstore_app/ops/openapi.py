"""/openapi.json, generated from the router's own table, and /docs (Swagger UI).

Paths, methods and subresources come from ``s3.routing.ROUTES``, the table that
routes requests, so the document cannot describe an operation the server does
not route. An S3 operation is told apart by its query subresource, which OpenAPI
cannot key on, so (as other S3 descriptions do) the subresource is part of the
path key: ``/{Bucket}?acl``; a header-selected operation gets a fragment
(``/{Bucket}/{Key}#x-amz-copy-source``). The per-operation details below (query parameters,
headers, bodies) are documentation; an operation without an entry still appears.
Swagger UI's assets come from the installed flask-swagger-ui package.
"""
from __future__ import annotations

from .. import __version__
from ..s3.routing import ROUTES, Route

XML = "application/xml"

_LIST_PARAMS = ("prefix", "delimiter", "max-keys", "encoding-type")
QUERY_PARAMS: dict[str, tuple[str, ...]] = {
    "ListObjects": _LIST_PARAMS + ("marker",),
    "ListObjectsV2": _LIST_PARAMS + ("continuation-token", "start-after", "fetch-owner"),
    "ListMultipartUploads": ("prefix", "delimiter", "max-uploads", "key-marker", "upload-id-marker",
                             "encoding-type"),
    "GetObject": ("partNumber", "response-content-type", "response-content-language", "response-expires",
                  "response-cache-control", "response-content-disposition", "response-content-encoding"),
    "HeadObject": ("partNumber",),
    "UploadPart": ("partNumber",),
    "UploadPartCopy": ("partNumber",),
    "ListParts": ("max-parts", "part-number-marker"),
}
_CONDITIONAL = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")
_WRITE = ("Content-MD5", "Content-Type", "x-amz-acl", "x-amz-storage-class", "x-amz-checksum-crc32",
          "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256")
_COPY = ("x-amz-copy-source", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
         "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since")
HEADERS: dict[str, tuple[str, ...]] = {
    "CreateBucket": ("x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-full-control"),
    "PutObject": _WRITE + ("If-None-Match", "If-Match", "Cache-Control", "Content-Disposition",
                           "Content-Encoding", "Expires"),
    "CopyObject": _COPY + ("x-amz-metadata-directive", "x-amz-acl", "x-amz-storage-class"),
    "GetObject": _CONDITIONAL + ("Range", "x-amz-checksum-mode"),
    "HeadObject": _CONDITIONAL + ("Range", "x-amz-checksum-mode"),
    "CreateMultipartUpload": ("Content-Type", "x-amz-acl", "x-amz-storage-class", "x-amz-checksum-algorithm",
                              "x-amz-checksum-type"),
    "UploadPart": _WRITE[:1] + _WRITE[5:],
    "UploadPartCopy": _COPY + ("x-amz-copy-source-range",),
    "PutBucketAcl": ("x-amz-acl",), "PutObjectAcl": ("x-amz-acl",),
    "DeleteObjects": ("Content-MD5",),
}
# Required query parameters besides the subresource itself.
REQUIRED_QUERY = {"UploadPart": ("partNumber",), "UploadPartCopy": ("partNumber",)}
XML_BODIES = {"CreateBucket": "CreateBucketConfiguration", "DeleteObjects": "Delete",
              "CompleteMultipartUpload": "CompleteMultipartUpload", "PutBucketAcl": "AccessControlPolicy",
              "PutObjectAcl": "AccessControlPolicy"}
BINARY_BODIES = ("PutObject", "UploadPart")
XML_RESULTS = {"ListBuckets": "ListAllMyBucketsResult", "ListObjects": "ListBucketResult",
               "ListObjectsV2": "ListBucketResult", "GetBucketLocation": "LocationConstraint",
               "GetBucketAcl": "AccessControlPolicy", "GetObjectAcl": "AccessControlPolicy",
               "CopyObject": "CopyObjectResult", "DeleteObjects": "DeleteResult",
               "CreateMultipartUpload": "InitiateMultipartUploadResult", "UploadPartCopy": "CopyPartResult",
               "CompleteMultipartUpload": "CompleteMultipartUploadResult", "ListParts": "ListPartsResult",
               "ListMultipartUploads": "ListMultipartUploadsResult"}
NO_CONTENT = ("DeleteBucket", "DeleteObject", "AbortMultipartUpload", "PostObject")

OPERATOR_PATHS = {
    "/healthz": ("Liveness", "200 while the process answers.", "text/plain"),
    "/readyz": ("Readiness", "200 with an empty body when the metadata database and storage answer, "
                             "else 503 naming what is unavailable.", "text/plain"),
    "/health": ("Component health", "status, and checks.metadata / checks.storage with status and latency_ms "
                                    "each (503 if one is down).", "application/json"),
    "/metrics": ("Prometheus metrics", "All gunicorn workers' metrics, summed.", "text/plain"),
    "/openapi.json": ("This document", "The OpenAPI description.", "application/json"),
    "/docs": ("Swagger UI", "This document, browsable.", "text/html"),
}


# Tags by operation family (the earlier BleepStore's document had these three).
TAGS = (("Bucket", "Buckets and their configuration (ListBuckets too)"),
        ("Object", "Objects and their subresources"),
        ("MultipartUpload", "Multipart uploads, their parts and their listing"),
        ("Operations", "Operator endpoints: probes, metrics, this document (unsigned)"))
SECURITY_SCHEME = "sigv4"


def family(route: Route) -> str:
    """Bucket, Object or MultipartUpload: the multipart operations are the ones
    addressed by ``?uploads`` or ``?uploadId``, whatever their level."""
    if route.subresources & {"uploads", "uploadId"}:
        return "MultipartUpload"
    return "Object" if route.level == "object" else "Bucket"


def _path(route: Route) -> str:
    base = {"service": "/", "bucket": "/{Bucket}", "object": "/{Bucket}/{Key}"}[route.level]
    query = sorted(route.subresources)
    if route.query_equals:
        query.append("=".join(route.query_equals))
    path = base + ("?" + "&".join(query) if query else "")
    # Told apart by a header (CopyObject's x-amz-copy-source): a fragment keeps the
    # key unique, and clients drop fragments from the request they send.
    return path + (f"#{route.header}" if route.header else "")


def _parameter(name: str, where: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}


def _operation(route: Route) -> dict:
    name = route.operation
    params = []
    if route.level != "service":
        params.append(_parameter("Bucket", "path", True))
    if route.level == "object":
        params.append({**_parameter("Key", "path", True), "description": "Object key (may contain '/')"})
    if "uploadId" in route.subresources:
        params.append(_parameter("uploadId", "query", True))
    required = REQUIRED_QUERY.get(name, ())
    params += [_parameter(q, "query", q in required) for q in QUERY_PARAMS.get(name, ())]
    if route.header:
        params.append(_parameter(route.header, "header", True))
    params += [_parameter(h, "header") for h in HEADERS.get(name, ()) if h != route.header]
    status = "204" if name in NO_CONTENT else "200"
    ok: dict = {"description": f"{name} succeeded"}
    if name in XML_RESULTS:
        ok["content"] = {XML: {"schema": {"type": "string", "description": f"<{XML_RESULTS[name]}> document"}}}
    elif name == "GetObject":
        ok["content"] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    op = {
        "operationId": name,
        "summary": f"S3 {name}",
        "externalDocs": {"url": f"https://docs.aws.amazon.com/AmazonS3/latest/API/API_{name}.html"},
        "tags": [family(route)],
        "parameters": params,
        "responses": {status: ok, "default": {"$ref": "#/components/responses/S3Error"}},
    }
    if name in XML_BODIES:
        op["requestBody"] = {"required": name != "CreateBucket" and not name.startswith("Put"), "content": {
            XML: {"schema": {"type": "string", "description": f"<{XML_BODIES[name]}> document"}}}}
    elif name == "PostObject":  # a browser form; the signature is in the form, not the request
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["key", "file"], "properties": {
                "key": {"type": "string"}, "policy": {"type": "string"},
                "file": {"type": "string", "format": "binary"}}}}}}
        op["externalDocs"]["url"] = "https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html"
    elif name in BINARY_BODIES:
        op["requestBody"] = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                   "format": "binary"}}}}
    return op


def build_document(server_url: str | None = None) -> dict:
    """The OpenAPI 3.1 document of every route the server serves."""
    paths: dict[str, dict] = {}
    for route in ROUTES:
        paths.setdefault(_path(route), {})[route.method.lower()] = _operation(route)
    for path, (summary, description, media) in OPERATOR_PATHS.items():
        paths[path] = {"get": {
            "operationId": "ops_" + path.strip("/").replace(".", "_"), "summary": summary,
            "description": description + " Unsigned path-style requests only (a signed request "
                                         "names a bucket); also under /-" + path + ".",
            "tags": ["Operations"], "security": [],
            "responses": {"200": {"description": summary, "content": {media: {"schema": {"type": "string"}}}},
                          "503": {"description": "Not ready"}}}}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "BleepStore S3-Compatible API", "version": __version__,
                 "description": "An S3-compatible object store. Requests are signed with AWS SigV4 (or V2) "
                                "as the AWS S3 API Reference describes; errors are S3 <Error> documents."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "AWS Signature Version 4: `Authorization: AWS4-HMAC-SHA256 "
                                   "Credential=<key>/<date>/<region>/s3/aws4_request, SignedHeaders=..., "
                                   "Signature=...` with X-Amz-Date (or Date) and, optionally, "
                                   "x-amz-content-sha256 (without it the body received is hashed). "
                                   "Signature V2 (`AWS key:signature`) is accepted too."},
                "presigned": {"type": "apiKey", "in": "query", "name": "X-Amz-Signature",
                              "description": "A presigned URL (SigV4 query parameters X-Amz-Algorithm, "
                                             "X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                                             "X-Amz-SignedHeaders, X-Amz-Signature)."},
            },
            "responses": {"S3Error": {"description": "S3 error (Code, Message, Resource, RequestId)",
                                      "content": {XML: {"schema": {"type": "string"}}}}},
        },
        # Anonymous ({}) too: public-read buckets and objects answer unsigned requests.
        "security": [{SECURITY_SCHEME: []}, {"presigned": []}, {}],
        "tags": [{"name": name, "description": description} for name, description in TAGS],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
