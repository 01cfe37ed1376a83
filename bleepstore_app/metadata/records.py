"""Plain values that the metadata layer hands to the service layer."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import NamedTuple


def now_us() -> int:
    """Now, in integer microseconds since the epoch (how times are stored)."""
    return time.time_ns() // 1000


def dumps(value) -> str | None:
    """JSON text for a dict/list column, None for empty."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else None


def loads(text: str | None, default=None):
    return json.loads(text) if text else ({} if default is None else default)


class MissingBucket(Exception):
    """The bucket a write referred to no longer exists."""


class MetadataUnavailable(Exception):
    """PostgreSQL could not serve: it refused the connection (down, out of
    connections, not accepting them) or lost it mid-statement. Worth a retry."""


class ConditionFailed(Exception):
    """A conditional write's expectation did not hold: ``reason`` is "exists"
    (If-None-Match: *), "missing" or "etag" (If-Match)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    access_key: str
    secret_key: str
    owner_id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class BucketRecord:
    name: str
    owner_id: str
    owner_display_name: str
    region: str
    created_at: int
    acl: str | None = None
    versioning: str | None = None     # None (never versioned), "Enabled", "Suspended"
    object_lock: str | None = None    # JSON text when Object Lock is enabled
    encryption: str | None = None     # JSON text: the default encryption of new objects
    tagging: str | None = None        # JSON text: the bucket's tag set
    lifecycle: str | None = None      # JSON text: the lifecycle rules (service/lifecycle.py)
    cors: str | None = None           # JSON text: the CORS rules
    policy: str | None = None         # the bucket policy document (JSON text, as stored)
    public_access_block: str | None = None  # JSON text: the four public access block flags
    ownership_controls: str | None = None   # JSON text: the object ownership setting (None: default)

    @property
    def lock_config(self) -> dict | None:
        return loads(self.object_lock) if self.object_lock else None


@dataclass(slots=True)
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str
    last_modified: int
    owner_id: str
    owner_display_name: str
    data_location: str
    data_inline: bool = False
    storage_class: str = "STANDARD"
    content_type: str | None = None
    content_headers: dict = field(default_factory=dict)
    user_metadata: dict = field(default_factory=dict)
    checksums: dict = field(default_factory=dict)
    acl: str | None = None
    parts_count: int | None = None
    version_id: str = "null"
    version_seq: int = 0
    delete_marker: bool = False
    lock_mode: str | None = None      # "GOVERNANCE" or "COMPLIANCE"
    lock_until: int | None = None     # microseconds
    legal_hold: bool | None = None    # None: never set
    encryption: dict | None = None    # None: stored in clear (see service/encryption.py)
    tags: dict = field(default_factory=dict)  # the tag set, {key: value} in the order given

    def to_row(self) -> dict:
        return {
            "bucket": self.bucket, "key": self.key, "size": self.size, "etag": self.etag,
            "last_modified": self.last_modified, "storage_class": self.storage_class,
            "content_type": self.content_type, "content_headers": dumps(self.content_headers),
            "user_metadata": dumps(self.user_metadata), "checksums": dumps(self.checksums),
            "owner_id": self.owner_id, "owner_display_name": self.owner_display_name,
            "acl": self.acl, "data_location": self.data_location, "data_inline": self.data_inline,
            "parts_count": self.parts_count, "version_id": self.version_id, "version_seq": self.version_seq,
            "delete_marker": self.delete_marker, "lock_mode": self.lock_mode, "lock_until": self.lock_until,
            "legal_hold": self.legal_hold, "encryption": dumps(self.encryption),
            "tags": dumps(self.tags),
        }

    def locked_at(self, now: int, bypass_governance: bool = False) -> bool:
        """Whether Object Lock forbids deleting this version now (a legal hold, or a
        retention period not over: COMPLIANCE always, GOVERNANCE unless bypassed)."""
        if self.legal_hold:
            return True
        if self.lock_until is None or self.lock_until <= now:
            return False
        return self.lock_mode == "COMPLIANCE" or not bypass_governance


class VersionLocked(Exception):
    """Object Lock forbids deleting (or weakening the lock of) this version."""


class ListedVersion(NamedTuple):
    """One row of ListObjectVersions."""
    key: str
    version_id: str
    version_seq: int
    is_latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified: int
    storage_class: str
    owner_id: str
    owner_display_name: str


class ListedObject(NamedTuple):
    """One row of a listing: only what ListObjects shows (a tuple: cheap in bulk)."""
    key: str
    size: int
    etag: str
    last_modified: int
    storage_class: str
    owner_id: str
    owner_display_name: str
