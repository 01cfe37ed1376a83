"""ListObjects (v1) and ListObjectsV2: prefixes, delimiters, markers, pages.

Keys compare in UTF-8 byte order, which equals Python's code-point order for
valid strings. With a delimiter, each common prefix is reported once; keys under
it that arrived in the same batch are skipped, and the next query starts past
the whole prefix, so a prefix holding a million keys costs at most one query.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import errors
from ..metadata.records import ListedObject
from . import Caller, Services
from . import acl as acls
from .buckets import require_bucket, require_bucket_permission

MAX_KEYS = 1000


@dataclass
class ListingPage:
    objects: list[ListedObject] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    is_truncated: bool = False
    # The last key or common prefix returned: v1's NextMarker, v2's continuation.
    last_returned: str | None = None


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``
    (None if there is none): the prefix with its last code point incremented."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:
            code = 0xE000  # skip surrogates: they are not valid in keys
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def parse_max_keys(value: str | None) -> int:
    if value is None or value == "":
        return MAX_KEYS
    try:
        number = int(value)
    except ValueError:
        raise errors.InvalidArgument("Provided max-keys not an integer or within integer range",
                                     ArgumentName="max-keys", ArgumentValue=value) from None
    if number > 2147483647:
        raise errors.InvalidArgument("Provided max-keys not an integer or within integer range",
                                     ArgumentName="max-keys", ArgumentValue=value)
    if number < 0:
        raise errors.InvalidArgument("Argument maxKeys must be an integer between 0 and 2147483647",
                                     ArgumentName="maxKeys", ArgumentValue=value)
    return min(number, MAX_KEYS)


def list_objects(svc: Services, caller: Caller | None, bucket: str, prefix: str, delimiter: str,
                 after: str | None, max_keys: int) -> ListingPage:
    """One page of keys > ``after`` under ``prefix``, grouped by ``delimiter``."""
    require_bucket_permission(require_bucket(svc, bucket), caller, acls.READ)
    page = ListingPage()
    if max_keys == 0:
        return page
    high = successor(prefix) if prefix else None
    if after is not None and after >= prefix:
        start, inclusive = after, False
    else:
        start, inclusive = prefix, True
    count = 0
    while True:
        # One extra row tells whether more remain; with a delimiter, rows under a
        # reported prefix are skipped in the same batch, so fetch a useful amount.
        batch_size = max(max_keys - count + 1, 100 if delimiter else 1)
        rows = svc.meta.list_objects(bucket, start, inclusive, high, batch_size)
        inside: str | None = None  # the common prefix whose keys are being skipped
        for obj in rows:
            if inside is not None and obj.key.startswith(inside):
                continue
            inside = None
            if count == max_keys:
                page.is_truncated = True
                return page
            common = common_prefix(obj.key, prefix, delimiter)
            if common is None:
                page.objects.append(obj)
                page.last_returned = obj.key
                start, inclusive = obj.key, False
                count += 1
                continue
            # A prefix at or before the marker was reported on an earlier page.
            if after is None or common > after:
                page.common_prefixes.append(common)
                page.last_returned = common
                count += 1
            inside = common
            start, inclusive = successor(common), True  # the next query jumps past it
            if start is None or (high is not None and start >= high):
                return page
        if len(rows) < batch_size:
            return page


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    pos = key.find(delimiter, len(prefix))
    return None if pos < 0 else key[: pos + len(delimiter)]
