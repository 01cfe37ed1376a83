"""Reads of bucket (and object) configurations BleepStore never holds.

BleepStore has no website, replication,
logging, notifications, requester pays or transfer acceleration yet, so every
bucket is in the state S3 calls "never configured". Each Get answers exactly
what S3 answers then (an empty document, or the operation's own "not found"
error), so clients that probe these settings routinely (s3fs, rclone, Terraform,
audit tools) work. The matching Put/Delete operations are not routed: they answer
NotImplemented until the feature exists.

Permission, as in S3 for these operations: the bucket owner (ACL grants do not
cover them); a missing bucket is NoSuchBucket.
"""
from __future__ import annotations

from ... import errors
from ...service import buckets
from .. import xml
from ..responses import S3Result
from . import handles


def _owned_bucket(svc, req) -> None:
    buckets.require_owner(buckets.require_bucket(svc, req.bucket), req.caller)


def _empty(root: str) -> S3Result:
    return S3Result(xml=xml.empty_document(root))


@handles("GetBucketLogging")
def get_bucket_logging(svc, req) -> S3Result:
    _owned_bucket(svc, req)
    return _empty("BucketLoggingStatus")


@handles("GetBucketNotificationConfiguration")
def get_bucket_notification_configuration(svc, req) -> S3Result:
    _owned_bucket(svc, req)
    return _empty("NotificationConfiguration")


@handles("GetBucketAccelerateConfiguration")
def get_bucket_accelerate_configuration(svc, req) -> S3Result:
    _owned_bucket(svc, req)
    return _empty("AccelerateConfiguration")


@handles("GetBucketRequestPayment")
def get_bucket_request_payment(svc, req) -> S3Result:
    _owned_bucket(svc, req)
    return S3Result(xml=xml.document("RequestPaymentConfiguration", xml.el("Payer", "BucketOwner")))


def _not_configured(operation: str, error: type[errors.S3Error]) -> None:
    """Register the handler of a Get whose answer, never configured, is ``error``."""
    @handles(operation)
    def handler(svc, req) -> S3Result:
        _owned_bucket(svc, req)
        raise error(BucketName=req.bucket)
    handler.__name__ = handler.__qualname__ = operation


_not_configured("GetBucketWebsite", errors.NoSuchWebsiteConfiguration)
_not_configured("GetBucketReplication", errors.ReplicationConfigurationNotFoundError)
