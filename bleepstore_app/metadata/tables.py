"""SQLAlchemy tables: the one description of the metadata schema.

Alembic migrations in ``migrations/versions`` create exactly this schema; a test
compares the two. Key and name columns use the "C" collation on PostgreSQL so that
listings come back in UTF-8 byte order, as S3 returns them (SQLite's BINARY
collation already compares that way). Times are integer microseconds since the
epoch (UTC): cheap to compare and to read back in bulk on every engine.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table, Text, false,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def ByteOrderString(length: int):
    """A string column that sorts by UTF-8 bytes on every engine."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


credentials = Table(
    "credentials", metadata,
    Column("access_key", String(128), primary_key=True),
    # The plain secret: only until start-up encrypts it (0007), then NULL.
    Column("secret_key", String(256), nullable=True),
    Column("owner_id", String(128), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    # The secret sealed under the credential key: "v1:<key id>:<base64>" (crypto/secrets.py).
    Column("secret_ciphertext", Text, nullable=True),
    Column("description", String(256), nullable=True),
    # "config" (seeded from the YAML at every start) or "admin" (the admin API / CLI).
    Column("source", String(16), nullable=False, server_default=text("'config'")),
)

buckets = Table(
    "buckets", metadata,
    Column("name", ByteOrderString(63), primary_key=True),
    Column("owner_id", String(128), nullable=False),
    Column("owner_display_name", String(256), nullable=False),
    Column("region", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Access control list as JSON text (grants), written by the ACL operations.
    Column("acl", Text, nullable=True),
    # NULL (never versioned), "Enabled" or "Suspended": once set, never NULL again.
    Column("versioning", String(16), nullable=True),
    # JSON text when Object Lock is enabled: {"enabled": true} plus the default
    # retention ({"mode": "GOVERNANCE", "days": 30} or "years").
    Column("object_lock", Text, nullable=True),
    # JSON text: the default encryption of new objects (PutBucketEncryption), e.g.
    # {"algorithm": "aws:kms", "kms_key": "name", "bucket_key": true}; NULL: none.
    Column("encryption", Text, nullable=True),
    # JSON text: the bucket's tag set (PutBucketTagging) as {"key": "value"}; NULL: none.
    Column("tagging", Text, nullable=True),
    # JSON text: the lifecycle rules (PutBucketLifecycleConfiguration), parsed and
    # validated (service/lifecycle.py); NULL: none.
    Column("lifecycle", Text, nullable=True),
    # JSON text, NULL when none (0006): the CORS rules (PutBucketCors), the bucket
    # policy document (PutBucketPolicy), the public access block's four flags
    # (PutPublicAccessBlock) and the object ownership setting (PutBucketOwnershipControls).
    Column("cors", Text, nullable=True),
    Column("policy", Text, nullable=True),
    Column("public_access_block", Text, nullable=True),
    Column("ownership_controls", Text, nullable=True),
)

NULL_VERSION = "null"


def _version_columns() -> list[Column]:
    """The columns of one version of an object: ``objects`` holds each key's
    current version, ``object_versions`` the noncurrent ones, row for row alike."""
    return [
        Column("size", BigInteger, nullable=False),
        Column("etag", String(80), nullable=False),
        Column("last_modified", BigInteger, nullable=False),
        Column("storage_class", String(32), nullable=False, default="STANDARD"),
        Column("content_type", String(1024), nullable=True),
        # JSON text: the other standard content headers (Cache-Control, Content-Disposition,
        # Content-Encoding, Content-Language, Expires) and x-amz-meta-* user metadata.
        Column("content_headers", Text, nullable=True),
        Column("user_metadata", Text, nullable=True),
        # JSON text: {"CRC32": "base64", ...} plus the checksum type, when sent.
        Column("checksums", Text, nullable=True),
        Column("owner_id", String(128), nullable=False),
        Column("owner_display_name", String(256), nullable=False),
        Column("acl", Text, nullable=True),
        # Where the bytes are: a storage-backend location (a unique name per write), the
        # id of a row in ``inline_data`` when the object is stored inline, or
        # MULTIPART_LOCATION when its bytes are the blobs listed in ``object_parts``.
        Column("data_location", String(256), nullable=False),
        Column("data_inline", Boolean, nullable=False, default=False),
        # Number of parts of an object made by CompleteMultipartUpload (else NULL).
        Column("parts_count", Integer, nullable=True),
        # "null" for a write to a never-versioned or suspended bucket, else a fresh id.
        Column("version_id", String(64), nullable=False, server_default=NULL_VERSION),
        # Orders one key's versions (larger is newer): a write takes
        # max(now in microseconds, current's + 1), so it is newer than all of them.
        Column("version_seq", BigInteger, nullable=False, server_default=text("0")),
        Column("delete_marker", Boolean, nullable=False, server_default=false()),
        # Object Lock: "GOVERNANCE" or "COMPLIANCE" until ``lock_until`` (microseconds),
        # and the legal hold (NULL: never set, else ON/OFF); only ever set in a bucket
        # with Object Lock.
        Column("lock_mode", String(16), nullable=True),
        Column("lock_until", BigInteger, nullable=True),
        Column("legal_hold", Boolean, nullable=True),
        # JSON text for an encrypted version (crypto/): its mode and wrapped data key,
        # or for SSE-C a salted HMAC of the customer's key; NULL: stored in clear.
        Column("encryption", Text, nullable=True),
        # JSON text: the version's tag set as {"key": "value"} in the order given; NULL: none.
        Column("tags", Text, nullable=True),
    ]


# Object keys are up to 1024 bytes of UTF-8; 1024 characters always holds them.
# The current version of each key (a delete marker too, when it is the newest):
# every read, write and listing of current objects is one primary-key lookup here.
objects = Table(
    "objects", metadata,
    Column("bucket", ByteOrderString(63), ForeignKey("buckets.name", ondelete="CASCADE"), primary_key=True),
    Column("key", ByteOrderString(1024), primary_key=True),
    *_version_columns(),
    Index("ix_objects_data_location", "data_location"),
    sqlite_with_rowid=False,
)

# The noncurrent versions of keys in versioned buckets; a key has rows here only
# while it has a row in ``objects`` (deleting the current version promotes the
# newest of these). Never-versioned buckets have none.
object_versions = Table(
    "object_versions", metadata,
    Column("bucket", ByteOrderString(63), ForeignKey("buckets.name", ondelete="CASCADE"), nullable=False),
    Column("key", ByteOrderString(1024), nullable=False),
    *_version_columns(),
    PrimaryKeyConstraint("bucket", "key", "version_seq"),
    Index("ix_object_versions_version_id", "bucket", "key", "version_id", unique=True),
    Index("ix_object_versions_data_location", "data_location"),
    sqlite_with_rowid=False,
)

# Small objects' bytes, kept apart from ``objects`` so listings scan dense rows.
inline_data = Table(
    "inline_data", metadata,
    Column("id", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

MULTIPART_LOCATION = "multipart"

# The parts of a completed multipart object (of one version of it), each its own
# blob, in order: the object's bytes are these blobs back to back (completion
# copies nothing). The version's row may be in ``objects`` or ``object_versions``.
object_parts = Table(
    "object_parts", metadata,
    Column("bucket", ByteOrderString(63), primary_key=True),
    Column("key", ByteOrderString(1024), primary_key=True),
    Column("version_id", String(64), primary_key=True, server_default=NULL_VERSION),
    Column("part_number", Integer, primary_key=True),
    Column("offset", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("checksums", Text, nullable=True),
    Column("data_location", String(256), nullable=False),
    Index("ix_object_parts_data_location", "data_location"),
    sqlite_with_rowid=False,
)

multipart_uploads = Table(
    "multipart_uploads", metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("bucket", ByteOrderString(63), ForeignKey("buckets.name", ondelete="CASCADE"), nullable=False),
    Column("key", ByteOrderString(1024), nullable=False),
    Column("initiated_at", BigInteger, nullable=False),
    Column("owner_id", String(128), nullable=False),
    Column("owner_display_name", String(256), nullable=False),
    Column("storage_class", String(32), nullable=False, default="STANDARD"),
    Column("content_type", String(1024), nullable=True),
    Column("content_headers", Text, nullable=True),
    Column("user_metadata", Text, nullable=True),
    Column("acl", Text, nullable=True),
    Column("checksum_algorithm", String(16), nullable=True),
    Column("checksum_type", String(16), nullable=True),
    # "open", then "completed" with the final ETag and checksum kept, so a retried
    # CompleteMultipartUpload answers the same (the row is reaped later).
    Column("state", String(16), nullable=False, default="open"),
    Column("completed_etag", String(80), nullable=True),
    Column("completed_checksum", String(128), nullable=True),
    # Object Lock asked for at CreateMultipartUpload, given to the completed object.
    Column("lock_mode", String(16), nullable=True),
    Column("lock_until", BigInteger, nullable=True),
    Column("legal_hold", Boolean, nullable=True),
    # The encryption every part is written with, given to the completed object.
    Column("encryption", Text, nullable=True),
    # The tag set asked for at CreateMultipartUpload (x-amz-tagging), given to the completed object.
    Column("tags", Text, nullable=True),
    Index("ix_multipart_uploads_bucket_key", "bucket", "key", "upload_id"),
    Index("ix_multipart_uploads_initiated_at", "initiated_at"),
)

multipart_parts = Table(
    "multipart_parts", metadata,
    Column("upload_id", String(64), ForeignKey("multipart_uploads.upload_id", ondelete="CASCADE"), primary_key=True),
    Column("part_number", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(80), nullable=False),
    Column("last_modified", BigInteger, nullable=False),
    Column("checksums", Text, nullable=True),
    Column("data_location", String(256), nullable=False),
    Index("ix_multipart_parts_data_location", "data_location"),
    sqlite_with_rowid=False,
)

# Blobs that a committed transaction unlinked (a replaced or deleted object, a
# replaced or dropped part), recorded by that same transaction. A reader that took
# the location before the unlink can still read the blob until ``not_before``
# (microseconds); then the sweeper (jobs/) deletes it and its row. Crash-safe: the
# record commits with the unlink, and deleting a blob twice is harmless.
blob_garbage = Table(
    "blob_garbage", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("location", String(256), nullable=False),
    Column("not_before", BigInteger, nullable=False),
    Index("ix_blob_garbage_not_before", "not_before"),
)

# Background work that a cluster runs once at a time: the holder renews its lease
# before ``expires_at`` (microseconds); a lease past expiry is anyone's to take.
# ``progress`` is the job's own resume point (JSON text), when it needs one.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("progress", Text, nullable=True),
)
