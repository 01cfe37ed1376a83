"""Bucket-name and key rules of S3 ("Bucket naming rules", "Naming objects")."""
from __future__ import annotations

import re

from .. import errors

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
MAX_KEY_BYTES = 1024


def is_valid_bucket_name(name: str) -> bool:
    """S3's general-purpose bucket naming rules."""
    return bool(
        _BUCKET.fullmatch(name)
        and ".." not in name and ".-" not in name and "-." not in name
        and not _IPV4.fullmatch(name)
        and not name.startswith(_RESERVED_PREFIXES)
        and not name.endswith(_RESERVED_SUFFIXES)
    )


def check_bucket_name(name: str) -> None:
    if not is_valid_bucket_name(name):
        raise errors.InvalidBucketName(BucketName=name)


def check_key(key: str) -> None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise errors.InvalidArgument("Object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(Size=size, MaxSizeAllowed=MAX_KEY_BYTES)
