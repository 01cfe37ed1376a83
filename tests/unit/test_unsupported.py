"""The refusal table (bleepstore_app.s3.unsupported) against botocore's S3 model:
every request header S3 defines on a routed operation is implemented, refused
or accepted for a stated reason, so a header added to S3 later fails here until
someone decides what it means for BleepStore."""
from __future__ import annotations

import pytest
from botocore.loaders import Loader

from bleepstore_app.s3.routing import ROUTES
from bleepstore_app.s3.unsupported import ACCEPTED, REFUSALS

# Headers the handlers and the request layer act on (ACLs, content headers and
# metadata, the checksums auth/payload.py verifies, conditions, copy sources...).
IMPLEMENTED = {
    "Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-MD5", "Content-Type", "Expires", "Range", "x-amz-meta-", "x-amz-storage-class",
    "x-amz-acl", "x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp", "x-amz-grant-write",
    "x-amz-grant-write-acp",
    "x-amz-sdk-checksum-algorithm", "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1", "x-amz-checksum-sha256", "x-amz-checksum-algorithm", "x-amz-checksum-type",
    "x-amz-checksum-mode",
    "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
    "x-amz-copy-source", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since", "x-amz-copy-source-range",
    "x-amz-metadata-directive", "x-amz-mp-object-size",
    "x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner",
    "x-amz-object-ownership",
    "x-amz-bucket-object-lock-enabled", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold", "x-amz-bypass-governance-retention",
    # Server-side encryption (s3/sse.py, service/encryption.py).
    "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context", "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-MD5", "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-MD5",
    "x-amz-tagging", "x-amz-tagging-directive",
    # GetObjectAttributes.
    "x-amz-object-attributes", "x-amz-max-parts", "x-amz-part-number-marker",
}


def _model_headers() -> dict[str, set[str]]:
    model = Loader().load_service_model("s3", "service-2")
    out = {}
    for route in ROUTES:
        if route.operation == "PostObject":  # a browser form: not in botocore's model, no headers of its own
            continue
        op = model["operations"][route.operation]
        members = model["shapes"][op["input"]["shape"]]["members"].values() if "input" in op else ()
        out[route.operation] = {m["locationName"] for m in members if m.get("location") in ("header", "headers")}
    return out


MODEL_HEADERS = _model_headers()
REFUSED = {(name, op) for refusal in REFUSALS for op in refusal.operations for name in refusal.headers}


@pytest.mark.parametrize("operation", sorted(MODEL_HEADERS))
def test_every_model_header_is_implemented_refused_or_accepted(operation):
    undecided = {name for name in MODEL_HEADERS[operation]
                 if name not in IMPLEMENTED and name not in ACCEPTED and (name, operation) not in REFUSED}
    assert undecided == set()


def test_refusals_name_headers_s3_defines_there():
    """A header S3 does not define on an operation is ignored by S3; refusing it
    there would break clients for nothing."""
    assert {(name, op) for name, op in REFUSED if name not in MODEL_HEADERS[op]} == set()


@pytest.mark.parametrize("header", ["x-amz-object-lock-event-hold",
                                    "x-amz-website-redirect-location"])
def test_feature_headers_refused_on_put_object(header):
    assert (header, "PutObject") in REFUSED


def test_conditional_delete_refused():
    assert ("If-Match", "DeleteObject") in REFUSED
