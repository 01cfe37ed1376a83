"""The IAM actions of S3 that a bucket policy may name, and which each operation needs.

Each action applies to one resource type: the bucket (``arn:aws:s3:::bucket``) or
an object (``arn:aws:s3:::bucket/key``). A statement whose actions fit none of
its resources is refused, as AWS refuses it ("Action does not apply to any
resource(s) in statement").
"""
from __future__ import annotations

BUCKET, OBJECT = "bucket", "object"

_BUCKET_ACTIONS = (
    "CreateBucket", "DeleteBucket", "ListBucket", "ListBucketVersions", "ListBucketMultipartUploads",
    "GetBucketLocation", "GetBucketAcl", "PutBucketAcl", "GetBucketVersioning", "PutBucketVersioning",
    "GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", "GetEncryptionConfiguration",
    "PutEncryptionConfiguration", "GetBucketTagging", "PutBucketTagging", "GetLifecycleConfiguration",
    "PutLifecycleConfiguration", "GetBucketCORS", "PutBucketCORS", "GetBucketPolicy", "PutBucketPolicy",
    "DeleteBucketPolicy", "GetBucketPolicyStatus", "GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls", "PutBucketOwnershipControls", "GetBucketWebsite", "PutBucketWebsite",
    "DeleteBucketWebsite", "GetReplicationConfiguration", "PutReplicationConfiguration", "GetBucketLogging",
    "PutBucketLogging", "GetBucketNotification", "PutBucketNotification", "GetBucketRequestPayment",
    "PutBucketRequestPayment", "GetAccelerateConfiguration", "PutAccelerateConfiguration",
)
_OBJECT_ACTIONS = (
    "GetObject", "GetObjectVersion", "PutObject", "DeleteObject", "DeleteObjectVersion", "GetObjectAcl",
    "GetObjectVersionAcl", "PutObjectAcl", "PutObjectVersionAcl", "GetObjectTagging", "GetObjectVersionTagging",
    "PutObjectTagging", "PutObjectVersionTagging", "DeleteObjectTagging", "DeleteObjectVersionTagging",
    "GetObjectRetention", "PutObjectRetention", "GetObjectLegalHold", "PutObjectLegalHold",
    "BypassGovernanceRetention", "AbortMultipartUpload", "ListMultipartUploadParts", "GetObjectAttributes",
    "GetObjectVersionAttributes", "RestoreObject",
)

# Lower-cased "s3:action" -> resource type (IAM action names are case-insensitive).
RESOURCE_TYPE: dict[str, str] = {
    **{f"s3:{name}".lower(): BUCKET for name in _BUCKET_ACTIONS},
    **{f"s3:{name}".lower(): OBJECT for name in _OBJECT_ACTIONS},
}

# Operation -> (action, action when a versionId is named). Operations absent here
# are not governed by a bucket policy (ListBuckets, CreateBucket: no bucket yet).
_ACTIONS: dict[str, tuple[str, str | None]] = {
    "DeleteBucket": ("s3:DeleteBucket", None),
    "HeadBucket": ("s3:ListBucket", None),
    "ListObjects": ("s3:ListBucket", None),
    "ListObjectsV2": ("s3:ListBucket", None),
    "ListObjectVersions": ("s3:ListBucketVersions", None),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", None),
    "GetBucketLocation": ("s3:GetBucketLocation", None),
    "GetBucketAcl": ("s3:GetBucketAcl", None),
    "PutBucketAcl": ("s3:PutBucketAcl", None),
    "GetBucketVersioning": ("s3:GetBucketVersioning", None),
    "PutBucketVersioning": ("s3:PutBucketVersioning", None),
    "GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration", None),
    "PutObjectLockConfiguration": ("s3:PutBucketObjectLockConfiguration", None),
    "GetBucketEncryption": ("s3:GetEncryptionConfiguration", None),
    "PutBucketEncryption": ("s3:PutEncryptionConfiguration", None),
    "DeleteBucketEncryption": ("s3:PutEncryptionConfiguration", None),
    "GetBucketTagging": ("s3:GetBucketTagging", None),
    "PutBucketTagging": ("s3:PutBucketTagging", None),
    "DeleteBucketTagging": ("s3:PutBucketTagging", None),
    "GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration", None),
    "PutBucketLifecycleConfiguration": ("s3:PutLifecycleConfiguration", None),
    "DeleteBucketLifecycle": ("s3:PutLifecycleConfiguration", None),
    "GetBucketCors": ("s3:GetBucketCORS", None),
    "PutBucketCors": ("s3:PutBucketCORS", None),
    "DeleteBucketCors": ("s3:PutBucketCORS", None),
    "GetBucketPolicy": ("s3:GetBucketPolicy", None),
    "PutBucketPolicy": ("s3:PutBucketPolicy", None),
    "DeleteBucketPolicy": ("s3:DeleteBucketPolicy", None),
    "GetBucketPolicyStatus": ("s3:GetBucketPolicyStatus", None),
    "GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock", None),
    "PutPublicAccessBlock": ("s3:PutBucketPublicAccessBlock", None),
    "DeletePublicAccessBlock": ("s3:PutBucketPublicAccessBlock", None),
    "GetBucketOwnershipControls": ("s3:GetBucketOwnershipControls", None),
    "PutBucketOwnershipControls": ("s3:PutBucketOwnershipControls", None),
    "DeleteBucketOwnershipControls": ("s3:PutBucketOwnershipControls", None),
    "GetBucketWebsite": ("s3:GetBucketWebsite", None),
    "GetBucketReplication": ("s3:GetReplicationConfiguration", None),
    "GetBucketLogging": ("s3:GetBucketLogging", None),
    "GetBucketNotificationConfiguration": ("s3:GetBucketNotification", None),
    "GetBucketRequestPayment": ("s3:GetBucketRequestPayment", None),
    "GetBucketAccelerateConfiguration": ("s3:GetAccelerateConfiguration", None),
    "DeleteObjects": ("s3:DeleteObject", None),  # per key, as each key's DeleteObject
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "PutObject": ("s3:PutObject", None),
    "PostObject": ("s3:PutObject", None),
    "CopyObject": ("s3:PutObject", None),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectAcl": ("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
    "PutObjectAcl": ("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": ("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"),
    "GetObjectRetention": ("s3:GetObjectRetention", None),
    "PutObjectRetention": ("s3:PutObjectRetention", None),
    "GetObjectLegalHold": ("s3:GetObjectLegalHold", None),
    "PutObjectLegalHold": ("s3:PutObjectLegalHold", None),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"),
    "CreateMultipartUpload": ("s3:PutObject", None),
    "UploadPart": ("s3:PutObject", None),
    "UploadPartCopy": ("s3:PutObject", None),
    "CompleteMultipartUpload": ("s3:PutObject", None),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", None),
    "ListParts": ("s3:ListMultipartUploadParts", None),
}

# What the bucket owner may always do, whatever the policy denies (AWS keeps the
# owner able to repair a policy that locks everyone out).
OWNER_ALWAYS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})


def action_for(operation: str, version_id: str | None = None) -> str | None:
    """The IAM action an operation needs (None: not governed by a bucket policy)."""
    found = _ACTIONS.get(operation)
    if found is None:
        return None
    plain, versioned = found
    return versioned if version_id is not None and versioned else plain
