"""What a request may ask for that BleepStore does not do: refused here, before
the handler runs, so that a refused request stores nothing and no 200 pretends
(a tag set dropped, a conditional delete that deletes anyway).

``REFUSALS`` is the one table: request headers, the operations where S3 gives
them a meaning, and the error. The error is S3's own where S3 has one for the
situation (an Object Lock header on a bucket without Object Lock), else
NotImplemented naming the header. ``ACCEPTED`` lists the headers that look like
requests for a feature but carry nothing to refuse, with the reason.

One thing is cheap to do properly instead of refusing, and is done here too:
``x-amz-expected-bucket-owner`` (and its copy-source twin) is checked. The same
rules for fields inside a request document live with its parser (DeleteObjects:
per-object conditions, in handlers/objects.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import errors
from ..service import buckets
from . import headers as h

_NEW_OBJECT = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_COPIES = frozenset({"CopyObject", "UploadPartCopy"})
# Object Lock's mode, retain-until date and legal hold are implemented; event holds are not.
OBJECT_LOCK_EVENT_HOLD = ("x-amz-object-lock-event-hold", "x-amz-object-lock-event-hold-duration-days",
                          "x-amz-object-lock-event-hold-duration-years")
# Checksum algorithms newer than the ones the body readers verify (auth/payload.py).
UNVERIFIED_CHECKSUMS = ("x-amz-checksum-sha512", "x-amz-checksum-md5", "x-amz-checksum-xxhash64",
                        "x-amz-checksum-xxhash3", "x-amz-checksum-xxhash128")

ErrorFactory = Callable[[object, object, str, str], errors.S3Error]  # (svc, req, header, value)


def _not_implemented(feature: str) -> ErrorFactory:
    def error(svc, req, header: str, value: str) -> errors.S3Error:
        return errors.NotImplemented(f"{feature} is not implemented (header {header}).", Header=header)
    return error


@dataclass(frozen=True)
class Refusal:
    headers: tuple[str, ...]
    operations: frozenset[str]
    error: ErrorFactory
    applies: Callable[[str], bool] = lambda value: True  # refuse only some values


REFUSALS: tuple[Refusal, ...] = (
    Refusal(OBJECT_LOCK_EVENT_HOLD, _NEW_OBJECT, _not_implemented("Object Lock event holds")),
    # Every value: even ObjectWriter (what BleepStore does) would then have to be
    # read back by GetBucketOwnershipControls, which answers "not configured".
    Refusal(("x-amz-bucket-namespace",), frozenset({"CreateBucket"}),
            _not_implemented("The account regional bucket namespace"),
            applies=lambda value: value.strip() != "global"),
    Refusal(("x-amz-website-redirect-location",), _NEW_OBJECT, _not_implemented("Website redirects")),
    Refusal(("x-amz-write-offset-bytes",), frozenset({"PutObject"}), _not_implemented("Appending to an object")),
    Refusal(UNVERIFIED_CHECKSUMS, frozenset({"PutObject", "UploadPart", "CompleteMultipartUpload"}),
            _not_implemented("This checksum algorithm")),
    # The copy keeps the source's checksums; computing another one is not done.
    Refusal(("x-amz-checksum-algorithm",), frozenset({"CopyObject"}),
            _not_implemented("A new checksum algorithm on copy")),
    # Conditions on the destination of these writes (PutObject's are implemented).
    Refusal(("If-Match", "If-None-Match"), frozenset({"CopyObject", "CompleteMultipartUpload"}),
            _not_implemented("A conditional write for this operation")),
    Refusal(("If-Match", "x-amz-if-match-last-modified-time", "x-amz-if-match-size"),
            frozenset({"DeleteObject"}), _not_implemented("A conditional delete")),
    Refusal(("x-amz-if-match-initiated-time",), frozenset({"AbortMultipartUpload"}),
            _not_implemented("A conditional abort")),
)

# Headers S3 defines on routed operations that are accepted although BleepStore has
# no feature behind them, and why that is exact (tests/unit/test_unsupported.py
# checks every header of botocore's model is implemented, refused or listed here).
ACCEPTED = {
    "x-amz-request-payer": "an acknowledgement that the requester pays; on a bucket where the owner pays "
                           "(every bucket here) S3 ignores it",
    "x-amz-bucket-object-lock-token": "it lets replication enable Object Lock on a replicated bucket; there is "
                                      "no replication",
    "x-amz-confirm-remove-self-bucket-access": "it lets a PutBucketPolicy deny the owner the policy operations; "
                                               "here the bucket owner always keeps them (s3/authorize.py)",
    "x-amz-mfa": "only a bucket with MFA delete requires it, and MFA delete cannot be enabled (no MFA devices)",
    "x-amz-optional-object-attributes": "RestoreStatus is only shown for archived objects; there are none",
    "x-amz-object-annotation-directive": "COPY and EXCLUDE agree when the source has no annotations",
    "x-amz-bucket-namespace": "see REFUSALS: global is what BleepStore does",
    "x-amz-transition-default-minimum-object-size": "it only decides which objects a Transition rule moves, "
                                                    "and Transition rules are refused (one storage class)",
}

# operation -> (header, its WSGI environ key, refusal): a PutObject checks some 25
# headers, so each is one dict lookup in the environ, not a header-name conversion.
_BY_OPERATION: dict[str, list[tuple[str, str, Refusal]]] = {}
for _refusal in REFUSALS:
    for _operation in _refusal.operations:
        _BY_OPERATION.setdefault(_operation, []).extend(
            (name, "HTTP_" + name.upper().replace("-", "_"), _refusal) for name in _refusal.headers)

_NO_BUCKET_OWNER_CHECK = frozenset({"ListBuckets", "CreateBucket"})  # S3 defines none there


def check(svc, req) -> None:
    """Raise the S3Error for anything ``req`` asks for that is not done; called
    after authentication, before the handler (so before any body is read)."""
    environ = req.environ
    for name, key, refusal in _BY_OPERATION.get(req.operation, ()):
        value = environ.get(key)
        if value is not None and refusal.applies(value):
            raise refusal.error(svc, req, name, value)
    _check_expected_owners(svc, req)


def _check_expected_owners(svc, req) -> None:
    """x-amz-expected-bucket-owner: the bucket's owner must be that canonical user
    id, else 403 AccessDenied, as S3 answers (its value there is an account id)."""
    expected = req.headers.get("x-amz-expected-bucket-owner")
    if expected is not None and req.bucket and req.operation not in _NO_BUCKET_OWNER_CHECK:
        _require_owned_by(svc, req.bucket, expected)
    expected = req.headers.get("x-amz-source-expected-bucket-owner")
    if expected is not None and req.operation in _COPIES:
        source_bucket, _, _ = h.copy_source(req.headers["x-amz-copy-source"])
        _require_owned_by(svc, source_bucket, expected)


def _require_owned_by(svc, bucket: str, owner_id: str) -> None:
    if buckets.require_bucket(svc, bucket).owner_id != owner_id.strip():
        raise errors.AccessDenied()
